"""The escalation engine: paging people for an incident through a policy until someone acknowledges.

``start`` records an escalation and notifies level 1 at once; ``tick(now)`` (every ~30 s in `vigil serve`)
moves each active escalation whose level timed out to the next level, starts the policy over while it has
repeats left, and marks it exhausted after the last. Every step (level change, notification, failure,
acknowledgement) is an ``EscalationStep`` row the incident timeline can read.

Notifications go through a ``Notify`` callable, so the channels (DingTalk, WeCom, e-mail...) plug in from
outside; ``UnwiredNotify`` is the path until they do: it sends nothing and says so in the log and the steps.
Each notification carries a signed acknowledgement link (``AckLinks``): HMAC-SHA256 with the app's secret key
over the escalation id, the user and an expiry, usable for this one purpose only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.accounts.models import User
from vigil.accounts.service import root_unit_id
from vigil.core import audit
from vigil.core.context import Context
from vigil.core.db import Database, Scope, get_scope
from vigil.core.errors import Conflict, NotFound, PermissionDenied
from vigil.core.events import DomainEvent, emit
from vigil.response import oncall_service
from vigil.response.oncall_models import Escalation, EscalationStep

log = logging.getLogger(__name__)

SYSTEM_NAME = "vigil"  # the audit trail's name for what the engine does on its own
LINK_PURPOSE = b"vigil/escalation-acknowledge/v1"
DEFAULT_LINK_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Recipient:
    user_id: int
    username: str
    display_name: str
    email: str
    language: str | None


class Notify(Protocol):
    """Sends one page to one user. ``message_kind`` is "page" (the first level of the first round) or
    "escalated"; ``ack_url`` is the signed link. Raising marks the notification failed (it is recorded and the
    escalation goes on)."""

    name: str

    def __call__(self, user: Recipient, message_kind: str, title: str, body: str, ack_url: str) -> None: ...


class UnwiredNotify:
    """The not-yet-wired path: no channel sends anything; the log and the escalation's steps say what would
    have been sent (without the link, which is a credential)."""

    name = "unwired (nothing sent)"

    def __call__(self, user: Recipient, message_kind: str, title: str, body: str, ack_url: str) -> None:
        log.warning("escalation: NOT SENT (no notification channel wired) %s to %s: %s", message_kind,
                    user.username, title)


class LinkRefused(PermissionDenied):
    code = "link-refused"
    title = "Link refused"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AckLinks:
    """Signs and checks acknowledgement tokens: ``<payload>.<mac>``, both base64url, the payload JSON
    ``{"e": escalation id, "u": user id, "x": expiry (Unix seconds)}``. The MAC key is derived from the app's
    secret key for this purpose alone, so no other signed value of the app passes as an acknowledgement."""

    def __init__(self, secret_key: str) -> None:
        self._key = hmac.new(secret_key.encode(), LINK_PURPOSE, hashlib.sha256).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def sign(self, *, escalation_id: int, user_id: int, expires: datetime) -> str:
        payload = json.dumps({"e": escalation_id, "u": user_id, "x": int(expires.timestamp())},
                             separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, token: str, *, now: datetime) -> tuple[int, int]:
        """(escalation id, user id) of a valid token; ``LinkRefused`` saying why otherwise."""
        try:
            payload_text, mac_text = token.split(".")
            payload, mac = _unb64(payload_text), _unb64(mac_text)
        except (ValueError, TypeError) as exc:
            raise LinkRefused("this acknowledgement link is malformed") from exc
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise LinkRefused("this acknowledgement link is not valid (it was changed or signed with another key)")
        data = json.loads(payload)
        if not (isinstance(data, dict) and all(isinstance(data.get(k), int) for k in ("e", "u", "x"))):
            raise LinkRefused("this acknowledgement link is malformed")
        if now.timestamp() >= data["x"]:
            raise LinkRefused("this acknowledgement link has expired; acknowledge in Vigil instead")
        return data["e"], data["u"]


@dataclass
class Pager:
    """What the engine needs to send pages: the notifier, the link signer, and the address links start with."""

    links: AckLinks
    notify: Notify = field(default_factory=UnwiredNotify)
    base_url: str = ""  # e.g. https://soc.example.com; empty gives links that are paths only
    link_ttl: timedelta = DEFAULT_LINK_TTL

    def ack_url(self, token: str) -> str:
        return f"{self.base_url.rstrip('/')}/ack/{token}"


def _step(session: Session, escalation: Escalation, kind: str, at: datetime, **fields: object) -> None:
    session.add(EscalationStep(unit_id=escalation.unit_id, escalation_id=escalation.id,
                               incident_id=escalation.incident_id, at=at, kind=kind, **fields))


def _recipient(user: User) -> Recipient:
    return Recipient(user.id, user.username, user.display_name or user.username, user.email, user.language)


def _recipients(session: Session, escalation: Escalation, level: int, at: datetime) -> list[Recipient]:
    found: dict[int, Recipient] = {}
    for target in escalation.levels[level]["targets"]:
        if target["kind"] == "user":
            user = oncall_service.user_names(session, [target["id"]]).get(target["id"])
            if user is None or user.disabled:
                _step(session, escalation, "nobody-on-call", at, level=level, round=escalation.round,
                      detail=f"user {target['id']} is gone or disabled")
                continue
        else:
            user = oncall_service.on_call_user(session, schedule_id=target["id"], at=at)
            if user is None or user.disabled:
                _step(session, escalation, "nobody-on-call", at, level=level, round=escalation.round,
                      detail=f"schedule {target['id']} has nobody on call")
                continue
        found.setdefault(user.id, _recipient(user))
    return list(found.values())


class NoChannelNotify(UnwiredNotify):
    """Channels are wired, but the level names none: nothing is sent, and the step says so."""

    name = "no channel on this level (nothing sent)"


@dataclass(frozen=True, kw_only=True)
class EscalationAcknowledged(DomainEvent):
    """Someone acknowledged a page (``via``: the UI, the API, the CLI, a signed link, or the incident itself)."""

    escalation_id: int
    incident_id: int
    via: str


@dataclass(frozen=True, kw_only=True)
class PagesQueued(DomainEvent):
    """Pages of an escalation wait in ``queued`` steps; whoever sends them (the runner) is told after commit."""

    escalation_id: int


def level_channels(escalation: Escalation, level: int) -> list[int]:
    return [int(c) for c in escalation.levels[level].get("channel_ids") or []]


def _notify_level(session: Session, escalation: Escalation, pager: Pager, at: datetime) -> None:
    level, total = escalation.level, len(escalation.levels)
    kind = "page" if level == 0 and escalation.round == 0 else "escalated"
    title = f"[{escalation.severity}] Incident #{escalation.incident_id}: {escalation.title}"
    notify: Notify = pager.notify
    channels = level_channels(escalation, level) if getattr(notify, "deferred", False) else []
    if getattr(notify, "deferred", False) and not channels:
        notify = NoChannelNotify()
    queued = False
    for user in _recipients(session, escalation, level, at):
        if channels:
            # Sent after this transaction commits (a slow endpoint must not hold it): one step per channel,
            # which the sender turns into notified / notify-failed with the delivery's id.
            for channel_id in channels:
                _step(session, escalation, "queued", at, level=level, round=escalation.round, user_id=user.user_id,
                      username=user.username, channel=f"channel #{channel_id}", channel_id=channel_id,
                      detail=f"{kind}: {title}"[:1000])
            queued = True
            continue
        url = pager.ack_url(pager.links.sign(escalation_id=escalation.id, user_id=user.user_id,
                                             expires=at + pager.link_ttl))
        body = (f"{title}\nEscalation level {level + 1} of {total}"
                + (f", round {escalation.round + 1} of {escalation.repeat + 1}" if escalation.repeat else "")
                + f". Acknowledge: {url}")
        try:
            notify(user, kind, title, body, url)
        except Exception as exc:  # a failing channel is recorded; the escalation carries on
            log.warning("escalation %d: notifying %s failed: %s", escalation.id, user.username, exc)
            _step(session, escalation, "notify-failed", at, level=level, round=escalation.round,
                  user_id=user.user_id, username=user.username, channel=notify.name[:60],
                  detail=str(exc)[:1000])
        else:
            _step(session, escalation, "notified", at, level=level, round=escalation.round, user_id=user.user_id,
                  username=user.username, channel=notify.name[:60], detail=f"{kind}: {title}"[:1000])
    if queued:
        emit(session, PagesQueued(unit_id=escalation.unit_id, actor=SYSTEM_NAME, escalation_id=escalation.id))


def advance(ctx: Context, escalation: Escalation, *, now: datetime, pager: Pager) -> bool:
    """Takes the escalation's next step when it is due; True when it did."""
    if escalation.status != "active" or escalation.next_at is None or escalation.next_at > now:
        return False
    session = ctx.session
    following = escalation.level + 1
    if following >= len(escalation.levels):
        if escalation.round >= escalation.repeat:
            escalation.status, escalation.next_at = "exhausted", None
            _step(session, escalation, "exhausted", now, level=escalation.level, round=escalation.round,
                  detail="no acknowledgement after the last level")
            ctx.audit("escalation.exhaust", target_type="escalation", target_id=escalation.id,
                      unit_id=escalation.unit_id, details={"incident_id": escalation.incident_id})
            return True
        escalation.round += 1
        following = 0
    escalation.level = following
    _step(session, escalation, "level", now, level=following, round=escalation.round,
          detail=f"level {following + 1} of {len(escalation.levels)}")
    if following or escalation.round:
        ctx.audit("escalation.escalate", target_type="escalation", target_id=escalation.id, unit_id=escalation.unit_id,
                  details={"incident_id": escalation.incident_id, "level": following + 1,
                           "round": escalation.round + 1})
    _notify_level(session, escalation, pager, now)
    escalation.next_at = now + timedelta(minutes=int(escalation.levels[following]["timeout_minutes"]))
    return True


