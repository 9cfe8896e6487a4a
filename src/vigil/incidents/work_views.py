"""The forms of the incident pages: open an incident; on an incident, acknowledge, assign, move through the
phases (or reopen), edit the classification and scope, tasks, comments, manual timeline entries, observables,
the post-mortem and evidence files; on the alerts page, escalate chosen alerts.

Each form calls the same service function as the API, inside a savepoint: a refusal (a bad value, a 409 of the
workflow with its reason, the author approving their own post-mortem) re-renders the incident page with the
reason and the refusal's status, and changes nothing. Success redirects back (post/redirect/get).
Working needs ``incidents:write`` on the incident's unit, reading evidence ``incidents:read``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import date, datetime, time
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from vigil.core.auth import Permission, Principal
from vigil.core.context import Context
from vigil.core.db import MAX_RECORD_ID
from vigil.core.errors import BadInput, Conflict, NotFound, PayloadTooLarge, PermissionDenied
from vigil.incidents import activity, evidence, intake, postmortem, report_views, service, settings_service, tasks
from vigil.incidents.common import users_by_name
from vigil.incidents.schemas import (
    CommentCreate,
    EscalateAlerts,
    IncidentAssign,
    IncidentCreate,
    IncidentTransition,
    IncidentUpdate,
    ObservableCreate,
    PostMortemReview,
    PostMortemUpdate,
    TaskCreate,
    TaskUpdate,
    TimelineCreate,
)
from vigil.incidents.views import show_incident
from vigil.incidents.workflow import ReviewAction
from vigil.web.deps import SessionDep, context, settings_of
from vigil.web.templating import (
    FormDep,
    PageRoute,
    Translator,
    describe_error,
    language_of,
    page_guard,
    redirect,
    render,
    text_fields,
    translator,
    validate,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
routers = [router, *report_views.routers]
Reader = Annotated[Principal, Depends(page_guard(Permission.INCIDENTS_READ))]
Writer = Annotated[Principal, Depends(page_guard(Permission.INCIDENTS_WRITE))]
IncidentId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]
ChildId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]
REFUSED = (BadInput, Conflict, NotFound, PermissionDenied, PayloadTooLarge)
SEVERITIES = [("P1", "P1"), ("P2", "P2"), ("P3", "P3"), ("P4", "P4")]
M = TypeVar("M", bound=BaseModel)
SCOPE_FIELDS = ("affected_assets", "affected_users", "business_lines", "affected_data")


def parsed(schema: type[M], data: Mapping[str, Any], _: Translator) -> M:
    """The form's values as the API's schema, or ``BadInput`` naming the fields."""
    found, errors = validate(schema, data, _)
    if found is None:
        raise BadInput(_("Check the marked fields.") + " " + "; ".join(f"{k}: {v}" for k, v in errors.items()),
                       errors=[{"field": k, "message": v} for k, v in errors.items()])
    return found


def user_id_of(session: Session, username: str, field: str) -> int | None:
    """The id of the enabled user named in a form field (empty: nobody)."""
    if not username:
        return None
    user = users_by_name(session, [username]).get(username.lower())
    if user is None:
        raise BadInput(f"there is no enabled user {username!r}", errors=[{"field": field, "message": "unknown user"}])
    return user.id


def lines(text: str) -> list[str]:
    """One item per line or comma."""
    return [part.strip() for line in text.splitlines() for part in line.split(",") if part.strip()]


def act(request: Request, principal: Principal, session: Session, incident_id: int,
        change: Callable[[Context], object], done: str, *, values: Mapping[str, str] | None = None) -> Response:
    """Run one change in a savepoint; refused, show the incident page with the reason and nothing changed."""
    _ = translator(request)
    try:
        with session.begin_nested():
            change(context(request, session, principal))
    except REFUSED as exc:
        return show_incident(request, principal, session, incident_id, error=describe_error(exc, _),
                             status=exc.status, values=values)
    return redirect(f"/incidents/{incident_id}?done={done}")


# --- a new incident -------------------------------------------------------------------------------------


def _new_form(request: Request, principal: Principal, session: Session, values: Mapping[str, str],
              error: str = "", status: int = 200) -> HTMLResponse:
    language = language_of(request, principal)
    types = [(t.key, settings_service.type_name(t, language)) for t in settings_service.list_types(session)]
    return render(request, "incidents/new.html", {"values": defaultdict(str, values), "error": error,
                                                  "type_options": types, "severities": SEVERITIES}, status=status)


@router.get("/incidents/new")
def new_incident_page(request: Request, principal: Writer, session: SessionDep) -> HTMLResponse:
    return _new_form(request, principal, session, {"severity": "P3", "type": "other"})


@router.post("/incidents/new")
def create_incident(request: Request, principal: Writer, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "title", "type", "severity", "description", "cause", "team", "owner")
    try:
        with session.begin_nested():
            owner_id = user_id_of(session, values["owner"], "owner")
            data = parsed(IncidentCreate, {"title": values["title"], "type": values["type"],
                                           "severity": values["severity"], "description": values["description"],
                                           "cause": values["cause"], "team": values["team"], "owner_id": owner_id}, _)
            incident = service.open_incident(context(request, session, principal), data=data)
    except REFUSED as exc:
        return _new_form(request, principal, session, values, describe_error(exc, _), exc.status)
    return redirect(f"/incidents/{incident.id}?done=opened")


# --- the incident itself --------------------------------------------------------------------------------


@router.post("/incidents/{incident_id}/acknowledge")
def acknowledge(incident_id: IncidentId, request: Request, principal: Writer, session: SessionDep) -> Response:
    return act(request, principal, session, incident_id,
               lambda ctx: service.acknowledge(ctx, incident_id=incident_id), "acknowledged")


@router.post("/incidents/{incident_id}/assign")
def assign(incident_id: IncidentId, request: Request, principal: Writer, session: SessionDep,
           form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "owner", "team", "participants")

    def change(ctx: Context) -> None:
        owner_id = user_id_of(session, values["owner"], "owner")
        service.assign(ctx, incident_id=incident_id, data=parsed(IncidentAssign, {"owner_id": owner_id,
                                                                                  "team": values["team"]}, _))
        people = [user_id_of(session, name, "participants") for name in lines(values["participants"])]
        service.update_incident(ctx, incident_id=incident_id, data=parsed(
            IncidentUpdate, {"participants": [p for p in people if p is not None]}, _))
    return act(request, principal, session, incident_id, change, "assigned", values=values)


@router.post("/incidents/{incident_id}/transition")
def transition(incident_id: IncidentId, request: Request, principal: Writer, session: SessionDep,
               form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "phase", "reason")
    return act(request, principal, session, incident_id, lambda ctx: service.transition(
        ctx, incident_id=incident_id, data=parsed(IncidentTransition, values, _)), "moved", values=values)


def _custom_values(session: Session, form: FormData) -> dict[str, Any]:
    """The custom fields of the edit form, typed by their definitions (empty ones left out)."""
    found: dict[str, Any] = {}
    for definition in settings_service.list_fields(session):
        raw = form.get(f"cf_{definition.key}")
        text = raw.strip() if isinstance(raw, str) else ""
        if definition.kind == "boolean":
            found[definition.key] = text == "on"
        elif text and definition.kind == "number":
            try:
                found[definition.key] = float(text) if "." in text else int(text)
            except ValueError:
                raise BadInput(f"{definition.label}: enter a number",
                               errors=[{"field": f"cf_{definition.key}", "message": "not a number"}]) from None
        elif text:
            found[definition.key] = text
    return found


@router.post("/incidents/{incident_id}/edit")
def edit(incident_id: IncidentId, request: Request, principal: Writer, session: SessionDep,
         form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "title", "type", "severity", "cause", "tags", *SCOPE_FIELDS)

    def change(ctx: Context) -> None:
        data = parsed(IncidentUpdate, {
            "title": values["title"], "type": values["type"], "severity": values["severity"],
            "cause": values["cause"], "tags": lines(values["tags"]),
            "scope": {name: lines(values[name]) for name in SCOPE_FIELDS},
            "custom_fields": _custom_values(session, form)}, _)
        service.update_incident(ctx, incident_id=incident_id, data=data)
    return act(request, principal, session, incident_id, change, "saved", values=values)


# --- tasks, comments, timeline, observables -------------------------------------------------------------


@router.post("/incidents/{incident_id}/tasks")
def add_task(incident_id: IncidentId, request: Request, principal: Writer, session: SessionDep,
             form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "title", "phase", "assignee", "required")

    def change(ctx: Context) -> None:
        data = parsed(TaskCreate, {"title": values["title"], "phase": values["phase"] or None,
                                   "required": values["required"] == "on",
                                   "assignee_id": user_id_of(session, values["assignee"], "assignee")}, _)
        tasks.create_task(ctx, incident_id=incident_id, data=data)
    return act(request, principal, session, incident_id, change, "task-added", values=values)


@router.post("/incidents/{incident_id}/tasks/{task_id}/complete")
def complete_task(incident_id: IncidentId, task_id: ChildId, request: Request, principal: Writer,
                  session: SessionDep) -> Response:
    return act(request, principal, session, incident_id, lambda ctx: tasks.complete_task(
        ctx, incident_id=incident_id, task_id=task_id), "task-done")


@router.post("/incidents/{incident_id}/tasks/{task_id}/reopen")
def reopen_task(incident_id: IncidentId, task_id: ChildId, request: Request, principal: Writer,
                session: SessionDep) -> Response:
    return act(request, principal, session, incident_id, lambda ctx: tasks.complete_task(
        ctx, incident_id=incident_id, task_id=task_id, done=False), "task-reopened")


@router.post("/incidents/{incident_id}/tasks/{task_id}/assign")
def assign_task(incident_id: IncidentId, task_id: ChildId, request: Request, principal: Writer,
                session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "assignee")
    return act(request, principal, session, incident_id, lambda ctx: tasks.update_task(
        ctx, incident_id=incident_id, task_id=task_id, data=parsed(
            TaskUpdate, {"assignee_id": user_id_of(session, values["assignee"], "assignee")}, _)), "task-assigned")


@router.post("/incidents/{incident_id}/comments")
def comment(incident_id: IncidentId, request: Request, principal: Writer, session: SessionDep,
            form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "body")
    return act(request, principal, session, incident_id, lambda ctx: activity.add_comment(
        ctx, incident_id=incident_id, data=parsed(CommentCreate, values, _)), "commented", values=values)


def _local_time(text: str, zone: str) -> datetime | None:
    """A ``datetime-local`` value read in the display time zone (empty: now)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))
    except ValueError:
        raise BadInput("enter the time as YYYY-MM-DDTHH:MM", errors=[{"field": "at", "message": "bad time"}]) from None


