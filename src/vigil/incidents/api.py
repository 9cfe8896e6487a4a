"""/api/v1/incidents: the incident queue, each incident with its work (tasks, comments, timeline, observables,
alerts, post-mortem), the five-step transitions, the SLA figures and metrics, and the domain's settings.

Reading needs ``incidents:read`` and covers the caller's units; working an incident needs ``incidents:write``
on its unit (another unit's incident answers 404, like one that does not exist). The settings (types,
custom fields, task templates, SLA targets and calendar) are platform-wide: changing them needs
``incidents:write`` at a root unit. Every change is on the audit trail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi import Path as PathParam
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID, utcnow
from vigil.core.errors import BadInput
from vigil.core.pagination import Page, PageParams, page_params
from vigil.incidents import activity, intake, metrics, postmortem, service, settings_service, sla, tasks
from vigil.incidents.common import get_incident
from vigil.incidents.reads import IndicatorFinder, Reader
from vigil.incidents.schemas import (
    AlertIds,
    CommentCreate,
    CommentRead,
    EscalateAlerts,
    FieldDefinitionCreate,
    FieldDefinitionRead,
    GroupingRuleCreate,
    GroupingRuleRead,
    IncidentAssign,
    IncidentCreate,
    IncidentFilter,
    IncidentPage,
    IncidentRead,
    IncidentTransition,
    IncidentUpdate,
    ObservableCreate,
    ObservableRead,
    PhaseName,
    PostMortemRead,
    PostMortemReview,
    PostMortemUpdate,
    Severity,
    SlaCalendarRead,
    SlaCalendarUpdate,
    SlaFilter,
    SlaTargetRead,
    SlaTargetUpdate,
    TaskCreate,
    TaskRead,
    TaskTemplateCreate,
    TaskTemplateRead,
    TaskUpdate,
    TimelineCreate,
    TimelineRead,
    TypeCreate,
    TypeRead,
)
from vigil.incidents.workflow import ReviewAction
from vigil.intel.runtime import Intel
from vigil.web.deps import SessionDep, context, require

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
Reader_ = Annotated[Principal, Depends(require(Permission.INCIDENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.INCIDENTS_WRITE))]
Admin = Annotated[Principal, Depends(require(Permission.INCIDENTS_WRITE, everywhere=True))]
IncidentId = Annotated[int, PathParam(ge=1, le=MAX_RECORD_ID, description="An incident's id.")]
ChildId = Annotated[int, PathParam(ge=1, le=MAX_RECORD_ID)]
Pages = Annotated[PageParams, Depends(page_params)]


def indicator_finder(request: Request) -> IndicatorFinder | None:
    intel: Intel | None = getattr(request.app.state, "intel", None)
    if intel is None:
        return None

    def find(kind: str, value: str) -> int | None:
        found = intel.store.find(kind, value)
        return found.id if found is not None else None
    return find


def full(request: Request, session: Session, incident_id: int) -> IncidentRead:
    return Reader(session, utcnow()).full(get_incident(session, incident_id), indicator_finder(request))


def incident_filter(
    phase: Annotated[list[PhaseName], Query(description="Any of these phases (repeat).")] = [],  # noqa: B006
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
    severity: Annotated[list[Severity], Query(description="Any of these severities (repeat).")] = [],  # noqa: B006
    type: Annotated[str, Query(max_length=64, description="A type key.")] = "",
    owner_id: Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)] = None,
    team: Annotated[str, Query(max_length=100)] = "",
    sla_state: Annotated[SlaFilter | None, Query(alias="sla", description="ok, warning or breached "
                                                 "(as the SLA scheduler last recorded).")] = None,
    q: Annotated[str, Query(max_length=200, description="Text in the reference, title or description.")] = "",
) -> IncidentFilter:
    return IncidentFilter.model_validate({"phase": phase, "status": status, "severity": severity, "type": type,
                                          "owner_id": owner_id, "team": team, "sla": sla_state, "q": q})


Filters = Annotated[IncidentFilter, Depends(incident_filter)]


# --- the queue and incidents ------------------------------------------------------------------------


@router.get("")
def list_incidents(principal: Reader_, session: SessionDep, pages: Pages, filters: Filters) -> IncidentPage:
    """Incidents of the caller's units, newest first, with their SLA state."""
    items, total = service.list_incidents(session, filters=filters, params=pages)
    return IncidentPage(items=Reader(session, utcnow()).summaries(items), total=total, **pages.model_dump())