def start(ctx: Context, *, incident_id: int, title: str, severity: str, policy_id: int, now: datetime,
          pager: Pager) -> Escalation:
    """Pages level 1 of the policy for an incident now; the next levels follow from ``tick``."""
    policy = oncall_service.get_policy(ctx.session, policy_id)
    running = ctx.session.scalar(select(Escalation.id).where(Escalation.incident_id == incident_id,
                                                             Escalation.status == "active"))
    if running is not None:
        raise Conflict(f"incident {incident_id} is already being paged (escalation {running})")
    escalation = Escalation(unit_id=policy.unit_id, incident_id=incident_id, title=title, severity=severity,
                            policy_id=policy.id, policy_name=policy.name, levels=list(policy.levels),
                            repeat=policy.repeat, started_at=now, started_by=ctx.actor.name, next_at=now)
    ctx.session.add(escalation)
    ctx.session.flush()
    _step(ctx.session, escalation, "started", now, detail=f"policy {policy.name}")
    ctx.audit("escalation.start", target_type="escalation", target_id=escalation.id, unit_id=escalation.unit_id,
              details={"incident_id": incident_id, "policy": policy.name, "severity": severity})
    advance(ctx, escalation, now=now, pager=pager)
    return escalation


def system_actor(session: Session) -> audit.Actor:
    return audit.Actor(user_id=None, name=SYSTEM_NAME, unit_id=root_unit_id(session))