@router.post("/incidents/{incident_id}/timeline")
def timeline_entry(incident_id: IncidentId, request: Request, principal: Writer, session: SessionDep,
                   form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "summary", "at")
    zone = settings_of(request).timezone
    return act(request, principal, session, incident_id, lambda ctx: activity.add_timeline_entry(
        ctx, incident_id=incident_id, data=parsed(TimelineCreate, {
            "summary": values["summary"], "at": _local_time(values["at"], zone)}, _)), "noted", values=values)


@router.post("/incidents/{incident_id}/observables")
def add_observable(incident_id: IncidentId, request: Request, principal: Writer, session: SessionDep,
                   form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "value", "type", "description", "malicious")
    return act(request, principal, session, incident_id, lambda ctx: activity.add_observable(
        ctx, incident_id=incident_id, data=parsed(ObservableCreate, {
            "value": values["value"], "type": values["type"], "description": values["description"],
            "malicious": values["malicious"] == "on"}, _)), "observable-added", values=values)


# --- the post-mortem ------------------------------------------------------------------------------------

SECTIONS = ("summary", "timeline", "impact", "root_cause", "went_well", "went_badly")


@router.post("/incidents/{incident_id}/postmortem")
def draft_postmortem(incident_id: IncidentId, request: Request, principal: Writer, session: SessionDep) -> Response:
    return act(request, principal, session, incident_id, lambda ctx: postmortem.draft(ctx, incident_id=incident_id),
               "postmortem-drafted")


