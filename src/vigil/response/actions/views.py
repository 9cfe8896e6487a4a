"""The response-action pages: configurations (add, edit, remove, dry-run) for ``integrations:write``, and
executions (request, dry-run, approve, reject, roll back) for ``response:execute``.

A configuration's settings are edited as JSON; its secrets never appear in the page: a secret left out of the
JSON keeps its stored value, and the page says only whether each is set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.pagination import PageParams, page_params, paginate
from vigil.response.actions import executions, service
from vigil.response.actions.models import ActionExecution
from vigil.response.actions.schemas import ActionCreate, ActionUpdate, DryRunRead, ExecutionCreate
from vigil.web.deps import SessionDep, context
from vigil.web.templating import (
    N_,
    FormDep,
    Pager,
    PageRoute,
    Translator,
    describe_error,
    page_guard,
    redirect,
    render,
    text_fields,
    translator,
    unit_options,
    validate,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Configurer = Annotated[Principal, Depends(page_guard(Permission.INTEGRATIONS_WRITE))]
Responder = Annotated[Principal, Depends(page_guard(Permission.RESPONSE_EXECUTE))]
RecordPath = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]
PAGE = "/response/actions"
RUNS = "/response/executions"
REFUSED = (BadInput, Conflict, NotFound)
DONE = frozenset({"created", "saved", "deleted"})

KIND_LABELS = {
    "block_ip": N_("Block an IP address"),
    "disable_account": N_("Disable an account"),
    "isolate_host": N_("Isolate a host"),
    "run_script": N_("Run a script"),
}
STATUS_LABELS = {
    "requested": N_("requested"), "awaiting_approval": N_("awaiting approval"), "approved": N_("approved"),
    "rejected": N_("rejected"), "running": N_("running"), "succeeded": N_("succeeded"), "failed": N_("failed"),
    "rolled_back": N_("rolled back"), "rollback_failed": N_("rollback failed"),
}
EXAMPLES = {
    "block_ip": {"mode": "command", "command": ["/usr/sbin/nft", "add", "element", "inet", "filter", "blocklist",
                                                "{ip}"],
                 "undo_command": ["/usr/sbin/nft", "delete", "element", "inet", "filter", "blocklist", "{ip}"],
                 "protected_networks": ["10.0.0.0/8"]},
    "disable_account": {"url": "https://idm.example.com/hooks/disable", "undo_url": "https://idm.example.com/hooks/enable",
                        "token": ""},
    "isolate_host": {"url": "https://edr.example.com/api/isolate", "undo_url": "https://edr.example.com/api/release",
                     "token": ""},
    "run_script": {"command": ["/opt/soc/quarantine-mailbox", "{target}"], "timeout_seconds": 60},
}


def kind_label(_: Translator, kind: str) -> str:
    return _(KIND_LABELS[kind]) if kind in KIND_LABELS else kind


def example(kind: str) -> str:
    return json.dumps(EXAMPLES.get(kind, {}), indent=2, ensure_ascii=False)


@dataclass
class FormState:
    kind: str = ""
    action_id: int | None = None
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    error: str = ""


def _refusal(exc: BadInput | Conflict | NotFound, _: Translator) -> tuple[dict[str, str], str]:
    errors: dict[str, str] = {}
    for item in exc.extra.get("errors", []) if isinstance(exc, BadInput) else []:
        name = str(item.get("field", ""))
        key = "config" if name.startswith("config") else name
        errors[key] = (errors.get(key, "") + " " + (f"{name.removeprefix('config.')}: " if key == "config" else "")
                       + str(item["message"])).strip()
    return errors, describe_error(exc, _)


def _form_values(session: Session, action_id: int) -> tuple[str, dict[str, Any]]:
    action = service.get_action(session, action_id)
    settings, _secrets = service.public_settings(action)
    return action.kind, {"name": action.name, "unit_id": action.unit_id, "description": action.description,
                         "requires_approval": action.requires_approval, "enabled": action.enabled,
                         "rollback_after_seconds": action.rollback_after_seconds or "",
                         "config": json.dumps(settings, indent=2, ensure_ascii=False)}


def _page(request: Request, principal: Principal, session: Session, *, form: FormState | None = None,
          dry: DryRunRead | None = None, status: int = 200) -> HTMLResponse:
    _ = translator(request)
    add, edit = request.query_params.get("add", ""), request.query_params.get("edit", "")
    if form is None and add in service.actions():
        form = FormState(kind=add, values={"unit_id": principal.unit_id, "requires_approval": True, "enabled": True,
                                           "config": example(add), "rollback_after_seconds": ""})
    elif form is None and edit.isdigit() and 0 < int(edit) <= MAX_RECORD_ID:
        kind, values = _form_values(session, int(edit))
        form = FormState(kind=kind, action_id=int(edit), values=values)
    units = list(accounts.list_units(session))
    writable = principal.units_for(Permission.INTEGRATIONS_WRITE)
    found = service.list_actions(session)
    done = request.query_params.get("done", "")
    return render(request, "response/actions.html", {
        "actions": [(action, *service.public_settings(action), service.reversible(action)) for action in found],
        "kinds": [(kind, kind_label(_, kind)) for kind in sorted(service.actions())],
        "kind_label": lambda kind: kind_label(_, kind),
        "form": form,
        "editing_secrets": service.public_settings(service.get_action(session, form.action_id))[1]
        if form is not None and form.action_id is not None else {},
        "unit_names": {unit.id: unit.name for unit in units},
        "write_units": unit_options(unit for unit in units if unit.id in writable),
        "dry": dry,
        "can_run": principal.has(Permission.RESPONSE_EXECUTE),
        "done": done if done in DONE else "",
    }, status=status)


@router.get(PAGE)
def actions_page(request: Request, principal: Configurer, session: SessionDep) -> HTMLResponse:
    return _page(request, principal, session)


def _config_json(text: str) -> tuple[dict[str, Any] | None, str]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
    if not isinstance(value, dict):
        return None, "must be a JSON object of settings"
    return value, ""


def _values(form: FormDep) -> dict[str, Any]:
    values: dict[str, Any] = dict(text_fields(form, "name", "unit_id", "description", "rollback_after_seconds"))
    values["config"] = str(form.get("config") or "")
    values["requires_approval"] = form.get("requires_approval") in ("on", "true", "1")
    values["enabled"] = form.get("enabled") in ("on", "true", "1")
    return values


def _data(values: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    data = {key: values[key] for key in ("name", "description", "requires_approval", "enabled")}
    data["unit_id"] = values["unit_id"] or None
    data["rollback_after_seconds"] = values["rollback_after_seconds"] or None
    data["config"] = config
    return data


@router.post(PAGE)
def create_action(request: Request, principal: Configurer, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    kind = str(form.get("kind") or "")
    values = _values(form)
    state = FormState(kind, None, values)
    config, problem = _config_json(values["config"])
    if config is None:
        state.errors, state.error = {"config": problem}, _("Check the marked fields.")
        return _page(request, principal, session, form=state, status=422)
    data, errors = validate(ActionCreate, {**{k: v for k, v in _data(values, config).items() if v is not None},
                                           "kind": kind}, _)
    state.errors, state.error = errors, _("Check the marked fields.") if errors else ""
    if data is not None:
        try:
            with session.begin_nested():
                service.create_action(context(request, session, principal), data=data)
            return redirect(f"{PAGE}?done=created")
        except REFUSED as exc:
            state.errors, state.error = _refusal(exc, _)
    return _page(request, principal, session, form=state, status=422)


@router.post(PAGE + "/{action_id}")
def update_action(action_id: RecordPath, request: Request, principal: Configurer, session: SessionDep,
                  form: FormDep) -> Response:
    _ = translator(request)
    action = service.get_action(session, action_id)  # 404 outside the caller's scope, before the form
    values = _values(form)
    state = FormState(action.kind, action.id, values)
    config, problem = _config_json(values["config"])
    if config is None:
        state.errors, state.error = {"config": problem}, _("Check the marked fields.")
        return _page(request, principal, session, form=state, status=422)
    # Keys the JSON no longer holds are removed; secrets left out keep their stored value.
    hidden = set(service.secret_fields(action.kind))
    given = {**{key: None for key in (action.config or {}) if key not in hidden and key not in config}, **config}
    payload = _data(values, given)
    if payload["unit_id"] is None:
        payload.pop("unit_id")
    data, errors = validate(ActionUpdate, payload, _)
    state.errors, state.error = errors, _("Check the marked fields.") if errors else ""
    if data is not None:
        try:
            with session.begin_nested():
                service.update_action(context(request, session, principal), action_id=action_id, data=data)
            return redirect(f"{PAGE}?done=saved")
        except REFUSED as exc:
            state.errors, state.error = _refusal(exc, _)
    return _page(request, principal, session, form=state, status=422)


@router.post(PAGE + "/{action_id}/delete")
def delete_action(action_id: RecordPath, request: Request, principal: Configurer, session: SessionDep) -> Response:
    service.delete_action(context(request, session, principal), action_id=action_id)
    return redirect(f"{PAGE}?done=deleted")


@router.post(PAGE + "/{action_id}/dry-run")
def dry_run(action_id: RecordPath, request: Request, principal: Configurer, session: SessionDep,
            form: FormDep) -> HTMLResponse:
    """Show exactly what a run on the target would do (a refused target says why); runs nothing."""
    _ = translator(request)
    target = str(form.get("target") or "").strip()[:512]
    try:
        with session.begin_nested():
            shown = service.dry_run(context(request, session, principal), action_id=action_id, target=target)
    except BadInput as exc:  # a refused target is shown; an action outside the caller's units stays a 404
        return _page(request, principal, session, form=FormState(error=describe_error(exc, _)), status=422)
    return _page(request, principal, session, dry=shown)


# --- executions -------------------------------------------------------------------------------------


def _runs_page(request: Request, principal: Principal, session: Session, pages: PageParams, status_filter: str,
               *, values: dict[str, str] | None = None, error: str = "", dry: DryRunRead | None = None,
               code: int = 200) -> HTMLResponse:
    _ = translator(request)
    chosen = status_filter if status_filter in executions.STATUSES else ""
    items, total = paginate(session, executions.executions_query(status=chosen or None), pages)
    found = [a for a in service.list_actions(session) if a.enabled]
    return render(request, "response/executions.html", {
        "executions": items,
        "pager": Pager(RUNS, total, pages.limit, pages.offset, {"status": chosen}),
        "status_filter": chosen,
        "status_options": [(key, _(label)) for key, label in STATUS_LABELS.items()],
        "status_label": lambda value: _(str(STATUS_LABELS.get(value) or value)),
        "kind_label": lambda kind: kind_label(_, kind),
        "action_options": [(a.id, f"{a.name} ({kind_label(_, a.kind)})") for a in found],
        "values": values or {"action_id": request.query_params.get("action", "")},
        "error": error,
        "dry": dry,
        "me": principal.user_id,
        "done": request.query_params.get("done", ""),
    }, status=code)


Pages = Annotated[PageParams, Depends(page_params)]
StatusFilter = Annotated[str, Query(max_length=30)]


@router.get(RUNS)
def executions_page(request: Request, principal: Responder, session: SessionDep, pages: Pages,
                    status: StatusFilter = "") -> HTMLResponse:
    return _runs_page(request, principal, session, pages, status)


@router.post(RUNS)
def request_execution(request: Request, principal: Responder, session: SessionDep, form: FormDep,
                      pages: Pages) -> Response:
    """Request a run (or only see what it would do, with "dry run" ticked)."""
    _ = translator(request)
    values = text_fields(form, "action_id", "target", "incident_id", "reason")
    dry_only = form.get("dry_run") in ("on", "true", "1")
    data, errors = validate(ExecutionCreate, {**values, "incident_id": values["incident_id"] or None,
                                              "dry_run": dry_only}, _)
    if data is None:
        message = "; ".join(f"{name}: {text}" for name, text in errors.items())
        return _runs_page(request, principal, session, PageParams(), "", values=values, error=message, code=422)
    ctx = context(request, session, principal)
    try:
        with session.begin_nested():
            if dry_only:
                shown = service.dry_run(ctx, action_id=data.action_id, target=data.target, reason=data.reason)
                return _runs_page(request, principal, session, pages, "", values=values, dry=shown)
            execution = executions.request_execution(ctx, data=data)
    except REFUSED as exc:
        return _runs_page(request, principal, session, PageParams(), "", values=values,
                          error=describe_error(exc, _), code=422)
    return redirect(f"{RUNS}?done={execution.status}#execution-{execution.id}")


def _decide(request: Request, principal: Principal, session: Session, execution_id: int, verb: str,
            comment: str) -> Response:
    _ = translator(request)
    ctx = context(request, session, principal)
    try:
        with session.begin_nested():
            done: ActionExecution
            if verb == "approve":
                done = executions.approve_execution(ctx, execution_id=execution_id, comment=comment)
            elif verb == "reject":
                done = executions.reject_execution(ctx, execution_id=execution_id, comment=comment)
            else:
                done = executions.rollback(ctx, execution_id=execution_id)
    except (BadInput, Conflict) as exc:  # a missing record stays a 404; one's own request a 403
        return _runs_page(request, principal, session, PageParams(), "", error=describe_error(exc, _), code=409)
    return redirect(f"{RUNS}?done={done.status}#execution-{done.id}")


@router.post(RUNS + "/{execution_id}/approve")
def approve(execution_id: RecordPath, request: Request, principal: Responder, session: SessionDep,
            form: FormDep) -> Response:
    return _decide(request, principal, session, execution_id, "approve", str(form.get("comment") or "")[:2000])


@router.post(RUNS + "/{execution_id}/reject")
def reject(execution_id: RecordPath, request: Request, principal: Responder, session: SessionDep,
           form: FormDep) -> Response:
    return _decide(request, principal, session, execution_id, "reject", str(form.get("comment") or "")[:2000])


@router.post(RUNS + "/{execution_id}/rollback")
def rollback(execution_id: RecordPath, request: Request, principal: Responder, session: SessionDep) -> Response:
    return _decide(request, principal, session, execution_id, "rollback", "")


routers: list[APIRouter] = [router]
