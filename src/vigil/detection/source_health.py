"""Silent log sources raise an alert.

The log-sources page flags a configured source whose last event is older than its expected interval
(a shipper stopped, a firewall's logging was turned off: often the first sign of an attacker covering
tracks, ATT&CK T1562.006). This watch looks once a minute and raises one alert (origin ``health``) when
a source goes silent; while it stays silent nothing more is raised, and once it speaks again the next
silence raises a new one. After a restart a source still silent is raised again, deduplicated onto its
open alert within ``alert_dedup_minutes``.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

from vigil.core.config import Settings
from vigil.core.db import Database, Scope
from vigil.core.worker import Worker
from vigil.detection.alerts import Match, RecordResult, record_matches
from vigil.detection.sigma import Rule
from vigil.siem.runtime import Siem
from vigil.siem.sources import SourceStatus, source_statuses

log = logging.getLogger(__name__)

CHECK_SECONDS = 60.0
SILENT_RULE = Rule(
    id="vigil-source-silent", title="Log source went silent", level="medium", status="stable",
    description="No event arrived from a log source for longer than its expected interval.",
    author="Vigil", tags=("attack.defense-evasion", "attack.t1562.006"), pack="vigil-health",
    falsepositives=("Planned maintenance of the sender", "A source that is quiet by nature: raise its interval"),
)


def silent_event(item: SourceStatus, now: datetime) -> dict[str, object]:
    """What the alert shows as its event: the source, its last event and the interval it broke."""
    last = item.last_seen.isoformat() if item.last_seen else "never"
    return {
        "@timestamp": now.isoformat(),
        "message": (f"No event from log source {item.name} since {last}; "
                    f"one is expected at least every {item.expected_interval_minutes} minutes"),
        "event": {"kind": "alert", "module": "vigil", "dataset": "vigil.source_health", "action": "source-silent"},
        "vigil": {"source": item.name, "last_seen": last,
                  "expected_interval_minutes": item.expected_interval_minutes},
    }


class SilentSourceWatch:
    """Checks the sources of every unit and raises an alert for each that went silent since the last check."""

    def __init__(self, database: Database, siem: Siem, settings: Settings) -> None:
        self.database = database
        self.siem = siem
        self.settings = settings
        self._silent: set[str] = set()
        self._worker = Worker("vigil-source-health")

    def check(self, now: datetime | None = None) -> RecordResult:
        """One look at every source; the alerts raised for those newly silent."""
        now = now or datetime.now(UTC)
        with self.database.transaction(Scope.system()) as session:
            listing = source_statuses(session, self.siem.existing_store(), self.settings, unit_ids=None,
                                      now=now, stats=self.siem.source_stats)
        silent = {item.name: item for item in listing.items if item.silent}
        fresh = [item for name, item in silent.items() if name not in self._silent]
        self._silent = set(silent)
        matches = [Match(rule=dataclasses.replace(SILENT_RULE, title=f"{SILENT_RULE.title}: {item.name}"),
                         event=silent_event(item, now),
                         unit_id=item.unit_id if item.unit_id is not None else self.siem.default_unit(item.name),
                         source=item.name, origin="health", key=item.name)
                   for item in fresh]
        return record_matches(self.database, matches, dedup_minutes=self.settings.alert_dedup_minutes, now=now)

    def _loop(self) -> None:
        while not self._worker.stopping.wait(CHECK_SECONDS):
            try:
                self.check()
            except Exception:  # a failed look is retried at the next one; the sources page still flags it
                log.exception("source health: checking for silent log sources failed")

    def start(self) -> None:
        self._worker.start(self._loop)

    def stop(self) -> None:
        self._worker.stop()
