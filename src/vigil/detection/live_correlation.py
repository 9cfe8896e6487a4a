"""Correlation in live detection: base-rule matches feed the correlation engine, its hits become alerts.

``LiveCorrelation`` keeps one ``CorrelationEngine`` for the enabled correlation rules, rebuilt (with the
state of unchanged rules carried over) when they change; its state is written to a file every few
seconds and read back at start, so windows survive a restart. A correlation's alert is an alert like
any other (origin ``correlation``), its event a summary of the hit: the group, the count or the
distinct values, the first and last time, and the first contributing matches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.detection.alerts import Match, event_time
from vigil.detection.correlation import CorrelationEngine, CorrelationHit, CorrelationRule, silenced_rules
from vigil.detection.sigma import Rule
from vigil.detection.sigma.load import write_atomically

log = logging.getLogger(__name__)

CorrelationsSource = Callable[[Sequence[Rule]], tuple[str, Sequence[CorrelationRule]]]
SNAPSHOT_SECONDS = 10.0  # state written at most this often (a crash loses at most this much)
ADVANCE_SECONDS = 30.0  # windows of lt/eq correlations closed this often


class LiveCorrelation:
    def __init__(self, source: CorrelationsSource, *, state_path: Path | None = None) -> None:
        self.source = source
        self.state_path = state_path
        self.version = ""
        self.engine: CorrelationEngine | None = None
        self.silenced: frozenset[str] = frozenset()
        self._written = time.monotonic()
        self._advanced = time.monotonic()
        self._dirty = False

    def refresh(self, base_rules: Sequence[Rule]) -> None:
        """Rebuild for the enabled correlations when they changed (state of unchanged ones kept)."""
        version, correlations = self.source(base_rules)
        if version == self.version and (self.engine is not None or not correlations):
            return
        saved = self.engine.snapshot() if self.engine is not None else self._read_state()
        self.engine = CorrelationEngine.restore(correlations, saved) if correlations else None
        self.silenced = silenced_rules(correlations)
        self.version = version
        log.info("detection: %d correlation rules enabled", len(correlations))

    def observe(self, matches: Sequence[Match]) -> list[Match]:
        """The correlation alerts these matches complete (and those whose windows closed meanwhile)."""
        engine = self.engine
        if engine is None:
            return []
        keys = engine.rule_keys
        found: list[Match] = []
        for match in matches:
            if match.rule.id not in keys:
                continue
            at = event_time(match.event) or datetime.now(UTC)
            hits = engine.observe(match.rule.id, match.event, at)
            found.extend(_alert(hit, match.unit_id, match.source) for hit in hits)
            self._dirty = True
        if time.monotonic() - self._advanced >= ADVANCE_SECONDS and matches:
            self._advanced = time.monotonic()
            found.extend(_alert(hit, matches[0].unit_id, matches[0].source) for hit in engine.advance())
        self._save()
        return found

    def _save(self, *, now: bool = False) -> None:
        if self.engine is None or self.state_path is None or not self._dirty:
            return
        if not now and time.monotonic() - self._written < SNAPSHOT_SECONDS:
            return
        self._written = time.monotonic()
        self._dirty = False
        error = write_atomically(self.state_path, self.engine.snapshot())
        if error is not None:
            log.warning("detection: correlation state not written to %s: %s", self.state_path, error)

    def flush(self) -> None:
        """Write the state now (at shutdown)."""
        self._save(now=True)

    def _read_state(self) -> bytes | None:
        if self.state_path is None:
            return None
        try:
            return self.state_path.read_bytes()
        except OSError:
            return None


def as_rule(correlation: CorrelationRule) -> Rule:
    """A correlation as the rule an alert names (title, level, ATT&CK tags, author and references)."""
    return Rule(id=correlation.id, title=correlation.title, level=correlation.level, status=correlation.status,
                description=correlation.description, author=correlation.author,
                references=correlation.references, tags=correlation.tags,
                falsepositives=correlation.falsepositives, path=correlation.path, pack=correlation.pack,
                yaml=correlation.yaml)


def _alert(hit: CorrelationHit, unit_id: int, source: str) -> Match:
    group = dict(hit.group)
    summary: dict[str, Any] = {
        **group,  # host, user or source IP among the group-by fields name the alert's subject
        "@timestamp": hit.last.isoformat(),
        "correlation": {
            "type": hit.correlation.type, "timespan": hit.correlation.timespan_text, "group": group,
            "value": hit.value, "values": list(hit.values), "matches": hit.matches,
            "first": hit.first.isoformat(), "last": hit.last.isoformat(),
            "condition": str(hit.correlation.threshold),
        },
        "events": [_summary(event) for event in hit.events],
    }
    return Match(as_rule(hit.correlation), summary, unit_id, source, origin="correlation")


def _summary(event: Any) -> Mapping[str, Any]:
    return {"rule": event.rule, "at": event.at.isoformat(), "ref": event.ref, "value": event.value}
