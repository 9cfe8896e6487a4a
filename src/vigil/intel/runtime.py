"""Threat intelligence inside a process: the indicator store, the warninglists, the feed scheduler.

One ``Intel`` per data folder and process (``intel_for``): the live matcher (a pipeline consumer the
SIEM makes), the API and the scheduler share its store, since DuckDB lets one process hold the file.
``vigil serve`` starts the scheduler: every ``intel_pull_check_seconds`` it pulls the feeds that are
due, then looks back through stored events for what the pulls brought (the retro-hunt).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import httpx

from vigil.accounts.service import root_unit_id
from vigil.core import audit
from vigil.core.config import Settings
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.intel import feeds_service
from vigil.intel.live import IntelHit, LiveIntel
from vigil.intel.retrohunt import RetroResult, retro_hunt
from vigil.intel.schemas import LiveMatchingRead
from vigil.intel.sightings import Seen, SightingResult, record_seen
from vigil.intel.store import IntelStore
from vigil.intel.warninglists import WarninglistIndex
from vigil.siem.store.base import EventStore

log = logging.getLogger(__name__)

SYSTEM_NAME = "vigil"  # the audit trail's name for what the server does on its own (scheduled pulls)
_instances: dict[tuple[Path, str], Intel] = {}
_instances_lock = threading.Lock()


class Intel:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.db = database
        self._store: IntelStore | None = None
        self._warninglists: WarninglistIndex | None = None
        self._lock = threading.Lock()
        # The event store, for retro-hunts: the SIEM's in `vigil serve`, opened by the CLI otherwise.
        self.events: Callable[[], EventStore | None] = lambda: None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def store(self) -> IntelStore:
        with self._lock:
            if self._store is None:
                self._store = IntelStore(self.settings.intel_path)
            return self._store

    @property
    def warninglists(self) -> WarninglistIndex:
        with self._lock:
            if self._warninglists is None:
                self._warninglists = WarninglistIndex.build(self.settings.intel_warninglists)
            return self._warninglists

    def close(self) -> None:
        self.stop()
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    # --- the live matcher's two ends ---------------------------------------------------------------

    def entries(self) -> tuple[str, Iterable[tuple[int, str, str]]]:
        """The active indicators (read only when iterated) and their version. Decay retires indicators with
        time, so the version also changes every hour."""
        store = self.store
        return f"{store.version()}:{int(time.time() // 3600)}", store.active()

    def record(self, seen: Sequence[Seen]) -> SightingResult:
        return record_seen(self.db, self.store, seen, warninglists=self.warninglists,
                           dedup_minutes=self.settings.alert_dedup_minutes)

    def record_hits(self, hits: Sequence[IntelHit]) -> None:
        """The live matcher's hits, as sightings and alerts."""
        self.record([Seen(h.hit, h.event, h.unit_id, h.source) for h in hits])

    # --- retro-hunts and the scheduler -------------------------------------------------------------

    def look_back(self, indicator_ids: Sequence[int], *, trigger: str) -> RetroResult | None:
        """Retro-hunt for these indicators, when an event store is at hand and a look-back is set."""
        events = self.events()
        if events is None or not indicator_ids or self.settings.intel_lookback_days <= 0:
            return None
        return retro_hunt(self.db, self.store, events, indicator_ids=indicator_ids, trigger=trigger,
                          lookback_days=self.settings.intel_lookback_days, warninglists=self.warninglists)

    def pull(self, feed_id: int, *, client: httpx.Client, force: bool = False,
             actor: audit.Actor | None = None) -> feeds_service.PullOutcome:
        with self.db.transaction(Scope.system()) as session:
            actor = actor or audit.Actor(user_id=None, name=SYSTEM_NAME, unit_id=root_unit_id(session))
            outcome = feeds_service.pull_feed(Context(session=session, actor=actor), self.store, feed_id=feed_id,
                                              client=client, warninglists=self.warninglists, force=force)
        if outcome.fresh:
            try:
                self.look_back(outcome.fresh, trigger=f"feed:{feed_id} pull {outcome.pull_id}")
            except Exception:  # the pull stands; the look-back is reported and tried with the next change
                log.exception("intel: retro-hunt after pulling feed %d failed", feed_id)
        return outcome

    def pull_due(self, client: httpx.Client) -> list[feeds_service.PullOutcome]:
        with self.db.transaction(Scope.system()) as session:
            wanted = feeds_service.due(session)
        return [self.pull(feed_id, client=client) for feed_id in wanted]

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="vigil-intel-feeds", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        with httpx.Client(timeout=60.0, follow_redirects=True) as client:
            while not self._stop.wait(self.settings.intel_pull_check_seconds):
                try:
                    self.pull_due(client)
                except Exception:  # the scheduler keeps going; the next round tries again
                    log.exception("intel: pulling the feeds that are due failed")


def intel_for(settings: Settings, database: Database) -> Intel:
    """The process's ``Intel`` for this data folder and records store."""
    key = (settings.intel_path.resolve(), settings.effective_database_url)
    with _instances_lock:
        found = _instances.get(key)
        if found is None:
            found = _instances[key] = Intel(settings, database)
        return found


def forget(settings: Settings) -> None:
    """Close and drop the process's ``Intel`` for this data folder (tests, shutdown)."""
    key_path = settings.intel_path.resolve()
    with _instances_lock:
        for key in [k for k in _instances if k[0] == key_path]:
            _instances.pop(key).close()


def consumer(settings: Settings, database: Database) -> LiveIntel:
    """The ``vigil.consumers`` entry point: every event of the pipeline against the active indicators, in the
    parse workers (index snapshots under ``<data_dir>/intel/workers``)."""
    intel = intel_for(settings, database)
    return LiveIntel(intel.entries, intel.record_hits, worker_dir=settings.data_dir / "intel" / "workers")


def live_matching(consumers: Iterable[object]) -> LiveMatchingRead:
    """The state of the live matcher among a pipeline's consumers (not running: this process has none)."""
    live = next((found for found in consumers if isinstance(found, LiveIntel)), None)
    if live is None:
        return LiveMatchingRead(running=False)
    return LiveMatchingRead(running=True, **dataclasses.asdict(live.status))
