"""Incidents: open, change, assign, acknowledge, move through the five steps, reopen, list and find.

Every change writes the audit trail and the incident's timeline; every phase change also its phase spans
(time per phase) and the status-change history the SLA figures and metrics are computed from. The caller
owns the transaction: nothing here commits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select, text
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core.context import Context
from vigil.core.db import get_scope, utcnow
from vigil.core.errors import BadInput
from vigil.core.events import emit
from vigil.core.i18n import N_
from vigil.core.pagination import PageParams, paginate
from vigil.incidents import tasks
from vigil.incidents.common import (
    check_users,
    event_fields,
    find_type,
    get_incident,
    note,
    record_change,
)
from vigil.incidents.events import (
    IncidentAcknowledged,
    IncidentAssigned,
    IncidentOpened,
    IncidentPhaseChanged,
    IncidentReclassified,
    IncidentSeverityChanged,
)
from vigil.incidents.models import (
    FieldDefinition,
    Incident,
    IncidentType,
    PhaseSpan,
    PostMortem,
    SlaRecord,
)
from vigil.incidents.schemas import IncidentAssign, IncidentCreate, IncidentFilter, IncidentTransition, IncidentUpdate
from vigil.incidents.workflow import CONTAINED_FROM, RESOLVED_FROM, Facts, Move, Phase, Step, plan

REF_PATTERN = re.compile(r"^INC-(\d{4})-(\d{4,})$", re.IGNORECASE)


# --- custom fields ----------------------------------------------------------------------------------


def _check_value(definition: FieldDefinition, value: Any) -> str | None:
    """Why ``value`` does not fit the field, or None."""
    kind = definition.kind
    if kind == "text":
        return None if isinstance(value, str) and len(value) <= 2000 else "text of at most 2,000 characters"
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "a number"
    if kind == "boolean":
        return None if isinstance(value, bool) else "true or false"
    if kind == "choice":
        return None if value in definition.choices else "one of " + ", ".join(definition.choices)
    if kind == "date":
        if not isinstance(value, str):
            return "a date (YYYY-MM-DD)"
        try:
            date.fromisoformat(value)
        except ValueError:
            return "a date (YYYY-MM-DD)"
        return None
    return f"a field of unknown kind {kind}"


def check_custom_fields(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values, checked against the field definitions: known keys, right kinds, required ones present."""
    definitions = {d.key: d for d in session.scalars(select(FieldDefinition))}
    errors: list[dict[str, str]] = []
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is None:
            errors.append({"field": f"custom_fields.{key}", "message": "no such custom field"})
            continue
        if value is None:
            continue
        problem = _check_value(definition, value)
        if problem:
            errors.append({"field": f"custom_fields.{key}", "message": f"must be {problem}"})
    for key, definition in definitions.items():
        if definition.required and values.get(key) in (None, ""):
            errors.append({"field": f"custom_fields.{key}", "message": "required"})
    if errors:
        raise BadInput("custom fields do not fit their definitions", errors=errors)
    return {key: value for key, value in values.items() if value is not None}


# --- opening ----------------------------------------------------------------------------------------


REFERENCE_LOCK = 0x1C1D  # the PostgreSQL advisory lock (with the year) that orders the numbering of incidents


def _next_number(session: Session, year: int) -> int:
    # Across every unit (a reference is unique platform-wide); only the number is read, never a record.
    # On PostgreSQL two transactions would both read the same highest number (neither sees the other's
    # uncommitted incident), so the numbering of a year is taken in turn, until the transaction ends; SQLite
    # runs one writing transaction at a time anyway.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:lock, :year)"), {"lock": REFERENCE_LOCK, "year": year})
    highest = session.scalar(select(func.max(Incident.number)).where(Incident.year == year),
                             execution_options=accounts.UNSCOPED)
    return (highest or 0) + 1


def _unit_for(ctx: Context, unit_id: int | None) -> int:
    unit = unit_id if unit_id is not None else ctx.actor.unit_id
    if unit is None or not get_scope(ctx.session).allows(unit):
        raise BadInput(f"organisation unit {unit} is not one where you may open incidents",
                       errors=[{"field": "unit_id", "message": "outside your units"}])
    return unit