def tick(database: Database, *, now: datetime, pager: Pager) -> int:
    """Advances every active escalation that is due, each in a transaction of its own; the number advanced."""
    with database.transaction(Scope.system()) as session:
        due = list(session.scalars(select(Escalation.id).where(Escalation.status == "active",
                                                               Escalation.next_at <= now).order_by(Escalation.id)))
    moved = 0
    for escalation_id in due:
        try:
            with database.transaction(Scope.system()) as session:
                escalation = session.scalar(select(Escalation).where(Escalation.id == escalation_id)
                                            .with_for_update(skip_locked=True))
                if escalation is not None:
                    ctx = Context(session=session, actor=system_actor(session))
                    moved += advance(ctx, escalation, now=now, pager=pager)
        except Exception:  # one broken escalation must not stop the others
            log.exception("escalation %d: the engine could not advance it", escalation_id)
    return moved


# --- acknowledging ------------------------------------------------------------------------------------


def get_escalation(session: Session, escalation_id: int) -> Escalation:
    found = session.get(Escalation, escalation_id)
    if found is None or not get_scope(session).allows(found.unit_id):
        raise NotFound(f"escalation {escalation_id} does not exist or is outside your scope")
    return found


def steps_of(session: Session, escalation_id: int) -> list[EscalationStep]:
    return list(session.scalars(select(EscalationStep).where(EscalationStep.escalation_id == escalation_id)
                                .order_by(EscalationStep.at, EscalationStep.id)))


