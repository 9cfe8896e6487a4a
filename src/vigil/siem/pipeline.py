"""The pipeline: spool → parse → normalise → enrich → store, one spool batch per store transaction.

One thread reads the spool in order from the store's last recorded position, and stores every batch
with its spool position in the same transaction: exactly once, even across a crash (the store skips a
batch at or before its recorded position). Behind the store, segments fully stored are released.

Fast path: a batch of JSON documents (format ``json``) with no enricher goes to the store as JSON text
(``append_json``): DuckDB reads the typed columns itself and no Python object is built per event. A
batch holding anything that is not a JSON object falls back to the parser, which records each bad line
as a failure without dropping the rest. Consecutive fast-path batches of one source are stored in one
transaction (with the last one's position, so still exactly once) when the pipeline is behind: fewer,
bigger transactions are what keeps up with a backlog.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from vigil.core.errors import BadInput
from vigil.core.worker import Worker
from vigil.siem.normalize import Enricher, normalise
from vigil.siem.parsers.base import Event, ParseContext, ParseFailure, Parser, run_batch
from vigil.siem.parsers.registry import detect_format, parser
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


@dataclass(frozen=True)
class SourceConfig:
    """How one source's records are read (from the log-sources settings; defaults from Settings)."""

    format: str | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    keep_original: bool = True


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


class Pipeline:
    def __init__(self, spool: Spool, store: EventStore, *, configs: SourceConfigs,
                 enrichers: Sequence[Enricher] = (), max_records: int = MAX_RECORDS) -> None:
        self.spool = spool
        self.store = store
        self.configs = configs
        self.enrichers = list(enrichers)
        self.max_records = max_records
        self.status = PipelineStatus(position=store.last_position())
        self._worker = Worker("vigil-pipeline")
        self._idle = threading.Condition()

    # --- one batch ---------------------------------------------------------------------------------

    def _parse(self, batch: SpoolBatch, config: SourceConfig) -> list[Event | ParseFailure]:
        meta = batch.meta
        ctx = ParseContext(source=meta.source, timezone=config.timezone, received_at=meta.received_at,
                           keep_original=config.keep_original)
        name = meta.format or config.format
        if name:
            return run_batch(parser(name), batch.records, ctx)
        # Unknown format: each record is detected on its own (mixed inputs stay readable).
        results: list[Event | ParseFailure] = []
        groups: dict[str, tuple[Parser, list[int]]] = {}
        for index, record in enumerate(batch.records):
            found = detect_format(record)
            if found is None:
                results.append(ParseFailure(record, "detect", "no parser recognises this record's format",
                                            meta.source))
                continue
            groups.setdefault(found.name, (found, []))[1].append(index)
            results.append(ParseFailure(b"", "", ""))  # placeholder, replaced below
        for found, indexes in groups.values():
            for index, result in zip(indexes, run_batch(found, [batch.records[i] for i in indexes], ctx),
                                     strict=True):
                results[index] = result
        return results

    def _fast(self, batch: SpoolBatch) -> bool:
        """Whether the batch can go to the store as JSON text (``append_json``)."""
        return (not self.enrichers
                and (batch.meta.format or self.configs(batch.meta.source).format) in FAST_JSON_FORMATS)

    def process(self, batch: SpoolBatch) -> None:
        """Store one spool batch (exactly once, by its position)."""
        self.process_group([batch])

    def process_group(self, batches: Sequence[SpoolBatch]) -> None:
        """Store consecutive spool batches of one source and unit in one transaction, with the last batch's
        position (exactly once): JSON text as it is on the fast path, else parsed.

        When a fast-path group holds a line that is not a JSON object, each batch is stored on its own
        instead, and the one with the bad lines is parsed, each bad line becoming a failure event.
        """
        first = batches[0]
        if self._fast(first):
            records = first.records if len(batches) == 1 else [r for batch in batches for r in batch.records]
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
        events: list[Event] = []
        failures = 0
        for batch in batches:
            parsed, failed = normalise(self._parse(batch, self.configs(batch.meta.source)), batch.meta,
                                       self.enrichers)
            events += parsed
            failures += failed
        self.store.append(events, unit_id=first.meta.unit_id, source=first.meta.source,
                          spool_position=batches[-1].position)
        self._stored(batches, len(events), failures)

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

    def run_once(self) -> int:
        """Process what the spool holds now (up to ``max_records``); the number of batches processed."""
        batches = self.spool.read(self.status.position, max_records=self.max_records)
        for group in self._groups(batches):
            self.process_group(group)
        if batches:
            self.spool.release(self.status.position)
        self.status.pending_bytes = self.spool.pending_bytes(self.status.position)
        if not batches:
            with self._idle:
                self._idle.notify_all()
        return len(batches)

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
            self._worker.start(self._loop)

    def stop(self, timeout: float = 10.0) -> None:
        self._worker.stop(timeout)

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
