"""Escalations and incidents wired to the notification channels.

* ``ChannelNotify`` is the escalation engine's ``Notify`` once channels exist: the engine records one
  ``queued`` step per person and channel of a level (in its own transaction), and ``dispatch`` sends them
  afterwards with ``notifications.service.send_detached``, so no transaction stays open while an endpoint
  is slow. Each step then reads ``notified`` or ``notify-failed`` with the delivery's id; the delivery
  carries the incident's id and unit, so the incident's readers see it. A level without channels sends
  nothing and its steps say so.
* ``IncidentPaging`` listens to the incident domain's events (after their transaction commits) and hands
  the work to the escalation runner's thread: an incident that opens, or whose severity rises, starts the
  escalation policy configured for its unit and severity (``paging_service``) and tells the configured
  channels "incident opened"; acknowledging the incident stops its paging; an approved post-mortem is
  published to the knowledge base and the git wiki (``incidents.postmortem_report``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from vigil.accounts.models import User
from vigil.accounts.service import UNSCOPED
from vigil.core import audit
from vigil.core.config import Settings
from vigil.core.context import Context
from vigil.core.db import Database, Scope, utcnow
from vigil.core.errors import Conflict, NotFound, VigilError
from vigil.core.events import bus
from vigil.incidents import postmortem_report
from vigil.incidents import service as incidents
from vigil.incidents.events import (
    IncidentAcknowledged,
    IncidentEvent,
    IncidentOpened,
    IncidentSeverityChanged,
    PostMortemApproved,
)
from vigil.incidents.models import Incident
from vigil.incidents.schemas import SEVERITY_RANK
from vigil.response import escalation as engine
from vigil.response import oncall_service, paging_service
from vigil.response.escalation import EscalationAcknowledged, Pager, PagesQueued, Recipient
from vigil.response.notifications import service as notifications
from vigil.response.notifications.messages import Message, MessageKind
from vigil.response.notifications.models import NotificationDelivery
from vigil.response.oncall_models import Escalation, EscalationStep

if TYPE_CHECKING:
    from vigil.response.oncall_runtime import EscalationRunner

log = logging.getLogger(__name__)
# A send with all its retries is over within minutes; a page still "sending" after this was interrupted.
INTERRUPTED_AFTER = timedelta(minutes=15)


@dataclass(frozen=True)
class _Page:
    """A queued step, copied, so the sending runs with no session open."""

    step_id: int
    escalation_id: int
    incident_id: int
    unit_id: int
    channel_id: int
    user_id: int
    recipient: str
    title: str
    severity: str
    level: int
    at: datetime


class ChannelNotify:
    """The ``Notify`` of `vigil serve` with notification channels: pages go out after the engine's transaction
    commits (``deferred``), through the channels each policy level names."""

    name = "notification channels"
    deferred = True

    def __init__(self, settings: Settings, database: Database, *,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.settings = settings
        self.db = database
        self.sleep = sleep

    def __call__(self, user: Recipient, message_kind: str, title: str, body: str, ack_url: str) -> None:
        # The engine never calls a deferred notifier directly; if something does, sending nothing must show.
        raise RuntimeError("ChannelNotify sends queued steps through dispatch(), not directly")

    def link(self, incident_id: int) -> str:
        return f"{self.settings.public_url.rstrip('/')}/incidents/{incident_id}"

    def send(self, *, channel_id: int, message: Message, unit_id: int) -> NotificationDelivery:
        with self.db.transaction(Scope.system()) as session:
            actor = engine.system_actor(session)
        return notifications.send_detached(self.db, actor=actor, channel_id=channel_id, message=message,
                                           unit_id=unit_id, retry_delay=self.settings.notify_retry_seconds,
                                           timeout=self.settings.notify_timeout_seconds,
                                           sleep=self.sleep or time.sleep)

    def _claim(self, step_id: int) -> _Page | None:
        """Marks a queued step ``sending`` (so two dispatchers never send it twice) and copies what sending
        needs; None when another dispatcher took it."""
        with self.db.transaction(Scope.system()) as session:
            taken = session.execute(update(EscalationStep).where(EscalationStep.id == step_id,
                                                                 EscalationStep.kind == "queued")
                                    .values(kind="sending")).rowcount  # type: ignore[attr-defined]
            if not taken:
                return None
            step = session.get(EscalationStep, step_id)
            escalation = session.get(Escalation, step.escalation_id) if step else None
            if step is None or escalation is None:
                return None
            incident = session.get(Incident, escalation.incident_id)
            user = oncall_service.user_names(session, [step.user_id or 0]).get(step.user_id or 0)
            shown = user.display_name or user.username if user else step.username
            return _Page(step.id, escalation.id, escalation.incident_id,
                         incident.unit_id if incident is not None else escalation.unit_id, step.channel_id or 0,
                         step.user_id or 0, f"{shown} (@{step.username})", escalation.title, escalation.severity,
                         step.level or 0, step.at)

    def _record(self, page: _Page, *, kind: str, channel: str, detail: str, delivery_id: int | None) -> None:
        with self.db.transaction(Scope.system()) as session:
            step = session.get(EscalationStep, page.step_id)
            if step is not None:
                step.kind, step.channel, step.delivery_id = kind, channel[:60], delivery_id
                step.detail = detail[:1000]

    def dispatch(self, pager: Pager) -> int:
        """Sends every queued page, oldest first; the number sent (a failed one counts too). A page left
        ``sending`` by a server that stopped mid-send (queued over ``INTERRUPTED_AFTER`` ago) is sent again:
        a page twice is better than a page never."""
        with self.db.transaction(Scope.system()) as session:
            session.execute(update(EscalationStep).where(
                EscalationStep.kind == "sending", EscalationStep.at < utcnow() - INTERRUPTED_AFTER).values(
                kind="queued", detail="sent again: the first send was interrupted"))
            queued = list(session.scalars(select(EscalationStep.id).where(EscalationStep.kind == "queued")
                                          .order_by(EscalationStep.at, EscalationStep.id)))
        done = 0
        for step_id in queued:
            page = self._claim(step_id)
            if page is None:
                continue
            url = pager.ack_url(pager.links.sign(escalation_id=page.escalation_id, user_id=page.user_id,
                                                 expires=page.at + pager.link_ttl))
            message = Message(MessageKind.ESCALATION, subject=page.title, severity=page.severity,
                              incident_id=page.incident_id, link=self.link(page.incident_id), ack_link=url,
                              recipient=page.recipient, level=page.level + 1)
            try:
                delivery = self.send(channel_id=page.channel_id, message=message, unit_id=page.unit_id)
            except NotFound:
                self._record(page, kind="notify-failed", channel=f"channel #{page.channel_id}", delivery_id=None,
                             detail=f"notification channel {page.channel_id} no longer exists")
            else:
                failed = delivery.status != "sent"
                self._record(page, kind="notify-failed" if failed else "notified", channel=delivery.channel_name,
                             delivery_id=delivery.id,
                             detail=(f"delivery {delivery.id}: {delivery.last_error}" if failed
                                     else f"delivery {delivery.id}: {page.title}"))
            done += 1
        return done


class IncidentPaging:
    """Subscribes to the incident events while `vigil serve` runs; paging and "incident opened" run in the
    runner's thread (a slow endpoint never holds a request), publishing an approved post-mortem right away."""

    def __init__(self, runner: EscalationRunner) -> None:
        self.runner = runner
        self._unsubscribe: list[Callable[[], None]] = []

    def start(self) -> None:
        if self._unsubscribe:
            return
        self._unsubscribe = [
            bus.subscribe(IncidentOpened, lambda e: self.runner.submit(lambda: self.on_raised(e, opened=True))),
            bus.subscribe(IncidentSeverityChanged,
                          lambda e: self.runner.submit(lambda: self.on_raised(e, opened=False))),
            bus.subscribe(IncidentAcknowledged, lambda e: self.runner.submit(lambda: self.on_acknowledged(e))),
            bus.subscribe(PagesQueued, lambda e: self.runner.wake()),
            bus.subscribe(EscalationAcknowledged,
                          lambda e: self.runner.submit(lambda: self.on_page_acknowledged(e))),
            # Publishing runs in the approving request's thread, right after its commit: the approver sees the
            # page and the commit when the answer comes (a git push, as the knowledge base's own button does).
            bus.subscribe(PostMortemApproved, self.on_approved),
        ]

    def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def on_raised(self, event: IncidentEvent, *, opened: bool) -> None:
        """Start the configured policy (unless the incident is already paged) and, for a new incident, tell
        the configured channels."""
        if isinstance(event, IncidentSeverityChanged) and \
                SEVERITY_RANK.get(event.severity, 9) >= SEVERITY_RANK.get(event.previous, 9):
            return  # only a rise pages
        database = self.runner.db
        with database.transaction(Scope.system()) as session:
            incident = session.get(Incident, event.incident_id)
            rule = paging_service.rule_for(session, unit_id=event.unit_id, severity=event.severity)
            if incident is None or rule is None:
                return
            channel_ids, title = list(rule.channel_ids) if opened else [], incident.title
            if rule.policy_id is not None:
                ctx = Context(session=session, actor=engine.system_actor(session))
                try:
                    with session.begin_nested():
                        engine.start(ctx, incident_id=incident.id, title=f"{incident.ref} {title}",
                                     severity=incident.severity, policy_id=rule.policy_id, now=utcnow(),
                                     pager=self.runner.pager)
                except Conflict:
                    log.info("incident %s is already being paged", incident.ref)
        channels = self.runner.notify
        if isinstance(channels, ChannelNotify):
            for channel_id in channel_ids:
                try:
                    channels.send(channel_id=channel_id, unit_id=event.unit_id, message=Message(
                        MessageKind.INCIDENT_OPENED, subject=f"{event.ref} {title}", severity=event.severity,
                        incident_id=event.incident_id, link=channels.link(event.incident_id)))
                except NotFound:
                    log.warning("incident %s: notification channel %d no longer exists", event.ref, channel_id)

    def on_approved(self, event: PostMortemApproved) -> None:
        """An approved post-mortem goes to the knowledge base (and the git wiki when configured), published by
        its approver; a failure is logged and the post-mortem can be published by hand."""
        with self.runner.db.transaction(Scope.system()) as session:
            approver = session.scalar(select(User).where(User.username == event.actor), execution_options=UNSCOPED)
            actor = audit.Actor(approver.id if approver else None, event.actor,
                                approver.unit_id if approver else engine.system_actor(session).unit_id)
            try:
                with session.begin_nested():
                    postmortem_report.publish(Context(session=session, actor=actor), settings=self.runner.settings,
                                              incident_id=event.incident_id)
            except VigilError as exc:
                log.warning("incident %s: publishing the approved post-mortem failed: %s", event.ref, exc)

    def on_acknowledged(self, event: IncidentAcknowledged) -> None:
        """The incident is acknowledged (page, API, CLI or a phase move): its paging stops."""
        with self.runner.db.transaction(Scope.system()) as session:
            running = session.scalar(select(Escalation).where(Escalation.incident_id == event.incident_id,
                                                              Escalation.status == "active"))
            if running is not None:
                actor = audit.Actor(None, event.actor, engine.system_actor(session).unit_id)
                engine.acknowledge(Context(session=session, actor=actor), escalation_id=running.id,
                                   via="incident", now=utcnow(), note=f"incident {event.ref} acknowledged")

    def on_page_acknowledged(self, event: EscalationAcknowledged) -> None:
        """Whoever acknowledges a page (on the page, by the API or the signed link) has taken the incident up:
        the incident's time-to-acknowledge clock stops at that moment too (once; a later page changes nothing)."""
        if event.via == "incident":  # the incident's own acknowledgement stopped this paging
            return
        with self.runner.db.transaction(Scope.system()) as session:
            user = session.scalar(select(User).where(User.username == event.actor), execution_options=UNSCOPED)
            actor = audit.Actor(user.id if user else None, event.actor,
                                user.unit_id if user else engine.system_actor(session).unit_id)
            try:
                incidents.acknowledge(Context(session=session, actor=actor), incident_id=event.incident_id,
                                      at=event.at)
            except NotFound:
                log.info("escalation %d: its incident %d no longer exists", event.escalation_id, event.incident_id)
