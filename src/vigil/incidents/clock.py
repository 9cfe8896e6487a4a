"""The incident clock: once a minute, the grouping rules take in new alerts and the SLA warnings and breaches
not yet recorded are recorded (both once; a missed minute is caught up by the next)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from vigil.accounts import service as accounts
from vigil.core import audit
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.core.worker import Worker
from vigil.incidents import intake, sla

log = logging.getLogger(__name__)
TICK_SECONDS = 60.0


@dataclass(frozen=True)
class Tick:
    grouped: int
    sla_records: int


class IncidentClock:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._worker = Worker("vigil-incident-clock")

    def tick(self, now: datetime | None = None) -> Tick:
        """One pass over every unit: grouping first (a new incident starts its clocks), then the SLA records."""
        now = now or datetime.now(UTC)
        with self.database.transaction(Scope.system()) as session:
            ctx = Context(session=session, actor=audit.Actor(None, "vigil", accounts.root_unit_id(session)))
            grouped = intake.sweep(ctx, now=now)
        with self.database.transaction(Scope.system()) as session:
            recorded = sla.record_sla(session, now=now)
        return Tick(grouped=len(grouped), sla_records=len(recorded))

    def _loop(self) -> None:
        while not self._worker.stopping.wait(TICK_SECONDS):
            try:
                self.tick()
            except Exception:  # retried at the next tick; nothing is half-recorded (one transaction each)
                log.exception("incident clock: grouping alerts or recording SLA states failed")

    def start(self) -> None:
        self._worker.start(self._loop)

    def stop(self) -> None:
        self._worker.stop()
