"""Translations: 简体中文 and English catalogues (gettext .po files), chosen per request.

Catalogues are read from the .po files at start and compiled in memory, so a source checkout needs
no build step. English is the source language: its catalogue maps each message to itself. A language's
catalogue is ``messages.po`` plus any other ``*.po`` beside it (one per domain, e.g. ``siem.po``), merged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES: dict[str, str] = {"en": "English", "zh_CN": "简体中文"}
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "web" / "locale"
DOMAIN = "messages"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate later"
    """Marks a message for the catalogues (Babel extracts it); it is translated where it is shown."""
    return message


def catalog_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def catalog_paths(language: str) -> list[Path]:
    """``messages.po`` first, then the domains' own catalogues in name order."""
    main = catalog_path(language)
    others = sorted(path for path in main.parent.glob("*.po") if path != main)
    return ([main] if main.exists() else []) + others


def catalog(language: str) -> Catalog:
    """Every .po file of a language merged into one catalogue (a message defined twice: the first wins)."""
    merged = Catalog(locale=language, domain=DOMAIN)
    for path in catalog_paths(language):
        with path.open("rb") as handle:
            for message in read_po(handle, locale=language):
                if message.id and message.id not in merged:
                    merged[message.id] = message
    return merged


@cache
def translations(language: str) -> NullTranslations:
    if language not in LANGUAGES or not catalog_paths(language):
        return NullTranslations()
    catalog_ = catalog(language)
    buffer = BytesIO()
    write_mo(buffer, catalog_)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def gettext_for(language: str) -> Callable[[str], str]:
    return translations(language).gettext


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """Pick a supported language from an Accept-Language header (zh, zh-CN, zh-Hans all mean 简体中文)."""
    if not accept_language:
        return default
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        weighted.append((-quality, position, tag.strip().lower()))
    for negative_quality, _position, tag in sorted(weighted):
        if negative_quality >= 0:
            continue
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return default


def choose(candidates: Iterable[str | None], accept_language: str | None, default: str) -> str:
    for candidate in candidates:
        if candidate in LANGUAGES:
            return candidate
    return negotiate(accept_language, default)
