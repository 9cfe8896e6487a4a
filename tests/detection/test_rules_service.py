"""Rule packs and rules against a real records store: imports and their diff (SOC settings kept), broken
rules reported with file and line, hostile zips refused, filters, audited changes, and the enabled
rules compiled for live detection with a version that follows every change."""

from __future__ import annotations

import io
import re
import shutil
import stat
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from vigil.accounts import service as accounts
from vigil.core import audit
from vigil.core.audit import AuditRecord
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.core.errors import BadInput, NotFound
from vigil.detection import rules_service
from vigil.detection.models import DetectionRule, RulePack
from vigil.detection.rules_import import (
    MAX_RATIO,
    STARTER_DIR,
    import_pack,
    import_upload,
    install_starter_pack,
)
from vigil.detection.schemas_rules import EnablePolicy, RuleFilters, RuleUpdate
from vigil.detection.sigma import Engine

SYSMON = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1}


def sigma_rule(title: str, *, uid: str | None = None, status: str | None = "stable", level: str = "high",
               image: str = "\\whoami.exe", tags: tuple[str, ...] = ("attack.discovery", "attack.t1033"),
               product: str = "windows", category: str = "process_creation") -> str:
    """A small valid Sigma rule (process creation by image name unless told otherwise)."""
    lines = [f"title: {title}"]
    if uid is not False:
        lines.append(f"id: {uid or uuid.uuid5(uuid.NAMESPACE_URL, title)}")
    if status:
        lines.append(f"status: {status}")
    lines += ["description: a rule of the tests", "author: Test Author", "references:",
              "    - https://example.org/rules", "tags:", *[f"    - {tag}" for tag in tags],
              "logsource:", f"    product: {product}", f"    category: {category}",
              "detection:", "    selection:", f"        Image|endswith: '{image}'", "    condition: selection",
              "falsepositives:", "    - Administrators", f"level: {level}", ""]
    return "\n".join(lines)


def uid_of(title: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, title))


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def actor_of(database: Database) -> audit.Actor:
    with database.transaction(Scope.system()) as session:
        return audit.Actor(None, "tests", accounts.root_unit_id(session))


def rows(database: Database, pack: str | None = None) -> dict[str, DetectionRule]:
    with database.transaction(Scope.system()) as session:
        query = select(DetectionRule).join(RulePack, RulePack.id == DetectionRule.pack_id)
        if pack:
            query = query.where(RulePack.name == pack)
        return {row.rule_uid: row for row in session.scalars(query)}


def actions(database: Database, prefix: str = "detection.") -> list[AuditRecord]:
    with database.transaction(Scope.system()) as session:
        return [r for r in session.scalars(select(AuditRecord).order_by(AuditRecord.seq))
                if r.action.startswith(prefix)]


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "pack"
    write(folder, "windows/whoami.yml", sigma_rule("Whoami", status="stable", level="medium"))
    write(folder, "windows/net.yml", sigma_rule("Net Use", status="test", image="\\net.exe",
                                                tags=("attack.lateral-movement", "attack.t1021.002")))
    write(folder, "windows/noisy.yml", sigma_rule("Noisy", status="experimental", image="\\cmd.exe",
                                                  tags=("attack.execution", "attack.t1059.003")))
    write(folder, "windows/old.yml", sigma_rule("Old", status="deprecated", image="\\old.exe"))
    write(folder, "linux/own.yml", sigma_rule("Own Rule", status=None, product="linux", image="/usr/bin/id",
                                              tags=("attack.discovery",)))
    write(folder, "README.md", "not a rule")
    return folder


def test_starter_pack_installs_enabled_and_a_second_install_changes_nothing(database: Database) -> None:
    first = install_starter_pack(database)
    assert first.created and len(first.added) == 49 and not first.errors
    assert first.pack.name == "vigil-starter" and first.pack.rule_count == 49
    assert first.pack.version.startswith("vigil ")
    stored = rows(database, "vigil-starter")
    assert len(stored) == 49 and all(row.enabled for row in stored.values())
    audited = len(actions(database))
    again = install_starter_pack(database)
    assert not again.created and not again.added and not again.updated and not again.removed
    assert again.unchanged == 49 and len(actions(database)) == audited
    assert STARTER_DIR.is_dir()