@router.post("/incidents/{incident_id}/postmortem/edit")
def edit_postmortem(incident_id: IncidentId, request: Request, principal: Writer, session: SessionDep,
                    form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, *SECTIONS, "five_whys", "action_items")
    zone = settings_of(request).timezone

    def save(ctx: Context) -> None:
        data = {name: values[name] for name in SECTIONS} | {
            "five_whys": [w.strip() for w in values["five_whys"].splitlines() if w.strip()],
            "action_items": action_items(session, values["action_items"], zone)}
        postmortem.update(ctx, incident_id=incident_id, data=parsed(PostMortemUpdate, data, _))

    return act(request, principal, session, incident_id, save, "postmortem-saved", values=values)


def action_items(session: Session, text: str, zone: str) -> list[dict[str, Any]]:
    """The action items of the post-mortem form, one a line: ``what | owner's user name | due YYYY-MM-DD``
    (owner and date optional; due at the end of that day in the display time zone)."""
    items: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        title, owner, due, *extra = [part.strip() for part in line.split("|")] + ["", ""]
        if any(extra):
            raise BadInput(f"action item line {number} has more than three parts (what | owner | due date)",
                           errors=[{"field": "action_items", "message": f"line {number}"}])
        item: dict[str, Any] = {"title": title, "owner_id": user_id_of(session, owner, "action_items")}
        if due:
            try:
                day = date.fromisoformat(due)
            except ValueError:
                raise BadInput(f"action item line {number}: enter the due date as YYYY-MM-DD, not {due!r}",
                               errors=[{"field": "action_items", "message": f"line {number}"}]) from None
            item["due_at"] = datetime.combine(day, time(23, 59), ZoneInfo(zone)).isoformat()
        items.append(item)
    return items


