"""The SIEM inside `vigil serve`: the event store, the spool, the pipeline thread and the receivers.

``Siem`` is created with the app (``app.state.siem``); the store and spool open on first use, the
pipeline runs from the app's start to its stop, and the network receivers (syslog) start only when
`vigil serve` asks for them. Everything that accepts events calls ``submit``: it returns once the batch
is safely in the spool (``SpoolFull`` when the disk quota is used up).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

from vigil.accounts.service import root_unit_id
from vigil.core.config import Settings
from vigil.core.db import Database, Scope
from vigil.core.plugins import load_group
from vigil.siem.normalize import ConsumerFactory, Enricher, EventConsumer
from vigil.siem.parsing import SourceConfig
from vigil.siem.pipeline import Pipeline
from vigil.siem.receivers import Receiver
from vigil.siem.retention import RetentionJob
from vigil.siem.source_stats import SourceStats
from vigil.siem.sources import SourceDirectory
from vigil.siem.spool import BatchMeta, Spool
from vigil.siem.store.base import EventStore, SpoolPosition
from vigil.siem.store.duckdb import DuckDBEventStore

log = logging.getLogger(__name__)

# Started with the app when `vigil serve` asks for receivers; stopped with it. (syslog adds one.)
ReceiverFactory = Callable[["Siem"], Receiver]


def plugin_consumers(settings: Settings, database: Database | None) -> list[EventConsumer]:
    """The event consumers of the installed ``vigil.consumers`` plugins (threat detection...)."""
    if database is None:
        return []
    loaded = load_group("vigil.consumers", ConsumerFactory, instantiate=False)  # type: ignore[type-abstract]
    for broken in loaded.broken:
        log.error("event consumer plugin %s (%s) not loaded: %s", broken.name, broken.target, broken.reason)
    return [factory(settings, database) for factory in loaded.plugins.values()]


class Siem:
    def __init__(self, settings: Settings, database: Database | None = None, *,
                 enrichers: Sequence[Enricher] = (), consumers: Sequence[EventConsumer] | None = None) -> None:
        """``consumers`` see every batch's events before it is stored (threat detection, IOC matching);
        None: those the ``vigil.consumers`` plugins make (none without a records store)."""
        self.settings = settings
        self.database = database
        self.enrichers = list(enrichers)
        self.consumers = list(consumers) if consumers is not None else plugin_consumers(settings, database)
        self._lock = threading.Lock()
        self._store: EventStore | None = None
        self._spool: Spool | None = None
        self._pipeline: Pipeline | None = None
        self.receivers: list[Receiver] = []
        self._started = False
        # Per-source reading settings; replaced by the log-sources service when it loads them.
        self.source_configs: Callable[[str], SourceConfig] = self.default_config
        # The unit a source's events belong to; replaced by the log-sources service when it loads them.
        self.unit_for: Callable[[str], int] = self.default_unit
        self._root_unit: int | None = None
        # With a records store: both read the log-source settings (cached, reloaded after a change).
        self.directory: SourceDirectory | None = None
        self.retention: RetentionJob | None = None
        self.source_stats = SourceStats()  # per-host figures of the log-sources page, kept between views
        if database is not None:
            self.directory = SourceDirectory(database, settings, default_unit=self.default_unit)
            self.source_configs, self.unit_for = self.directory.config, self.directory.unit

    def source_for_sender(self, input_name: str, peer: str) -> str:
        """``<input>:<sender address>`` when a log source of that name is configured (its own time zone,
        unit and retention for one device among many on a shared input), else the input's own name."""
        own = f"{input_name}:{peer}"
        return own if peer and self.directory is not None and self.directory.configured(own) else input_name

    def default_config(self, source: str) -> SourceConfig:
        return SourceConfig(timezone=ZoneInfo(self.settings.log_timezone),
                            keep_original=self.settings.keep_original)

    def default_unit(self, source: str) -> int:
        """The root unit (headquarters), for sources nobody assigned to a unit."""
        if self._root_unit is None:
            if self.database is None:
                raise RuntimeError("the SIEM runtime has no records store to find the root unit in")
            with self.database.transaction(Scope.system()) as session:
                self._root_unit = root_unit_id(session)
        return self._root_unit

    @property
    def store(self) -> EventStore:
        with self._lock:
            if self._store is None:
                self._store = DuckDBEventStore(self.settings.events_path,
                                               memory_limit=self.settings.events_memory_limit)
            return self._store

    @property
    def spool(self) -> Spool:
        store = self.store
        with self._lock:
            if self._spool is None:
                last = store.last_position()
                self._spool = Spool(self.settings.spool_dir, quota_bytes=self.settings.spool_quota_bytes,
                                    segment_bytes=self.settings.spool_segment_bytes,
                                    first_segment=last[0] + 1 if last else 1)
            return self._spool

    @property
    def pipeline(self) -> Pipeline:
        spool, store = self.spool, self.store
        with self._lock:
            if self._pipeline is None:
                self._pipeline = Pipeline(spool, store, configs=lambda name: self.source_configs(name),
                                          enrichers=self.enrichers, consumers=self.consumers,
                                          parse_workers=self.settings.pipeline_workers)
            return self._pipeline

    def submit(self, records: Sequence[bytes], meta: BatchMeta) -> SpoolPosition:
        """Accept a batch: on disk when this returns. Raises ``SpoolFull`` (503) when over quota."""
        position = self.spool.append(records, meta)
        if self._started:
            self.pipeline.start()
        return position

    def start(self, receivers: Sequence[ReceiverFactory] = ()) -> None:
        """Run the pipeline (now if anything is stored or spooled, else on the first batch) and receivers."""
        self._started = True
        spooled = self.settings.spool_dir.is_dir() and any(self.settings.spool_dir.iterdir())
        if receivers or spooled or self.settings.events_path.exists():
            self.pipeline.start()
        for factory in receivers:
            receiver = factory(self)
            receiver.start()
            self.receivers.append(receiver)
        if self.database is not None:  # the daily retention run (shortly after start, then once a day)
            self.retention = RetentionJob(self.database, self.settings, store=self.existing_store)
            self.retention.start()
        self.source_stats.start(self.existing_store)

    def existing_store(self) -> EventStore | None:
        """The event store when events were ever stored (retention never creates an empty one)."""
        return self.store if self._store is not None or self.settings.events_path.exists() else None

    def stop(self) -> None:
        self._started = False
        if self.retention is not None:
            self.retention.stop()
        self.source_stats.stop()
        for receiver in reversed(self.receivers):
            try:
                receiver.stop()
            except Exception:
                log.exception("stopping the %s receiver failed", receiver.name)
        self.receivers.clear()
        with self._lock:
            pipeline, spool, store = self._pipeline, self._spool, self._store
            self._pipeline = self._spool = self._store = None
        if pipeline is not None:
            pipeline.stop()
        if spool is not None:
            spool.close()
        if store is not None:
            store.close()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything accepted so far is stored (for tests and `vigil ingest`)."""
        return self.pipeline.drain(timeout)
