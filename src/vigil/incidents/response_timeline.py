"""The incident timeline with what the response machinery did for it: the escalation steps (paged, failed,
escalated, acknowledged) and the notification deliveries, read from their own records and merged in time
order with the incident's entries. Each reader's scope applies to each record."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from vigil.core.i18n import N_
from vigil.incidents.models import TimelineEntry
from vigil.incidents.schemas import TimelineRead
from vigil.response.escalation import steps_for_incident
from vigil.response.notifications.service import deliveries_query
from vigil.response.oncall_models import EscalationStep

STEP_SUMMARIES = {
    "started": N_("Escalation started (%(detail)s)"),
    "level": N_("Escalated to %(detail)s"),
    "queued": N_("Paging %(username)s (level %(level)s) through %(channel)s"),
    "sending": N_("Paging %(username)s (level %(level)s) through %(channel)s"),
    "notified": N_("Paged %(username)s (level %(level)s) through %(channel)s"),
    "notify-failed": N_("Paging %(username)s (level %(level)s) through %(channel)s failed: %(detail)s"),
    "nobody-on-call": N_("Nobody to page at level %(level)s: %(detail)s"),
    "acknowledged": N_("Paging acknowledged by %(username)s via %(channel)s"),
    "exhausted": N_("Paging ran out: %(detail)s"),
}


def _step_entry(step: EscalationStep) -> TimelineRead:
    message = STEP_SUMMARIES.get(step.kind, "%(detail)s")
    params = {"username": step.username or "?", "level": (step.level or 0) + 1, "channel": step.channel or "?",
              "detail": step.detail}
    return TimelineRead(id=step.id, kind="escalation", actor="vigil" if step.kind != "acknowledged" else step.username,
                        at=step.at, summary=(message % params)[:500],
                        payload={"escalation_id": step.escalation_id, "step": step.kind, "level": step.level,
                                 "round": step.round, "user_id": step.user_id, "channel": step.channel,
                                 "delivery_id": step.delivery_id, "message": message, "params": params})


def response_entries(session: Session, incident_id: int) -> list[TimelineRead]:
    entries = [_step_entry(step) for step in steps_for_incident(session, incident_id)]
    for delivery in session.scalars(deliveries_query(incident_id=incident_id)):
        outcome = "sent" if delivery.status == "sent" else f"{delivery.status}: {delivery.last_error}"[:300]
        entries.append(TimelineRead(
            id=delivery.id, kind="notification", actor=delivery.created_by, at=delivery.created_at,
            summary=f"{delivery.channel_name} ({delivery.channel_kind}): {delivery.subject} - {outcome}"[:500],
            payload={"delivery_id": delivery.id, "channel": delivery.channel_name, "message_kind":
                     delivery.message_kind, "status": delivery.status, "attempts": delivery.attempts}))
    return entries


def merged_timeline(session: Session, incident_id: int, entries: Sequence[TimelineEntry]) -> list[TimelineRead]:
    """The incident's own entries and the response entries, oldest first (ties: the incident's first)."""
    own = [TimelineRead.model_validate(entry) for entry in entries]
    ordered = sorted([(item.at, 0, n, item) for n, item in enumerate(own)]
                     + [(item.at, 1, n, item) for n, item in enumerate(response_entries(session, incident_id))],
                     key=lambda row: (row[0], row[1], row[2]))
    return [row[3] for row in ordered]
