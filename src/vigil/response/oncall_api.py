"""/api/v1/oncall (schedules, layers, overrides, who is on call, shifts), /api/v1/escalation-policies and
/api/v1/escalations (list, read, start, acknowledge).

Reading needs ``incidents:read``. Keeping schedules and policies, starting and acknowledging escalations needs
``incidents:write``: they are part of running incident response (analysts and responders keep their own
rota), and none of them acts on another system, which is what ``response:execute`` guards. Every record
belongs to a unit; another unit's record answers 404.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi import Path as PathParam
from pydantic import AwareDatetime
from sqlalchemy import select

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID, utcnow
from vigil.core.pagination import Page, PageParams, page_params, paginate
from vigil.response import escalation as engine
from vigil.response import oncall_service as service
from vigil.response.oncall_models import Escalation, OncallOverride
from vigil.response.oncall_runtime import EscalationRunner
from vigil.response.oncall_schemas import (
    AcknowledgeIn,
    EscalationCreate,
    EscalationDetail,
    EscalationRead,
    LayerIn,
    OnCallRead,
    OverrideCreate,
    OverrideRead,
    PolicyCreate,
    PolicyRead,
    PolicyUpdate,
    ScheduleCreate,
    ScheduleRead,
    ScheduleUpdate,
    ShiftRead,
    StepRead,
)
from vigil.web.deps import SessionDep, context, require

Reader = Annotated[Principal, Depends(require(Permission.INCIDENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.INCIDENTS_WRITE))]
RecordId = Annotated[int, PathParam(ge=1, le=MAX_RECORD_ID)]
Pages = Annotated[PageParams, Depends(page_params)]

oncall = APIRouter(prefix="/api/v1/oncall", tags=["on-call"])
policies = APIRouter(prefix="/api/v1/escalation-policies", tags=["on-call"])
escalations = APIRouter(prefix="/api/v1/escalations", tags=["on-call"])
routers = [oncall, policies, escalations]
T = TypeVar("T")


def runner_of(request: Request) -> EscalationRunner:
    runner: EscalationRunner = request.app.state.escalations
    return runner


def _page(items: list[T], pages: PageParams) -> Page[T]:
    return Page(items=items[pages.offset:pages.offset + pages.limit], total=len(items), limit=pages.limit,
                offset=pages.offset)


# --- schedules --------------------------------------------------------------------------------------


@oncall.get("/schedules")
def list_schedules(principal: Reader, session: SessionDep, pages: Pages) -> Page[ScheduleRead]:
    items, total = paginate(session, service.schedules_query(), pages)
    return Page(items=[ScheduleRead.model_validate(s) for s in items], total=total, limit=pages.limit,
                offset=pages.offset)


@oncall.post("/schedules", status_code=status.HTTP_201_CREATED)
def create_schedule(data: ScheduleCreate, request: Request, principal: Writer, session: SessionDep) -> ScheduleRead:
    return ScheduleRead.model_validate(service.create_schedule(context(request, session, principal), data=data))


@oncall.get("/schedules/{schedule_id}")
def read_schedule(schedule_id: RecordId, principal: Reader, session: SessionDep) -> ScheduleRead:
    return ScheduleRead.model_validate(service.get_schedule(session, schedule_id))


@oncall.patch("/schedules/{schedule_id}")
def update_schedule(schedule_id: RecordId, data: ScheduleUpdate, request: Request, principal: Writer,
                    session: SessionDep) -> ScheduleRead:
    return ScheduleRead.model_validate(
        service.update_schedule(context(request, session, principal), schedule_id=schedule_id, data=data))


@oncall.put("/schedules/{schedule_id}/layers")
def replace_layers(schedule_id: RecordId, layers: list[LayerIn], request: Request, principal: Writer,
                   session: SessionDep) -> ScheduleRead:
    """Replaces every layer of the schedule (lowest first)."""
    data = ScheduleUpdate(layers=layers)
    return ScheduleRead.model_validate(
        service.update_schedule(context(request, session, principal), schedule_id=schedule_id, data=data))


@oncall.delete("/schedules/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_schedule(schedule_id: RecordId, request: Request, principal: Writer, session: SessionDep) -> Response:
    service.delete_schedule(context(request, session, principal), schedule_id=schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _override_read(override: OncallOverride, session: SessionDep) -> OverrideRead:
    user = service.user_names(session, [override.user_id]).get(override.user_id)
    read = OverrideRead.model_validate(override)
    read.username = user.username if user else f"#{override.user_id}"
    return read


@oncall.get("/schedules/{schedule_id}/overrides")
def list_overrides(schedule_id: RecordId, principal: Reader, session: SessionDep, pages: Pages,
                   current: Annotated[bool, Query(description="Only overrides not yet over.")] = False,
                   ) -> Page[OverrideRead]:
    service.get_schedule(session, schedule_id)
    found = service.overrides_of(session, schedule_id, ending_after=utcnow() if current else None)
    return _page([_override_read(o, session) for o in found], pages)


@oncall.post("/schedules/{schedule_id}/overrides", status_code=status.HTTP_201_CREATED)
def add_override(schedule_id: RecordId, data: OverrideCreate, request: Request, principal: Writer,
                 session: SessionDep) -> OverrideRead:
    override = service.add_override(context(request, session, principal), schedule_id=schedule_id, data=data)
    return _override_read(override, session)


@oncall.delete("/schedules/{schedule_id}/overrides/{override_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_override(schedule_id: RecordId, override_id: RecordId, request: Request, principal: Writer,
                    session: SessionDep) -> Response:
    service.delete_override(context(request, session, principal), schedule_id=schedule_id, override_id=override_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@oncall.get("/schedules/{schedule_id}/now")
def schedule_now(schedule_id: RecordId, principal: Reader, session: SessionDep,
                 at: Annotated[AwareDatetime | None, Query(description="Another instant than now.")] = None,
                 ) -> OnCallRead:
    return service.on_call(session, schedule=service.get_schedule(session, schedule_id), at=at or utcnow())


@oncall.get("/schedules/{schedule_id}/shifts")
def schedule_shifts(schedule_id: RecordId, principal: Reader, session: SessionDep, pages: Pages,
                    start: Annotated[AwareDatetime | None, Query(description="Default: now.")] = None,
                    end: Annotated[AwareDatetime | None, Query(description="Default: two weeks after start.")] = None,
                    ) -> Page[ShiftRead]:
    """The final shifts (layers and overrides applied) over a range of at most 92 days."""
    schedule = service.get_schedule(session, schedule_id)
    begin = start or utcnow()
    return _page(service.shifts(session, schedule=schedule, start=begin, end=end or begin + timedelta(days=14)),
                 pages)


@oncall.get("/now")
def everyone_on_call(principal: Reader, session: SessionDep, pages: Pages,
                     at: Annotated[AwareDatetime | None, Query(description="Another instant than now.")] = None,
                     ) -> Page[OnCallRead]:
    """Who is on call in every schedule the caller can see."""
    return _page(service.on_call_everywhere(session, at=at or utcnow()), pages)


# --- escalation policies ------------------------------------------------------------------------------


@policies.get("")
def list_policies(principal: Reader, session: SessionDep, pages: Pages) -> Page[PolicyRead]:
    items, total = paginate(session, service.policies_query(), pages)
    return Page(items=[PolicyRead.model_validate(p) for p in items], total=total, limit=pages.limit,
                offset=pages.offset)


@policies.post("", status_code=status.HTTP_201_CREATED)
def create_policy(data: PolicyCreate, request: Request, principal: Writer, session: SessionDep) -> PolicyRead:
    return PolicyRead.model_validate(service.create_policy(context(request, session, principal), data=data))


@policies.get("/{policy_id}")
def read_policy(policy_id: RecordId, principal: Reader, session: SessionDep) -> PolicyRead:
    return PolicyRead.model_validate(service.get_policy(session, policy_id))


@policies.patch("/{policy_id}")
def update_policy(policy_id: RecordId, data: PolicyUpdate, request: Request, principal: Writer,
                  session: SessionDep) -> PolicyRead:
    return PolicyRead.model_validate(
        service.update_policy(context(request, session, principal), policy_id=policy_id, data=data))


@policies.delete("/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_policy(policy_id: RecordId, request: Request, principal: Writer, session: SessionDep) -> Response:
    service.delete_policy(context(request, session, principal), policy_id=policy_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- escalations ---------------------------------------------------------------------------------------


def escalation_detail(session: SessionDep, escalation: Escalation) -> EscalationDetail:
    steps = [StepRead.model_validate(s) for s in engine.steps_of(session, escalation.id)]
    return EscalationDetail.model_validate({**EscalationRead.model_validate(escalation).model_dump(), "steps": steps})


@escalations.get("")
def list_escalations(principal: Reader, session: SessionDep, pages: Pages,
                     state: Annotated[Literal["active", "acknowledged", "exhausted"] | None,
                                      Query(alias="status")] = None,
                     incident_id: Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)] = None,
                     ) -> Page[EscalationRead]:
    query = select(Escalation).order_by(Escalation.started_at.desc(), Escalation.id.desc())
    if state:
        query = query.where(Escalation.status == state)
    if incident_id:
        query = query.where(Escalation.incident_id == incident_id)
    items, total = paginate(session, query, pages)
    return Page(items=[EscalationRead.model_validate(e) for e in items], total=total, limit=pages.limit,
                offset=pages.offset)


@escalations.post("", status_code=status.HTTP_201_CREATED)
def start_escalation(data: EscalationCreate, request: Request, principal: Writer,
                     session: SessionDep) -> EscalationDetail:
    """Pages level 1 of the policy now for an incident (its id and title); the next levels follow on timeout."""
    found = engine.start(context(request, session, principal), incident_id=data.incident_id, title=data.title,
                         severity=data.severity, policy_id=data.policy_id, now=utcnow(),
                         pager=runner_of(request).pager)
    return escalation_detail(session, found)


@escalations.get("/{escalation_id}")
def read_escalation(escalation_id: RecordId, principal: Reader, session: SessionDep) -> EscalationDetail:
    return escalation_detail(session, engine.get_escalation(session, escalation_id))


@escalations.post("/{escalation_id}/acknowledge")
def acknowledge(escalation_id: RecordId, request: Request, principal: Writer, session: SessionDep,
                data: AcknowledgeIn | None = None) -> EscalationDetail:
    found = engine.acknowledge(context(request, session, principal), escalation_id=escalation_id, via="api",
                               now=utcnow(), note=data.note if data else "")
    return escalation_detail(session, found)
