"""Event search: a query string and a time range to events, counts over time and top values, in the store.

Every function takes ``units``: the organisation units whose events the caller may read (None: all, for
the system itself). The API, the CLI, the search page and later hunts all call these functions.

Time ranges are written as users write them: ``15m``, ``24h``, ``7d`` (the last …, up to now), or
``START/END`` with each side ISO 8601 or ``now-…`` (``2026-11-28T00:00:00Z/now``).

Exports stream: ``iter_events`` reads page by page and ``csv_chunks``/``ndjson_chunks`` turn events into
text as they come, so a million-event export never sits in memory. CSV cells are protected against
formula injection (``cell_text``). The query language itself is described in docs/search.md.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

from vigil.core.errors import BadInput, NotFound
from vigil.siem.fields import check_field, get_path
from vigil.siem.query import compile_query, describe, parse, parse_time
from vigil.siem.query.store import StoreResolver
from vigil.siem.store.base import Bucket, EventStore, Order, StoredEvent, TermCount

_RELATIVE = re.compile(r"^(\d{1,6})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_RANGE = timedelta(days=3660)
# Histogram bucket sizes a person reads easily; the smallest giving at most ``buckets`` bars is used.
NICE_INTERVALS = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400,
                  30 * 86400)
_resolver = StoreResolver()


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def time_range(text: str, *, now: datetime | None = None) -> TimeRange:
    """``24h`` / ``START/END`` to a ``TimeRange`` in UTC; ``BadInput`` saying how to write it otherwise."""
    now = now or datetime.now(UTC)
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative:
        seconds = int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
        result = TimeRange(now - timedelta(seconds=seconds), now)
    elif "/" in value:
        start_text, _, end_text = value.partition("/")
        result = TimeRange(parse_time(start_text, now), parse_time(end_text or "now", now))
    else:
        raise BadInput(f"time range {text!r}: write 15m, 24h, 7d, or START/END with ISO 8601 times or now-1h")
    if result.end <= result.start:
        raise BadInput(f"time range {text!r}: the end must be after the start")
    if result.end - result.start > MAX_RANGE:
        raise BadInput(f"time range {text!r}: at most {MAX_RANGE.days} days")
    return result


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: list[object]


def compile_text(query: str, *, now: datetime | None = None) -> Compiled:
    """A query string to SQL for the store (``QuerySyntaxError``/``BadInput`` for a bad one); '' = everything."""
    sql, params = compile_query(parse(query), _resolver, now=now) if query.strip() else ("", [])
    return Compiled(sql, list(params))


def canonical(query: str) -> str:
    """The query as the language writes it back (``*`` for everything): what was understood, for people and logs."""
    return describe(parse(query))


@dataclass(frozen=True)
class SearchResult:
    total: int
    events: list[StoredEvent]
    took_ms: float


def search(store: EventStore, *, units: Collection[int] | None, query: str, window: TimeRange,
           limit: int = 100, offset: int = 0, order: Order = "desc", with_total: bool = True) -> SearchResult:
    started = time.perf_counter()
    compiled = compile_text(query, now=window.end)
    scope = None if units is None else sorted(units)
    events = store.search(compiled.sql, compiled.params, unit_ids=scope, start=window.start, end=window.end,
                          limit=limit, offset=offset, order=order)
    total = (store.count(compiled.sql, compiled.params, unit_ids=scope, start=window.start, end=window.end)
             if with_total else len(events))
    return SearchResult(total, events, (time.perf_counter() - started) * 1000)


def interval_for(window: TimeRange, buckets: int = 60) -> int:
    """The histogram bucket size (seconds) for a window: a round size giving at most ``buckets`` bars."""
    wanted = max(window.seconds / max(buckets, 1), 1)
    return next((size for size in NICE_INTERVALS if size >= wanted), NICE_INTERVALS[-1])


def histogram(store: EventStore, *, units: Collection[int] | None, query: str, window: TimeRange,
              buckets: int = 60) -> tuple[int, list[Bucket]]:
    """(interval seconds, counts per bucket with events) for the query over the window."""
    compiled = compile_text(query, now=window.end)
    interval = interval_for(window, buckets)
    counts = store.histogram(compiled.sql, compiled.params, interval_seconds=interval,
                             unit_ids=None if units is None else sorted(units), start=window.start, end=window.end)
    return interval, counts


def top_values(store: EventStore, *, units: Collection[int] | None, query: str, window: TimeRange, field: str,
               limit: int = 10) -> list[TermCount]:
    compiled = compile_text(query, now=window.end)
    return store.top_values(field, compiled.sql, compiled.params, limit=limit,
                            unit_ids=None if units is None else sorted(units), start=window.start, end=window.end)


def get_event(store: EventStore, *, units: Collection[int] | None, event_id: int) -> StoredEvent:
    """One stored event by id; ``NotFound`` for a missing id and for one outside the caller's units alike."""
    found = store.search("id = ?", [int(event_id)], unit_ids=None if units is None else sorted(units), limit=1)
    if not found:
        raise NotFound(f"No event {event_id}")
    return found[0]