def open_incident(ctx: Context, *, data: IncidentCreate, source: str = "manual",
                  at: datetime | None = None) -> Incident:
    """Open an incident in the identify phase, with the identify tasks of its type."""
    now = at or utcnow()
    unit_id = _unit_for(ctx, data.unit_id)
    kind = find_type(ctx.session, data.type)
    if data.owner_id is not None:
        check_users(ctx.session, [data.owner_id], unit_id, "owner_id")
    check_users(ctx.session, data.participants, unit_id, "participants")
    custom = check_custom_fields(ctx.session, data.custom_fields)
    number = _next_number(ctx.session, now.year)
    incident = Incident(
        ref=f"INC-{now.year}-{number:04d}", year=now.year, number=number, unit_id=unit_id, title=data.title,
        description=data.description, type_id=kind.id, severity=data.severity, phase=Phase.IDENTIFY,
        status="open", cause=data.cause, owner_id=data.owner_id, team=data.team,
        participants=list(dict.fromkeys(data.participants)), tags=list(dict.fromkeys(data.tags)),
        custom_fields=custom, source=source, created_by=ctx.actor.name, created_at=now, updated_at=now,
        **data.scope.model_dump())
    ctx.session.add(incident)
    ctx.session.flush()
    ctx.session.add(PhaseSpan(incident_id=incident.id, phase=Phase.IDENTIFY, entered_at=now,
                              entered_by=ctx.actor.name))
    record_change(ctx, incident, "opened", at=now, to_phase=Phase.IDENTIFY)
    note(ctx, incident, "state_change", N_("Incident opened (%(severity)s, %(type)s)"),
         params={"severity": data.severity, "type": kind.key}, at=now,
         to_phase=str(Phase.IDENTIFY), source=source)
    tasks.apply_templates(ctx, incident, Phase.IDENTIFY)
    ctx.audit("incident.create", target_type="incident", target_id=incident.id, unit_id=unit_id,
              details={"ref": incident.ref, "title": data.title, "type": kind.key, "severity": data.severity,
                       "source": source})
    emit(ctx.session, IncidentOpened(**event_fields(ctx.session, ctx, incident), title=incident.title, source=source))
    ctx.session.flush()
    return incident


# --- changing ---------------------------------------------------------------------------------------


def update_incident(ctx: Context, *, incident_id: int, data: IncidentUpdate) -> Incident:
    incident = get_incident(ctx.session, incident_id)
    changes = data.model_dump(exclude_unset=True)
    shown: dict[str, Any] = {}
    previous_severity = incident.severity
    if "type" in changes and changes["type"] is not None:
        kind = find_type(ctx.session, changes.pop("type"))
        if kind.id != incident.type_id:
            shown["type"] = kind.key
            incident.type_id = kind.id
    changes.pop("type", None)
    if changes.get("participants") is not None:
        check_users(ctx.session, changes["participants"], incident.unit_id, "participants")
        changes["participants"] = list(dict.fromkeys(changes["participants"]))
    if changes.get("custom_fields") is not None:
        changes["custom_fields"] = check_custom_fields(ctx.session, {**incident.custom_fields,
                                                                     **changes["custom_fields"]})
    scope = changes.pop("scope", None)
    if scope is not None:
        changes.update(scope)
    for key, value in changes.items():
        if value is None:
            continue
        if getattr(incident, key) != value:
            shown[key] = value if key not in ("description", "cause") else "(changed)"
            setattr(incident, key, value)
    if not shown:
        return incident
    if "severity" in shown:
        note(ctx, incident, "state_change", N_("Severity set to %(severity)s"), params={"severity": shown["severity"]},
             severity=shown["severity"])
        emit(ctx.session, IncidentSeverityChanged(**event_fields(ctx.session, ctx, incident),
                                                  previous=previous_severity))
    note(ctx, incident, "state_change", N_("Incident details changed: %(fields)s"),
         params={"fields": ", ".join(sorted(shown))}, fields=sorted(shown))
    ctx.audit("incident.update", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "changed": shown})
    reclassified = tuple(key for key in ("severity", "type") if key in shown)
    if reclassified:
        emit(ctx.session, IncidentReclassified(**event_fields(ctx.session, ctx, incident), changed=reclassified))
    ctx.session.flush()
    return incident


