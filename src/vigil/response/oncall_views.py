"""On-call pages: the calendar (who is on call now, the next two weeks' shifts as a table and a timeline),
schedules with their layers and overrides, escalation policies, escalations with an Acknowledge button, and
the page a signed acknowledgement link opens (no sign-in needed: the link is the credential).

Viewing needs ``incidents:read``, changing and acknowledging ``incidents:write`` (as the API).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID, Scope, set_scope, utcnow
from vigil.core.errors import BadInput, Conflict, NotFound, PermissionDenied
from vigil.core.pagination import PageParams, page_params, paginate
from vigil.response import escalation as engine
from vigil.response import oncall_forms as forms
from vigil.response import oncall_service as service
from vigil.response import paging_views
from vigil.response.escalation import LinkRefused
from vigil.response.notifications import service as notification_service
from vigil.response.oncall_models import Escalation, OncallSchedule
from vigil.response.oncall_runtime import EscalationRunner
from vigil.response.oncall_schemas import (
    OverrideCreate,
    PolicyCreate,
    PolicyUpdate,
    ScheduleCreate,
    ScheduleUpdate,
    ShiftRead,
)
from vigil.web.deps import SessionDep, client_ip, context
from vigil.web.templating import (
    FormDep,
    Pager,
    PageRoute,
    describe_error,
    page_guard,
    redirect,
    render,
    text_fields,
    translator,
    validate,
)

Reader = Annotated[Principal, Depends(page_guard(Permission.INCIDENTS_READ))]
Writer = Annotated[Principal, Depends(page_guard(Permission.INCIDENTS_WRITE))]
RecordId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]
REFUSED = (BadInput, Conflict, NotFound, PermissionDenied)
CALENDAR_DAYS = 14
MAX_ROWS = 12  # layer or level rows a form may send
DONE = frozenset({"schedule-saved", "schedule-deleted", "override-added", "override-deleted", "policy-saved",
                  "policy-deleted", "acknowledged"})

router = APIRouter(route_class=PageRoute, include_in_schema=False)
routers = [router]


def done_of(request: Request) -> str:
    done = request.query_params.get("done", "")
    return done if done in DONE else ""


def _local(value: datetime, zone: str) -> str:
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _shift_rows(shifts: list[ShiftRead], zone: str) -> list[dict[str, Any]]:
    return [{"user": s.display_name, "username": s.username, "layer": s.layer, "start": _local(s.start, zone),
             "end": _local(s.end, zone), "start_ms": int(s.start.timestamp() * 1000),
             "end_ms": int(s.end.timestamp() * 1000)} for s in shifts]


# --- the calendar ---------------------------------------------------------------------------------------


@router.get("/oncall")
def calendar_page(request: Request, principal: Reader, session: SessionDep) -> HTMLResponse:
    now = utcnow()
    rows: list[dict[str, Any]] = []
    names: list[str] = []
    bars: list[dict[str, Any]] = []
    for index, schedule in enumerate(session.scalars(service.schedules_query())):
        current = service.on_call(session, schedule=schedule, at=now)
        shifts = _shift_rows(service.shifts(session, schedule=schedule, start=now,
                                            end=now + timedelta(days=CALENDAR_DAYS)), schedule.time_zone)
        rows.append({"schedule": schedule, "now": current.shift, "shifts": shifts})
        names.append(schedule.name)
        bars += [{"row": index, "user": s["user"], "layer": s["layer"], "start": s["start_ms"], "end": s["end_ms"]}
                 for s in shifts]
    timeline = {"schedules": names, "shifts": bars, "start": int(now.timestamp() * 1000),
                "end": int((now + timedelta(days=CALENDAR_DAYS)).timestamp() * 1000)}
    active = session.scalar(select(Escalation.id).where(Escalation.status == "active").limit(1))
    return render(request, "oncall/calendar.html", {"rows": rows, "timeline": timeline, "days": CALENDAR_DAYS,
                                                    "has_active": active is not None, "done": done_of(request)})


# --- schedules -------------------------------------------------------------------------------------------


def _schedule_form(request: Request, session: Session, *, schedule: OncallSchedule | None,
                   values: Mapping[str, str], rows: list[dict[str, str]], error: str = "",
                   errors: Mapping[str, str] | None = None, status: int = 200) -> HTMLResponse:
    overrides, shifts = [], []
    if schedule is not None:
        found = service.overrides_of(session, schedule.id, ending_after=utcnow())
        names = service.user_names(session, {o.user_id for o in found})
        overrides = [{"id": o.id, "user": names[o.user_id].username if o.user_id in names else f"#{o.user_id}",
                      "start": _local(o.starts_at, schedule.time_zone), "end": _local(o.ends_at, schedule.time_zone),
                      "note": o.note} for o in found]
        now = utcnow()
        shifts = _shift_rows(service.shifts(session, schedule=schedule, start=now, end=now + timedelta(days=7)),
                             schedule.time_zone)
    blank = {name: "" for name in forms.LAYER_FIELDS}
    return render(request, "oncall/schedule.html", {
        "schedule": schedule, "values": values, "layers": [*rows, blank], "error": error, "errors": errors or {},
        "overrides": overrides, "shifts": shifts, "done": done_of(request),
        "rotation_options": [("daily", "daily"), ("weekly", "weekly"), ("hours", "hours")],
    }, status=status)


@router.get("/oncall/schedules/new")
def new_schedule_page(request: Request, principal: Writer, session: SessionDep) -> HTMLResponse:
    return _schedule_form(request, session, schedule=None, values={"time_zone": "Asia/Shanghai"}, rows=[])


@router.get("/oncall/schedules/{schedule_id}")
def schedule_page(schedule_id: RecordId, request: Request, principal: Reader, session: SessionDep) -> HTMLResponse:
    schedule = service.get_schedule(session, schedule_id)
    names = {u.id: u.username for u in service.user_names(
        session, {p for layer in schedule.layers for p in layer["participants"]}).values()}
    values = {"name": schedule.name, "description": schedule.description, "time_zone": schedule.time_zone}
    return _schedule_form(request, session, schedule=schedule, values=values,
                          rows=forms.layer_rows(schedule.layers, names))


def _count(form: FormDep, name: str) -> int:
    value = form.get(name)
    return min(int(value), MAX_ROWS) if isinstance(value, str) and value.isdigit() else 0


def _save_schedule(request: Request, principal: Principal, session: Session, form: FormDep,
                   schedule: OncallSchedule | None) -> Response:
    _ = translator(request)
    values = text_fields(form, "name", "description", "time_zone")
    rows = forms.form_rows(text_fields(form, *(f"layer{i}_{f}" for i in range(MAX_ROWS) for f in forms.LAYER_FIELDS)),
                           "layer", forms.LAYER_FIELDS, _count(form, "layer_count"))
    try:
        with session.begin_nested():
            layers = forms.layers_from_rows(session, rows)
            ctx = context(request, session, principal)
            if schedule is None:
                data, errors = validate(ScheduleCreate, {**values, "layers": layers}, _)
                if data is None:
                    raise BadInput(_("Check the marked fields."), errors=[{"field": k, "message": v}
                                                                           for k, v in errors.items()])
                saved = service.create_schedule(ctx, data=data)
            else:
                update, errors = validate(ScheduleUpdate, {**values, "layers": layers}, _)
                if update is None:
                    raise BadInput(_("Check the marked fields."), errors=[{"field": k, "message": v}
                                                                           for k, v in errors.items()])
                saved = service.update_schedule(ctx, schedule_id=schedule.id, data=update)
    except REFUSED as exc:
        errors = {e["field"]: e["message"] for e in exc.extra.get("errors", [])}
        return _schedule_form(request, session, schedule=schedule, values=values, rows=rows,
                              error=describe_error(exc, _), errors=errors, status=exc.status)
    return redirect(f"/oncall/schedules/{saved.id}?done=schedule-saved")


@router.post("/oncall/schedules")
def create_schedule(request: Request, principal: Writer, session: SessionDep, form: FormDep) -> Response:
    return _save_schedule(request, principal, session, form, None)


@router.post("/oncall/schedules/{schedule_id}")
def update_schedule(schedule_id: RecordId, request: Request, principal: Writer, session: SessionDep,
                    form: FormDep) -> Response:
    return _save_schedule(request, principal, session, form, service.get_schedule(session, schedule_id))


@router.post("/oncall/schedules/{schedule_id}/delete")
def delete_schedule(schedule_id: RecordId, request: Request, principal: Writer, session: SessionDep) -> Response:
    service.delete_schedule(context(request, session, principal), schedule_id=schedule_id)
    return redirect("/oncall?done=schedule-deleted")


@router.post("/oncall/schedules/{schedule_id}/overrides")
def add_override(schedule_id: RecordId, request: Request, principal: Writer, session: SessionDep,
                 form: FormDep) -> Response:
    _ = translator(request)
    schedule = service.get_schedule(session, schedule_id)
    values = text_fields(form, "username", "starts_at", "ends_at", "note")
    zone = ZoneInfo(schedule.time_zone)
    try:
        with session.begin_nested():
            user_id = service.user_ids_by_name(session, [values["username"]], "username")[0] \
                if values["username"] else 0
            try:
                start = datetime.fromisoformat(values["starts_at"]).replace(tzinfo=zone)
                end = datetime.fromisoformat(values["ends_at"]).replace(tzinfo=zone)
            except ValueError as exc:
                raise BadInput(_("Give the start and end as dates and times.")) from exc
            data, errors = validate(OverrideCreate, {"user_id": user_id, "starts_at": start, "ends_at": end,
                                                     "note": values["note"]}, _)
            if data is None:
                raise BadInput("; ".join(f"{k}: {v}" for k, v in errors.items()))
            service.add_override(context(request, session, principal), schedule_id=schedule.id, data=data)
    except REFUSED as exc:
        names = {u.id: u.username for u in service.user_names(
            session, {p for layer in schedule.layers for p in layer["participants"]}).values()}
        return _schedule_form(request, session, schedule=schedule,
                              values={"name": schedule.name, "description": schedule.description,
                                      "time_zone": schedule.time_zone},
                              rows=forms.layer_rows(schedule.layers, names), error=describe_error(exc, _),
                              status=exc.status)
    return redirect(f"/oncall/schedules/{schedule.id}?done=override-added")


@router.post("/oncall/schedules/{schedule_id}/overrides/{override_id}/delete")
def delete_override(schedule_id: RecordId, override_id: RecordId, request: Request, principal: Writer,
                    session: SessionDep) -> Response:
    service.delete_override(context(request, session, principal), schedule_id=schedule_id, override_id=override_id)
    return redirect(f"/oncall/schedules/{schedule_id}?done=override-deleted")


# --- escalation policies -----------------------------------------------------------------------------------


def _policy_rows(session: Session, levels: list[dict[str, Any]]) -> list[dict[str, str]]:
    users = {u.id: u.username for u in service.user_names(
        session, {t["id"] for lv in levels for t in lv["targets"] if t["kind"] == "user"}).values()}
    schedules = {s.id: s.name for s in session.scalars(service.schedules_query())}
    channels = {c.id: c.name for c in notification_service.list_channels(session)}
    return forms.level_rows(levels, users, schedules, channels)


def _policies_page(request: Request, session: Session, *, policy_id: int | None = None,
                   values: Mapping[str, str] | None = None, rows: list[dict[str, str]] | None = None,
                   error: str = "", status: int = 200) -> HTMLResponse:
    policy = service.get_policy(session, policy_id) if policy_id else None
    if policy is not None and values is None:
        values = {"name": policy.name, "description": policy.description, "repeat": str(policy.repeat)}
        rows = _policy_rows(session, policy.levels)
    policies = [{"policy": p, "summary": _policy_rows(session, p.levels)}
                for p in session.scalars(service.policies_query())]
    blank = {name: "" for name in forms.LEVEL_FIELDS}
    return render(request, "oncall/policies.html", {
        "policies": policies, "policy": policy, "values": values or {"repeat": "0"},
        "levels": [*(rows or []), blank], "error": error, "done": done_of(request),
        "schedules": [s.name for s in session.scalars(service.schedules_query())],
        "paging": paging_views.paging_context(session),
    }, status=status)


@router.get("/oncall/policies")
def policies_page(request: Request, principal: Reader, session: SessionDep) -> HTMLResponse:
    return _policies_page(request, session)


@router.get("/oncall/policies/{policy_id}")
def policy_page(policy_id: RecordId, request: Request, principal: Reader, session: SessionDep) -> HTMLResponse:
    return _policies_page(request, session, policy_id=policy_id)


def _save_policy(request: Request, principal: Principal, session: Session, form: FormDep,
                 policy_id: int | None) -> Response:
    _ = translator(request)
    values = text_fields(form, "name", "description", "repeat")
    rows = forms.form_rows(text_fields(form, *(f"level{i}_{f}" for i in range(MAX_ROWS) for f in forms.LEVEL_FIELDS)),
                           "level", forms.LEVEL_FIELDS, _count(form, "level_count"))
    try:
        with session.begin_nested():
            levels = forms.levels_from_rows(session, rows)
            ctx = context(request, session, principal)
            data_in = {**values, "repeat": values["repeat"] or 0, "levels": levels}
            if policy_id is None:
                data, errors = validate(PolicyCreate, data_in, _)
                if data is None:
                    raise BadInput("; ".join(f"{k}: {v}" for k, v in errors.items()))
                saved = service.create_policy(ctx, data=data)
            else:
                update, errors = validate(PolicyUpdate, data_in, _)
                if update is None:
                    raise BadInput("; ".join(f"{k}: {v}" for k, v in errors.items()))
                saved = service.update_policy(ctx, policy_id=policy_id, data=update)
    except REFUSED as exc:
        return _policies_page(request, session, policy_id=policy_id, values=values, rows=rows,
                              error=describe_error(exc, _), status=exc.status)
    return redirect(f"/oncall/policies/{saved.id}?done=policy-saved")


@router.post("/oncall/policies")
def create_policy(request: Request, principal: Writer, session: SessionDep, form: FormDep) -> Response:
    return _save_policy(request, principal, session, form, None)


@router.post("/oncall/policies/{policy_id}")
def update_policy(policy_id: RecordId, request: Request, principal: Writer, session: SessionDep,
                  form: FormDep) -> Response:
    service.get_policy(session, policy_id)
    return _save_policy(request, principal, session, form, policy_id)


@router.post("/oncall/policies/{policy_id}/delete")
def delete_policy(policy_id: RecordId, request: Request, principal: Writer, session: SessionDep) -> Response:
    service.delete_policy(context(request, session, principal), policy_id=policy_id)
    return redirect("/oncall/policies?done=policy-deleted")


# --- escalations -------------------------------------------------------------------------------------------

STATUSES = ("active", "acknowledged", "exhausted")


@router.get("/oncall/escalations")
def escalations_page(request: Request, principal: Reader, session: SessionDep,
                     pages: Annotated[PageParams, Depends(page_params)]) -> HTMLResponse:
    state = request.query_params.get("status", "")
    state = state if state in STATUSES else ""
    query = select(Escalation).order_by(Escalation.started_at.desc(), Escalation.id.desc())
    if state:
        query = query.where(Escalation.status == state)
    items, total = paginate(session, query, pages)
    return render(request, "oncall/escalations.html", {
        "escalations": items, "state": state, "done": done_of(request),
        "pager": Pager("/oncall/escalations", total, pages.limit, pages.offset, {"status": state})})


@router.get("/oncall/escalations/{escalation_id}")
def escalation_page(escalation_id: RecordId, request: Request, principal: Reader, session: SessionDep) -> HTMLResponse:
    found = engine.get_escalation(session, escalation_id)
    return render(request, "oncall/escalation.html", {
        "escalation": found, "steps": engine.steps_of(session, found.id), "done": done_of(request)})


@router.post("/oncall/escalations/{escalation_id}/acknowledge")
def acknowledge(escalation_id: RecordId, request: Request, principal: Writer, session: SessionDep) -> Response:
    engine.acknowledge(context(request, session, principal), escalation_id=escalation_id, via="ui", now=utcnow())
    return redirect(f"/oncall/escalations/{escalation_id}?done=acknowledged")


# --- the signed link ---------------------------------------------------------------------------------------


def _runner(request: Request) -> EscalationRunner:
    runner: EscalationRunner = request.app.state.escalations
    return runner


def _link_page(request: Request, *, token: str, escalation: Escalation | None = None, user: str = "",
               refused: str = "", acknowledged: bool = False, status: int = 200) -> HTMLResponse:
    return render(request, "oncall/ack.html", {"token": token, "escalation": escalation, "user": user,
                                               "refused": refused, "acknowledged": acknowledged}, status=status)


@router.get("/ack/{token}")
def ack_link_page(token: Annotated[str, Path(max_length=600)], request: Request, session: SessionDep) -> HTMLResponse:
    """What the link acknowledges, and a button to do it: a GET changes nothing, so a mail scanner that
    follows links cannot acknowledge on the responder's behalf."""
    set_scope(session, Scope.system())  # the signed token, checked below, is the authority here
    try:
        target = engine.resolve_link(session, _runner(request).links, token, now=datetime.now(UTC))
    except LinkRefused as exc:
        return _link_page(request, token="", refused=exc.detail, status=403)
    return _link_page(request, token=token, escalation=target.escalation, user=target.user.username)


@router.post("/ack/{token}")
def ack_link(token: Annotated[str, Path(max_length=600)], request: Request, session: SessionDep) -> HTMLResponse:
    set_scope(session, Scope.system())
    try:
        done = engine.acknowledge_by_link(session, _runner(request).links, token, now=datetime.now(UTC),
                                          source_ip=client_ip(request))
    except LinkRefused as exc:
        return _link_page(request, token="", refused=exc.detail, status=403)
    except Conflict as exc:
        return _link_page(request, token="", refused=exc.detail, status=409)
    return _link_page(request, token="", escalation=done, user=done.acknowledged_by, acknowledged=True)
