"""Live detection: every batch of the SIEM pipeline through the Sigma engine, matches recorded as alerts.

``LiveDetection`` is one of the pipeline's event consumers (``vigil.siem.normalize.EventConsumer``). It
asks for the enabled rules (a version string and the compiled rules) at most every few seconds and
rebuilds the engine only when the version changed, so enabling a rule or importing a pack takes effect
within seconds, without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from vigil.core.config import Settings
from vigil.core.db import Database
from vigil.detection.alerts import Match, record_matches
from vigil.detection.correlation_store import enabled_correlations
from vigil.detection.live_correlation import LiveCorrelation
from vigil.detection.live_worker import WorkerMatch, detectable, write_rules
from vigil.detection.rules_service import enabled_rules
from vigil.detection.sigma import Engine, Rule
from vigil.siem.parsers.base import Event

log = logging.getLogger(__name__)

RulesSource = Callable[[], tuple[str, Sequence[Rule]]]
# How often the enabled rules are looked up again (a cheap query; the engine is rebuilt only on change).
REFRESH_SECONDS = 5.0


@dataclass
class DetectionStatus:
    rules: int = 0
    version: str = ""
    events: int = 0
    matches: int = 0
    raised: int = 0
    deduplicated: int = 0
    suppressed: int = 0
    seconds: float = 0.0  # spent matching and recording


class LiveDetection:
    """The pipeline consumer that raises alerts."""

    name = "detection"

    def __init__(self, db: Database, rules: RulesSource, *, dedup_minutes: int = 60,
                 refresh_seconds: float = REFRESH_SECONDS, correlations: LiveCorrelation | None = None,
                 worker_dir: Path | None = None) -> None:
        """``worker_dir``: where the rule set is written for the parse workers, which then match the events
        they parse (None: every batch is matched in the pipeline's thread)."""
        self.db = db
        self.rules = rules
        self.worker_dir = worker_dir
        self._job: WorkerMatch | None = None
        self._versions: dict[str, list[Rule]] = {}  # rule sets workers may still be matching with
        self.correlations = correlations
        self.dedup_minutes = dedup_minutes
        self.refresh_seconds = refresh_seconds
        self.status = DetectionStatus()
        self._engine: Engine | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def engine(self) -> Engine | None:
        """The engine for the enabled rules now (None when no rule is enabled)."""
        with self._lock:
            if time.monotonic() - self._checked >= self.refresh_seconds:
                self._checked = time.monotonic()
                version, rules = self.rules()
                if self.correlations is not None:
                    self.correlations.refresh(rules)
                if version != self.status.version or (self._engine is None and rules):
                    self._engine = Engine(rules) if rules else None
                    self._share(version, list(rules))
                    self.status.version = version
                    self.status.rules = len(rules)
                    log.info("detection: %d rules enabled (version %s)", len(rules), version[:12])
            return self._engine

    def wanted(self) -> bool:
        try:
            return self.engine() is not None
        except Exception:  # the rules could not be read: consume() will say why, in the pipeline status
            return True

    def refresh(self) -> None:
        """Look the rules up at the next batch (after a change made in this process)."""
        with self._lock:
            self._checked = float("-inf")

    def _share(self, version: str, rules: list[Rule]) -> None:
        """Make the rule set available to the parse workers (when they are used)."""
        self._job = None
        if self.worker_dir is None or not rules:
            return
        try:
            path = write_rules(self.worker_dir, version, rules)
        except OSError as exc:
            log.warning("detection: rules not shared with the parse workers (%s); matched here instead", exc)
            return
        self._versions = {**dict(list(self._versions.items())[-2:]), version: rules}
        self._job = WorkerMatch(version, str(path))

    def worker_job(self) -> WorkerMatch | None:
        self.engine()  # the rule set of now
        return self._job

    def consume_found(self, found: Sequence[tuple[int, Any]], documents: Sequence[str | bytes], *, source: str,
                      unit_id: int) -> None:
        """Matches the parse workers found: (document index, (rule set version, rule positions))."""
        started = time.perf_counter()
        matches: list[Match] = []
        for index, (version, positions) in found:
            rules = self._versions.get(version)
            if rules is None:  # a rule set changed twice while the batch was parsed: it no longer applies
                continue
            event = orjson.loads(documents[index])
            matches.extend(Match(rules[position], event, unit_id, source) for position in positions)
        self._record(matches, len(documents), started)

    def consume(self, events: Sequence[Event], *, source: str, unit_id: int) -> None:
        engine = self.engine()
        if engine is None or not events:
            return
        started = time.perf_counter()
        matches: list[Match] = []
        for event in filter(detectable, events):
            matches.extend(Match(rule, event, unit_id, source) for rule in engine.match(event))
        self._record(matches, len(events), started)

    def _record(self, matches: list[Match], events: int, started: float) -> None:
        if self.correlations is not None and self.correlations.engine is not None:
            # Base rules of a correlation with `generate: false` (the default) raise no alert of their own.
            correlated = self.correlations.observe(matches)
            silenced = self.correlations.silenced
            matches = [m for m in matches if m.rule.id not in silenced] + correlated
        result = record_matches(self.db, matches, dedup_minutes=self.dedup_minutes)
        status = self.status
        status.events += events
        status.matches += len(matches)
        status.raised += result.raised
        status.deduplicated += result.deduplicated
        status.suppressed += result.suppressed
        status.seconds += time.perf_counter() - started


def consumer(settings: Settings, database: Database) -> LiveDetection:
    """The ``vigil.consumers`` entry point: live detection with the enabled rules and correlations of the
    records store; correlation state kept in ``<data_dir>/detection/correlation-state.json``."""
    correlations = LiveCorrelation(lambda base: enabled_correlations(database, base),
                                   state_path=settings.data_dir / "detection" / "correlation-state.json")
    folder = settings.data_dir / "detection"
    return LiveDetection(database, lambda: enabled_rules(database, cache_dir=folder),
                         dedup_minutes=settings.alert_dedup_minutes, correlations=correlations, worker_dir=folder)
