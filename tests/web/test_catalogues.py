"""The 简体中文 and English catalogues translate every message of the web UI.

Messages are extracted with Babel's own API, using babel.cfg (the file `pybabel extract -F babel.cfg`
reads), from the templates and from the Python modules of the UI; a message without a non-empty,
non-fuzzy translation in either catalogue fails the test and is named.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from vigil.core import i18n

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = sorted(i18n.LANGUAGES)
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
CJK = re.compile(r"[\u4e00-\u9fff]")


def extracted() -> dict[str, set[str]]:
    """Every message id the UI uses, with the files it appears in."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")
    found: dict[str, set[str]] = {}

    def only_src(path: str) -> bool:
        return Path(os.path.relpath(path, ROOT)).parts[:1] in {(), ("src",)}

    for filename, _lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, directory_filter=only_src
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, set()).add(filename)
    return found


MESSAGES = extracted()


def catalogue(language: str) -> Catalog:
    return i18n.catalog(language)


def test_babel_cfg_reaches_templates_and_views() -> None:
    files = {name for names in MESSAGES.values() for name in names}
    assert any(name.endswith(".html") for name in files), "babel.cfg extracts nothing from the templates"
    assert {"src/vigil/web/views.py", "src/vigil/accounts/views.py", "src/vigil/audit/views.py",
            "src/vigil/web/templating.py"} <= files, sorted(files)
    assert "Sign in" in MESSAGES and "Security policy" in MESSAGES


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_has_a_translation(language: str) -> None:
    translated = catalogue(language)
    missing = []
    for msgid, files in sorted(MESSAGES.items()):
        entry = translated.get(msgid)
        if entry is None or not entry.string or entry.fuzzy:
            missing.append(f"{msgid!r} (in {', '.join(sorted(files))})")
    assert not missing, (
        f"{len(missing)} messages lack a {language} translation in {i18n.catalog_path(language).parent}/*.po; "
        "run `pybabel extract -F babel.cfg -o messages.pot .` and `pybabel update -i messages.pot -d "
        "src/vigil/web/locale`, then translate:\n  " + "\n  ".join(missing)
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_holds_no_message_the_ui_no_longer_uses(language: str) -> None:
    stale = sorted(entry.id for entry in catalogue(language) if entry.id and entry.id not in MESSAGES)
    assert not stale, f"remove these from the {language} catalogue (or mark them obsolete): {stale}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders(language: str) -> None:
    wrong = []
    for entry in catalogue(language):
        if entry.id and entry.string and sorted(PLACEHOLDER.findall(entry.id)) != sorted(
                PLACEHOLDER.findall(str(entry.string))):
            wrong.append(f"{entry.id!r} -> {entry.string!r}")
    assert not wrong, "translations must keep every %(name)s of their message:\n  " + "\n  ".join(wrong)


def test_english_is_the_source_and_chinese_is_chinese() -> None:
    english = catalogue("en")
    assert all(entry.string == entry.id for entry in english if entry.id), "en msgstr must repeat the msgid"
    not_chinese = [entry.id for entry in catalogue("zh_CN") if entry.id and not CJK.search(str(entry.string))]
    assert not not_chinese, f"zh_CN entries left in English: {not_chinese}"


def test_the_running_app_reads_the_catalogues() -> None:
    assert i18n.gettext_for("zh_CN")("Security policy") == "安全策略"
    assert i18n.gettext_for("zh_CN")("Audit log") == "审计日志"
    assert i18n.gettext_for("zh_CN")("Organisation units") == "组织单元"
    assert i18n.gettext_for("zh_CN")("System administrator") == "系统管理员"
    assert i18n.gettext_for("en")("Security policy") == "Security policy"
