"""The parsers Vigil knows: every ``vigil.parsers`` entry point (built-in and third-party), loaded once.

``detect_format`` asks each parser's ``sniff`` about the first record of a sample, most specific first:

1. ``winlogbeat`` (JSON with ``winlog``), ``windows_json`` (``{"Event": {"System": ...}}``),
   ``suricata`` (``event_type`` + ``timestamp``), ``zeek`` (``ts`` + ``uid``/``id.orig_h``/...);
2. third-party parsers, by name (their sniffs are expected to be specific);
3. ``json``: any other JSON object;
4. ``cef``, ``leef`` (often inside syslog, so before it), ``linux_auth`` (sshd/sudo lines are syslog
   lines too), ``web_access``;
5. ``syslog``, which accepts any line with a priority or a BSD timestamp.

A parser that fails to load is listed by ``broken_parsers`` with the reason; the others work.
"""

from __future__ import annotations

from functools import cache

from vigil.core.errors import BadInput
from vigil.core.plugins import BrokenPlugin, Loaded, load_group
from vigil.siem.parsers.base import Parser, detect

GROUP = "vigil.parsers"
SPECIFIC_JSON = ("winlogbeat", "windows_json", "suricata", "zeek")
GENERIC_JSON = ("json",)
TEXT = ("cef", "leef", "linux_auth", "web_access")
LAST = ("syslog",)
BUILT_IN = SPECIFIC_JSON + GENERIC_JSON + TEXT + LAST


class UnknownParser(BadInput):
    """A format name no loaded parser has (a typo in a source's configuration, or a broken plugin)."""


@cache
def load_parsers() -> Loaded[Parser]:
    """Every parser plugin, instantiated; loaded on first use and kept."""
    # Parser is a runtime-checkable Protocol, which is what load_group checks plugins against.
    return load_group(GROUP, Parser)  # type: ignore[type-abstract]


def parsers() -> dict[str, Parser]:
    return load_parsers().plugins


def broken_parsers() -> list[BrokenPlugin]:
    return list(load_parsers().broken)


def parser(name: str) -> Parser:
    """The parser of that name; an unknown name is ``UnknownParser`` naming the known ones."""
    loaded = load_parsers()
    found = loaded.plugins.get(name)
    if found is not None:
        return found
    known = ", ".join(sorted(loaded.plugins)) or "none"
    detail = f"unknown log format {name!r}; known formats: {known}"
    broken = next((plugin for plugin in loaded.broken if plugin.name == name), None)
    if broken is not None:
        detail += f" ({name!r} is installed but failed to load: {broken.reason})"
    raise UnknownParser(detail)


def detection_order(available: dict[str, Parser] | None = None) -> list[Parser]:
    """The parsers in the order ``detect_format`` tries them (see the module's docstring)."""
    plugins = parsers() if available is None else available
    third_party = sorted(name for name in plugins if name not in BUILT_IN)
    names = [*SPECIFIC_JSON, *third_party, *GENERIC_JSON, *TEXT, *LAST]
    return [plugins[name] for name in names if name in plugins]


def first_record(sample: bytes) -> bytes:
    """The first non-blank line of a sample; for a JSON array, from its first element on."""
    body = sample.lstrip()
    if body[:1] == b"[":
        body = body[1:].lstrip()
    for line in body.splitlines():
        if line.strip():
            return line
    return b""


def detect_format(sample: bytes, available: dict[str, Parser] | None = None) -> Parser | None:
    """The parser for a sample of a source's input (its first record decides); None when no parser claims it."""
    record = first_record(sample)
    if not record:
        return None
    return detect(detection_order(available), record)