def assign(ctx: Context, *, incident_id: int, data: IncidentAssign) -> Incident:
    """Give the incident an owner (a user who can read incidents of its unit) and a team."""
    incident = get_incident(ctx.session, incident_id)
    owner = None
    if data.owner_id is not None:
        owner = check_users(ctx.session, [data.owner_id], incident.unit_id, "owner_id")[0]
    if incident.owner_id == data.owner_id and incident.team == data.team:
        return incident
    before = {"owner_id": incident.owner_id, "team": incident.team}
    incident.owner_id = data.owner_id
    incident.team = data.team
    who = owner.username if owner else "nobody"
    assigned = N_("Assigned to %(owner)s (%(team)s)") if data.team else N_("Assigned to %(owner)s")
    note(ctx, incident, "state_change", assigned, params={"owner": who, "team": data.team},
         owner_id=data.owner_id, team=data.team)
    ctx.audit("incident.assign", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "from": before, "owner": owner.username if owner else None,
                       "team": data.team})
    emit(ctx.session, IncidentAssigned(**event_fields(ctx.session, ctx, incident), owner_id=data.owner_id,
                                       team=data.team))
    ctx.session.flush()
    return incident


def _acknowledge(ctx: Context, incident: Incident, now: datetime) -> bool:
    if incident.acknowledged_at is not None:
        return False
    incident.acknowledged_at = now
    record_change(ctx, incident, "acknowledged", at=now, from_phase=incident.phase, to_phase=incident.phase)
    note(ctx, incident, "state_change", N_("Incident acknowledged"), params={}, at=now)
    emit(ctx.session, IncidentAcknowledged(**event_fields(ctx.session, ctx, incident)))
    return True


def acknowledge(ctx: Context, *, incident_id: int, at: datetime | None = None) -> Incident:
    """Someone has taken the incident up: stops the time-to-acknowledge clock (once; later calls change nothing)."""
    incident = get_incident(ctx.session, incident_id)
    if _acknowledge(ctx, incident, at or utcnow()):
        ctx.audit("incident.acknowledge", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
                  details={"ref": incident.ref})
        ctx.session.flush()
    return incident


# --- the five steps ---------------------------------------------------------------------------------


def facts_of(session: Session, incident: Incident) -> Facts:
    postmortem = session.scalar(select(PostMortem.status).where(PostMortem.incident_id == incident.id))
    return Facts(open_required_tasks=tasks.open_required(session, incident, incident.phase),
                 postmortem_status=postmortem)


def _apply(ctx: Context, incident: Incident, step: Step, now: datetime) -> None:
    open_span = ctx.session.scalar(select(PhaseSpan).where(PhaseSpan.incident_id == incident.id,
                                                           PhaseSpan.left_at.is_(None)))
    if open_span is not None:
        open_span.left_at = now
    ctx.session.add(PhaseSpan(incident_id=incident.id, phase=step.target, entered_at=now, entered_by=ctx.actor.name))
    incident.phase = step.target
    incident.status = "closed" if step.target is Phase.CLOSED else "open"
    if step.target in CONTAINED_FROM and incident.contained_at is None:
        incident.contained_at = now
    if step.target in RESOLVED_FROM and incident.resolved_at is None:
        incident.resolved_at = now
    incident.closed_at = now if step.target is Phase.CLOSED else None
    kind = "reopened" if step.move is Move.REOPEN else "phase"
    record_change(ctx, incident, kind, at=now, from_phase=step.source, to_phase=step.target, reason=step.reason)
    moved = {Move.ADVANCE: N_("Incident moved to %(phase)s"), Move.RETURN: N_("Incident returned to %(phase)s"),
             Move.CLOSE: N_("Incident moved to %(phase)s"), Move.REOPEN: N_("Incident reopened in %(phase)s")}
    note(ctx, incident, "state_change", moved[step.move], params={"phase": str(step.target)}, at=now,
         from_phase=str(step.source), to_phase=str(step.target), move=str(step.move), reason=step.reason)


