"""Playbook runs: start one on an incident (by hand, or when an incident opens or changes severity or type and
a playbook's trigger matches), walk its steps in order, wait where a step needs approval, go on when a person
approves, stop when one rejects.

Steps: ``enrich`` looks the incident's observables up in the threat-intel store; ``notify`` sends through a
notification channel (a failed delivery is recorded and the run goes on: telling people never blocks
containment); ``act`` requests an execution of a response action for each value its target names (an
observable type, the linked alerts' hosts, users or source addresses, the incident's affected assets or users)
and waits when the step or the action needs approval; ``create_task`` adds a task to the incident. Any other
failure stops the run as ``failed``. Each step's result is a record, the run names the playbook version it
used, and the incident's timeline and the audit trail record the start, every decision and the end.

A playbook starts by itself at most once per incident (a later severity change does not start it again);
by hand it runs whenever someone asks. The person who started a run never approves its steps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import BadInput, Conflict, InvalidTransition, NotFound, PermissionDenied
from vigil.core.i18n import N_
from vigil.detection.models import Alert
from vigil.incidents import activity, tasks
from vigil.incidents.common import get_incident, note, type_key
from vigil.incidents.models import Incident, IncidentAlert
from vigil.incidents.schemas import SEVERITY_RANK, TaskCreate
from vigil.intel.runtime import Intel
from vigil.response.actions import executions
from vigil.response.actions.models import ActionExecution
from vigil.response.actions.schemas import ExecutionCreate
from vigil.response.notifications import service as notifications
from vigil.response.notifications.messages import Message, MessageKind
from vigil.response.playbooks import service
from vigil.response.playbooks.models import Playbook, PlaybookRun, PlaybookStepResult
from vigil.response.playbooks.schemas import (
    ActStep,
    Definition,
    EnrichStep,
    NotifyStep,
    RunRead,
    StepResultRead,
    TaskStep,
)

log = logging.getLogger(__name__)
MAX_TARGETS = 20  # an act step acts on at most this many values (a runaway placeholder stays bounded)
ACTIVE = ("running", "awaiting_approval")


@dataclass(frozen=True)
class Options:
    """What steps need from the process: the intel store for enrichment, HTTP and retry settings for
    notifications and actions, the address of Vigil for links."""

    intel: Intel | None = None
    client: httpx.Client | None = None
    retry_delay: float = notifications.DEFAULT_RETRY_SECONDS
    base_url: str = ""


# --- reading ----------------------------------------------------------------------------------------


def get_run(session: Session, run_id: int) -> PlaybookRun:
    found = session.scalar(select(PlaybookRun).where(PlaybookRun.id == run_id))
    if found is None:
        raise NotFound(f"playbook run {run_id} does not exist or is outside your scope")
    return found


def steps_of(session: Session, run_id: int) -> list[PlaybookStepResult]:
    return list(session.scalars(select(PlaybookStepResult).where(PlaybookStepResult.run_id == run_id)
                                .order_by(PlaybookStepResult.position)))


def runs_query(*, status: str | None = None, incident_id: int | None = None,
               playbook_id: int | None = None) -> Select[PlaybookRun]:
    query = select(PlaybookRun).order_by(PlaybookRun.started_at.desc(), PlaybookRun.id.desc())
    if status:
        query = query.where(PlaybookRun.status == status)
    if incident_id is not None:
        query = query.where(PlaybookRun.incident_id == incident_id)
    if playbook_id is not None:
        query = query.where(PlaybookRun.playbook_id == playbook_id)
    return query


def run_read(session: Session, run: PlaybookRun) -> RunRead:
    return RunRead(id=run.id, unit_id=run.unit_id, playbook_id=run.playbook_id, playbook_name=run.playbook_name,
                   version=run.version, incident_id=run.incident_id, trigger=run.trigger, status=run.status,
                   current_step=run.current_step, started_by=run.started_by, started_at=run.started_at,
                   finished_at=run.finished_at,
                   steps=[StepResultRead.model_validate(step) for step in steps_of(session, run.id)])


# --- matching ---------------------------------------------------------------------------------------


def _alerts(session: Session, incident: Incident) -> list[Alert]:
    return list(session.scalars(select(Alert).join(IncidentAlert, IncidentAlert.alert_id == Alert.id)
                                .where(IncidentAlert.incident_id == incident.id)))


def matches(session: Session, definition: Definition, incident: Incident, event: str) -> bool:
    trigger = definition.trigger
    if event not in trigger.on:
        return False
    if trigger.incident_types and type_key(session, incident) not in trigger.incident_types:
        return False
    if trigger.min_severity and SEVERITY_RANK[incident.severity] > SEVERITY_RANK[trigger.min_severity]:
        return False
    if trigger.rule_uids or trigger.alert_origins:
        alerts = _alerts(session, incident)
        if trigger.rule_uids and not any(alert.rule_uid in trigger.rule_uids for alert in alerts):
            return False
        if trigger.alert_origins and not any(alert.origin in trigger.alert_origins for alert in alerts):
            return False
    return True


def run_matching_playbooks(ctx: Context, *, incident_id: int, event: str = "opened",
                           options: Options | None = None) -> list[PlaybookRun]:
    """Start every enabled playbook whose trigger matches the incident (``event``: opened, severity_changed or
    type_changed) and that has not run by itself on it yet. The incident path calls this (``runtime.py``
    subscribes it to the incident events)."""
    incident = get_incident(ctx.session, incident_id)
    if incident.status == "closed":
        return []
    started: list[PlaybookRun] = []
    tree = accounts.load_unit_tree(ctx.session)
    for playbook in service.list_playbooks(ctx.session):
        # A playbook applies to incidents of its unit and of every unit below it.
        if not playbook.enabled or incident.unit_id not in tree.subtree(playbook.unit_id):
            continue
        ran = ctx.session.scalar(select(PlaybookRun.id).where(PlaybookRun.playbook_id == playbook.id,
                                                              PlaybookRun.incident_id == incident.id,
                                                              PlaybookRun.trigger != "manual"))
        definition = Definition.model_validate(service.definition_of(ctx.session, playbook))
        if ran is None and matches(ctx.session, definition, incident, event):
            started.append(_start(ctx, playbook, incident, f"incident_{event}", options or Options()))
    return started


def start_run(ctx: Context, *, playbook_id: int, incident_id: int, options: Options | None = None) -> PlaybookRun:
    """Run a playbook on an incident by hand (its current version)."""
    playbook = service.get_playbook(ctx.session, playbook_id)
    incident = get_incident(ctx.session, incident_id)
    if incident.status == "closed":
        raise Conflict(f"incident {incident.ref} is closed; reopen it first")
    return _start(ctx, playbook, incident, "manual", options or Options())


def _start(ctx: Context, playbook: Playbook, incident: Incident, trigger: str, options: Options) -> PlaybookRun:
    version = service.get_version(ctx.session, playbook)
    definition = Definition.model_validate(version.definition)
    run = PlaybookRun(unit_id=incident.unit_id, playbook_id=playbook.id, playbook_name=playbook.name,
                      version=version.version, incident_id=incident.id, trigger=trigger, status="running",
                      current_step=0, started_by=ctx.actor.name, started_by_id=ctx.actor.user_id,
                      started_at=utcnow())
    ctx.session.add(run)
    ctx.session.flush()
    for position, step in enumerate(definition.steps):
        ctx.session.add(PlaybookStepResult(run_id=run.id, position=position, kind=step.kind, name=step.name,
                                           status="pending", detail={}, execution_ids=[]))
    ctx.session.flush()
    note(ctx, incident, "action", N_("Playbook started: %(name)s v%(version)s (%(trigger)s)"),
         params={"name": playbook.name, "version": version.version, "trigger": trigger}, playbook_run_id=run.id)
    _audit(ctx, "playbook.run.start", run, trigger=trigger)
    _advance(ctx, run, definition, incident, options)
    return run


def _audit(ctx: Context, action: str, run: PlaybookRun, **details: Any) -> None:
    ctx.audit(action, target_type="playbook_run", target_id=run.id, unit_id=run.unit_id,
              details={"playbook": run.playbook_name, "version": run.version, "incident_id": run.incident_id,
                       "status": run.status, **details})


def _definition(session: Session, run: PlaybookRun) -> Definition:
    """The definition of the version the run started with (kept even when the playbook was edited since)."""
    if run.playbook_id is None:
        raise Conflict(f"the playbook of run {run.id} was removed; the run cannot go on")
    playbook = session.scalar(select(Playbook).where(Playbook.id == run.playbook_id),
                              execution_options=service.UNSCOPED)
    if playbook is None:
        raise Conflict(f"the playbook of run {run.id} was removed; the run cannot go on")
    return Definition.model_validate(service.get_version(session, playbook, run.version).definition)


# --- walking the steps ------------------------------------------------------------------------------


def _finish(ctx: Context, run: PlaybookRun, incident: Incident, status: str) -> None:
    run.status, run.finished_at = status, utcnow()
    ctx.session.flush()
    finished = {"succeeded": N_("Playbook succeeded: %(name)s v%(version)s"),
                "failed": N_("Playbook failed: %(name)s v%(version)s"),
                "rejected": N_("Playbook rejected: %(name)s v%(version)s")}[status]
    note(ctx, incident, "action", finished, params={"name": run.playbook_name, "version": run.version},
         playbook_run_id=run.id)
    _audit(ctx, "playbook.run.finish", run)


def _advance(ctx: Context, run: PlaybookRun, definition: Definition, incident: Incident, options: Options,
             approved_by: str | None = None) -> None:
    results = steps_of(ctx.session, run.id)
    while run.current_step < len(definition.steps):
        step, result = definition.steps[run.current_step], results[run.current_step]
        if result.status == "pending":
            if result.started_at is None:
                result.started_at = utcnow()
            if step.requires_approval and approved_by is None and not isinstance(step, ActStep):
                result.status, run.status = "awaiting_approval", "awaiting_approval"
                ctx.session.flush()
                return
            _perform(ctx, run, step, result, incident, options, approved=approved_by is not None)
        approved_by = None
        if result.status == "awaiting_approval":
            run.status = "awaiting_approval"
            ctx.session.flush()
            return
        if result.finished_at is None:
            result.finished_at = utcnow()
        if result.status == "failed" and not isinstance(step, NotifyStep):
            _finish(ctx, run, incident, "failed")
            return
        run.current_step += 1
        run.status = "running"
    _finish(ctx, run, incident, "succeeded")


def _perform(ctx: Context, run: PlaybookRun, step: Any, result: PlaybookStepResult, incident: Incident,
             options: Options, *, approved: bool) -> None:
    try:
        if isinstance(step, EnrichStep):
            _enrich(ctx, result, incident, options)
        elif isinstance(step, NotifyStep):
            _notify(ctx, run, step, result, incident, options)
        elif isinstance(step, ActStep):
            _act(ctx, run, step, result, incident, options)
        elif isinstance(step, TaskStep):
            task = tasks.create_task(ctx, incident_id=incident.id, data=TaskCreate(
                title=step.title, description=step.description, phase=step.phase, required=step.required))
            result.status, result.output, result.detail = "succeeded", f"task {task.id}: {task.title}", \
                {"task_id": task.id}
    except (BadInput, Conflict, NotFound) as exc:
        result.status, result.output = "failed", exc.detail
    ctx.session.flush()


def _enrich(ctx: Context, result: PlaybookStepResult, incident: Incident, options: Options) -> None:
    observables = activity.observables_of(ctx.session, incident.id)
    if options.intel is None:
        result.status, result.output = "skipped", "threat intelligence is not available in this process"
        return
    found: dict[str, Any] = {}
    for observable in observables:
        indicator = options.intel.store.find(observable.type, observable.value)
        found[f"{observable.type}:{observable.value}"] = None if indicator is None else {
            "score": indicator.score, "tags": indicator.tags[:10],
            "sources": [str(s.get("name", "")) for s in indicator.sources][:10]}
    known = [key for key, value in found.items() if value is not None]
    result.status, result.detail = "succeeded", {"lookups": found}
    result.output = (f"{len(known)} of {len(found)} observable(s) known to threat intel"
                     + (": " + ", ".join(known) if known else ""))
    note(ctx, incident, "action", N_("Enrichment: %(output)s"), params={"output": result.output},
         playbook_step=result.position)


def _notify(ctx: Context, run: PlaybookRun, step: NotifyStep, result: PlaybookStepResult, incident: Incident,
            options: Options) -> None:
    kind = MessageKind.INCIDENT_OPENED if run.trigger == "incident_opened" else MessageKind.INCIDENT_UPDATED
    summary = step.summary or f"Playbook {run.playbook_name}"
    link = f"{options.base_url.rstrip('/')}/incidents/{incident.id}" if options.base_url else ""
    delivery = notifications.send(ctx, channel_id=step.channel_id, unit_id=incident.unit_id, client=options.client,
                                  retry_delay=options.retry_delay, message=Message(
                                      kind, subject=incident.title, severity=incident.severity, summary=summary,
                                      link=link, incident_id=incident.id))
    result.detail = {"delivery_id": delivery.id, "channel": delivery.channel_name}
    result.status = "succeeded" if delivery.status == "sent" else "failed"
    result.output = f"{delivery.status} to {delivery.channel_name}" + (
        f": {delivery.last_error}" if delivery.last_error else "")
    note(ctx, incident, "notification", N_("Notified %(channel)s (%(status)s)"),
         params={"channel": delivery.channel_name, "status": delivery.status}, delivery_id=delivery.id,
         playbook_run_id=run.id)


def targets(session: Session, incident: Incident, template: str) -> list[str]:
    """The values an act step's target names on this incident (a plain value is itself)."""
    text = template.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return [text]
    source, _, name = text[1:-1].partition(".")
    values: list[str] = []
    if source == "observable":
        values = [o.value for o in activity.observables_of(session, incident.id) if o.type == name]
    elif source == "alert":
        column = {"host": "host", "user": "user_name", "source_ip": "source_ip"}[name]
        values = [str(getattr(alert, column)) for alert in _alerts(session, incident) if getattr(alert, column)]
    elif source == "incident":
        values = list(getattr(incident, name) or [])
    return list(dict.fromkeys(values))[:MAX_TARGETS]