@router.post("", status_code=status.HTTP_201_CREATED)
def create_incident(data: IncidentCreate, request: Request, principal: Writer, session: SessionDep) -> IncidentRead:
    incident = service.open_incident(context(request, session, principal), data=data)
    return full(request, session, incident.id)


@router.get("/metrics")
def incident_metrics(
    principal: Reader_, session: SessionDep, pages: Pages,
    since: AwareDatetime | None = None, until: AwareDatetime | None = None,
    group_by: Annotated[metrics.GroupBy, Query(description="period, type, severity or team.")] = metrics.GroupBy.PERIOD,
    period: Annotated[metrics.Period, Query(description="day, week or month (with group_by=period).")] =
        metrics.Period.MONTH,
) -> Page[metrics.MetricRow]:
    """MTTA, MTTC and MTTR in minutes of incidents opened in [since, until) (default: the last 90 days),
    recomputed from the recorded status changes."""
    end = until or datetime.now(UTC)
    start = since or end - timedelta(days=90)
    if start >= end:
        raise BadInput("since must be before until", errors=[{"field": "since", "message": "after until"}])
    found = metrics.compute(session, since=start, until=end, group_by=group_by, period=period)
    return Page(items=found[pages.offset:pages.offset + pages.limit], total=len(found), **pages.model_dump())


@router.post("/escalate", status_code=status.HTTP_201_CREATED)
def escalate_alerts(data: EscalateAlerts, request: Request, principal: Writer, session: SessionDep) -> IncidentRead:
    """Alerts into an open incident (``incident_id``) or a new one, all or none."""
    incident = intake.escalate(context(request, session, principal), data=data)
    return full(request, session, incident.id)


@router.get("/{incident_id}")
def read_incident(incident_id: IncidentId, request: Request, principal: Reader_, session: SessionDep) -> IncidentRead:
    return full(request, session, incident_id)


@router.patch("/{incident_id}")
def update_incident(incident_id: IncidentId, data: IncidentUpdate, request: Request, principal: Writer,
                    session: SessionDep) -> IncidentRead:
    service.update_incident(context(request, session, principal), incident_id=incident_id, data=data)
    return full(request, session, incident_id)


@router.post("/{incident_id}/assign")
def assign_incident(incident_id: IncidentId, data: IncidentAssign, request: Request, principal: Writer,
                    session: SessionDep) -> IncidentRead:
    service.assign(context(request, session, principal), incident_id=incident_id, data=data)
    return full(request, session, incident_id)


@router.post("/{incident_id}/acknowledge")
def acknowledge_incident(incident_id: IncidentId, request: Request, principal: Writer,
                         session: SessionDep) -> IncidentRead:
    service.acknowledge(context(request, session, principal), incident_id=incident_id)
    return full(request, session, incident_id)


@router.post("/{incident_id}/transition")
def transition_incident(incident_id: IncidentId, data: IncidentTransition, request: Request, principal: Writer,
                        session: SessionDep) -> IncidentRead:
    """Move to a phase (or reopen a closed incident into one, with a reason); 409 with the reason when the
    workflow refuses: a move the table lacks, required tasks not done, no approved post-mortem."""
    service.transition(context(request, session, principal), incident_id=incident_id, data=data)
    return full(request, session, incident_id)


# --- alerts and observables -------------------------------------------------------------------------


@router.post("/{incident_id}/alerts")
def link_alerts(incident_id: IncidentId, data: AlertIds, request: Request, principal: Writer,
                session: SessionDep) -> IncidentRead:
    activity.add_alerts(context(request, session, principal), incident_id=incident_id, alert_ids=data.alert_ids)
    return full(request, session, incident_id)