def transition(ctx: Context, *, incident_id: int, data: IncidentTransition, at: datetime | None = None) -> Incident:
    """Move the incident to ``data.phase``: the table and its guards decide (409 with the reason); a reopen of a
    closed incident names the phase it returns to and needs a reason. Entering a phase brings its template
    tasks; the first move acknowledges an incident nobody acknowledged."""
    incident = get_incident(ctx.session, incident_id)
    now = at or utcnow()
    step = plan(incident.phase, data.phase, facts_of(ctx.session, incident), reason=data.reason)
    _acknowledge(ctx, incident, now)
    _apply(ctx, incident, step, now)
    if step.target is not Phase.CLOSED:
        tasks.apply_templates(ctx, incident, step.target)
    action = "incident.reopen" if step.move is Move.REOPEN else "incident.close" if step.move is Move.CLOSE \
        else "incident.transition"
    ctx.audit(action, target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "from": str(step.source), "to": str(step.target),
                       "move": str(step.move), "reason": step.reason})
    emit(ctx.session, IncidentPhaseChanged(**event_fields(ctx.session, ctx, incident), from_phase=str(step.source),
                                           to_phase=str(step.target), move=str(step.move), reason=step.reason))
    ctx.session.flush()
    return incident


def phase_minutes(spans: list[PhaseSpan], now: datetime) -> dict[str, float]:
    """Minutes spent in each phase, over every stay (a reopened incident adds its new stays)."""
    spent: dict[str, float] = {}
    for span in spans:
        end = span.left_at or now
        spent[span.phase] = spent.get(span.phase, 0.0) + max((end - span.entered_at).total_seconds(), 0) / 60
    return {phase: round(minutes, 2) for phase, minutes in spent.items()}


# --- finding ----------------------------------------------------------------------------------------


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(filters: IncidentFilter) -> Select[Incident]:
    query = select(Incident)
    if filters.phase:
        query = query.where(Incident.phase.in_(filters.phase))
    if filters.status:
        query = query.where(Incident.status == filters.status)
    if filters.severity:
        query = query.where(Incident.severity.in_(filters.severity))
    if filters.type:
        query = query.join(IncidentType, IncidentType.id == Incident.type_id).where(IncidentType.key == filters.type)
    if filters.owner_id is not None:
        query = query.where(Incident.owner_id == filters.owner_id)
    if filters.team:
        query = query.where(func.lower(Incident.team) == filters.team.lower())
    if filters.sla is not None:
        breached = exists().where(SlaRecord.incident_id == Incident.id, SlaRecord.kind == "breach")
        warned = exists().where(SlaRecord.incident_id == Incident.id, SlaRecord.kind == "warning")
        query = query.where({"breached": breached, "warning": and_(warned, ~breached),
                             "ok": and_(~warned, ~breached)}[filters.sla])
    if filters.q:
        needle = f"%{_escape_like(filters.q.lower())}%"
        query = query.where(or_(func.lower(Incident.title).like(needle, escape="\\"),
                                func.lower(Incident.description).like(needle, escape="\\"),
                                func.lower(Incident.ref).like(needle, escape="\\")))
    return query


def list_incidents(session: Session, *, filters: IncidentFilter, params: PageParams) -> tuple[list[Incident], int]:
    """Incidents in the caller's units, newest first. The SLA filter reads the warnings and breaches the
    scheduler recorded (``sla.record_sla``)."""
    query = _filtered(filters).order_by(Incident.created_at.desc(), Incident.id.desc())
    return paginate(session, query, params)


def find_incident(session: Session, ident: str) -> Incident:
    """By id or by reference (INC-2026-0001)."""
    if ident.isdigit():
        return get_incident(session, int(ident))
    match = REF_PATTERN.match(ident.strip())
    if match is None:
        raise BadInput(f"{ident!r} is neither an incident id nor a reference like INC-2026-0001")
    found = session.scalar(select(Incident.id).where(Incident.ref == ident.strip().upper()))
    if found is None:
        return get_incident(session, 0)  # the scope's ordinary "not found"
    return get_incident(session, found)

