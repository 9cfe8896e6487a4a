"""What the event store has seen of each log source: events held, and per host over the last 24 hours
the events received, the rate and the parse failures.

Events held and the last receipt come from typed columns (one cheap grouped read over everything).
Hosts and parse failures need the JSON document (``host.name`` and ``event.kind`` have no typed column),
so reading them over a day of events on every page view would not scale: ``SourceStats`` keeps them
as per-minute (last 10 minutes) and per-hour (last 25 hours) counts, brought up to date incrementally
by event id (ids grow with every insert and the store has one writer, so rows past the last id read
are exactly the new ones). A refresh reads only the rows stored since the one before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from vigil.core.worker import Worker
from vigil.siem.normalize import FAILURE_KIND
from vigil.siem.store.base import EventStore
from vigil.siem.store.duckdb import DuckDBEventStore

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)  # hosts and parse failures are counted over this window
RATE_MINUTES = 5  # events per second: over the last 5 whole minutes and the current one
MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
KEEP_MINUTES = timedelta(minutes=10)


@dataclass(frozen=True)
class Held:
    source: str
    unit_id: int
    last_seen: datetime | None  # when its latest event was received (ingested)
    events: int


@dataclass(frozen=True)
class Window:
    source: str
    host: str
    unit_id: int
    last_seen: datetime | None
    events: int  # within WINDOW
    recent: int  # within the rate window
    failures: int  # within WINDOW
    rate_seconds: float  # the length of the rate window


HELD_SQL = "SELECT source, unit_id, max(ingested), count(*) FROM events {where} GROUP BY source, unit_id"
# New rows since the last id read: per (source, host, unit) and minute (recent rows) or hour (older).
# host.name from the document when host.hostname's column is empty. Values are parameters.
NEW_ROWS_SQL = (
    "SELECT source, coalesce(host_hostname, json_extract_string(doc, '$.\"host\".\"name\"'), '') AS host, "
    "unit_id, ingested >= $fine AS fine, "
    "CASE WHEN ingested >= $fine THEN time_bucket(INTERVAL 1 MINUTE, ingested) "
    "ELSE time_bucket(INTERVAL 1 HOUR, ingested) END AS bucket, count(*), "
    "count(*) FILTER (WHERE json_extract_string(doc, '$.\"event\".\"kind\"') = $kind), max(ingested), max(id) "
    "FROM events WHERE id > $after AND ingested >= $since GROUP BY ALL"
)


def _read(store: EventStore, sql: str, params: Sequence[Any] | dict[str, Any]) -> list[tuple[Any, ...]]:
    if not isinstance(store, DuckDBEventStore):
        raise TypeError("source statistics need the DuckDB event store")
    # A read-only aggregate the EventStore protocol does not offer, on the store's own reader (it runs
    # beside the writer and sees committed batches only).
    cursor = store._reader()
    try:
        return cursor.execute(sql, params if isinstance(params, dict) else list(params)).fetchall()
    except duckdb.Error as exc:
        raise RuntimeError(f"reading source statistics failed: {exc}") from exc
    finally:
        cursor.close()


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def held(store: EventStore, *, unit_ids: Collection[int] | None) -> list[Held]:
    """Per (source, unit): events held and the last receipt, over everything stored."""
    if unit_ids is not None and not unit_ids:
        return []
    units = sorted(int(unit) for unit in unit_ids) if unit_ids is not None else []
    where = f"WHERE unit_id IN ({', '.join('?' for _ in units)})" if units else ""
    return [Held(str(r[0]), int(r[1]), _utc(r[2]), int(r[3])) for r in _read(store, HELD_SQL.format(where=where),
                                                                             units)]


Key = tuple[str, str, int]  # source, host, unit


@dataclass
class Counts:
    events: int = 0
    failures: int = 0
    last_seen: datetime | None = None

    def add(self, events: int, failures: int, last_seen: datetime | None) -> None:
        self.events += events
        self.failures += failures
        if last_seen is not None and (self.last_seen is None or last_seen > self.last_seen):
            self.last_seen = last_seen


def _copy(buckets: dict[Key, dict[datetime, Counts]]) -> dict[Key, dict[datetime, Counts]]:
    return {key: {start: Counts(c.events, c.failures, c.last_seen) for start, c in by_start.items()}
            for key, by_start in buckets.items()}


def _floor(value: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    return datetime.fromtimestamp(value.timestamp() // seconds * seconds, UTC)


class SourceStats:
    """Per-host counts of the last day, kept up to date incrementally (see the module's docstring).

    ``window`` refreshes when the counts are older than ``max_age`` seconds; a refresh already running
    in another thread is not waited for (the page shows the counts of a moment ago instead).
    """

    def __init__(self, *, max_age: float = 5.0, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._after = -1  # the last event id read
        self._hours: dict[Key, dict[datetime, Counts]] = {}
        self._minutes: dict[Key, dict[datetime, Counts]] = {}
        self._refreshed = float("-inf")
        # What readers see: copies made at the end of each refresh, replaced whole (never changed in place).
        self._snapshot: tuple[dict[Key, dict[datetime, Counts]], dict[Key, dict[datetime, Counts]]] = ({}, {})
        self._worker = Worker("vigil-source-stats")

    def refresh(self, store: EventStore) -> None:
        """Read the rows stored since the last refresh (the last day's on the first)."""
        with self._lock:
            self._refresh(store, self.clock())

    def _refresh(self, store: EventStore, now: datetime) -> None:
        fine = _floor(now, MINUTE) - KEEP_MINUTES
        rows = _read(store, NEW_ROWS_SQL, {"fine": fine, "kind": FAILURE_KIND, "after": self._after,
                                           "since": _floor(now - WINDOW, HOUR)})
        for source, host, unit, is_fine, bucket, events, failures, last_seen, last_id in rows:
            key: Key = (str(source), str(host), int(unit))
            start = bucket.astimezone(UTC)
            self._hours.setdefault(key, {}).setdefault(_floor(start, HOUR), Counts()).add(
                int(events), int(failures), _utc(last_seen))
            if is_fine:
                self._minutes.setdefault(key, {}).setdefault(start, Counts()).add(
                    int(events), int(failures), _utc(last_seen))
            self._after = max(self._after, int(last_id))
        self._forget(now)
        self._snapshot = (_copy(self._hours), _copy(self._minutes))
        self._refreshed = time.monotonic()

    def _forget(self, now: datetime) -> None:
        """Drop buckets that fell out of the windows, and hosts with none left."""
        for buckets, oldest in ((self._hours, _floor(now - WINDOW, HOUR)), (self._minutes, _floor(now, MINUTE)
                                                                             - KEEP_MINUTES)):
            for key in list(buckets):
                kept = {start: counts for start, counts in buckets[key].items() if start >= oldest}
                if kept:
                    buckets[key] = kept
                else:
                    del buckets[key]

    def window(self, store: EventStore, *, unit_ids: Collection[int] | None) -> list[Window]:
        """Per (source, host, unit) of ``unit_ids`` (None: all): the last day's counts and the current rate."""
        if self._lock.acquire(blocking=self._refreshed == float("-inf")):
            try:
                if time.monotonic() - self._refreshed > self.max_age:
                    self._refresh(store, self.clock())
            finally:
                self._lock.release()
        now = self.clock()
        rate_start = _floor(now, MINUTE) - MINUTE * RATE_MINUTES
        rate_seconds = max((now - rate_start).total_seconds(), 1.0)
        found: list[Window] = []
        hours, minutes = self._snapshot
        oldest = now - WINDOW
        for key, buckets in hours.items():
            if unit_ids is not None and key[2] not in unit_ids:
                continue
            total = Counts()
            for start, counts in buckets.items():
                if start + HOUR > oldest:
                    total.add(counts.events, counts.failures, counts.last_seen)
            recent = sum(c.events for start, c in minutes.get(key, {}).items() if start >= rate_start)
            if total.events:
                found.append(Window(key[0], key[1], key[2], total.last_seen, total.events, recent, total.failures,
                                    rate_seconds))
        return found

    # --- kept warm in the background by `vigil serve` ---------------------------------------------

    def start(self, store: Callable[[], EventStore | None], interval: float = 30.0) -> None:
        def loop() -> None:  # at once (the first read covers a whole day), then every ``interval``
            while not self._worker.stopping.is_set():
                current = store()
                if current is not None:
                    try:
                        self.refresh(current)
                    except Exception:  # the next page view or round tries again
                        log.exception("refreshing the log-source figures failed")
                self._worker.stopping.wait(interval)

        self._worker.start(loop)

    def stop(self, timeout: float = 10.0) -> None:
        self._worker.stop(timeout)

