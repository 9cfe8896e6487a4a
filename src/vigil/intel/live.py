"""Live IOC matching: every batch of the SIEM pipeline against the active indicators, hits handed to ``record``.

``LiveIntel`` is one of the pipeline's event consumers (``vigil.siem.normalize.EventConsumer``), like live
detection. It asks for the active indicators (a version string and the (id, type, value) rows) at most
every few seconds, in a background thread; only when the version changed does it build a new index there
and swap it in, so matching never waits for a build and a feed update takes effect without a restart.
Events that arrive before the first index is built are not matched live (a retro-hunt covers them).

With a ``worker_dir``, each index's rows are also written there as a versioned snapshot, and the parse
worker processes match the events they parse (``WorkerIntelMatch``: each worker builds its index from a
snapshot once per version and keeps it); the hits come back through ``consume_found``. Without one, the
pipeline's thread matches in ``consume``. Either way an event that cannot be matched is counted and
skipped; the rest of its batch is matched.

Plain JSON, which the store takes as text, is not decoded for matching: the index's document screen
(``screen.py``, which the pipeline runs ahead in threads of its own, ``document_screen``) names the
documents that may match, and ``consume_documents`` decodes and matches only those. Without a screen (the
compiled module absent, STIX patterns indexed) such documents are decoded and matched as above.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson

from vigil.intel.matcher import Entry, Hit, IndexHolder, IndicatorIndex
from vigil.siem.parsers.base import Event
from vigil.siem.parsing import json_events

log = logging.getLogger(__name__)

EntriesSource = Callable[[], tuple[str, Iterable[Entry]]]
# How often the active indicators' version is looked up again (the index is rebuilt only on a change).
REFRESH_SECONDS = 5.0
SNAPSHOT_PREFIX = "intel-index-"
KEEP_SNAPSHOTS = 3  # workers may still be handed a job of the version before the current one


@dataclass(frozen=True)
class IntelHit:
    """An indicator seen in an event: the hit, the event, and where the event came from."""

    hit: Hit
    event: Event
    unit_id: int
    source: str


Record = Callable[[Sequence[IntelHit]], object]  # what it returns is not used
Screened = tuple[IndicatorIndex, list[int]]  # a screen's answer: the index, the positions of its candidates


@dataclass
class IntelStatus:
    indicators: int = 0
    version: str = ""
    skipped: int = 0  # rows of the current version that could not be indexed
    builds: int = 0
    build_seconds: float = 0.0  # the last build's
    events: int = 0
    hits: int = 0
    bad_events: int = 0  # events matching failed on (skipped, the batch went on)
    screened: int = 0  # events and plain JSON documents the screen read in this process (counted in ``events``)
    named: int = 0  # of those, the ones it named (decoded where JSON) and matched
    seconds: float = 0.0  # spent matching (in this process) and recording
    last_error: str = ""  # the last failure to read the indicators or build their index


FIRST_BUILD_WAIT = 60.0  # seconds the first batch waits for the first index (a million indicators: about 2)


class LiveIntel:
    """The pipeline consumer that matches events against the active indicators."""

    name = "intel"

    def __init__(self, entries: EntriesSource, record: Record, *, worker_dir: Path | None = None,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        """``entries``: the active indicators now, (version, rows); best cheap to call, with the rows read
        only when iterated (they are, in a background thread, only when the version changed). ``record``:
        takes each batch's hits. ``worker_dir``: where index snapshots for the parse workers are written
        (None: every batch is matched in the pipeline's thread)."""
        self.entries = entries
        self.record = record
        self.worker_dir = worker_dir
        self.refresh_seconds = refresh_seconds
        self.holder = IndexHolder()
        self.status = IntelStatus()
        self._job: WorkerIntelMatch | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()
        self._refreshing: threading.Thread | None = None
        self._first_asked = False

    # --- the indicators ------------------------------------------------------------------------------

    def refresh(self, *, wait: bool = False, timeout: float = 120.0) -> None:
        """Look the indicators up now (not at the next due time); with ``wait``, until they are looked up and
        any new index is in place (tests, the CLI)."""
        with self._lock:
            self._checked = float("-inf")
        thread = self._due()
        if wait and thread is not None:
            thread.join(timeout)

    def _due(self) -> threading.Thread | None:
        """Start a lookup in the background when one is due (never waits); the lookup running, if any."""
        with self._lock:
            running = self._refreshing
            if running is not None and running.is_alive():
                return running
            if time.monotonic() - self._checked < self.refresh_seconds:
                return None
            self._checked = time.monotonic()
            thread = threading.Thread(target=self._refresh, name="vigil-intel-refresh", daemon=True)
            self._refreshing = thread
            thread.start()
            return thread

    def _refresh(self) -> None:
        try:
            version, rows = self.entries()
            if version == self.status.version and self.status.builds:
                return
            started = time.perf_counter()
            index, job = self._build(str(version), rows)
        except Exception as exc:  # the current index stays; the status says why, the next lookup retries
            self.status.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("intel: the active indicators could not be read or indexed; matching with the old set")
            return
        self._job = job
        self.holder.swap(index)
        status = self.status
        status.version, status.indicators, status.skipped = str(version), len(index), index.skipped
        status.builds += 1
        status.build_seconds = time.perf_counter() - started
        status.last_error = ""
        log.info("intel: %d indicators indexed in %.1f s (version %s)", len(index), status.build_seconds,
                 str(version)[:16])

    def _build(self, version: str, rows: Iterable[Entry]) -> tuple[IndicatorIndex, WorkerIntelMatch | None]:
        """The index of ``rows``, and (with a worker folder) the worker job reading its snapshot, written as
        the rows go by."""
        if self.worker_dir is None:
            return IndicatorIndex.build(rows).with_screen(), None
        path = snapshot_path(self.worker_dir, version)
        partial = path.with_name(path.name + ".partial")
        snapshot = _Snapshot(partial)
        index = IndicatorIndex.build(snapshot.written(rows)).with_screen()
        try:
            if not snapshot.close() or not len(index):
                partial.unlink(missing_ok=True)
                return index, None
            partial.replace(path)
        except OSError as exc:
            log.warning("intel: index snapshot not written for the parse workers (%s); matched here instead", exc)
            return index, None
        _remove_old_snapshots(self.worker_dir, keep=path)
        return index, WorkerIntelMatch(version, str(path), self.status.builds + 1)

    # --- the pipeline consumer -----------------------------------------------------------------------

    def wanted(self) -> bool:
        """Whether any indicator is loaded (none: the pipeline does not decode JSON batches for this). The
        first call waits for the first index (at most ``FIRST_BUILD_WAIT``), so the first events are matched
        too; later rebuilds never make a batch wait."""
        if not self._first_asked:
            self._first_asked = True
            self.refresh(wait=True, timeout=FIRST_BUILD_WAIT)
        else:
            self._due()
        return len(self.holder.index) > 0

    def worker_job(self) -> WorkerIntelMatch | None:
        self._due()
        return self._job if len(self.holder.index) else None

    def consume(self, events: Sequence[Event], *, source: str, unit_id: int) -> None:
        index = self.holder.index
        if not len(index) or not events:
            return
        started = time.perf_counter()
        positions = index.to_match(events)
        if index.screen is not None:
            self.status.screened += len(events)
            self.status.named += len(positions)
        self._record(self._match(index, [events[position] for position in positions], source, unit_id), len(events),
                     started)

    def _match(self, index: IndicatorIndex, events: Iterable[Event], source: str, unit_id: int) -> list[IntelHit]:
        hits: list[IntelHit] = []
        for event in events:
            try:
                found = index.match(event)
            except Exception:  # a matcher bug on one odd event must not cost the batch its other hits
                self.status.bad_events += 1
                log.exception("intel: an event of %s could not be matched; skipped", source)
                continue
            hits.extend(IntelHit(hit, event, unit_id, source) for hit in found)
        return hits

    def document_screen(self) -> Callable[[Sequence[str | bytes], int], Screened] | None:
        """The current index's screen of plain JSON documents (None: it has none): the positions of those that
        may match (counted from ``start``), with the index to match them with."""
        index = self.holder.index
        screen = index.screen
        if screen is None:
            return None

        def screened(documents: Sequence[str | bytes], start: int = 0) -> Screened:
            return index, [start + position for position in screen.candidates(documents)]
        return screened

    def consume_documents(self, documents: Sequence[str | bytes], screened: Sequence[Screened] | None = None, *,
                          source: str, unit_id: int) -> bool:
        """Match JSON documents the store takes as they are: only those the screen named are decoded and matched
        (``screened``: its answer for each batch of them, when the pipeline ran it ahead; one screen's answers
        all name its index). False when the index has no screen (the pipeline then decodes them)."""
        started = time.perf_counter()
        if not screened:
            screen = self.document_screen()
            if screen is None:
                return False
            screened = [screen(documents, 0)]
        index = screened[0][0]
        named = [position for _, positions in screened for position in positions]
        events = json_events([documents[position] for position in named])[0]
        self._record(self._match(index, events, source, unit_id), len(documents), started)
        self.status.screened += len(documents)
        self.status.named += len(named)
        return True

    def consume_found(self, found: Sequence[tuple[int, Any]], documents: Sequence[str | bytes], *, source: str,
                      unit_id: int) -> None:
        """Hits the parse workers found: (document index, (hit fields, ...))."""
        started = time.perf_counter()
        hits: list[IntelHit] = []
        for position, rows in found:
            if rows == BAD_EVENT:
                self.status.bad_events += 1
                continue
            event = orjson.loads(documents[position])
            hits.extend(IntelHit(Hit(*row), event, unit_id, source) for row in rows)
        self._record(hits, len(documents), started)

    def _record(self, hits: list[IntelHit], events: int, started: float) -> None:
        if hits:
            self.record(hits)
        status = self.status
        status.events += events
        status.hits += len(hits)
        status.seconds += time.perf_counter() - started


# --- in the parse worker processes ---------------------------------------------------------------------

BAD_EVENT = "bad event"  # a worker's finding for an event matching failed on
# (build number, version, index) of this worker process: built from a snapshot once per version.
_current: tuple[int, str, IndicatorIndex] | None = None


@dataclass(frozen=True)
class WorkerIntelMatch:
    """The picklable job the parse workers run on each batch's events: the index version, its snapshot, and
    the number of its build (later builds have higher numbers)."""

    version: str
    snapshot: str
    build: int = 0

    def prepare(self) -> int:
        """Build this job's index in this worker ahead of its first batch (the pipeline asks every worker when
        a new index comes, and sends batches with the previous job meanwhile); the worker's pid."""
        _index_for(self)
        return os.getpid()

    def __call__(self, events: Sequence[Event]) -> list[tuple[int, Any]]:
        """(event index, hits as tuples) for the events with hits; (event index, BAD_EVENT) for one that
        failed."""
        index = _index_for(self)
        found: list[tuple[int, Any]] = []
        for position in index.to_match(events):
            try:
                hits = index.match(events[position])
            except Exception:  # counted by the consumer; the other events are matched
                found.append((position, BAD_EVENT))
                continue
            if hits:
                found.append((position, tuple((hit.indicator_id, hit.type, hit.value, hit.field, hit.observed)
                                              for hit in hits)))
        return found


def _index_for(job: WorkerIntelMatch) -> IndicatorIndex:
    """The index of the job's build, or of a later one this worker already has (a batch sent while the
    workers prepared a newer index is matched with it: newer indicators, no rebuild of the old)."""
    global _current
    if _current is None or ((_current[0], _current[1]) != (job.build, job.version) and _current[0] <= job.build):
        _current = None  # the old index goes before the new one is built: one in memory at a time
        with Path(job.snapshot).open(encoding="utf-8") as handle:
            index = IndicatorIndex.build(_read(handle)).with_screen()
        _current = (job.build, job.version, index)
    return _current[2]


# --- snapshots -----------------------------------------------------------------------------------------


def snapshot_path(folder: Path, version: str) -> Path:
    """Where the rows of an index version are written (a version is any text: its digest names the file)."""
    digest = hashlib.sha256(version.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return folder / f"{SNAPSHOT_PREFIX}{digest}.tsv"


class _Snapshot:
    """An index version's rows written to a file as they are read, one "id<TAB>type<TAB>value" line each
    (canonical values hold no tab or line break; a row that does is not one the index takes either). A
    failure to write leaves the rows flowing to the index and the snapshot marked failed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: TextIO | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = path.open("w", encoding="utf-8")
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        log.warning("intel: index snapshot %s not written (%s); the pipeline's thread matches instead", self.path,
                    exc)
        if self.handle is not None:
            self.handle.close()
        self.handle = None

    def written(self, rows: Iterable[Entry]) -> Iterator[Entry]:
        for row in rows:
            if self.handle is not None:
                try:
                    indicator_id, kind, value = row
                    line = f"{int(indicator_id)}\t{kind}\t{value}\n"
                    if line.count("\t") == 2 and line.count("\n") == 1 and "\r" not in line:
                        self.handle.write(line)
                except (TypeError, ValueError):  # not a row (the index skips it too), or text UTF-8 cannot hold
                    pass
                except OSError as exc:
                    self._fail(exc)
            yield row

    def close(self) -> bool:
        """Whether the whole snapshot was written."""
        if self.handle is None:
            return False
        try:
            self.handle.close()
        except OSError as exc:
            self._fail(exc)
            return False
        return True


def _read(handle: TextIO) -> Iterator[Entry]:
    for line in handle:
        indicator_id, kind, value = line.rstrip("\n").split("\t")
        yield int(indicator_id), kind, value


def _remove_old_snapshots(folder: Path, keep: Path) -> None:
    """All but the newest few snapshots, and partial ones a crash left (older than an hour)."""

    def age(path: Path) -> float:
        try:
            return time.time() - path.stat().st_mtime
        except OSError:
            return 0.0

    snapshots = sorted((path for path in folder.glob(f"{SNAPSHOT_PREFIX}*.tsv") if path != keep), key=age)
    old = snapshots[KEEP_SNAPSHOTS - 1:] + [path for path in folder.glob(f"{SNAPSHOT_PREFIX}*.partial")
                                            if age(path) > 3600]
    for path in old:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            continue
