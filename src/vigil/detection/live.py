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

from vigil.core.config import Settings
from vigil.core.db import Database
from vigil.detection.alerts import Match, record_matches
from vigil.detection.correlation_store import enabled_correlations
from vigil.detection.live_correlation import LiveCorrelation
from vigil.detection.rules_service import enabled_rules
from vigil.detection.sigma import Engine, Rule
from vigil.siem.parsers.base import Event

log = logging.getLogger(__name__)

RulesSource = Callable[[], tuple[str, Sequence[Rule]]]
# How often the enabled rules are looked up again (a cheap query; the engine is rebuilt only on change).
REFRESH_SECONDS = 5.0
_FAILURE_KIND = "pipeline_error"  # records no parser could read: not events of the monitored systems


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
                 refresh_seconds: float = REFRESH_SECONDS, correlations: LiveCorrelation | None = None) -> None:
        self.db = db
        self.rules = rules
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

    def consume(self, events: Sequence[Event], *, source: str, unit_id: int) -> None:
        engine = self.engine()
        if engine is None or not events:
            return
        started = time.perf_counter()
        matches: list[Match] = []
        for event in events:
            kind = event.get("event")
            if isinstance(kind, dict) and kind.get("kind") == _FAILURE_KIND:
                continue
            matches.extend(Match(rule, event, unit_id, source) for rule in engine.match(event))
        if self.correlations is not None and self.correlations.engine is not None:
            # Base rules of a correlation with `generate: false` (the default) raise no alert of their own.
            correlated = self.correlations.observe(matches)
            silenced = self.correlations.silenced
            matches = [m for m in matches if m.rule.id not in silenced] + correlated
        result = record_matches(self.db, matches, dedup_minutes=self.dedup_minutes)
        status = self.status
        status.events += len(events)
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
    compiled = settings.data_dir / "detection"
    return LiveDetection(database, lambda: enabled_rules(database, cache_dir=compiled),
                         dedup_minutes=settings.alert_dedup_minutes, correlations=correlations)
