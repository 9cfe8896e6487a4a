"""The playbook pages: the editor (list, create, edit the definition as JSON or YAML, versions history) for
``integrations:write``, and the runs page (run a playbook on an incident, approve or reject a waiting step) for
``response:execute``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.pagination import PageParams, page_params, paginate
from vigil.incidents import service as incidents
from vigil.response.playbooks import runs, service
from vigil.response.playbooks.schemas import PlaybookCreate, PlaybookUpdate
from vigil.response.playbooks.web import options_of
from vigil.web.deps import SessionDep, context
from vigil.web.templating import (
    N_,
    FormDep,
    Pager,
    PageRoute,
    describe_error,
    page_guard,
    redirect,
    render,
    text_fields,
    translator,
    unit_options,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Configurer = Annotated[Principal, Depends(page_guard(Permission.INTEGRATIONS_WRITE))]
Responder = Annotated[Principal, Depends(page_guard(Permission.RESPONSE_EXECUTE))]
RecordPath = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]
Pages = Annotated[PageParams, Depends(page_params)]
PAGE = "/response/playbooks"
RUNS = "/response/playbook-runs"
REFUSED = (BadInput, Conflict, NotFound)
EXAMPLE = """trigger:
  on: [opened, severity_changed]
  incident_types: [intrusion]
  min_severity: P1
steps:
  - kind: enrich
  - kind: create_task
    title: Confirm the scope of the intrusion
    phase: identify
