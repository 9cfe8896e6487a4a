"""Passive intake: any signed-in employee reports a suspected incident; analysts triage the reports of their
units (accept: an incident opens, linked to the report; reject: with a reason); the reporter follows the status.

Anonymity: an anonymous report stores no user id, no name and no address; its audit record names the actor
``anonymous`` without a source address (the unit stays, since the report belongs to the reporter's unit's
triage queue). The reporter follows it with a random token shown once; only the token's digest is stored.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from vigil.accounts.service import UNSCOPED
from vigil.core import audit
from vigil.core.auth import digest
from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.i18n import N_
from vigil.incidents import service
from vigil.incidents.common import find_type, note
from vigil.incidents.evidence_models import IncidentReport
from vigil.incidents.evidence_schemas import ReportAccept, ReportCreate, ReportReject, ReportStatus
from vigil.incidents.models import Incident
from vigil.incidents.schemas import IncidentCreate

ANONYMOUS = "anonymous"


def submit(ctx: Context, *, data: ReportCreate) -> tuple[IncidentReport, str | None]:
    """Record a report in the reporter's unit; for an anonymous one, also the follow-up token (shown once)."""
    find_type(ctx.session, data.category)
    unit_id = ctx.actor.unit_id
    token = secrets.token_urlsafe(32) if data.anonymous else None
    report = IncidentReport(unit_id=unit_id, title=data.title, description=data.description, category=data.category,
                            observed_at=data.observed_at, anonymous=data.anonymous,
                            reporter_id=None if data.anonymous else ctx.actor.user_id,
                            reporter="" if data.anonymous else ctx.actor.name,
                            follow_digest=digest(token) if token else None)
    ctx.session.add(report)
    ctx.session.flush()
    actor = audit.Actor(None, ANONYMOUS, unit_id, "") if data.anonymous else ctx.actor
    audit.record(ctx.session, actor=actor, action="incident.report.submit", target_type="incident_report",
                 target_id=report.id, unit_id=unit_id, details={"title": data.title, "anonymous": data.anonymous})
    return report, token


def reports_query(status: str | None = None) -> Select[IncidentReport]:
    """The triage queue of the caller's units (the scope narrows it), newest first."""
    query = select(IncidentReport).order_by(IncidentReport.id.desc())
    return query.where(IncidentReport.status == status) if status else query


def get_report(session: Session, report_id: int) -> IncidentReport:
    found = session.scalar(select(IncidentReport).where(IncidentReport.id == report_id))
    if found is None:
        raise NotFound(f"report {report_id} does not exist or is outside your organisation units")
    return found


def own_reports_query(user_id: int) -> Select[IncidentReport]:
    """The reports a signed-in user made under their name (anonymous ones are not linked to anyone)."""
    return select(IncidentReport).where(IncidentReport.reporter_id == user_id).order_by(IncidentReport.id.desc())


def own_reports(session: Session, user_id: int) -> Sequence[IncidentReport]:
    return session.scalars(own_reports_query(user_id).limit(200)).all()


def status_of(session: Session, report: IncidentReport) -> ReportStatus:
    ref = session.scalar(select(Incident.ref).where(Incident.id == report.incident_id),
                         execution_options=UNSCOPED) if report.incident_id else None
    return ReportStatus(id=report.id, title=report.title, status=report.status, reason=report.reason,
                        incident_ref=ref, created_at=report.created_at)


def follow(session: Session, token: str) -> ReportStatus:
    """The status of the report the follow-up token belongs to; the token is the credential."""
    found = session.scalar(select(IncidentReport).where(IncidentReport.follow_digest == digest(token)),
                           execution_options=UNSCOPED) if 20 <= len(token) <= 100 else None
    if found is None:
        raise NotFound("no report has this follow-up link")
    return status_of(session, found)


def _untriaged(session: Session, report_id: int) -> IncidentReport:
    report = get_report(session, report_id)
    if report.status != "new":
        raise Conflict(f"report {report_id} was already triaged ({report.status})", state=report.status)
    return report


def accept(ctx: Context, *, report_id: int, data: ReportAccept) -> Incident:
    """Open an incident from the report, in the report's unit, and link them."""
    report = _untriaged(ctx.session, report_id)
    incident = service.open_incident(ctx, data=IncidentCreate(
        title=data.title or report.title, description=report.description, type=data.type or report.category,
        severity=data.severity, unit_id=report.unit_id), source="report")
    report.status, report.incident_id = "accepted", incident.id
    report.triaged_by, report.triaged_at = ctx.actor.name, utcnow()
    note(ctx, incident, "manual", N_("Opened from report #%(id)s"), params={"id": report.id}, report_id=report.id)
    ctx.audit("incident.report.accept", target_type="incident_report", target_id=report.id, unit_id=report.unit_id,
              details={"incident_id": incident.id, "ref": incident.ref})
    return incident


def reject(ctx: Context, *, report_id: int, data: ReportReject) -> IncidentReport:
    report = _untriaged(ctx.session, report_id)
    if not data.reason.strip():
        raise BadInput("give a reason", errors=[{"field": "reason", "message": "required"}])
    report.status, report.reason = "rejected", data.reason
    report.triaged_by, report.triaged_at = ctx.actor.name, utcnow()
    ctx.audit("incident.report.reject", target_type="incident_report", target_id=report.id, unit_id=report.unit_id,
              details={"reason": data.reason})
    return report
