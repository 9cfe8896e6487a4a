"""Executions of response actions: request, approve or reject, run, roll back after a TTL.

Every run is an ``ActionExecution``. A request checks the target first (a hostile value is refused with
nothing recorded or run); an action configured with ``requires_approval`` waits as ``awaiting_approval`` until a
second person approves it (the requester never may: separation of duties); otherwise it runs at once. A run
executes the action's plan step by step and records each step's output and exit code or HTTP status; when a
multi-step plan fails midway, the undo plan is run at once and recorded, so nothing stays half-applied unseen.
A run that succeeded on an action with ``rollback_after_seconds`` and an undo is rolled back by ``tick`` once
that time has passed (``vigil serve`` calls it; so can ``vigil action tick``). Requests, approvals,
rejections, runs and rollbacks each write an audit record, and the incident's timeline when the run belongs to
one.

Runs happen inside the caller's transaction, bounded by the action's timeout (as notifications are sent).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core import audit
from vigil.core.context import Context
from vigil.core.db import Database, Scope, utcnow
from vigil.core.errors import BadInput, Conflict, InvalidTransition, NotFound, PermissionDenied
from vigil.core.i18n import N_
from vigil.incidents.common import get_incident, note
from vigil.response.actions import service
from vigil.response.actions.base import Plan, StepResult, TargetRefused, run_plan
from vigil.response.actions.models import ActionConfig, ActionExecution
from vigil.response.actions.schemas import ExecutionCreate

log = logging.getLogger(__name__)

STATUSES = ("requested", "awaiting_approval", "approved", "rejected", "running", "succeeded", "failed",
            "rolled_back", "rollback_failed")
SYSTEM = "vigil"


def system_actor(session: Session) -> audit.Actor:
    return audit.Actor(None, SYSTEM, accounts.root_unit_id(session))


# --- reading ----------------------------------------------------------------------------------------


def get_execution(session: Session, execution_id: int) -> ActionExecution:
    found = session.scalar(select(ActionExecution).where(ActionExecution.id == execution_id))
    if found is None:
        raise NotFound(f"action execution {execution_id} does not exist or is outside your scope")
    return found


def executions_query(*, status: str | None = None, incident_id: int | None = None, action_id: int | None = None,
                     playbook_run_id: int | None = None) -> Select[ActionExecution]:
    query = select(ActionExecution).order_by(ActionExecution.requested_at.desc(), ActionExecution.id.desc())
    if status:
        query = query.where(ActionExecution.status == status)
    if incident_id is not None:
        query = query.where(ActionExecution.incident_id == incident_id)
    if action_id is not None:
        query = query.where(ActionExecution.action_id == action_id)
    if playbook_run_id is not None:
        query = query.where(ActionExecution.playbook_run_id == playbook_run_id)
    return query


# --- the record and its trail -----------------------------------------------------------------------


def _timeline(ctx: Context, execution: ActionExecution, message: str) -> None:
    """``message`` (with ``%(action)s``, ``%(target)s``, ``%(who)s``) on the incident's timeline."""
    if execution.incident_id is None:
        return
    incident = get_incident(ctx.session, execution.incident_id)
    note(ctx, incident, "action", message,
         params={"action": execution.action_name, "target": execution.target, "who": ctx.actor.name},
         execution_id=execution.id, action=execution.action_name, target=execution.target, status=execution.status)


def _audit(ctx: Context, action: str, execution: ActionExecution, *, ok: bool = True, **details: Any) -> None:
    ctx.audit(action, target_type="action_execution", target_id=execution.id, unit_id=execution.unit_id,
              outcome=audit.Outcome.SUCCESS if ok else audit.Outcome.FAILURE,
              details={"action": execution.action_name, "kind": execution.action_kind, "target": execution.target,
                       "incident_id": execution.incident_id, "status": execution.status, **details})


def _scrub(action: ActionConfig | None, text: str) -> str:
    """``text`` with the action's secrets masked: an endpoint may echo a token back."""
    if action is None:
        return text
    for name in service.secret_fields(action.kind):
        value = str((action.config or {}).get(name) or "")
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


# --- requesting -------------------------------------------------------------------------------------