"""
RUN_STATUS = {"running": N_("running"), "awaiting_approval": N_("awaiting approval"), "succeeded": N_("succeeded"),
              "failed": N_("failed"), "rejected": N_("rejected")}
STEP_STATUS = {**RUN_STATUS, "pending": N_("pending"), "skipped": N_("skipped")}
STEP_KINDS = {"enrich": N_("Enrich"), "notify": N_("Notify"), "act": N_("Act"), "create_task": N_("Create a task")}


def as_yaml(definition: dict[str, Any]) -> str:
    return yaml.safe_dump(definition, sort_keys=False, allow_unicode=True)


def _editor(request: Request, principal: Principal, session: Session, *, playbook_id: int | None,
            values: dict[str, Any], errors: dict[str, str] | None = None, error: str = "",
            status: int = 200) -> HTMLResponse:
    units = list(accounts.list_units(session))
    writable = principal.units_for(Permission.INTEGRATIONS_WRITE)
    playbook = service.get_playbook(session, playbook_id) if playbook_id else None
    return render(request, "response/playbook.html", {
        "playbook": playbook,
        "versions": service.versions_of(session, playbook) if playbook else [],
        "as_json": lambda d: json.dumps(d, indent=2, ensure_ascii=False),
        "values": values,
        "errors": errors or {},
        "error": error,
        "write_units": unit_options(unit for unit in units if unit.id in writable),
        "done": request.query_params.get("done", ""),
    }, status=status)


@router.get(PAGE)
def playbooks_page(request: Request, principal: Configurer, session: SessionDep) -> HTMLResponse:
    units = {unit.id: unit.name for unit in accounts.list_units(session)}
    return render(request, "response/playbooks.html", {
        "playbooks": service.list_playbooks(session), "unit_names": units,
        "done": request.query_params.get("done", "")})


@router.get(PAGE + "/new")
def new_playbook(request: Request, principal: Configurer, session: SessionDep) -> HTMLResponse:
    return _editor(request, principal, session, playbook_id=None, values={
        "name": "", "description": "", "unit_id": principal.unit_id, "enabled": True, "definition": EXAMPLE})


@router.get(PAGE + "/{playbook_id}")
def edit_playbook(playbook_id: RecordPath, request: Request, principal: Configurer,
                  session: SessionDep) -> HTMLResponse:
    playbook = service.get_playbook(session, playbook_id)
    return _editor(request, principal, session, playbook_id=playbook.id, values={
        "name": playbook.name, "description": playbook.description, "unit_id": playbook.unit_id,
        "enabled": playbook.enabled, "definition": as_yaml(service.definition_of(session, playbook)), "comment": ""})


def _values(form: FormDep) -> dict[str, Any]:
    values: dict[str, Any] = dict(text_fields(form, "name", "description", "unit_id", "comment"))
    values["definition"] = str(form.get("definition") or "")
    values["enabled"] = form.get("enabled") in ("on", "true", "1")
    return values


def _errors_of(exc: BadInput | Conflict | NotFound) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in exc.extra.get("errors", []) if isinstance(exc, BadInput) else []:
        name = str(item.get("field", ""))
        key = "definition" if name.startswith("definition") else name
        found[key] = (found.get(key, "") + f" {name}: {item['message']}").strip()
    return found


@router.post(PAGE)
def create_playbook(request: Request, principal: Configurer, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    values = _values(form)
    try:
        with session.begin_nested():
            definition = service.parse_definition(values["definition"])
            data = PlaybookCreate(name=values["name"], description=values["description"], enabled=values["enabled"],
                                  unit_id=int(values["unit_id"]) if values["unit_id"].isdigit() else None,
                                  definition=definition)
            playbook = service.create_playbook(context(request, session, principal), data=data)
        return redirect(f"{PAGE}/{playbook.id}?done=created")
    except REFUSED as exc:
        return _editor(request, principal, session, playbook_id=None, values=values, errors=_errors_of(exc),
                       error=describe_error(exc, _), status=422)
    except ValueError as exc:  # the name, outside the definition
        return _editor(request, principal, session, playbook_id=None, values=values, errors={"name": str(exc)},
                       error=_("Check the marked fields."), status=422)


@router.post(PAGE + "/{playbook_id}")
def update_playbook(playbook_id: RecordPath, request: Request, principal: Configurer, session: SessionDep,
                    form: FormDep) -> Response:
    _ = translator(request)
    service.get_playbook(session, playbook_id)  # 404 outside the caller's scope, before the form
    values = _values(form)
    try:
        with session.begin_nested():
            data = PlaybookUpdate(name=values["name"], description=values["description"], enabled=values["enabled"],
                                  definition=service.parse_definition(values["definition"]),
                                  comment=values["comment"])
            service.update_playbook(context(request, session, principal), playbook_id=playbook_id, data=data)
        return redirect(f"{PAGE}/{playbook_id}?done=saved")
    except REFUSED as exc:
        return _editor(request, principal, session, playbook_id=playbook_id, values=values, errors=_errors_of(exc),
                       error=describe_error(exc, _), status=422)
    except ValueError as exc:
        return _editor(request, principal, session, playbook_id=playbook_id, values=values,
                       errors={"name": str(exc)}, error=_("Check the marked fields."), status=422)


@router.post(PAGE + "/{playbook_id}/delete")
def delete_playbook(playbook_id: RecordPath, request: Request, principal: Configurer,
                    session: SessionDep) -> Response:
    service.delete_playbook(context(request, session, principal), playbook_id=playbook_id)
    return redirect(f"{PAGE}?done=deleted")


# --- runs -------------------------------------------------------------------------------------------


def _runs(request: Request, principal: Principal, session: Session, pages: PageParams, status_filter: str, *,
          error: str = "", values: dict[str, str] | None = None, code: int = 200) -> HTMLResponse:
    _ = translator(request)
    chosen = status_filter if status_filter in RUN_STATUS else ""
    items, total = paginate(session, runs.runs_query(status=chosen or None), pages)
    return render(request, "response/playbook_runs.html", {
        "runs": [(run, runs.steps_of(session, run.id)) for run in items],
        "pager": Pager(RUNS, total, pages.limit, pages.offset, {"status": chosen}),
        "status_filter": chosen,
        "status_options": [(key, _(label)) for key, label in RUN_STATUS.items()],
        "run_status": lambda value: _(str(RUN_STATUS.get(value) or value)),
        "step_status": lambda value: _(str(STEP_STATUS.get(value) or value)),
        "step_kind": lambda value: _(str(STEP_KINDS.get(value) or value)),
        "playbook_options": [(p.id, f"{p.name} (v{p.version})") for p in service.list_playbooks(session)],
        "values": values or {"incident": request.query_params.get("incident", "")},
        "me": principal.user_id,
        "error": error,
    }, status=code)


@router.get(RUNS)
def runs_page(request: Request, principal: Responder, session: SessionDep, pages: Pages,
              status: Annotated[str, Query(max_length=30)] = "") -> HTMLResponse:
    return _runs(request, principal, session, pages, status)


@router.post(RUNS)
def start_run(request: Request, principal: Responder, session: SessionDep, form: FormDep) -> Response:
    """Run a playbook on an incident (by id or reference) now."""
    _ = translator(request)
    values = text_fields(form, "playbook_id", "incident")
    try:
        with session.begin_nested():
            if not values["playbook_id"].isdigit() or not values["incident"]:
                raise BadInput("choose a playbook and name an incident (id or reference)")
            incident = incidents.find_incident(session, values["incident"])
            run = runs.start_run(context(request, session, principal), playbook_id=int(values["playbook_id"]),
                                 incident_id=incident.id, options=options_of(request))
    except REFUSED as exc:
        return _runs(request, principal, session, PageParams(), "", error=describe_error(exc, _), values=values,
                     code=422)
    return redirect(f"{RUNS}#run-{run.id}")


def _decide(request: Request, principal: Principal, session: Session, run_id: int, approve: bool,
            comment: str) -> Response:
    _ = translator(request)
    ctx = context(request, session, principal)
    try:
        with session.begin_nested():
            if approve:
                runs.approve_step(ctx, run_id=run_id, comment=comment, options=options_of(request))
            else:
                runs.reject_step(ctx, run_id=run_id, comment=comment)
    except (BadInput, Conflict) as exc:  # a missing run stays a 404; one's own run a 403
        return _runs(request, principal, session, PageParams(), "", error=describe_error(exc, _), code=409)
    return redirect(f"{RUNS}#run-{run_id}")


@router.post(RUNS + "/{run_id}/approve")
def approve_run(run_id: RecordPath, request: Request, principal: Responder, session: SessionDep,
                form: FormDep) -> Response:
    return _decide(request, principal, session, run_id, True, str(form.get("comment") or "")[:2000])


@router.post(RUNS + "/{run_id}/reject")
def reject_run(run_id: RecordPath, request: Request, principal: Responder, session: SessionDep,
               form: FormDep) -> Response:
    return _decide(request, principal, session, run_id, False, str(form.get("comment") or "")[:2000])


routers: list[APIRouter] = [router]
