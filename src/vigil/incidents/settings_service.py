"""The incident domain's platform-wide settings: the type taxonomy, custom-field definitions, SLA targets and
the business-hours calendar. Every change is audited; a bad value changes nothing."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.incidents import sla
from vigil.incidents.models import FieldDefinition, IncidentType, SlaCalendar, SlaTarget
from vigil.incidents.schemas import FieldDefinitionCreate, SlaCalendarUpdate, SlaTargetUpdate, TypeCreate


def list_types(session: Session, *, include_disabled: bool = False) -> Sequence[IncidentType]:
    query = select(IncidentType).order_by(IncidentType.position, IncidentType.id)
    if not include_disabled:
        query = query.where(IncidentType.enabled)
    return session.scalars(query).all()


def type_name(kind: IncidentType, language: str) -> str:
    """The type's name in the language, else English, else its key."""
    return kind.names.get(language) or kind.names.get("en") or kind.key


def create_type(ctx: Context, *, data: TypeCreate) -> IncidentType:
    if ctx.session.scalar(select(IncidentType.id).where(IncidentType.key == data.key)) is not None:
        raise Conflict(f"the incident type {data.key} exists already")
    kind = IncidentType(key=data.key, names=dict(data.names), enabled=data.enabled, position=data.position)
    ctx.session.add(kind)
    ctx.session.flush()
    ctx.audit("incident.type.create", target_type="incident_type", target_id=kind.id,
              details={"key": data.key, "names": dict(data.names)})
    return kind


def list_fields(session: Session) -> Sequence[FieldDefinition]:
    return session.scalars(select(FieldDefinition).order_by(FieldDefinition.key)).all()


def create_field(ctx: Context, *, data: FieldDefinitionCreate) -> FieldDefinition:
    if ctx.session.scalar(select(FieldDefinition.id).where(FieldDefinition.key == data.key)) is not None:
        raise Conflict(f"the custom field {data.key} exists already")
    if data.kind == "choice" and not data.choices:
        raise BadInput("a choice field needs its choices", errors=[{"field": "choices", "message": "required"}])
    definition = FieldDefinition(key=data.key, label=data.label, kind=data.kind, choices=list(data.choices),
                                 required=data.required)
    ctx.session.add(definition)
    ctx.session.flush()
    ctx.audit("incident.field.create", target_type="incident_field", target_id=definition.id,
              details={"key": data.key, "kind": data.kind, "required": data.required})
    return definition


def delete_field(ctx: Context, *, field_id: int) -> None:
    definition = ctx.session.get(FieldDefinition, field_id)
    if definition is None:
        raise NotFound(f"custom field {field_id} does not exist")
    ctx.audit("incident.field.delete", target_type="incident_field", target_id=definition.id,
              details={"key": definition.key})
    ctx.session.delete(definition)
    ctx.session.flush()


def set_target(ctx: Context, *, severity: str, data: SlaTargetUpdate) -> SlaTarget:
    if severity not in sla.SEVERITIES:
        raise NotFound(f"no SLA target for severity {severity} (severities: {', '.join(sla.SEVERITIES)})")
    row = ctx.session.get(SlaTarget, severity)
    if row is None:
        row = SlaTarget(severity=severity)
        ctx.session.add(row)
    before = {"acknowledge_minutes": row.acknowledge_minutes, "contain_minutes": row.contain_minutes,
              "resolve_minutes": row.resolve_minutes, "clock": row.clock}
    row.acknowledge_minutes = data.acknowledge_minutes
    row.contain_minutes = data.contain_minutes
    row.resolve_minutes = data.resolve_minutes
    row.clock = data.clock
    row.updated_by = ctx.actor.name
    row.updated_at = utcnow()
    ctx.session.flush()
    ctx.audit("incident.sla.update", target_type="incident_sla_target", details={
        "severity": severity, "from": before, "to": data.model_dump()})
    return row


def set_calendar(ctx: Context, *, data: SlaCalendarUpdate) -> SlaCalendar:
    sla.check_calendar(timezone=data.timezone, weekdays=data.weekdays, day_start=data.day_start,
                       day_end=data.day_end, warn_ratio=data.warn_ratio)
    row = sla.calendar_row(ctx.session)
    row.timezone = data.timezone
    row.weekdays = sorted(set(data.weekdays))
    row.day_start = data.day_start
    row.day_end = data.day_end
    row.warn_ratio = data.warn_ratio
    row.updated_by = ctx.actor.name
    row.updated_at = utcnow()
    ctx.session.flush()
    ctx.audit("incident.sla.calendar", target_type="incident_sla_calendar", details=data.model_dump())
    return row
