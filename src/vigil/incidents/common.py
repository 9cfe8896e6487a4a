"""What every incident service module shares: finding an incident in the caller's scope, writing its timeline
and history, checking the users it names, and the fields of its domain events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.accounts.models import User
from vigil.core.auth import ROLE_PERMISSIONS, Permission, Role
from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.incidents.models import Incident, IncidentType, StatusChange, TimelineEntry

TIMELINE_KINDS = ("alert", "state_change", "task", "action", "notification", "comment", "manual", "sla")


def get_incident(session: Session, incident_id: int) -> Incident:
    found = session.scalar(select(Incident).where(Incident.id == incident_id))
    if found is None:
        raise NotFound(f"incident {incident_id} does not exist or is outside your organisation units")
    return found


def get_open_incident(session: Session, incident_id: int) -> Incident:
    """The incident, refusing (409) work on a closed one: reopen it first."""
    incident = get_incident(session, incident_id)
    if incident.status == "closed":
        raise Conflict(f"incident {incident.ref} is closed; reopen it first", ref=incident.ref)
    return incident


def type_key(session: Session, incident: Incident) -> str:
    return session.scalar(select(IncidentType.key).where(IncidentType.id == incident.type_id)) or "other"


def find_type(session: Session, key: str) -> IncidentType:
    found = session.scalar(select(IncidentType).where(IncidentType.key == key))
    if found is None or not found.enabled:
        known = ", ".join(session.scalars(select(IncidentType.key).where(IncidentType.enabled)
                                          .order_by(IncidentType.position)))
        raise BadInput(f"{key!r} is no incident type (types: {known})",
                       errors=[{"field": "type", "message": "unknown incident type"}])
    return found


def event_fields(session: Session, ctx: Context, incident: Incident) -> dict[str, Any]:
    """The fields every ``IncidentEvent`` carries."""
    return {"unit_id": incident.unit_id, "actor": ctx.actor.name, "incident_id": incident.id, "ref": incident.ref,
            "severity": incident.severity, "type_key": type_key(session, incident)}


def note(ctx: Context, incident: Incident, kind: str, summary: str, *, at: datetime | None = None,
         params: Mapping[str, Any] | None = None, **payload: Any) -> TimelineEntry:
    """Add one timeline entry (and mark the incident updated). With ``params`` (even empty), ``summary`` is a
    message of the catalogues (``N_``) with ``%(name)s`` variables: the entry stores its English text, and
    the message and its values in ``payload`` so the pages show it in the reader's language. Without, the
    summary is a person's own words (a comment, a manual entry), shown as written."""
    if params is not None:
        payload = {**payload, "message": summary, "params": dict(params)}
        summary = summary % params if params else summary
    entry = TimelineEntry(incident_id=incident.id, kind=kind, actor=ctx.actor.name, at=at or utcnow(),
                          summary=summary, payload=payload)
    ctx.session.add(entry)
    incident.updated_at = utcnow()
    return entry


def record_change(ctx: Context, incident: Incident, kind: str, *, at: datetime, from_phase: str | None = None,
                  to_phase: str | None = None, reason: str = "") -> StatusChange:
    change = StatusChange(incident_id=incident.id, kind=kind, from_phase=from_phase, to_phase=to_phase,
                          actor=ctx.actor.name, at=at, reason=reason)
    ctx.session.add(change)
    return change


def can_read_incidents(session: Session, user_id: int, unit_id: int) -> bool:
    """Whether the user holds ``incidents:read`` on the unit (through a grant there or above it)."""
    tree = accounts.load_unit_tree(session)
    for role, granted_at in accounts.all_grants(session, user_id):
        if Permission.INCIDENTS_READ in ROLE_PERMISSIONS.get(Role(role), frozenset()) and unit_id in tree.subtree(
                granted_at):
            return True
    return False


def check_users(session: Session, user_ids: Iterable[int], unit_id: int, field: str) -> list[User]:
    """The users, each enabled and able to read incidents of the unit; else ``BadInput`` naming the field."""
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return []
    found = {user.id: user for user in session.scalars(select(User).where(User.id.in_(wanted)),
                                                       execution_options=accounts.UNSCOPED)}
    problems: list[str] = []
    for user_id in wanted:
        user = found.get(user_id)
        if user is None or user.disabled:
            problems.append(f"user {user_id} does not exist or is disabled")
        elif not can_read_incidents(session, user.id, unit_id):
            problems.append(f"{user.username} cannot read incidents of this incident's organisation unit")
    if problems:
        raise BadInput("; ".join(problems), errors=[{"field": field, "message": p} for p in problems])
    return [found[user_id] for user_id in wanted]


def user_names(session: Session, user_ids: Iterable[int | None]) -> dict[int, str]:
    """Usernames for display (the people named may sit in units the reader does not see)."""
    wanted = {user_id for user_id in user_ids if user_id is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.username).where(User.id.in_(wanted)),
                           execution_options=accounts.UNSCOPED)
    return {user_id: name for user_id, name in rows}


def users_by_name(session: Session, names: Sequence[str]) -> dict[str, User]:
    """Enabled users by username (case-insensitive), for @mentions."""
    if not names:
        return {}
    lowered = {name.lower() for name in names}
    rows = session.scalars(select(User).where(User.username.in_(lowered) | User.username.in_(names)),
                           execution_options=accounts.UNSCOPED)
    return {user.username.lower(): user for user in rows if not user.disabled}