def _act(ctx: Context, run: PlaybookRun, step: ActStep, result: PlaybookStepResult, incident: Incident,
         options: Options) -> None:
    values = targets(ctx.session, incident, step.target)
    if not values:
        result.status, result.output = "skipped", f"the incident has no value for {step.target}"
        return
    made: list[int] = []
    lines: list[str] = []
    for value in values:
        try:
            execution = executions.request_execution(
                ctx, data=ExecutionCreate(action_id=step.action_id, target=value, incident_id=incident.id,
                                          reason=step.reason or f"playbook {run.playbook_name}"),
                playbook_run_id=run.id, needs_approval=step.requires_approval, client=options.client)
        except (BadInput, Conflict, NotFound) as exc:
            lines.append(f"{value}: refused: {exc.detail}")
            continue
        made.append(execution.id)
        lines.append(f"{value}: {execution.status}")
    result.execution_ids, result.output = made, "\n".join(lines)
    _settle(ctx.session, result)


def _settle(session: Session, result: PlaybookStepResult) -> None:
    """An act step's status from its executions: waiting while one waits; failed if any failed or was refused."""
    found = list(session.scalars(select(ActionExecution).where(
        ActionExecution.id.in_(result.execution_ids or [0]))))
    statuses = [execution.status for execution in found]
    refused = "refused" in result.output
    if "awaiting_approval" in statuses:
        result.status = "awaiting_approval"
    elif refused or not statuses or any(status in ("failed", "rejected") for status in statuses):
        result.status = "rejected" if statuses and all(s == "rejected" for s in statuses) else "failed"
    else:
        result.status = "succeeded"