def test_sigmahq_statuses_follow_the_enable_policy(database: Database, pack_dir: Path) -> None:
    result = import_pack(database, path=pack_dir, name="sigma", actor=actor_of(database))
    assert result.enable is EnablePolicy.stable_test and len(result.added) == 5
    enabled = {row.title: row.enabled for row in rows(database, "sigma").values()}
    assert enabled == {"Whoami": True, "Net Use": True, "Noisy": False, "Old": False, "Own Rule": True}
    assert sorted(change.title for change in result.left_disabled) == ["Noisy", "Old"]
    everything = import_pack(database, path=pack_dir, name="all", actor=actor_of(database), enable=EnablePolicy.all)
    assert [c.title for c in everything.left_disabled] == ["Old"]  # deprecated stays off even then
    nothing = import_pack(database, path=pack_dir, name="none", actor=actor_of(database), enable=EnablePolicy.none)
    assert len(nothing.left_disabled) == 5


def test_updating_a_pack_shows_the_diff_and_keeps_the_socs_settings(database: Database, pack_dir: Path) -> None:
    actor = actor_of(database)
    import_pack(database, path=pack_dir, name="sigma", actor=actor)
    whoami = rows(database, "sigma")[uid_of("Whoami")]
    with database.transaction(Scope.system()) as session:
        ctx = Context(session=session, actor=actor)
        rules_service.update_rule(ctx, rule_id=whoami.id, data=RuleUpdate(enabled=False, level_override="critical",
                                                                        notes="tuned after FP storm"))
        session.get(DetectionRule, whoami.id).hits = 7  # type: ignore[union-attr]
    write(pack_dir, "windows/whoami.yml", sigma_rule("Whoami", status="stable", level="high"))  # changed
    (pack_dir / "windows" / "net.yml").unlink()  # removed
    write(pack_dir, "windows/new.yml", sigma_rule("Brand New", image="\\new.exe"))  # added
    result = import_pack(database, path=pack_dir, name="sigma", actor=actor)
    assert not result.created
    assert [c.title for c in result.added] == ["Brand New"]
    assert [c.title for c in result.updated] == ["Whoami"]
    assert [c.title for c in result.removed] == ["Net Use"]
    assert result.unchanged == 3
    assert result.summary == "1 added, 1 updated, 1 removed, 3 unchanged, 0 not loadable"
    after = rows(database, "sigma")
    assert uid_of("Net Use") not in after
    kept = after[uid_of("Whoami")]
    assert (kept.id, kept.enabled, kept.level_override, kept.notes, kept.hits) == (
        whoami.id, False, "critical", "tuned after FP storm", 7)
    assert kept.level == "high" and "level: high" in kept.yaml
    imports = [r for r in actions(database) if r.action == "detection.rule_pack.import"]
    assert imports[-1].details["added"] == 1 and imports[-1].details["removed"] == 1


def test_a_broken_rule_is_reported_with_file_and_line_and_the_rest_import(database: Database,
                                                                           pack_dir: Path) -> None:
    write(pack_dir, "windows/broken_yaml.yml", "title: Broken\nlogsource:\n  product: windows\ndetection: [\n")
    write(pack_dir, "windows/bad_condition.yml", sigma_rule("Bad Condition").replace(
        "condition: selection", "condition: selection and missing_one"))
    result = import_pack(database, path=pack_dir, name="sigma", actor=actor_of(database))
    assert len(result.added) == 5
    assert len(result.errors) == 2, result.errors
    by_file = {error.split(":")[0]: error for error in result.errors}
    assert set(by_file) == {"windows/broken_yaml.yml", "windows/bad_condition.yml"}
    # The line of the condition naming the missing detection; the line where the YAML breaks.
    assert by_file["windows/bad_condition.yml"].startswith("windows/bad_condition.yml:17: ")
    assert "missing_one" in by_file["windows/bad_condition.yml"]
    assert sigma_rule("Bad Condition").splitlines()[16].strip() == "condition: selection"
    assert by_file["windows/broken_yaml.yml"].startswith("windows/broken_yaml.yml:5: broken YAML")
    with database.transaction(Scope.system()) as session:
        pack = session.scalar(select(RulePack).where(RulePack.name == "sigma"))
        assert pack is not None and pack.errors == result.errors


def test_a_rule_whose_new_version_breaks_keeps_its_old_version(database: Database, pack_dir: Path) -> None:
    actor = actor_of(database)
    import_pack(database, path=pack_dir, name="sigma", actor=actor)
    write(pack_dir, "windows/whoami.yml", "title: Whoami\ndetection: [oops\n")
    result = import_pack(database, path=pack_dir, name="sigma", actor=actor)
    assert not result.removed and result.unchanged == 5 and len(result.errors) == 1
    assert uid_of("Whoami") in rows(database, "sigma")