@router.delete("/{incident_id}/alerts/{alert_id}", status_code=status.HTTP_204_NO_CONTENT)
def unlink_alert(incident_id: IncidentId, alert_id: ChildId, request: Request, principal: Writer,
                 session: SessionDep) -> Response:
    activity.remove_alert(context(request, session, principal), incident_id=incident_id, alert_id=alert_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{incident_id}/observables", status_code=status.HTTP_201_CREATED)
def add_observable(incident_id: IncidentId, data: ObservableCreate, request: Request, principal: Writer,
                   session: SessionDep) -> ObservableRead:
    observable = activity.add_observable(context(request, session, principal), incident_id=incident_id, data=data)
    item = ObservableRead.model_validate(observable)
    finder = indicator_finder(request)
    item.indicator_id = finder(observable.type, observable.value) if finder else None
    return item


@router.delete("/{incident_id}/observables/{observable_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_observable(incident_id: IncidentId, observable_id: ChildId, request: Request, principal: Writer,
                      session: SessionDep) -> Response:
    activity.remove_observable(context(request, session, principal), incident_id=incident_id,
                               observable_id=observable_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- tasks ------------------------------------------------------------------------------------------


@router.post("/{incident_id}/tasks", status_code=status.HTTP_201_CREATED)
def create_task(incident_id: IncidentId, data: TaskCreate, request: Request, principal: Writer,
                session: SessionDep) -> TaskRead:
    return TaskRead.model_validate(tasks.create_task(context(request, session, principal), incident_id=incident_id,
                                                     data=data))


@router.patch("/{incident_id}/tasks/{task_id}")
def update_task(incident_id: IncidentId, task_id: ChildId, data: TaskUpdate, request: Request, principal: Writer,
                session: SessionDep) -> TaskRead:
    return TaskRead.model_validate(tasks.update_task(context(request, session, principal), incident_id=incident_id,
                                                     task_id=task_id, data=data))


@router.post("/{incident_id}/tasks/{task_id}/complete")
def complete_task(incident_id: IncidentId, task_id: ChildId, request: Request, principal: Writer,
                  session: SessionDep) -> TaskRead:
    return TaskRead.model_validate(tasks.complete_task(context(request, session, principal), incident_id=incident_id,
                                                       task_id=task_id))


@router.post("/{incident_id}/tasks/{task_id}/reopen")
def reopen_task(incident_id: IncidentId, task_id: ChildId, request: Request, principal: Writer,
                session: SessionDep) -> TaskRead:
    return TaskRead.model_validate(tasks.complete_task(context(request, session, principal), incident_id=incident_id,
                                                       task_id=task_id, done=False))


@router.delete("/{incident_id}/tasks/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_task(incident_id: IncidentId, task_id: ChildId, request: Request, principal: Writer,
                session: SessionDep) -> Response:
    tasks.delete_task(context(request, session, principal), incident_id=incident_id, task_id=task_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- comments and the timeline ----------------------------------------------------------------------


@router.post("/{incident_id}/comments", status_code=status.HTTP_201_CREATED)
def add_comment(incident_id: IncidentId, data: CommentCreate, request: Request, principal: Writer,
                session: SessionDep) -> CommentRead:
    """A comment; each @username of an enabled user becomes a stored mention."""
    return CommentRead.model_validate(activity.add_comment(context(request, session, principal),
                                                           incident_id=incident_id, data=data))


@router.post("/{incident_id}/timeline", status_code=status.HTTP_201_CREATED)
def add_timeline_entry(incident_id: IncidentId, data: TimelineCreate, request: Request, principal: Writer,
                       session: SessionDep) -> TimelineRead:
    return TimelineRead.model_validate(activity.add_timeline_entry(context(request, session, principal),
                                                                   incident_id=incident_id, data=data))


# --- the post-mortem --------------------------------------------------------------------------------


@router.post("/{incident_id}/postmortem", status_code=status.HTTP_201_CREATED)
def draft_postmortem(incident_id: IncidentId, request: Request, principal: Writer,
                     session: SessionDep) -> PostMortemRead:
    """Draft the post-mortem from the incident's data (summary, timeline, impact, cause)."""
    return PostMortemRead.model_validate(postmortem.draft(context(request, session, principal),
                                                          incident_id=incident_id))


@router.patch("/{incident_id}/postmortem")
def update_postmortem(incident_id: IncidentId, data: PostMortemUpdate, request: Request, principal: Writer,
                      session: SessionDep) -> PostMortemRead:
    return PostMortemRead.model_validate(postmortem.update(context(request, session, principal),
                                                           incident_id=incident_id, data=data))


@router.post("/{incident_id}/postmortem/{action}")
def review_postmortem(incident_id: IncidentId, action: ReviewAction, request: Request, principal: Writer,
                      session: SessionDep, data: PostMortemReview | None = None) -> PostMortemRead:
    """submit, approve (never by its author: 403) or reject (back to draft, with a note)."""
    record = postmortem.review(context(request, session, principal), incident_id=incident_id, action=action,
                               note_text=data.note if data else "")
    return PostMortemRead.model_validate(record)


# --- settings (platform-wide) -----------------------------------------------------------------------

settings_router = APIRouter(prefix="/api/v1/incident-settings", tags=["incidents"])


@settings_router.get("/types")
def list_types(principal: Reader_, session: SessionDep, pages: Pages) -> Page[TypeRead]:
    found = [TypeRead.model_validate(t) for t in settings_service.list_types(session, include_disabled=True)]
    return Page(items=found[pages.offset:pages.offset + pages.limit], total=len(found), **pages.model_dump())


@settings_router.post("/types", status_code=status.HTTP_201_CREATED)
def create_type(data: TypeCreate, request: Request, principal: Admin, session: SessionDep) -> TypeRead:
    return TypeRead.model_validate(settings_service.create_type(context(request, session, principal), data=data))


@settings_router.get("/fields")
def list_fields(principal: Reader_, session: SessionDep, pages: Pages) -> Page[FieldDefinitionRead]:
    found = [FieldDefinitionRead.model_validate(f) for f in settings_service.list_fields(session)]
    return Page(items=found[pages.offset:pages.offset + pages.limit], total=len(found), **pages.model_dump())


@settings_router.post("/fields", status_code=status.HTTP_201_CREATED)
def create_field(data: FieldDefinitionCreate, request: Request, principal: Admin,
                 session: SessionDep) -> FieldDefinitionRead:
    return FieldDefinitionRead.model_validate(settings_service.create_field(context(request, session, principal),
                                                                            data=data))


@settings_router.delete("/fields/{field_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_field(field_id: ChildId, request: Request, principal: Admin, session: SessionDep) -> Response:
    settings_service.delete_field(context(request, session, principal), field_id=field_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@settings_router.get("/templates")
def list_templates(principal: Reader_, session: SessionDep, pages: Pages) -> Page[TaskTemplateRead]:
    found = [TaskTemplateRead.model_validate(t) for t in tasks.list_templates(session)]
    return Page(items=found[pages.offset:pages.offset + pages.limit], total=len(found), **pages.model_dump())


@settings_router.post("/templates", status_code=status.HTTP_201_CREATED)
def create_template(data: TaskTemplateCreate, request: Request, principal: Admin,
                    session: SessionDep) -> TaskTemplateRead:
    return TaskTemplateRead.model_validate(tasks.create_template(context(request, session, principal), data=data))


@settings_router.delete("/templates/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_template(template_id: ChildId, request: Request, principal: Admin, session: SessionDep) -> Response:
    tasks.delete_template(context(request, session, principal), template_id=template_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@settings_router.get("/sla")
def list_sla_targets(principal: Reader_, session: SessionDep, pages: Pages) -> Page[SlaTargetRead]:
    known = sla.targets(session)
    found = [SlaTargetRead.model_validate(known[s]) for s in sla.SEVERITIES if s in known]
    return Page(items=found[pages.offset:pages.offset + pages.limit], total=len(found), **pages.model_dump())


@settings_router.put("/sla/{severity}")
def set_sla_target(severity: Severity, data: SlaTargetUpdate, request: Request, principal: Admin,
                   session: SessionDep) -> SlaTargetRead:
    return SlaTargetRead.model_validate(settings_service.set_target(context(request, session, principal),
                                                                    severity=severity, data=data))


@settings_router.get("/calendar")
def read_calendar(principal: Reader_, session: SessionDep) -> SlaCalendarRead:
    return SlaCalendarRead.model_validate(sla.calendar_row(session))


@settings_router.put("/calendar")
def set_calendar(data: SlaCalendarUpdate, request: Request, principal: Admin, session: SessionDep) -> SlaCalendarRead:
    return SlaCalendarRead.model_validate(settings_service.set_calendar(context(request, session, principal),
                                                                        data=data))


@settings_router.get("/grouping-rules")
def list_grouping_rules(principal: Reader_, session: SessionDep, pages: Pages) -> Page[GroupingRuleRead]:
    found = [GroupingRuleRead.model_validate(r) for r in intake.list_rules(session)]
    return Page(items=found[pages.offset:pages.offset + pages.limit], total=len(found), **pages.model_dump())


@settings_router.post("/grouping-rules", status_code=status.HTTP_201_CREATED)
def create_grouping_rule(data: GroupingRuleCreate, request: Request, principal: Admin,
                         session: SessionDep) -> GroupingRuleRead:
    return GroupingRuleRead.model_validate(intake.create_rule(context(request, session, principal), data=data))


@settings_router.delete("/grouping-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_grouping_rule(rule_id: ChildId, request: Request, principal: Admin, session: SessionDep) -> Response:
    intake.delete_rule(context(request, session, principal), rule_id=rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


routers = [router, settings_router]