# --- decisions --------------------------------------------------------------------------------------


def _waiting(ctx: Context, run_id: int) -> tuple[PlaybookRun, PlaybookStepResult, Definition, Incident]:
    run = get_run(ctx.session, run_id)
    if run.status != "awaiting_approval":
        raise InvalidTransition(f"playbook run {run.id} is {run.status}, not awaiting approval", current=run.status)
    if not executions.may_decide(ctx, requested_by=run.started_by, requested_by_id=run.started_by_id):
        raise PermissionDenied("you started this playbook run; another person must approve or reject its steps")
    if run.incident_id is None:
        raise Conflict(f"playbook run {run.id} has no incident")
    result = steps_of(ctx.session, run.id)[run.current_step]
    return run, result, _definition(ctx.session, run), get_incident(ctx.session, run.incident_id)


def approve_step(ctx: Context, *, run_id: int, comment: str = "", options: Options | None = None) -> PlaybookRun:
    """Approve the step the run waits at (never in a run one started): it runs, and the run goes on."""
    run, result, definition, incident = _waiting(ctx, run_id)
    options = options or Options()
    result.decided_by = ctx.actor.name
    _audit(ctx, "playbook.run.approve", run, step=result.position, comment=comment)
    note(ctx, incident, "action", N_("Playbook step %(step)s approved by %(who)s: %(name)s"),
         params={"step": result.position + 1, "who": ctx.actor.name, "name": run.playbook_name}, playbook_run_id=run.id)
    if result.kind == "act":
        for execution_id in result.execution_ids:
            if executions.get_execution(ctx.session, execution_id).status == "awaiting_approval":
                executions.approve_execution(ctx, execution_id=execution_id, comment=comment, via_playbook=True,
                                             client=options.client)
        _settle(ctx.session, result)
        result.finished_at = utcnow()
        ctx.session.flush()
        _advance(ctx, run, definition, incident, options)
    else:
        result.status = "pending"  # performed now, as approved
        _advance(ctx, run, definition, incident, options, approved_by=ctx.actor.name)
    return run


def reject_step(ctx: Context, *, run_id: int, comment: str = "") -> PlaybookRun:
    """Reject the step the run waits at: its requested executions are rejected and the run stops."""
    run, result, _unused, incident = _waiting(ctx, run_id)
    for execution_id in result.execution_ids:
        if executions.get_execution(ctx.session, execution_id).status == "awaiting_approval":
            executions.reject_execution(ctx, execution_id=execution_id, comment=comment, via_playbook=True)
    result.status, result.decided_by, result.finished_at = "rejected", ctx.actor.name, utcnow()
    result.output = (result.output + f"\nrejected by {ctx.actor.name}" + (f": {comment}" if comment else "")).strip()
    _audit(ctx, "playbook.run.reject", run, step=result.position, comment=comment)
    _finish(ctx, run, incident, "rejected")
    return run


def active_runs(session: Session, incident_ids: Sequence[int]) -> list[PlaybookRun]:
    if not incident_ids:
        return []
    return list(session.scalars(runs_query().where(PlaybookRun.incident_id.in_(incident_ids),
                                                   PlaybookRun.status.in_(ACTIVE))))