def test_an_import_that_loads_nothing_does_not_empty_a_pack(database: Database, pack_dir: Path,
                                                            tmp_path: Path) -> None:
    actor = actor_of(database)
    import_pack(database, path=pack_dir, name="sigma", actor=actor)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInput, match="keeps its 5 rules"):
        import_pack(database, path=empty, name="sigma", actor=actor)
    assert len(rows(database, "sigma")) == 5
    with pytest.raises(BadInput, match="no such file"):
        import_pack(database, path=tmp_path / "nowhere", name="sigma", actor=actor)
    with pytest.raises(BadInput, match="pack name"):
        import_pack(database, path=pack_dir, name="../etc", actor=actor)


def test_a_git_checkout_is_versioned_by_its_commit(database: Database, pack_dir: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": str(pack_dir), "PATH": "/usr/bin:/bin"}
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "rules"]):
        subprocess.run(["git", "-C", str(pack_dir), *command], check=True, env=env, capture_output=True)
    commit = subprocess.run(["git", "-C", str(pack_dir), "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    result = import_pack(database, path=pack_dir, actor=actor_of(database))
    assert result.pack.version == commit and result.pack.name == "pack"
    assert not any(".git" in change.path for change in result.added)


def test_a_folder_without_git_is_versioned_by_a_digest_of_its_rules(database: Database, pack_dir: Path) -> None:
    first = import_pack(database, path=pack_dir, name="sigma", actor=actor_of(database)).pack.version
    assert first.startswith("sha256:")
    write(pack_dir, "windows/new.yml", sigma_rule("Brand New", image="\\new.exe"))
    assert import_pack(database, path=pack_dir, name="sigma", actor=actor_of(database)).pack.version != first


def zip_of(members: dict[str, bytes], *, links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def upload(database: Database, filename: str, content: bytes, **options: Any) -> Any:
    with database.transaction(Scope.system()) as session:
        return import_upload(Context(session=session, actor=actor_of(database)), filename=filename, content=content,
                             **options)


def test_a_release_zip_imports_with_paths_inside_the_archive(database: Database) -> None:
    archive = zip_of({"rules/windows/whoami.yml": sigma_rule("Whoami").encode(),
                      "rules/windows/broken.yml": b"title: x\ndetection: [\n",
                      ".github/workflows/ci.yml": b"on: push\n", "LICENSE": b"DRL 1.1"})
    result = upload(database, "sigma_core.zip", archive)
    assert result.pack.name == "sigma_core" and result.pack.version.startswith("sigma_core.zip sha256:")
    assert [c.path for c in result.added] == ["sigma_core.zip!rules/windows/whoami.yml"]
    assert len(result.errors) == 1 and result.errors[0].startswith("sigma_core.zip!rules/windows/broken.yml:")


@pytest.mark.parametrize(("members", "links", "reason"), [
    ({"../escape.yml": b"title: x"}, (), "outside the archive"),
    ({"rules/../../escape.yml": b"title: x"}, (), "outside the archive"),
    ({"/etc/cron.d/evil.yml": b"title: x"}, (), "outside the archive"),
    ({"C:/evil.yml": b"title: x"}, (), "outside the archive"),
    ({"rules\\..\\evil.yml": b"title: x"}, (), "outside the archive"),
    ({}, ("rules/link.yml",), "symbolic link"),
    ({"rules/bomb.yml": b"a" * (MAX_RATIO * 5_000)}, (), "zip bomb"),
], ids=["dotdot", "nested-dotdot", "absolute", "drive", "backslash", "symlink", "bomb"])
def test_a_hostile_zip_is_refused_and_nothing_is_stored(database: Database, members: dict[str, bytes],
                                                        links: tuple[str, ...], reason: str) -> None:
    archive = zip_of({"rules/good.yml": sigma_rule("Good").encode(), **members}, links=links)
    with pytest.raises(BadInput, match=reason):
        upload(database, "evil.zip", archive)
    assert rows(database) == {}
    assert not (Path("/etc/cron.d/evil.yml")).exists()


def test_uploads_that_are_not_rules_are_refused(database: Database) -> None:
    with pytest.raises(BadInput, match="not a readable zip"):
        upload(database, "rules.zip", b"PK\x03\x04 not really")
    with pytest.raises(BadInput, match=r"upload a \.zip"):
        upload(database, "rules.exe", b"MZ")
    with pytest.raises(BadInput, match="empty"):
        upload(database, "rule.yml", b"")


def test_a_rule_without_an_id_keeps_the_same_uid_wherever_the_pack_is(database: Database, tmp_path: Path) -> None:
    actor = actor_of(database)
    for place in ("one", "two"):
        write(tmp_path / place, "rules/anon.yml", sigma_rule("Anonymous", uid=False))  # type: ignore[arg-type]
    first = import_pack(database, path=tmp_path / "one", name="anon", actor=actor)
    second = import_pack(database, path=tmp_path / "two", name="anon", actor=actor)
    assert len(first.added) == 1 and second.unchanged == 1 and not second.added and not second.removed


def test_listing_filters_every_way(database: Database, pack_dir: Path) -> None:
    actor = actor_of(database)
    import_pack(database, path=pack_dir, name="sigma", actor=actor)
    install_starter_pack(database)

    def titles(**filters: Any) -> list[str]:
        with database.transaction(Scope.system()) as session:
            page = rules_service.list_rules(session, filters=RuleFilters(pack="sigma", **filters))
            assert page.total == len(page.items)
            return [item.title for item in page.items]

    assert titles() == ["Net Use", "Noisy", "Old", "Own Rule", "Whoami"]
    assert titles(level="medium") == ["Whoami"]
    assert titles(status="experimental") == ["Noisy"]
    assert titles(tactic="lateral-movement") == ["Net Use"]
    assert titles(tactic="lateral_movement") == ["Net Use"]
    assert titles(technique="T1021") == ["Net Use"]  # the technique finds its sub-techniques
    assert titles(technique="T1021.002") == ["Net Use"]
    assert titles(technique="T1059.001") == []
    assert titles(product="linux") == ["Own Rule"]
    assert titles(enabled=False) == ["Noisy", "Old"]
    assert titles(q="noi") == ["Noisy"]
    assert titles(q=uid_of("Whoami")) == ["Whoami"]
    assert titles(q="100%_") == []
    with database.transaction(Scope.system()) as session:
        everything = rules_service.list_rules(session)
        assert everything.total == 54
        read = everything.items[0]
        assert read.pack in {"sigma", "vigil-starter"}
        whoami = next(i for i in everything.items if i.title == "Whoami")
        assert whoami.tactics == ["discovery"] and whoami.techniques == ["T1033"]
        assert whoami.references == ["https://example.org/rules"] and whoami.author == "Test Author"
        with pytest.raises(BadInput):
            rules_service.list_rules(session, filters=RuleFilters(technique="1059"))
        found = rules_service.facets(session)
        assert "sigma" in found["packs"] and "experimental" in found["statuses"] and "linux" in found["products"]


def test_changes_are_audited_and_bulk_is_all_or_nothing(database: Database, pack_dir: Path) -> None:
    actor = actor_of(database)
    import_pack(database, path=pack_dir, name="sigma", actor=actor)
    stored = rows(database, "sigma")
    ids = [row.id for row in stored.values()]
    with database.transaction(Scope.system()) as session:
        ctx = Context(session=session, actor=actor)
        rules_service.update_rule(ctx, rule_id=ids[0], data=RuleUpdate(level_override="low"))
        rules_service.update_rule(ctx, rule_id=ids[0], data=RuleUpdate(level_override="low"))  # no change
        rules_service.update_rule(ctx, rule_id=ids[0], data=RuleUpdate.model_validate({"level_override": None}))
    updates = [r for r in actions(database) if r.action == "detection.rule.update"]
    assert [r.details["changes"] for r in updates] == [{"level_override": [None, "low"]},
                                                       {"level_override": ["low", None]}]
    with database.transaction(Scope.system()) as session, pytest.raises(NotFound, match="999999"):
        rules_service.set_enabled(Context(session=session, actor=actor), ids=[*ids, 999999], enabled=False)
    assert all(row.enabled == stored[uid].enabled for uid, row in rows(database, "sigma").items())
    with database.transaction(Scope.system()) as session:
        result = rules_service.set_enabled(Context(session=session, actor=actor), ids=ids, enabled=False)
    assert result.changed == 3  # two were disabled already
    assert not any(row.enabled for row in rows(database, "sigma").values())
    disabled = [r for r in actions(database) if r.action == "detection.rule.disable"]
    assert len(disabled) == 1 and disabled[0].details["count"] == 3 and disabled[0].actor == "tests"
    with database.transaction(Scope.system()) as session:
        assert rules_service.find_rule(session, uid_of("Whoami")).title == "Whoami"
        assert rules_service.find_rule(session, str(ids[0])).id == ids[0]
        with pytest.raises(NotFound):
            rules_service.find_rule(session, "no-such-rule")


def test_enabled_rules_follow_every_change_with_a_new_version(database: Database, pack_dir: Path) -> None:
    actor = actor_of(database)
    import_pack(database, path=pack_dir, name="sigma", actor=actor)
    version, rules = rules_service.enabled_rules(database)
    assert sorted(rule.title for rule in rules) == ["Net Use", "Own Rule", "Whoami"]
    assert rules_service.enabled_rules(database)[0] == version  # nothing changed
    whoami = rows(database, "sigma")[uid_of("Whoami")]
    event = {**SYSMON, "Image": "C:\\Windows\\System32\\whoami.exe"}
    assert [r.title for r in Engine(rules).match(event)] == ["Whoami"]

    with database.transaction(Scope.system()) as session:
        rules_service.update_rule(Context(session=session, actor=actor), rule_id=whoami.id,
                                  data=RuleUpdate(level_override="critical"))
    overridden, rules = rules_service.enabled_rules(database)
    assert overridden != version
    assert Engine(rules).match(event)[0].level == "critical"

    with database.transaction(Scope.system()) as session:
        rules_service.set_enabled(Context(session=session, actor=actor), ids=[whoami.id], enabled=False)
    disabled, rules = rules_service.enabled_rules(database)
    assert disabled not in (version, overridden)
    assert Engine(rules).match(event) == []

    write(pack_dir, "linux/own.yml", sigma_rule("Own Rule", status=None, product="linux", image="/usr/bin/whoami"))
    import_pack(database, path=pack_dir, name="sigma", actor=actor)
    assert rules_service.enabled_rules(database)[0] != disabled


def test_enabled_rules_compile_from_the_stored_yaml_in_a_fresh_process(database: Database, pack_dir: Path) -> None:
    import_pack(database, path=pack_dir, name="sigma", actor=actor_of(database))
    version, _ = rules_service.enabled_rules(database)
    rules_service._compiled.clear()  # as a new process would start: nothing compiled yet
    again, rules = rules_service.enabled_rules(database)
    assert again == version and len(rules) == 3
    event = {**SYSMON, "Image": "C:\\Windows\\System32\\net.exe"}
    assert [r.title for r in Engine(rules).match(event)] == ["Net Use"]
    assert rules_service._compiled  # cached for the next call


def test_sigmahq_linux_rules_import_with_experimental_ones_left_off(database: Database, sigma_dir: Path) -> None:
    folder = sigma_dir / "rules" / "linux"
    statuses: dict[str, str] = {}
    for file in folder.rglob("*.yml"):
        found = re.search(r"(?m)^status:\s*(\w+)", file.read_text(encoding="utf-8"))
        statuses[str(file.relative_to(folder))] = found.group(1) if found else ""
    result = import_pack(database, path=folder, name="sigmahq-linux", actor=actor_of(database))
    assert not result.errors and len(result.added) == len(statuses)
    assert {c.path for c in result.left_disabled} == {p for p, s in statuses.items() if s == "experimental"}
    stored = rows(database, "sigmahq-linux")
    assert all(row.author and row.references is not None for row in stored.values())
    version, rules = rules_service.enabled_rules(database)
    assert len(rules) == sum(1 for s in statuses.values() if s in ("stable", "test"))
    again = import_pack(database, path=folder, name="sigmahq-linux", actor=actor_of(database))
    assert again.unchanged == len(statuses) and not (again.added or again.updated or again.removed)
    assert rules_service.enabled_rules(database)[0] == version


def test_a_file_of_several_rules_compiles_each_from_the_stored_yaml(database: Database, tmp_path: Path) -> None:
    folder = tmp_path / "multi"
    write(folder, "two.yml", sigma_rule("First") + "---\n" + sigma_rule("Second", image="\\second.exe"))
    result = import_pack(database, path=folder, name="multi", actor=actor_of(database))
    assert sorted(c.title for c in result.added) == ["First", "Second"]
    rules_service._compiled.clear()
    _, rules = rules_service.enabled_rules(database)
    assert sorted((r.title, r.id) for r in rules) == [("First", uid_of("First")), ("Second", uid_of("Second"))]
    event = {**SYSMON, "Image": "C:\\Tools\\second.exe"}
    assert [r.title for r in Engine(rules).match(event)] == ["Second"]
