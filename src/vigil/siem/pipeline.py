"""The pipeline: spool → parse → normalise → enrich → store, one spool batch per store transaction.

One thread reads the spool in order from the store's last recorded position, and stores every batch
with its spool position in the same transaction: exactly once, even across a crash (the store skips a
batch at or before its recorded position). Behind the store, segments fully stored are released.

Fast path: a batch of JSON documents (format ``json``) with no enricher goes to the store as JSON text
(``append_json``): DuckDB reads the typed columns itself and no Python object is built per event. A
batch holding anything that is not a JSON object falls back to the parser, which records each bad line
as a failure without dropping the rest. With parse workers, the consumers' jobs (live detection) run on
such batches in the workers while this thread stores the batches before them. Consecutive fast-path
batches of one source are stored in one transaction (with the last one's position, so still exactly
once) when the pipeline is behind: fewer, bigger transactions are what keeps up with a backlog.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

from vigil.core.errors import BadInput
from vigil.core.memory import collector_paused
from vigil.core.worker import Worker
from vigil.siem.normalize import Enricher, EventConsumer, WorkerJob, normalise
from vigil.siem.parsers.base import Event, ParseFailure
from vigil.siem.parsing import SourceConfig, json_events, match_json, parse_records, parse_to_json, watch_parent
from vigil.siem.spool import Spool, SpoolBatch
from vigil.siem.store.base import EventStore, SpoolPosition

log = logging.getLogger(__name__)

FAST_JSON_FORMATS = frozenset({"json"})
# Fast-path batches stored in one transaction hold at most a DuckDB row group (122,880 rows) together:
# up to that, bigger transactions are cheaper; past it, DuckDB writes the rows straight to the file and
# the part past the last whole row group becomes a half-empty one (measured: slower and ~70% bigger).
GROUP_RECORDS = 122_880
# Records read from the spool at once: about two such groups.
MAX_RECORDS = 2 * GROUP_RECORDS
SCREEN_THREADS = 2  # consumers' document screens at once (compiled code, free of the GIL)


SourceConfigs = Callable[[str], SourceConfig]


@dataclass
class PipelineStatus:
    running: bool = False
    batches: int = 0
    events: int = 0
    failures: int = 0
    position: SpoolPosition | None = None
    pending_bytes: int = 0
    last_batch_at: datetime | None = None
    last_error: str = ""
    errors: int = 0


Findings = list[list[tuple[int, Any]]]  # per consumer: (record index, what its job found)


@dataclass(frozen=True)
class Submitted:
    """A group's parse jobs in the worker processes, and the consumers whose jobs run with them."""

    futures: list[Future[tuple[list[str], int, Findings]]]
    consumers: list[EventConsumer]


@dataclass
class _Preparing:
    """A consumer's new worker job being prepared in the workers: the step running, the workers done."""

    job: WorkerJob
    future: Future[Any]
    workers: set[Any] = field(default_factory=set)  # what each step returned: its worker's pid
    tries: int = 0


@dataclass(frozen=True)
class Matching:
    """A JSON group's consumer jobs in the worker processes (the store takes its documents as they are), and
    the consumers' screens of its documents running in this process's screening threads."""

    futures: list[Future[Findings]]
    consumers: list[EventConsumer]
    screens: list[tuple[EventConsumer, list[Future[Any]]]] = field(default_factory=list)  # a future per batch


