"""The paging configuration: per unit and severity, the escalation policy an incident starts and the channels
told that it opened. An incident takes the row of its own unit, else of the nearest unit above it."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from vigil.accounts.models import OrgUnit
from vigil.accounts.service import UNSCOPED
from vigil.core.context import Context
from vigil.core.db import MAX_RECORD_ID, get_scope, utcnow
from vigil.core.errors import BadInput, NotFound
from vigil.incidents.schemas import Severity
from vigil.response import oncall_service
from vigil.response.notifications.models import NotificationChannel
from vigil.response.paging_models import IncidentPaging

ChannelId = Annotated[int, Field(ge=1, le=MAX_RECORD_ID)]


class PagingSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy_id: int | None = Field(default=None, ge=1, le=MAX_RECORD_ID)
    channel_ids: list[ChannelId] = Field(default_factory=list, max_length=10)
    unit_id: int | None = Field(default=None, ge=1, le=MAX_RECORD_ID)


class PagingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: int
    severity: str
    policy_id: int | None
    channel_ids: list[int]
    updated_by: str


def rules_query() -> Select[IncidentPaging]:
    return select(IncidentPaging).order_by(IncidentPaging.unit_id, IncidentPaging.severity)


def list_rules(session: Session) -> list[IncidentPaging]:
    return list(session.scalars(rules_query()))


def rule_for(session: Session, *, unit_id: int, severity: str) -> IncidentPaging | None:
    """The row for an incident of ``severity`` in ``unit_id``: its unit's, else the nearest ancestor's."""
    seen: set[int] = set()
    current: int | None = unit_id
    while current is not None and current not in seen:
        seen.add(current)
        found = session.scalar(select(IncidentPaging).where(IncidentPaging.unit_id == current,
                                                            IncidentPaging.severity == severity),
                               execution_options=UNSCOPED)
        if found is not None:
            return found
        current = session.scalar(select(OrgUnit.parent_id).where(OrgUnit.id == current), execution_options=UNSCOPED)
    return None


def _check(session: Session, data: PagingSet) -> None:
    if data.policy_id is not None:
        try:
            oncall_service.get_policy(session, data.policy_id)
        except NotFound:
            raise BadInput(f"no such escalation policy in your units: {data.policy_id}",
                           errors=[{"field": "policy_id", "message": "unknown escalation policy"}]) from None
    for channel_id in data.channel_ids:
        channel = session.get(NotificationChannel, channel_id)
        if channel is None or not get_scope(session).allows(channel.unit_id):
            raise BadInput(f"no such notification channel in your units: {channel_id}",
                           errors=[{"field": "channel_ids", "message": f"unknown channel id {channel_id}"}])


def set_rule(ctx: Context, *, severity: Severity, data: PagingSet) -> IncidentPaging:
    """What an incident of ``severity`` in the unit (default: the caller's) pages and tells when it opens."""
    unit_id = data.unit_id if data.unit_id is not None else ctx.actor.unit_id
    if not get_scope(ctx.session).allows(unit_id):
        raise NotFound(f"organisation unit {unit_id} does not exist or is outside your scope")
    _check(ctx.session, data)
    row = ctx.session.scalar(select(IncidentPaging).where(IncidentPaging.unit_id == unit_id,
                                                          IncidentPaging.severity == severity))
    if row is None:
        row = IncidentPaging(unit_id=unit_id, severity=severity)
        ctx.session.add(row)
    row.policy_id, row.channel_ids = data.policy_id, list(dict.fromkeys(data.channel_ids))
    row.updated_at, row.updated_by = utcnow(), ctx.actor.name
    ctx.session.flush()
    ctx.audit("incident.paging.set", target_type="incident_paging", target_id=row.id, unit_id=unit_id,
              details={"severity": severity, "policy_id": row.policy_id, "channel_ids": row.channel_ids})
    return row


def delete_rule(ctx: Context, *, severity: Severity, unit_id: int | None = None) -> None:
    unit = unit_id if unit_id is not None else ctx.actor.unit_id
    row = ctx.session.scalar(select(IncidentPaging).where(IncidentPaging.unit_id == unit,
                                                          IncidentPaging.severity == severity))
    if row is None:
        raise NotFound(f"no paging is configured for {severity} in unit {unit}")
    ctx.audit("incident.paging.delete", target_type="incident_paging", target_id=row.id, unit_id=unit,
              details={"severity": severity})
    ctx.session.delete(row)
    ctx.session.flush()