@router.post("/incidents/{incident_id}/postmortem/{action}")
def review_postmortem(incident_id: IncidentId, action: ReviewAction, request: Request, principal: Writer,
                      session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    note = parsed(PostMortemReview, text_fields(form, "note"), _).note
    return act(request, principal, session, incident_id, lambda ctx: postmortem.review(
        ctx, incident_id=incident_id, action=action, note_text=note), f"postmortem-{action}")


# --- evidence -------------------------------------------------------------------------------------------


async def upload_form(request: Request) -> AsyncIterator[FormData]:
    """The submitted form with its file (spooled to disk by Starlette), closed after the request even when the
    guard refuses it: listed before the guard, so its clean-up always runs."""
    form = await request.form()
    try:
        yield form
    finally:
        await form.close()


@router.post("/incidents/{incident_id}/evidence")
def upload_evidence(form: Annotated[FormData, Depends(upload_form)], incident_id: IncidentId, request: Request,
                    principal: Writer, session: SessionDep) -> Response:
    """A form upload: the parsed form holds the file spooled to disk; it is copied in chunks and hashed."""
    settings = settings_of(request)
    upload = form.get("file")
    description = text_fields(form, "description")["description"]

    def change(ctx: Context) -> None:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise BadInput("choose a file", errors=[{"field": "file", "message": "no file"}])
        try:
            received = evidence.receive_file(upload.file, folder=settings.evidence_dir,
                                             limit=settings.evidence_max_bytes)
        finally:
            upload.file.close()
        try:
            evidence.add_evidence(ctx, incident_id=incident_id, received=received, folder=settings.evidence_dir,
                                  name=upload.filename, content_type=upload.content_type or "",
                                  description=description)
        finally:
            received.path.unlink(missing_ok=True)  # moved into place unless refused
    return act(request, principal, session, incident_id, change, "evidence-added")


@router.get("/incidents/{incident_id}/evidence/{evidence_id}/download")
def download_evidence(incident_id: IncidentId, evidence_id: ChildId, request: Request, principal: Reader,
                      session: SessionDep) -> FileResponse:
    item, path = evidence.record_download(context(request, session, principal), incident_id=incident_id,
                                          evidence_id=evidence_id, folder=settings_of(request).evidence_dir)
    return FileResponse(path, filename=item.original_name, media_type="application/octet-stream")


@router.post("/incidents/{incident_id}/evidence/{evidence_id}/verify")
def verify_evidence(incident_id: IncidentId, evidence_id: ChildId, request: Request, principal: Writer,
                    session: SessionDep) -> Response:
    folder = settings_of(request).evidence_dir
    return act(request, principal, session, incident_id, lambda ctx: evidence.verify(
        ctx, incident_id=incident_id, evidence_id=evidence_id, folder=folder), "evidence-verified")


@router.post("/incidents/{incident_id}/evidence/{evidence_id}/handover")
def hand_over_evidence(incident_id: IncidentId, evidence_id: ChildId, request: Request, principal: Writer,
                       session: SessionDep, form: FormDep) -> Response:
    values = text_fields(form, "to", "note")
    return act(request, principal, session, incident_id, lambda ctx: evidence.hand_over(
        ctx, incident_id=incident_id, evidence_id=evidence_id, to_username=values["to"],
        note_text=values["note"]), "evidence-handed-over")


# --- escalating alerts (from the alerts page) ----------------------------------------------------------


# Which severity a new incident of these alerts starts with: that of its highest alert.
SEVERITY_OF_LEVEL = {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4", "informational": "P4"}
MAX_ESCALATED = 500  # as EscalateAlerts takes


def _escalate_form(request: Request, principal: Principal, session: Session, ids: list[int],
                   values: Mapping[str, str], error: str = "", status: int = 200) -> HTMLResponse:
    """The chosen alerts and what the new incident is to be (title, type, severity), before it opens."""
    if len(ids) > MAX_ESCALATED:
        raise BadInput(f"escalate at most {MAX_ESCALATED} alerts at a time", errors=[{"field": "ids",
                                                                                   "message": "too many"}])
    alerts = activity.visible_alerts(session, ids)
    levels = [a.level for a in alerts if a.level in SEVERITY_OF_LEVEL]
    highest = max(levels, key=intake.LEVELS.index, default="medium")
    defaults = {"title": alerts[0].title if alerts else "", "type": "other", "severity": SEVERITY_OF_LEVEL[highest]}
    language = language_of(request, principal)
    types = [(t.key, settings_service.type_name(t, language)) for t in settings_service.list_types(session)]
    return render(request, "incidents/escalate.html", {
        "alerts": alerts, "values": defaultdict(str, defaults | {k: v for k, v in values.items() if v}),
        "error": error, "type_options": types, "severities": SEVERITIES}, status=status)


@router.post("/incidents/escalate")
def escalate(request: Request, principal: Writer, session: SessionDep, form: FormDep) -> Response:
    """Chosen alerts into an open incident (its reference or id) or a new incident; all or none. From the alerts
    page a new incident is first described (title, type, severity) on a form of its own."""
    _ = translator(request)
    values = text_fields(form, "into", "title", "type", "severity", "confirm")
    ids = [int(v) for v in form.getlist("ids") if isinstance(v, str) and v.isdigit()]
    try:
        with session.begin_nested():
            if not values["into"] and not values["confirm"] and ids:
                return _escalate_form(request, principal, session, ids, values)
            into = service.find_incident(session, values["into"]).id if values["into"] else None
            data = parsed(EscalateAlerts, {"alert_ids": ids, "incident_id": into, "title": values["title"] or None,
                                           "type": values["type"] or "other", "severity": values["severity"] or "P3"},
                          _)
            incident = intake.escalate(context(request, session, principal), data=data)
    except REFUSED as exc:
        if values["confirm"] and isinstance(exc, BadInput) and ids:
            return _escalate_form(request, principal, session, ids, values, describe_error(exc, _), exc.status)
        return render(request, "error.html", {"status": exc.status, "heading": _("The alerts were not escalated"),
                                              "hint": "", "detail": describe_error(exc, _)}, status=exc.status)
    return redirect(f"/incidents/{incident.id}?done=escalated")