def request_execution(ctx: Context, *, data: ExecutionCreate, playbook_run_id: int | None = None,
                      needs_approval: bool = False, client: httpx.Client | None = None) -> ActionExecution:
    """Ask for a run of an action on a target: it waits for approval when the action (or the caller, with
    ``needs_approval``) says so, else it runs now. A refused target or a disabled action is a 4xx with nothing
    recorded; a run that fails is recorded as ``failed`` with its output (not raised)."""
    if data.dry_run:
        raise BadInput("a dry-run records no execution; use dry_run()", errors=[{"field": "dry_run",
                                                                               "message": "not here"}])
    action = service.get_action(ctx.session, data.action_id)
    if not action.enabled:
        raise Conflict(f"the response action {action.name} is disabled")
    incident_ref, unit_id = "", action.unit_id
    if data.incident_id is not None:
        # A run for an incident belongs to the incident's unit: whoever reads the incident reads its runs, and
        # whoever decides on the run may write the incident's timeline.
        incident = get_incident(ctx.session, data.incident_id)
        incident_ref, unit_id = incident.ref, incident.unit_id
    parameters = {key: value for key, value in (("reason", data.reason), ("incident", incident_ref)) if value}
    target, _plan, _undo = service.plans(action, data.target, parameters)
    waits = action.requires_approval or needs_approval
    execution = ActionExecution(
        unit_id=unit_id, action_id=action.id, action_name=action.name, action_kind=action.kind, target=target,
        parameters=parameters, incident_id=data.incident_id, playbook_run_id=playbook_run_id, reason=data.reason,
        status="awaiting_approval" if waits else "requested", requested_by=ctx.actor.name,
        requested_by_id=ctx.actor.user_id, steps=[], requested_at=utcnow())
    ctx.session.add(execution)
    ctx.session.flush()
    _audit(ctx, "response.execution.request", execution, reason=data.reason, playbook_run_id=playbook_run_id)
    _timeline(ctx, execution, N_("Response action requested: %(action)s on %(target)s (awaiting approval)") if waits
              else N_("Response action requested: %(action)s on %(target)s"))
    if not waits:
        run(ctx, execution=execution, client=client)
    return execution


def _decidable(ctx: Context, execution: ActionExecution, *, via_playbook: bool) -> None:
    if execution.status != "awaiting_approval":
        raise InvalidTransition(f"execution {execution.id} is {execution.status}, not awaiting approval",
                                current=execution.status)
    if execution.playbook_run_id is not None and not via_playbook:
        raise Conflict(f"execution {execution.id} belongs to playbook run {execution.playbook_run_id}; approve or "
                       "reject it there, so the run goes on", playbook_run_id=execution.playbook_run_id)
    if not may_decide(ctx, requested_by=execution.requested_by, requested_by_id=execution.requested_by_id):
        raise PermissionDenied("you requested this run, or you are the system; another person must approve or "
                               "reject it")


def may_decide(ctx: Context, *, requested_by: str, requested_by_id: int | None) -> bool:
    """Separation of duties: the system never decides, nor does the person who asked (a signed-in user by id,
    a local operator of the command line by login)."""
    if ctx.actor.name == SYSTEM:
        return False
    if requested_by_id is not None:
        return requested_by_id != ctx.actor.user_id
    return requested_by != ctx.actor.name


def approve_execution(ctx: Context, *, execution_id: int, comment: str = "", via_playbook: bool = False,
                      client: httpx.Client | None = None) -> ActionExecution:
    """Approve a waiting run (never one's own request) and run it now."""
    execution = get_execution(ctx.session, execution_id)
    _decidable(ctx, execution, via_playbook=via_playbook)
    execution.status, execution.approved_by, execution.approved_by_id = "approved", ctx.actor.name, ctx.actor.user_id
    execution.decided_at, execution.decision_comment = utcnow(), comment
    ctx.session.flush()
    _audit(ctx, "response.execution.approve", execution, comment=comment)
    _timeline(ctx, execution, N_("Response action approved by %(who)s: %(action)s on %(target)s"))
    return run(ctx, execution=execution, client=client)


def reject_execution(ctx: Context, *, execution_id: int, comment: str = "",
                     via_playbook: bool = False) -> ActionExecution:
    execution = get_execution(ctx.session, execution_id)
    _decidable(ctx, execution, via_playbook=via_playbook)
    execution.status, execution.approved_by, execution.approved_by_id = "rejected", ctx.actor.name, ctx.actor.user_id
    execution.decided_at, execution.decision_comment = utcnow(), comment
    execution.finished_at = execution.decided_at
    ctx.session.flush()
    _audit(ctx, "response.execution.reject", execution, comment=comment)
    _timeline(ctx, execution, N_("Response action rejected by %(who)s: %(action)s on %(target)s"))
    return execution


# --- running ----------------------------------------------------------------------------------------


def _record(execution: ActionExecution, action: ActionConfig | None, results: list[StepResult], phase: str) -> None:
    records = [result.as_record("undo" if phase == "undo" else "do") for result in results]
    for item in records:
        item["output"] = _scrub(action, item["output"])
        item["describe"] = _scrub(action, item["describe"])
    execution.steps = [*execution.steps, *records]
    if results:
        last = results[-1]
        execution.exit_code, execution.http_status = last.exit_code, last.http_status
        joined = "\n".join(f"$ {r.describe}\n{r.output}".rstrip() for r in results)
        execution.output = _scrub(action, joined)[:20000]


