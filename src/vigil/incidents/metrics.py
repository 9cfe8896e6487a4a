"""MTTA, MTTC and MTTR, recomputed from the recorded status-change history.

Each incident's milestones come from ``incident_status_changes`` alone: opened (its ``opened`` change),
acknowledged (its first ``acknowledged`` change), contained (its first change into eradicate or a later
phase) and resolved (its first change into review or closed). The means are over the incidents that
reached the milestone, in minutes, grouped by the period the incident was opened in (UTC day, ISO week
or month), its type, its severity or its team.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.incidents.models import Incident, IncidentType, StatusChange
from vigil.incidents.workflow import CONTAINED_FROM, RESOLVED_FROM


class GroupBy(StrEnum):
    PERIOD = "period"
    TYPE = "type"
    SEVERITY = "severity"
    TEAM = "team"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass
class Milestones:
    opened: datetime | None = None
    acknowledged: datetime | None = None
    contained: datetime | None = None
    resolved: datetime | None = None


def milestones(changes: Iterable[StatusChange]) -> dict[int, Milestones]:
    """Per incident id, its milestones from its changes (the earliest of each kind)."""
    found: dict[int, Milestones] = {}
    for change in sorted(changes, key=lambda c: (c.at, c.id or 0)):
        mark = found.setdefault(change.incident_id, Milestones())
        if change.kind == "opened" and mark.opened is None:
            mark.opened = change.at
        elif change.kind == "acknowledged" and mark.acknowledged is None:
            mark.acknowledged = change.at
        elif change.kind == "phase" and change.to_phase is not None:
            if change.to_phase in CONTAINED_FROM and mark.contained is None:
                mark.contained = change.at
            if change.to_phase in RESOLVED_FROM and mark.resolved is None:
                mark.resolved = change.at
    return found


class MetricRow(BaseModel):
    key: str
    incidents: int
    acknowledged: int
    contained: int
    resolved: int
    mtta_minutes: float | None
    mttc_minutes: float | None
    mttr_minutes: float | None


def _period_key(moment: datetime, period: Period) -> str:
    if period is Period.DAY:
        return moment.strftime("%Y-%m-%d")
    if period is Period.WEEK:
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    return moment.strftime("%Y-%m")


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 60


def compute(session: Session, *, since: datetime, until: datetime, group_by: GroupBy = GroupBy.PERIOD,
            period: Period = Period.MONTH) -> list[MetricRow]:
    """The figures of incidents opened in [since, until) that the session's scope shows, one row per group
    (ordered by key)."""
    incidents = session.execute(
        select(Incident.id, Incident.created_at, Incident.severity, Incident.team, IncidentType.key)
        .join(IncidentType, IncidentType.id == Incident.type_id)
        .where(Incident.created_at >= since, Incident.created_at < until)).all()
    if not incidents:
        return []
    ids = [row.id for row in incidents]
    changes = session.scalars(select(StatusChange).where(StatusChange.incident_id.in_(ids))).all()
    marks = milestones(changes)
    groups: dict[str, list[Milestones]] = {}
    for row in incidents:
        mark = marks.get(row.id, Milestones())
        opened = mark.opened or row.created_at
        key = {GroupBy.PERIOD: _period_key(opened, period), GroupBy.TYPE: row.key,
               GroupBy.SEVERITY: row.severity, GroupBy.TEAM: row.team or "-"}[group_by]
        groups.setdefault(key, []).append(Milestones(opened, mark.acknowledged, mark.contained, mark.resolved))
    result: list[MetricRow] = []
    for key in sorted(groups):
        members = groups[key]
        tta = [m for m in (_minutes(x.opened, x.acknowledged) for x in members) if m is not None]
        ttc = [m for m in (_minutes(x.opened, x.contained) for x in members) if m is not None]
        ttr = [m for m in (_minutes(x.opened, x.resolved) for x in members) if m is not None]
        result.append(MetricRow(key=key, incidents=len(members), acknowledged=len(tta), contained=len(ttc),
                                resolved=len(ttr), mtta_minutes=_mean(tta), mttc_minutes=_mean(ttc),
                                mttr_minutes=_mean(ttr)))
    return result