class Pipeline:
    def __init__(self, spool: Spool, store: EventStore, *, configs: SourceConfigs,
                 enrichers: Sequence[Enricher] = (), consumers: Sequence[EventConsumer] = (),
                 max_records: int = MAX_RECORDS, parse_workers: int = 0) -> None:
        """``parse_workers``: processes that parse batches beside this thread (0: parse in it)."""
        self.spool = spool
        self.store = store
        self.configs = configs
        self.enrichers = list(enrichers)
        self.consumers = list(consumers)
        self.max_records = max_records
        self.status = PipelineStatus(position=store.last_position())
        self._worker = Worker("vigil-pipeline")
        self._idle = threading.Condition()
        self.parse_workers = parse_workers
        self._pool: ProcessPoolExecutor | None = None
        self._booting: list[Future[int]] = []
        # Read but not yet stored (groups, with their parse jobs when workers parse them), and where the
        # reading got to: ahead of ``status.position`` only while those wait.
        self._ahead: deque[tuple[list[SpoolBatch], Submitted | Matching | None]] = deque()
        self._read_to: SpoolPosition | None = self.status.position
        # Per consumer: the worker job the workers are ready for, and a newer one they are preparing.
        self._ready_jobs: dict[str, WorkerJob] = {}
        self._preparing: dict[str, _Preparing] = {}
        # Runs consumers' document screens (compiled code that lets go of the GIL) on the batches read ahead,
        # on the cores the store's thread leaves idle (both of them while it waits for a group's screens).
        self._screener: ThreadPoolExecutor | None = None

    # --- one batch ---------------------------------------------------------------------------------

    def _parse(self, batch: SpoolBatch, config: SourceConfig) -> list[Event | ParseFailure]:
        return parse_records(batch.records, batch.meta, config)

    def _fast(self, batch: SpoolBatch) -> bool:
        """Whether the batch can go to the store as JSON text (``append_json``)."""
        return (not self.enrichers
                and (batch.meta.format or self.configs(batch.meta.source).format) in FAST_JSON_FORMATS)

    def process(self, batch: SpoolBatch) -> None:
        """Store one spool batch (exactly once, by its position)."""
        self.process_group([batch])

    def process_group(self, batches: Sequence[SpoolBatch], parsed: Submitted | Matching | None = None) -> None:
        """Store consecutive spool batches of one source and unit in one transaction, with the last batch's
        position (exactly once): JSON text as it is on the fast path, else parsed.

        When a fast-path group holds a line that is not a JSON object, each batch is stored on its own
        instead, and the one with the bad lines is parsed, each bad line becoming a failure event.
        """
        first = batches[0]
        if self._fast(first):
            records = first.records if len(batches) == 1 else [r for batch in batches for r in batch.records]
            matching = parsed if isinstance(parsed, Matching) else None
            served = self._consume_found(batches, matching, records) if matching and matching.futures else []
            self._consume_json(records, first, skip=served, screens=dict(matching.screens) if matching else {})
            try:
                self.store.append_json(records, unit_id=first.meta.unit_id, source=first.meta.source,
                                       spool_position=batches[-1].position)
            except BadInput:
                if len(batches) > 1:
                    for batch in batches:
                        self.process_group([batch])
                    return
            else:
                self._stored(batches, len(records), 0)
                return
        if isinstance(parsed, Submitted) and self._store_parsed(batches, parsed):
            return
        events: list[Event] = []
        failures = 0
        with collector_paused():
            for batch in batches:
                normalised, failed = normalise(self._parse(batch, self.configs(batch.meta.source)), batch.meta,
                                               self.enrichers)
                events += normalised
                failures += failed
            self._consume(events, first)
            self.store.append(events, unit_id=first.meta.unit_id, source=first.meta.source,
                              spool_position=batches[-1].position)
        self._stored(batches, len(events), failures)

    def _consume_found(self, batches: Sequence[SpoolBatch], matching: Matching,
                       documents: Sequence[bytes]) -> list[EventConsumer]:
        """Hand what the workers' jobs found in a JSON group to their consumers; the consumers served (none
        when a worker failed: this thread then decodes the documents for them)."""
        found: Findings = [[] for _ in matching.consumers]
        offset = 0
        try:
            for batch, future in zip(batches, matching.futures, strict=True):
                for mine, theirs in zip(found, future.result(), strict=True):
                    mine.extend((offset + index, finding) for index, finding in theirs)
                offset += len(batch.records)
        except Exception:  # a dead or broken worker: matched here instead, a new pool comes next time
            log.exception("pipeline: a worker failed matching %d batches; matching them here", len(batches))
            self._close_pool()
            return []
        first = batches[0]
        for consumer, its_findings in zip(matching.consumers, found, strict=True):
            self._guarded(consumer, lambda c=consumer, f=its_findings: c.consume_found(  # type: ignore[misc]
                f, documents, source=first.meta.source, unit_id=first.meta.unit_id), len(documents))
        return matching.consumers

    def _store_parsed(self, batches: Sequence[SpoolBatch], parsed: Submitted) -> bool:
        """Store what worker processes parsed (JSON text), and hand what the consumers' jobs found to them;
        False when a worker failed (parsed here instead)."""
        documents: list[str] = []
        failures = 0
        found: Findings = [[] for _ in parsed.consumers]
        try:
            for future in parsed.futures:
                docs, failed, findings = future.result()
                for mine, theirs in zip(found, findings, strict=True):
                    mine.extend((len(documents) + index, finding) for index, finding in theirs)
                documents += docs
                failures += failed
        except Exception:  # a dead or broken worker: this thread parses the group, a new pool comes next time
            log.exception("pipeline: a parse worker failed; parsing %d batches in the pipeline", len(batches))
            self._close_pool()
            return False
        first = batches[0]
        for consumer, its_findings in zip(parsed.consumers, found, strict=True):
            self._guarded(consumer, lambda c=consumer, f=its_findings: c.consume_found(  # type: ignore[misc]
                f, documents, source=first.meta.source, unit_id=first.meta.unit_id), len(documents))
        self._consume_json(documents, first, skip=parsed.consumers)
        self.store.append_json(documents, unit_id=first.meta.unit_id, source=first.meta.source,
                               spool_position=batches[-1].position)
        self._stored(batches, len(documents), failures)
        return True

    def _consume_json(self, documents: Sequence[str | bytes], first: SpoolBatch, skip: Sequence[EventConsumer] = (),
                      screens: Mapping[EventConsumer, list[Future[Any]]] | None = None) -> None:
        """Hand JSON documents to the consumers (but those in ``skip``, served by their worker jobs): as they
        are to those that take them so (with their screen of them, when it ran ahead), else as events (a line
        that is not an object is left out: the store refuses its batch and it comes back parsed)."""
        screens = screens or {}
        waiting = [consumer for consumer in self.consumers if consumer not in skip]
        served = [consumer for consumer in waiting
                  if self._took_documents(consumer, documents, first, screens.get(consumer))]
        if not any(consumer.wanted() for consumer in waiting if consumer not in served):
            return
        self._consume(json_events(documents)[0], first, skip=[*skip, *served])

    @staticmethod
    def _document_screen(consumer: EventConsumer) -> Callable[[Sequence[bytes], int], Any] | None:
        screen: Callable[[], Callable[[Sequence[bytes], int], Any] | None] | None = getattr(
            consumer, "document_screen", None)  # optional (plugins)
        try:
            return None if screen is None else screen()
        except Exception:  # then it gets events, where a failure is reported
            log.warning("pipeline: consumer %s: document_screen failed", consumer.name, exc_info=True)
            return None

    def _screen_ahead(self, group: Sequence[SpoolBatch]) -> list[tuple[EventConsumer, list[Future[Any]]]]:
        """Start the consumers' screens of a JSON group's documents, batch by batch (each with the position of
        its first document in the group), in the screening threads."""
        screens = [(consumer, screen) for consumer in self.consumers
                   if (screen := self._document_screen(consumer)) is not None]
        if not screens:
            return []
        if self._screener is None:
            self._screener = ThreadPoolExecutor(SCREEN_THREADS, thread_name_prefix="vigil-screen")
        starts = list(accumulate((len(batch.records) for batch in group[:-1]), initial=0))
        return [(consumer, [self._screener.submit(screen, batch.records, start) for batch, start in zip(
            group, starts, strict=True)]) for consumer, screen in screens]

    def _took_documents(self, consumer: EventConsumer, documents: Sequence[str | bytes], first: SpoolBatch,
                        screened: list[Future[Any]] | None) -> bool:
        """Whether the consumer took the JSON documents as they are (it failed trying: counted, and taken)."""
        take: Callable[..., bool] | None = getattr(consumer, "consume_documents", None)
        if take is None:
            return False
        taken = self._guarded(consumer, lambda: not consumer.wanted() or take(
            documents, _results(consumer, screened), source=first.meta.source, unit_id=first.meta.unit_id),
            len(documents))
        return taken is not False  # None: it failed

    def _consume(self, events: Sequence[Event], first: SpoolBatch, skip: Sequence[EventConsumer] = ()) -> None:
        for consumer in self.consumers:
            if consumer not in skip:
                self._guarded(consumer, lambda c=consumer: c.wanted() and c.consume(  # type: ignore[misc]
                    events, source=first.meta.source, unit_id=first.meta.unit_id), len(events))

    def _guarded(self, consumer: EventConsumer, call: Callable[[], object], events: int) -> object:
        """Run a consumer's step: what it returns; a failure (None) is counted and shown, never stops ingestion."""
        try:
            return call()
        except Exception as exc:  # detection must never stop ingestion; the status page shows it
            self.status.errors += 1
            self.status.last_error = f"{consumer.name}: {type(exc).__name__}: {exc}"
            log.exception("pipeline: consumer %s failed on a batch of %d events", consumer.name, events)
            return None

    def _parse_pool(self) -> ProcessPoolExecutor | None:
        if self.parse_workers <= 0 or self.enrichers:  # enrichers need the events in this process
            return None
        if self._pool is None:
            # spawn, not fork: this process runs threads (DuckDB's, the receivers') a fork would copy mid-way.
            self._pool = ProcessPoolExecutor(self.parse_workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=watch_parent, initargs=(os.getpid(),))
        return self._pool

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._ready_jobs.clear()  # new workers have prepared nothing
        self._preparing.clear()

    def _stored(self, batches: Sequence[SpoolBatch], events: int, failures: int) -> None:
        status = self.status
        status.batches += len(batches)
        status.events += events
        status.failures += failures
        status.position = batches[-1].position
        status.last_batch_at = datetime.now(UTC)

    def _groups(self, batches: Sequence[SpoolBatch]) -> list[list[SpoolBatch]]:
        """Runs of consecutive batches of one source and unit, all fast-path or all parsed, up to
        ``GROUP_RECORDS`` records together: one store transaction each (many small receiver batches
        would otherwise pay a transaction each)."""
        groups: list[list[SpoolBatch]] = []
        size = 0
        for batch in batches:
            last = groups[-1] if groups else None
            if (last is not None and self._fast(batch) == self._fast(last[0])
                    and (batch.meta.source, batch.meta.unit_id) == (last[0].meta.source, last[0].meta.unit_id)
                    and size + len(batch.records) <= GROUP_RECORDS):
                last.append(batch)
                size += len(batch.records)
            else:
                groups.append([batch])
                size = len(batch.records)
        return groups

    # --- the loop ----------------------------------------------------------------------------------

    def _read_ahead(self) -> None:
        """Read the batches after the last one read, and hand those to parse (or, JSON the store takes as it
        is, to match) to the workers at once."""
        batches = self.spool.read(self._read_to, max_records=self.max_records)
        if not batches:
            return
        self._read_to = batches[-1].position
        for group in self._groups(batches):
            pool = self._parse_pool()
            self._ahead.append((group, None if pool is None else self._submit(pool, group)))

    def _submit(self, pool: ProcessPoolExecutor, group: list[SpoolBatch]) -> Submitted | Matching | None:
        """The group's jobs in the workers: parsing with the consumers' jobs, or for JSON the consumers' jobs
        alone (none wanted: nothing to send); None (do it here) when the pool broke, e.g. a worker was killed."""
        consumers: list[EventConsumer] = []
        jobs: list[WorkerJob] = []
        fast = self._fast(group[0])
        screens = self._screen_ahead(group) if fast else []
        screened = [consumer for consumer, _ in screens]
        for consumer in self.consumers:
            job = None if consumer in screened else self._job_of(consumer)
            if job is not None:
                consumers.append(consumer)
                jobs.append(job)
        try:
            if fast:
                return Matching([pool.submit(match_json, batch.records, tuple(jobs)) for batch in group] if jobs
                                else [], consumers, screens) if jobs or screens else None
            return Submitted([pool.submit(parse_to_json, batch.records, batch.meta, self.configs(batch.meta.source),
                                          tuple(jobs)) for batch in group], consumers)
        except (BrokenProcessPool, RuntimeError):
            log.exception("pipeline: the parse workers are gone; parsing here, new workers next time")
            self._close_pool()
            return None

    def _job_of(self, consumer: EventConsumer) -> WorkerJob | None:
        try:
            job = consumer.worker_job() if consumer.wanted() else None
        except Exception as exc:  # its events then come to it here, where consume() reports the failure
            log.warning("pipeline: consumer %s has no worker job: %s", consumer.name, exc)
            return None
        return None if job is None else self._prepared(consumer.name, job)

    def _prepared(self, name: str, job: WorkerJob) -> WorkerJob:
        """The job to hand the workers now. A new job with a ``prepare`` step (an indicator index to build from
        its snapshot: seconds for a million) is prepared in one worker after the other, while batches keep
        going out with the job before it to the others, so that an update never stalls ingestion."""
        prepare: Callable[[], object] | None = getattr(job, "prepare", None)
        ready = self._ready_jobs.get(name)
        if prepare is None or ready is None or job == ready or self._pool is None:
            return self._take(name, job)
        preparing = self._preparing.get(name)
        try:
            if preparing is None or preparing.job != job:
                self._preparing[name] = _Preparing(job, self._pool.submit(prepare))
                return ready
            if not preparing.future.done():
                return ready
            preparing.workers.add(preparing.future.result())
            preparing.tries += 1
            # Each worker once (an idle worker may take the step twice: a second time costs nothing).
            if len(preparing.workers) < self.parse_workers and preparing.tries < 4 * self.parse_workers:
                preparing.future = self._pool.submit(prepare)
                return ready
        except Exception:  # a broken step or pool: the workers build what the job needs when they meet it
            log.warning("pipeline: preparing the %s job in the workers failed; they prepare it on its first batch",
                        name, exc_info=True)
        return self._take(name, job)

    def _take(self, name: str, job: WorkerJob) -> WorkerJob:
        self._ready_jobs[name] = job
        self._preparing.pop(name, None)
        return job

    def run_once(self) -> int:
        """Store what the spool holds now (up to ``max_records``); the number of batches stored.

        With parse workers, the next batches are read and handed to them before this thread stores the
        current ones, so parsing and storing overlap."""
        try:
            if not self._ahead:
                self._read_ahead()
            current = list(self._ahead)
            self._ahead.clear()
            if self._pool is not None:
                self._read_ahead()
            for group, futures in current:
                self.process_group(group, futures)
        except BaseException:
            # Read again from what is stored: nothing read ahead is lost, nothing is stored twice.
            self._ahead.clear()
            self._read_to = self.status.position
            raise
        stored = sum(len(group) for group, _ in current)
        if stored:
            self.spool.release(self.status.position)
        self.status.pending_bytes = self.spool.pending_bytes(self.status.position)
        if not stored:
            with self._idle:
                self._idle.notify_all()
        return stored

    def _loop(self) -> None:
        while not self._worker.stopping.is_set():
            try:
                if self.run_once() == 0:
                    self.spool.wait(self.status.position, timeout=0.5)
            except Exception as exc:  # keep running: the batch stays in the spool and is retried
                self.status.errors += 1
                self.status.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("pipeline: a batch failed; retrying in 1 s (it stays in the spool)")
                self._worker.stopping.wait(1.0)
        self.status.running = False

    def start(self) -> None:
        if not self._worker.running:
            self.status.running = True
            pool = self._parse_pool()
            if pool is not None:  # start the workers now: the first burst should not wait for them to boot
                self._booting = [pool.submit(os.getpid) for _ in range(self.parse_workers)]
            self._worker.start(self._loop)

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Wait until the parse workers have booted and each has prepared the consumers' current jobs; whether
        they did in time. A benchmark starts its clock here, as real traffic meets a server that has been up
        for a while."""
        deadline = time.monotonic() + timeout
        steps = [step for step in (getattr(self._job_of(consumer), "prepare", None) for consumer in self.consumers)
                 if step is not None]
        pool = self._parse_pool() if steps else None
        _, waiting = wait(self._booting, timeout)
        if waiting:
            return False
        return pool is None or all(self._prepare_everywhere(pool, step, deadline) for step in steps)

    def _prepare_everywhere(self, pool: ProcessPoolExecutor, step: Callable[[], object], deadline: float) -> bool:
        """Run a job's ``prepare`` until every worker has run it (a worker done with it may take the next call
        too, so the calls go on until the pids they return name every worker)."""
        workers: set[object] = set()
        while len(workers) < self.parse_workers:
            calls = [pool.submit(step) for _ in range(self.parse_workers)]
            done, waiting = wait(calls, max(0.0, deadline - time.monotonic()))
            if waiting or any(call.exception() is not None for call in done):
                return False  # a worker that cannot prepare it does so on its first batch (and says why there)
            workers.update(call.result() for call in done)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        self._worker.stop(timeout)
        self._close_pool()
        if self._screener is not None:
            self._screener.shutdown(wait=True, cancel_futures=True)
            self._screener = None
        self._ahead.clear()  # read ahead, never stored: read again from the store's position on a restart
        self._read_to = self.status.position

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything spooled so far is stored (tests, `vigil ingest`); whether it was."""
        target = self.spool.end()
        deadline = time.monotonic() + timeout
        if not self._worker.running:
            while self.run_once():
                pass
            return self.spool.pending_bytes(self.status.position) == 0
        while time.monotonic() < deadline:
            position = self.status.position
            # Stored up to the target, or nothing left (the spool may have rolled past the target since).
            if (position is not None and position >= target) or self.spool.pending_bytes(position) == 0:
                return True
            with self._idle:
                self._idle.wait(0.05)
        return False


def _results(consumer: EventConsumer, screened: list[Future[Any]] | None) -> list[Any] | None:
    """What a consumer's screens of a group's batches gave, in order; None when they did not run or one failed
    (the consumer then screens the group itself)."""
    if screened is None:
        return None
    try:
        return [future.result() for future in screened]
    except Exception:
        log.warning("pipeline: consumer %s: a screen failed", consumer.name, exc_info=True)
        return None