def _plans_of(session: Session,
              execution: ActionExecution) -> tuple[ActionConfig | None, Plan | None, Plan | None, str]:
    """The action (None once removed) and its plans for this execution's target, or why they cannot be made."""
    action = None
    if execution.action_id is not None:
        # Read past the scope: the action may have moved to another unit since; only its plans are used.
        action = session.scalar(select(ActionConfig).where(ActionConfig.id == execution.action_id),
                                execution_options=service.UNSCOPED)
    if action is None:
        return None, None, None, f"the response action {execution.action_name} was removed"
    try:
        _target, plan, undo = service.plans(action, execution.target, execution.parameters)
    except (BadInput, TargetRefused) as exc:
        return action, None, None, str(exc)
    return action, plan, undo, ""


def run(ctx: Context, *, execution: ActionExecution, client: httpx.Client | None = None) -> ActionExecution:
    """Run an approved or requested execution: each step recorded; a midway failure undone and recorded."""
    if execution.status not in ("requested", "approved"):
        raise InvalidTransition(f"execution {execution.id} is {execution.status}; only a requested or approved run "
                                "runs", current=execution.status)
    action, plan, undo, problem = _plans_of(ctx.session, execution)
    execution.status, execution.started_at = "running", utcnow()
    ctx.session.flush()
    if plan is None:
        execution.status, execution.output, execution.finished_at = "failed", problem, utcnow()
    else:
        results = run_plan(plan, client=client)
        _record(execution, action, results, "do")
        failed = not results or not results[-1].ok or len(results) < len(plan.steps)
        if failed and undo is not None and len(results) > 1:
            # Some steps of a multi-step plan took effect: undo them now rather than leave them half-applied.
            _record(execution, action, run_plan(undo, client=client), "undo")
        execution.status, execution.finished_at = ("failed" if failed else "succeeded"), utcnow()
        if not failed and undo is not None and action is not None and action.rollback_after_seconds:
            execution.rollback_due_at = execution.finished_at + timedelta(seconds=action.rollback_after_seconds)
    ctx.session.flush()
    ok = execution.status == "succeeded"
    if not ok:
        log.warning("response action %s on %s failed: %s", execution.action_name, execution.target,
                    execution.output[:300])
    _audit(ctx, "response.execution.run", execution, ok=ok, exit_code=execution.exit_code,
           http_status=execution.http_status, output=execution.output[:500])
    _timeline(ctx, execution, N_("Response action succeeded: %(action)s on %(target)s") if ok
              else N_("Response action failed: %(action)s on %(target)s"))
    return execution


def rollback(ctx: Context, *, execution_id: int, client: httpx.Client | None = None) -> ActionExecution:
    """Undo a run that succeeded (its TTL passed, or a person asks): ``rolled_back`` or ``rollback_failed``."""
    execution = get_execution(ctx.session, execution_id)
    if execution.status != "succeeded":
        raise InvalidTransition(f"execution {execution.id} is {execution.status}; only a run that succeeded is "
                                "rolled back", current=execution.status)
    action, _plan, undo, problem = _plans_of(ctx.session, execution)
    if undo is None:
        raise Conflict(f"execution {execution.id} cannot be rolled back: "
                       + (problem or f"the action {execution.action_name} has no undo configured"))
    results = run_plan(undo, client=client)
    _record(execution, action, results, "undo")
    ok = bool(results) and all(result.ok for result in results) and len(results) == len(undo.steps)
    execution.status = "rolled_back" if ok else "rollback_failed"
    execution.rolled_back_at, execution.rollback_due_at = utcnow(), None
    ctx.session.flush()
    _audit(ctx, "response.execution.rollback", execution, ok=ok, exit_code=execution.exit_code,
           http_status=execution.http_status, output=execution.output[:500])
    _timeline(ctx, execution, N_("Response action rolled back: %(action)s on %(target)s") if ok
              else N_("Response action rollback failed: %(action)s on %(target)s"))
    return execution


# --- the scheduler ----------------------------------------------------------------------------------


def due_rollbacks(session: Session, *, now: datetime) -> list[int]:
    return list(session.scalars(select(ActionExecution.id).where(
        ActionExecution.status == "succeeded", ActionExecution.rollback_due_at.is_not(None),
        ActionExecution.rollback_due_at <= now).order_by(ActionExecution.rollback_due_at)))


def tick(database: Database, *, now: datetime | None = None, client: httpx.Client | None = None) -> list[int]:
    """Roll back every run whose TTL has passed at ``now``, each in a transaction of its own (one failing never
    holds up the others); the ids rolled back or attempted."""
    moment = now or utcnow()
    with database.transaction(Scope.system()) as session:
        due = due_rollbacks(session, now=moment)
    done: list[int] = []
    for execution_id in due:
        try:
            with database.transaction(Scope.system()) as session:
                rollback(Context(session=session, actor=system_actor(session)), execution_id=execution_id,
                         client=client)
            done.append(execution_id)
        except Exception:  # recorded by the next tick's attempt; one bad record never stops the others
            log.exception("rollback of action execution %d failed", execution_id)
    return done
