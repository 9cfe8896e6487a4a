"""The parser protocol: raw records (bytes) in, ECS-shaped events out, failures kept, never raised.

Events are nested dicts with ECS field names (``{"source": {"ip": "10.0.0.1"}}``). ``@timestamp`` is
an aware UTC ``datetime``. Windows events additionally keep their native fields at the top level
(``Channel``, ``EventID``, every ``EventData`` field) so Sigma rules match them as SigmaHQ writes them.

A parser implements ``parse_one``, which returns one event or raises ``ParseError`` with a reason a
SOC engineer understands. ``parse_batch`` (in ``run_batch``) turns every record into an event or a
``ParseFailure`` holding the raw bytes: one bad record never drops or delays the others, and no
exception escapes, whatever the input.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

Event = dict[str, Any]

# Longest record a parser accepts whole; longer ones are cut here and flagged (vigil.truncated).
MAX_RECORD_BYTES = 256 * 1024


class ParseError(ValueError):
    """The record is not in this parser's format; the message says why (shown to users)."""


@dataclass(frozen=True)
class ParseContext:
    """What a parser may need beyond the record itself."""

    source: str = ""
    # Zone for timestamps that carry none (classic syslog); per source, default from settings.
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    # When the record arrived: resolves the year of year-less syslog stamps.
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    keep_original: bool = True


@dataclass(frozen=True)
class ParseFailure:
    raw: bytes
    parser: str
    reason: str
    source: str = ""


@runtime_checkable
class Parser(Protocol):
    """One log format. Registered under the ``vigil.parsers`` entry-point group."""

    name: ClassVar[str]
    description: ClassVar[str]

    def sniff(self, sample: bytes) -> bool:
        """Whether a record looks like this format (cheap; used to detect a source's format)."""
        ...

    def parse_one(self, raw: bytes, ctx: ParseContext) -> Event:
        """One record to one event; raise ``ParseError`` when it is not in this format."""
        ...


def decode_text(raw: bytes) -> tuple[str, bool]:
    """Bytes as text: (text, True) for valid UTF-8; else invalid bytes escaped as \\xNN and False."""
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="backslashreplace"), False


def put(event: Event, dotted: str, value: Any) -> None:
    """Set an ECS field by its dotted name, creating the nested objects (``put(e, "source.ip", ip)``)."""
    *parents, leaf = dotted.split(".")
    node = event
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def get(event: Event, dotted: str, default: Any = None) -> Any:
    node: Any = event
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def keep_original(event: Event, raw: bytes, ctx: ParseContext) -> None:
    """``event.original`` as text; invalid UTF-8 is also kept byte for byte (base64) so nothing is lost."""
    text, valid = decode_text(raw)
    if ctx.keep_original:
        put(event, "event.original", text)
    if not valid:
        put(event, "vigil.invalid_utf8", True)
        put(event, "vigil.original_base64", base64.b64encode(raw).decode("ascii"))


def run_batch(parser: Parser, records: Sequence[bytes], ctx: ParseContext) -> list[Event | ParseFailure]:
    """Parse every record; each failure becomes a ``ParseFailure`` in its place, in order."""
    results: list[Event | ParseFailure] = []
    for raw in records:
        record = raw[:MAX_RECORD_BYTES]
        try:
            event = parser.parse_one(record, ctx)
        except ParseError as exc:
            results.append(ParseFailure(raw, parser.name, str(exc), ctx.source))
            continue
        except Exception as exc:  # a parser bug must not lose the batch; the fuzz tests hunt these
            results.append(ParseFailure(raw, parser.name, f"parser error: {type(exc).__name__}: {exc}", ctx.source))
            continue
        if len(raw) > MAX_RECORD_BYTES:
            put(event, "vigil.truncated", True)
        results.append(event)
    return results


def detect(parsers: Iterable[Parser], sample: bytes) -> Parser | None:
    """The first parser, in the given order of preference, whose sniff accepts the sample."""
    for parser in parsers:
        try:
            if parser.sniff(sample):
                return parser
        except Exception:  # noqa: S112 - a sniff that crashes simply does not claim the sample
            continue
    return None
