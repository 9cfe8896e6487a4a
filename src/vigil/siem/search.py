"""Event search: a query string and a time range to events, counts over time and top values, in the store.

Every function takes ``units``: the organisation units whose events the caller may read (None: all, for
the system itself). The API, the CLI, the search page and later hunts all call these functions.

Time ranges are written as users write them: ``15m``, ``24h``, ``7d`` (the last …, up to now), or
``START/END`` with each side ISO 8601 or ``now-…`` (``2026-11-28T00:00:00Z/now``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from vigil.core.errors import BadInput, NotFound
from vigil.siem.query import compile_query, parse, parse_time
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


def iter_events(store: EventStore, *, units: Collection[int] | None, query: str, window: TimeRange,
                max_events: int) -> Iterator[StoredEvent]:
    """Matching events newest first, fetched page by page (exports stream without holding them all)."""
    sent = 0
    while sent < max_events:
        page = search(store, units=units, query=query, window=window, limit=min(EXPORT_PAGE, max_events - sent),
                      offset=sent, with_total=False).events
        yield from page
        sent += len(page)
        if len(page) < EXPORT_PAGE:
            return