def steps_for_incident(session: Session, incident_id: int) -> list[EscalationStep]:
    """Every paging step of an incident's escalations, oldest first: what the incident timeline shows."""
    return list(session.scalars(select(EscalationStep).where(EscalationStep.incident_id == incident_id)
                                .order_by(EscalationStep.at, EscalationStep.id)))


def acknowledge(ctx: Context, *, escalation_id: int, via: str, now: datetime, note: str = "") -> Escalation:
    """Stops the paging; refused (409) when someone acknowledged already."""
    escalation = get_escalation(ctx.session, escalation_id)
    if escalation.status == "acknowledged":
        raise Conflict(f"escalation {escalation_id} was acknowledged by {escalation.acknowledged_by} "
                       f"at {escalation.acknowledged_at:%Y-%m-%d %H:%M} UTC")
    was = escalation.status
    escalation.status, escalation.next_at = "acknowledged", None
    escalation.acknowledged_at, escalation.acknowledged_by, escalation.acknowledged_via = now, ctx.actor.name, via
    _step(ctx.session, escalation, "acknowledged", now, level=escalation.level, round=escalation.round,
          user_id=ctx.actor.user_id, username=ctx.actor.name, channel=via, detail=note[:1000])
    ctx.audit("escalation.acknowledge", target_type="escalation", target_id=escalation.id, unit_id=escalation.unit_id,
              details={"incident_id": escalation.incident_id, "via": via, "was": was})
    emit(ctx.session, EscalationAcknowledged(unit_id=escalation.unit_id, actor=ctx.actor.name, at=now,
                                             escalation_id=escalation.id, incident_id=escalation.incident_id, via=via))
    return escalation


@dataclass(frozen=True)
class LinkTarget:
    escalation: Escalation
    user: User


def resolve_link(session: Session, links: AckLinks, token: str, *, now: datetime) -> LinkTarget:
    """The escalation and user a signed link names, checked: valid signature, not expired, the user still
    active and paged by this escalation. ``session`` has the system scope (the link carries no session)."""
    escalation_id, user_id = links.verify(token, now=now)
    escalation = session.get(Escalation, escalation_id)
    user = session.get(User, user_id)
    if escalation is None or user is None or user.disabled:
        raise LinkRefused("this acknowledgement link names an escalation or user that no longer exists")
    paged = session.scalar(select(EscalationStep.id).where(EscalationStep.escalation_id == escalation_id,
                                                           EscalationStep.user_id == user_id,
                                                           # "sending": the page may arrive before its outcome
                                                           # is recorded
                                                           EscalationStep.kind.in_(("notified", "sending")))
                                .limit(1))
    if paged is None:
        raise LinkRefused("this acknowledgement link was not sent to this user")
    return LinkTarget(escalation, user)


def acknowledge_by_link(session: Session, links: AckLinks, token: str, *, now: datetime,
                        source_ip: str = "") -> Escalation:
    target = resolve_link(session, links, token, now=now)
    actor = audit.Actor(target.user.id, target.user.username, target.user.unit_id, source_ip)
    return acknowledge(Context(session=session, actor=actor), escalation_id=target.escalation.id, via="link",
                       now=now)