ExportFormat = Literal["ndjson", "csv"]
EXPORT_PAGE = 5_000
MAX_EXPORT = 1_000_000
# Columns of a CSV export when the caller names none: what a person scans first in an event list.
DEFAULT_EXPORT_FIELDS = ("@timestamp", "vigil.source", "host.name", "event.action", "message")
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection, CWE-1236).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", re.ASCII)


def iter_events(store: EventStore, *, units: Collection[int] | None, query: str, window: TimeRange,
                max_events: int, order: Order = "desc", offset: int = 0) -> Iterator[StoredEvent]:
    """Matching events (newest first by default) after the first ``offset``, fetched page by page: exports
    stream without holding them all.

    Pages after the first continue from the last event seen (its time and id) rather than from an ever
    larger OFFSET: events stored while an export runs cannot shift the pages, so none is written twice
    or skipped.
    """
    compiled = compile_text(query, now=window.end)
    scope = None if units is None else sorted(units)
    where, params, start, end, skip = compiled.sql, compiled.params, window.start, window.end, offset
    sent = 0
    while sent < max_events:
        size = min(EXPORT_PAGE, max_events - sent)
        page = store.search(where, params, unit_ids=scope, start=start, end=end, limit=size, offset=skip,
                            order=order)
        yield from page
        sent += len(page)
        if len(page) < size:
            return
        last = page[-1]
        # The store's own columns (ts, id) and bound values: no user text joins the SQL here either.
        after = "(ts < ? OR (ts = ? AND id < ?))" if order == "desc" else "(ts > ? OR (ts = ? AND id > ?))"
        where = f"({compiled.sql}) AND {after}" if compiled.sql else after
        params = [*compiled.params, last.ts, last.ts, last.id]
        if order == "desc":
            end = last.ts + timedelta(microseconds=1)
        else:
            start = last.ts
        skip = 0


def count(store: EventStore, *, units: Collection[int] | None, query: str, window: TimeRange) -> int:
    compiled = compile_text(query, now=window.end)
    return store.count(compiled.sql, compiled.params, unit_ids=None if units is None else sorted(units),
                       start=window.start, end=window.end)


def filled_histogram(store: EventStore, *, units: Collection[int] | None, query: str, window: TimeRange,
                     buckets: int = 60) -> tuple[int, list[Bucket]]:
    """``histogram`` with a bar for every bucket of the window, empty ones counted 0 (a chart needs the gaps)."""
    interval, counts = histogram(store, units=units, query=query, window=window, buckets=buckets)
    by_start = {bucket.start: bucket.count for bucket in counts}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = int((window.start - epoch).total_seconds()) // interval * interval
    filled: list[Bucket] = []
    at = epoch + timedelta(seconds=first)
    while at < window.end:
        filled.append(Bucket(start=at, count=by_start.get(at, 0)))
        at += timedelta(seconds=interval)
    return interval, filled


# --- documents: flattening, field summaries, export ------------------------------------------------


def flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested event as dotted field names to leaf values (lists kept whole, as one field's values)."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


@dataclass(frozen=True)
class FieldPresence:
    field: str
    count: int  # events (of those given) that hold the field


def field_summary(events: Iterable[StoredEvent]) -> list[FieldPresence]:
    """The fields present in these events with how many hold each, most common first (the page's field list)."""
    seen: Counter[str] = Counter()
    for event in events:
        seen.update(name for name, value in flatten(event.doc).items() if value is not None)
    return [FieldPresence(name, number) for name, number in sorted(seen.items(), key=lambda item: (-item[1], item[0]))]


def field_value(event: StoredEvent, field: str) -> Any:
    """A dotted field of a stored event (``@timestamp`` as stored, ``vigil.source`` its source)."""
    if field == "@timestamp":
        return event.ts.isoformat()
    return get_path(event.doc, field)


# What a network record is about, after its endpoints, when it has no message of its own.
_SUBJECT_FIELDS = ("rule.name", "dns.question.name", "url.original", "tls.client.server_name", "file.name")


def _endpoint(event: StoredEvent, side: str) -> str:
    ip, port = field_value(event, f"{side}.ip"), field_value(event, f"{side}.port")
    if ip is None:
        return ""
    text = f"[{ip}]" if ":" in str(ip) and port is not None else str(ip)
    return f"{text}:{port}" if port is not None else text


def summary(event: StoredEvent) -> str:
    """One line for a table: the message; else, for network records (Zeek, flows), who talked to whom
    and about what; else the original record."""
    message = value_text(field_value(event, "message"))
    if message:
        return message
    source, destination = _endpoint(event, "source"), _endpoint(event, "destination")
    if source or destination:
        parts = [value_text(field_value(event, "event.dataset")), f"{source or '?'} → {destination or '?'}",
                 value_text(field_value(event, "network.protocol") or field_value(event, "network.transport"))]
        parts += [value_text(field_value(event, name)) for name in _SUBJECT_FIELDS]
        return " ".join(part for part in parts if part)
    return original_record(event) or ""


def original_record(event: StoredEvent) -> str | None:
    """The record as received (``event.original``), when the source keeps it."""
    original = get_path(event.doc, "event.original")
    return original if isinstance(original, str) else None


def value_text(value: Any) -> str:
    """A field's value as plain text: '' for none, lists and objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return orjson.dumps(value, default=str).decode("utf-8")
    return str(value)


def cell_text(value: Any) -> str:
    """A value as one CSV cell. Text a spreadsheet would run as a formula gets a leading apostrophe, so
    opening the export in Excel or WPS runs nothing; a plain number (-1, +8.5) stays as it is."""
    text = value_text(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def export_fields(fields: str | Sequence[str] | None) -> list[str]:
    """The export's columns: the given names (comma separated or a list, each checked), else the defaults."""
    names = fields.split(",") if isinstance(fields, str) else list(fields or [])
    chosen = [check_field(name.strip()) for name in names if name.strip()]
    if len(chosen) > 100:
        raise BadInput("an export has at most 100 columns")
    return chosen or list(DEFAULT_EXPORT_FIELDS)


def csv_chunks(events: Iterable[StoredEvent], fields: Sequence[str], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """CSV text (header first) in chunks of rows, for a streamed response or a file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fields)
    pending = 0
    for event in events:
        writer.writerow([cell_text(field_value(event, name)) for name in fields])
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if buffer.getvalue():
        yield buffer.getvalue()


def ndjson_line(event: StoredEvent) -> bytes:
    """One event as an NDJSON line: its document, with the store's id beside it under ``vigil.event_id``."""
    vigil = event.doc.get("vigil")
    document = {**event.doc, "vigil": {**(vigil if isinstance(vigil, dict) else {}), "event_id": event.id}}
    try:
        return orjson.dumps(document, default=str, option=orjson.OPT_NON_STR_KEYS) + b"\n"
    except TypeError:  # integers beyond 64 bits: the standard library writes them
        return (json.dumps(document, default=str, ensure_ascii=False) + "\n").encode("utf-8")


def ndjson_chunks(events: Iterable[StoredEvent], *, lines_per_chunk: int = 500) -> Iterator[bytes]:
    chunk: list[bytes] = []
    for event in events:
        chunk.append(ndjson_line(event))
        if len(chunk) >= lines_per_chunk:
            yield b"".join(chunk)
            chunk.clear()
    if chunk:
        yield b"".join(chunk)
