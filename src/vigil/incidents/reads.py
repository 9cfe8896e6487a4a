"""Incidents as the API, the CLI and pages show them: the summary of the queue and the whole incident."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.incidents import activity, postmortem, sla, tasks
from vigil.incidents.common import user_names
from vigil.incidents.models import Incident, IncidentType, PhaseSpan, StatusChange
from vigil.incidents.response_timeline import merged_timeline
from vigil.incidents.schemas import (
    CommentRead,
    IncidentRead,
    IncidentSummary,
    LinkedAlert,
    ObservableRead,
    PhaseSpanRead,
    PhaseTime,
    PostMortemRead,
    Scope,
    SlaFigureRead,
    StatusChangeRead,
    TaskRead,
    UserRef,
)
from vigil.incidents.service import phase_minutes
from vigil.incidents.workflow import ORDER, allowed_targets

# Finds the intel indicator id of an observable (type, value), when an indicator store is at hand.
IndicatorFinder = Callable[[str, str], int | None]
WORST = ("breached", "warning", "ok", "met")


def overall_state(figures: Sequence[sla.SlaFigure]) -> str:
    states = {str(figure.state) for figure in figures}
    return next((state for state in WORST if state in states), "none")


class Reader:
    """Reads incidents of one session at one moment, loading the SLA settings and names once."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = now
        self.targets = sla.targets(session)
        self.calendar = sla.calendar(session)
        self.types: Mapping[int, str] = {row.id: row.key for row in session.execute(select(IncidentType.id,
                                                                                          IncidentType.key))}

    def figures(self, incident: Incident) -> list[sla.SlaFigure]:
        return sla.figures_of(self.session, incident, self.now, self.targets, self.calendar)

    def summaries(self, incidents: Sequence[Incident]) -> list[IncidentSummary]:
        names = user_names(self.session, [i.owner_id for i in incidents])
        return [self._summary(incident, names) for incident in incidents]

    def _summary(self, incident: Incident, names: Mapping[int, str]) -> IncidentSummary:
        owner = UserRef(id=incident.owner_id, username=names.get(incident.owner_id, "?")) \
            if incident.owner_id is not None else None
        return IncidentSummary(
            id=incident.id, ref=incident.ref, title=incident.title, type=self.types.get(incident.type_id, "other"),
            severity=incident.severity, phase=incident.phase, status=incident.status, unit_id=incident.unit_id,
            owner=owner, team=incident.team, tags=incident.tags, created_at=incident.created_at,
            updated_at=incident.updated_at, sla_state=overall_state(self.figures(incident)))

    def full(self, incident: Incident, find_indicator: IndicatorFinder | None = None) -> IncidentRead:
        session = self.session
        spans = list(session.scalars(select(PhaseSpan).where(PhaseSpan.incident_id == incident.id)
                                     .order_by(PhaseSpan.entered_at, PhaseSpan.id)))
        changes = session.scalars(select(StatusChange).where(StatusChange.incident_id == incident.id)
                                  .order_by(StatusChange.at, StatusChange.id)).all()
        names = user_names(session, [incident.owner_id, *incident.participants])
        spent = phase_minutes(spans, self.now)
        record = postmortem.postmortem_of(session, incident.id)
        observables = []
        for observable in activity.observables_of(session, incident.id):
            item = ObservableRead.model_validate(observable)
            if find_indicator is not None:
                item.indicator_id = find_indicator(observable.type, observable.value)
            observables.append(item)
        summary = self._summary(incident, names)
        return IncidentRead(
            **summary.model_dump(), description=incident.description, cause=incident.cause,
            scope=Scope(affected_assets=incident.affected_assets, affected_users=incident.affected_users,
                        business_lines=incident.business_lines, affected_data=incident.affected_data),
            participants=[UserRef(id=uid, username=names.get(uid, "?")) for uid in incident.participants],
            custom_fields=incident.custom_fields, source=incident.source, created_by=incident.created_by,
            acknowledged_at=incident.acknowledged_at, contained_at=incident.contained_at,
            resolved_at=incident.resolved_at, closed_at=incident.closed_at,
            allowed_phases=[str(p) for p in allowed_targets(incident.phase)],
            sla=[SlaFigureRead.model_validate(f) for f in self.figures(incident)],
            phase_times=[PhaseTime(phase=str(p), minutes=spent[p]) for p in ORDER if p in spent],
            phases=[PhaseSpanRead.model_validate(s) for s in spans],
            status_changes=[StatusChangeRead.model_validate(c) for c in changes],
            tasks=[TaskRead.model_validate(t) for t in tasks.tasks_of(session, incident.id)],
            alerts=[LinkedAlert(id=a.id, title=a.title, level=a.level, status=a.status, host=a.host,
                                user_name=a.user_name, rule_uid=a.rule_uid, linked_by=link.linked_by,
                                linked_at=link.linked_at) for a, link in activity.alerts_of(session, incident.id)],
            observables=observables,
            comments=[CommentRead.model_validate(c) for c in activity.comments_of(session, incident.id)],
            timeline=merged_timeline(session, incident.id, activity.timeline_of(session, incident.id)),
            postmortem=PostMortemRead.model_validate(record) if record is not None else None)
