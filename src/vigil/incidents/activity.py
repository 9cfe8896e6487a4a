"""Work around an incident besides tasks: comments with @mentions, manual timeline entries, observables, and
the alerts linked to it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.events import emit
from vigil.core.i18n import N_
from vigil.detection import alerts_service
from vigil.detection.models import Alert
from vigil.detection.workflow import AlertStatus
from vigil.incidents.common import (
    can_read_incidents,
    event_fields,
    get_incident,
    get_open_incident,
    note,
    users_by_name,
)
from vigil.incidents.events import AlertsLinked, UsersMentioned
from vigil.incidents.models import Comment, Incident, IncidentAlert, Observable, TimelineEntry
from vigil.incidents.schemas import CommentCreate, ObservableCreate, TimelineCreate
from vigil.intel.indicators import IndicatorType, InvalidValue, guess, normalise

MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9][A-Za-z0-9_.-]{0,63})")


def mentioned_names(body: str) -> list[str]:
    """The @usernames in a comment, in order, each once (a trailing full stop is punctuation, not a name)."""
    return list(dict.fromkeys(name.rstrip(".") for name in MENTION.findall(body)))


def add_comment(ctx: Context, *, incident_id: int, data: CommentCreate) -> Comment:
    """Comment on the incident; each @username of an enabled user who may read it is stored as a mention and
    announced."""
    incident = get_incident(ctx.session, incident_id)
    users = users_by_name(ctx.session, mentioned_names(data.body))
    # Only people who may read the incident are mentioned (and so told of it); others stay plain text.
    mentions = list(dict.fromkeys(user.id for name in mentioned_names(data.body)
                                  if (user := users.get(name.lower())) is not None
                                  and can_read_incidents(ctx.session, user.id, incident.unit_id)))
    comment = Comment(incident_id=incident.id, author_id=ctx.actor.user_id, author=ctx.actor.name, body=data.body,
                      mentions=mentions)
    ctx.session.add(comment)
    ctx.session.flush()
    note(ctx, incident, "comment", data.body[:200], comment_id=comment.id, mentions=mentions)
    ctx.audit("incident.comment", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "comment_id": comment.id, "mentions": mentions})
    if mentions:
        emit(ctx.session, UsersMentioned(**event_fields(ctx.session, ctx, incident), comment_id=comment.id,
                                         user_ids=tuple(mentions)))
    return comment


def comments_of(session: Session, incident_id: int) -> list[Comment]:
    return list(session.scalars(select(Comment).where(Comment.incident_id == incident_id).order_by(Comment.id)))


def add_timeline_entry(ctx: Context, *, incident_id: int, data: TimelineCreate) -> TimelineEntry:
    """A manual line in the timeline (what a responder did or learned outside Vigil), at a time they give."""
    incident = get_incident(ctx.session, incident_id)
    at = data.at or utcnow()
    if at > utcnow():
        raise BadInput("a timeline entry cannot be in the future", errors=[{"field": "at", "message": "in the future"}])
    entry = note(ctx, incident, "manual", data.summary, at=at)
    ctx.session.flush()
    ctx.audit("incident.timeline.add", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "entry_id": entry.id, "at": at.isoformat()})
    return entry


def timeline_of(session: Session, incident_id: int) -> list[TimelineEntry]:
    return list(session.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == incident_id)
                                .order_by(TimelineEntry.at, TimelineEntry.id)))


# --- observables ------------------------------------------------------------------------------------


def _normalised(kind: str, raw: str) -> tuple[str, str]:
    try:
        if not kind:
            guessed, value = guess(raw)
            return str(guessed), value
        try:
            known = IndicatorType(kind)
        except ValueError as exc:
            raise BadInput(f"{kind!r} is no observable type ({', '.join(t.value for t in IndicatorType)})",
                           errors=[{"field": "type", "message": "unknown type"}]) from exc
        return str(known), normalise(known, raw)
    except InvalidValue as exc:
        raise BadInput(f"{raw!r} is not a valid {kind or 'observable'}: {exc}",
                       errors=[{"field": "value", "message": str(exc)}]) from exc


def add_observable(ctx: Context, *, incident_id: int, data: ObservableCreate) -> Observable:
    """Record a value seen in the incident, normalised as intel normalises indicators (so it is looked up in
    the indicator store by type and value); the same value twice is refused (409)."""
    incident = get_incident(ctx.session, incident_id)
    kind, value = _normalised(data.type, data.value)
    if ctx.session.scalar(select(Observable.id).where(Observable.incident_id == incident.id, Observable.type == kind,
                                                      Observable.value == value)) is not None:
        raise Conflict(f"incident {incident.ref} already has the {kind} {value}")
    observable = Observable(incident_id=incident.id, type=kind, value=value, description=data.description,
                            malicious=data.malicious, added_by=ctx.actor.name)
    ctx.session.add(observable)
    ctx.session.flush()
    note(ctx, incident, "action", N_("Observable added: %(type)s %(value)s"), params={"type": kind, "value": value},
         observable_id=observable.id)
    ctx.audit("incident.observable.add", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "type": kind, "value": value})
    return observable


def remove_observable(ctx: Context, *, incident_id: int, observable_id: int) -> None:
    incident = get_incident(ctx.session, incident_id)
    observable = ctx.session.scalar(select(Observable).where(Observable.id == observable_id,
                                                             Observable.incident_id == incident.id))
    if observable is None:
        raise NotFound(f"incident {incident.ref} has no observable {observable_id}")
    note(ctx, incident, "action", N_("Observable removed: %(type)s %(value)s"),
         params={"type": observable.type, "value": observable.value})
    ctx.audit("incident.observable.remove", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "type": observable.type, "value": observable.value})
    ctx.session.delete(observable)
    ctx.session.flush()


def observables_of(session: Session, incident_id: int) -> list[Observable]:
    return list(session.scalars(select(Observable).where(Observable.incident_id == incident_id)
                                .order_by(Observable.id)))


# --- alerts -----------------------------------------------------------------------------------------


def visible_alerts(session: Session, ids: Sequence[int]) -> list[Alert]:
    """The alerts, all visible to the caller (else ``NotFound`` naming the others)."""
    wanted = list(dict.fromkeys(ids))
    found = {alert.id: alert for alert in session.scalars(select(Alert).where(Alert.id.in_(wanted)))}
    missing = [alert_id for alert_id in wanted if alert_id not in found]
    if missing:
        raise NotFound("these alerts do not exist or are outside your organisation units: "
                       + ", ".join(map(str, missing)), ids=missing)
    return [found[alert_id] for alert_id in wanted]


def link_alerts(ctx: Context, incident: Incident, alert_ids: Sequence[int], *, at: datetime | None = None) -> list[int]:
    """Link the alerts to the incident, all or none: an alert of another unit, or one linked to another
    incident, refuses the whole call. Each alert not yet escalated is escalated; already linked ones are
    left alone. Returns the ids newly linked."""
    alerts = visible_alerts(ctx.session, alert_ids)
    links = {row.alert_id: row.incident_id for row in ctx.session.scalars(
        select(IncidentAlert).where(IncidentAlert.alert_id.in_([a.id for a in alerts])))}
    elsewhere = [a.id for a in alerts if links.get(a.id) not in (None, incident.id)]
    if elsewhere:
        raise Conflict("these alerts belong to another incident: " + ", ".join(map(str, elsewhere)), ids=elsewhere)
    foreign = [a.id for a in alerts if a.unit_id != incident.unit_id]
    if foreign:
        raise BadInput("these alerts belong to another organisation unit than the incident: "
                       + ", ".join(map(str, foreign)), errors=[{"field": "alert_ids", "message": "another unit"}])
    fresh = [a for a in alerts if a.id not in links]
    now = at or utcnow()
    for alert in fresh:
        ctx.session.add(IncidentAlert(incident_id=incident.id, alert_id=alert.id, linked_by=ctx.actor.name,
                                      linked_at=now))
        if alert.status in (AlertStatus.NEW, AlertStatus.ACKNOWLEDGED):
            alerts_service.escalate(ctx, alert_id=alert.id, comment=f"escalated to {incident.ref}")
        alert.incident_id = incident.id
        note(ctx, incident, "alert", N_("Alert linked: %(title)s"), params={"title": alert.title}, at=now,
             alert_id=alert.id, level=alert.level,
             host=alert.host, user=alert.user_name, rule_uid=alert.rule_uid)
    if fresh:
        ctx.audit("incident.alert.link", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
                  details={"ref": incident.ref, "alert_ids": [a.id for a in fresh]})
        emit(ctx.session, AlertsLinked(**event_fields(ctx.session, ctx, incident),
                                       alert_ids=tuple(a.id for a in fresh)))
    ctx.session.flush()
    return [a.id for a in fresh]


def add_alerts(ctx: Context, *, incident_id: int, alert_ids: Sequence[int]) -> list[int]:
    return link_alerts(ctx, get_open_incident(ctx.session, incident_id), alert_ids)


def remove_alert(ctx: Context, *, incident_id: int, alert_id: int) -> None:
    """Unlink an alert (it keeps its escalated state, which the analyst may change in the alert queue)."""
    incident = get_incident(ctx.session, incident_id)
    link = ctx.session.scalar(select(IncidentAlert).where(IncidentAlert.incident_id == incident.id,
                                                          IncidentAlert.alert_id == alert_id))
    if link is None:
        raise NotFound(f"alert {alert_id} is not linked to incident {incident.ref}")
    alert = ctx.session.scalar(select(Alert).where(Alert.id == alert_id))
    if alert is not None:
        alert.incident_id = None
    note(ctx, incident, "alert", N_("Alert unlinked: %(title)s"), params={"title": alert.title if alert else alert_id},
         alert_id=alert_id)
    ctx.audit("incident.alert.unlink", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "alert_id": alert_id})
    ctx.session.delete(link)
    ctx.session.flush()


def alerts_of(session: Session, incident_id: int) -> list[tuple[Alert, IncidentAlert]]:
    rows = session.execute(select(Alert, IncidentAlert).join(IncidentAlert, IncidentAlert.alert_id == Alert.id)
                           .where(IncidentAlert.incident_id == incident_id).order_by(IncidentAlert.id)).all()
    return [(alert, link) for alert, link in rows]


def incidents_with_observable(session: Session, *, values: Sequence[str], units: Sequence[int] | None = None,
                              limit: int = 50) -> list[Incident]:
    """The incidents (newest first) whose observables hold one of ``values`` (normalised as intel normalises
    them), within the session's scope and, when given, ``units``: what the intel lookup shows."""
    wanted = [value for value in dict.fromkeys(values) if value]
    if not wanted or (units is not None and not units):
        return []
    query = select(Incident).where(Incident.id.in_(select(Observable.incident_id)
                                                   .where(Observable.value.in_(wanted))))
    if units is not None:
        query = query.where(Incident.unit_id.in_(units))
    return list(session.scalars(query.order_by(Incident.created_at.desc(), Incident.id.desc()).limit(limit)))
