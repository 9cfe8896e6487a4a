"""Notification channels and sending: configure channels, send a message with retries, read the log.

``send`` is what other domains call (escalation pages the on-call responder through it)::

    delivery = service.send(ctx, channel_id=3, message=Message(MessageKind.ESCALATION, subject="...",
                            severity="P1", incident_id=42, link=url, ack_link=signed_url, recipient="alice"))

It renders the message in the channel's language, tries the channel up to its ``max_attempts`` times
with a doubling back-off (``retry_delay``, 2 x, 4 x ...), records every attempt in a
``NotificationDelivery`` and an audit record, and returns the delivery: ``status`` is ``sent`` or
``failed`` with ``last_error``. It never raises for what an endpoint does (down, refusing, slow, a
broken plugin); it raises ``NotFound`` only for a channel that is not there or outside the session's
scope. Sending happens inside the caller's transaction, so the delivery is stored when the caller
commits. A background job (an escalation timer) calls ``send_detached(database, actor=..., ...)``
instead: it records the delivery as ``pending`` in a short transaction of its own, tries with no
transaction open (on SQLite an open transaction holds the write lock), and records the outcome.

Like every service here: a ``Context`` (or a session for reads), keyword arguments, never a commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from types import MappingProxyType
from typing import Any

import httpx
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core import audit, plugins
from vigil.core.context import Context
from vigil.core.db import Database, Scope, get_scope, utcnow
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.inputs import merge_settings
from vigil.response.notifications.messages import Message, MessageKind, render
from vigil.response.notifications.models import NotificationChannel, NotificationDelivery
from vigil.response.notifications.schemas import ChannelCreate, ChannelRead, ChannelUpdate, NotifierKind
from vigil.response.notifiers.base import ConfigProblem, DeliveryFailed, Notifier, RenderedMessage

log = logging.getLogger(__name__)

GROUP = "vigil.notifiers"
UNSCOPED = {"vigil_unscoped": True}
DEFAULT_RETRY_SECONDS = 2.0
DEFAULT_TIMEOUT_SECONDS = 10.0
STATUSES = ("pending", "sent", "failed")


# --- the notifier plugins ---------------------------------------------------------------------------


@cache
def notifiers() -> Mapping[str, Notifier]:
    """Every installed notifier by kind (built-in and third-party alike); broken ones are logged and left out."""
    loaded = plugins.load_group(GROUP, Notifier)  # type: ignore[type-abstract]
    for broken in loaded.broken:
        log.warning("notifier %s (%s) is not available: %s", broken.name, broken.target, broken.reason)
    return MappingProxyType(loaded.plugins)


def notifier(kind: str) -> Notifier:
    found = notifiers().get(kind)
    if found is None:
        raise BadInput(f"unknown channel kind {kind!r}; known kinds: {', '.join(sorted(notifiers()))}",
                       errors=[{"field": "kind", "message": "unknown channel kind"}])
    return found


def kinds() -> list[NotifierKind]:
    return [NotifierKind(kind=kind, fields=[{"name": f.name, "type": f.type, "required": f.required,
                                             "secret": f.secret, "default": f.default, "choices": list(f.choices)}
                                            for f in plugin.fields])
            for kind, plugin in sorted(notifiers().items())]


def secret_fields(kind: str) -> tuple[str, ...]:
    plugin = notifiers().get(kind)
    return tuple(f.name for f in plugin.fields if f.secret) if plugin else ()


def public_settings(channel: NotificationChannel) -> tuple[dict[str, Any], dict[str, str]]:
    """The configuration without its secrets, and whether each secret is set."""
    hidden = secret_fields(channel.kind)
    config = channel.config or {}
    settings = {key: value for key, value in config.items() if key not in hidden}
    return settings, {name: "set" if config.get(name) else "not set" for name in hidden}


def channel_read(channel: NotificationChannel) -> ChannelRead:
    settings, secrets = public_settings(channel)
    return ChannelRead(id=channel.id, unit_id=channel.unit_id, name=channel.name, kind=channel.kind,
                       language=channel.language, enabled=channel.enabled, settings=settings, secrets=secrets,
                       max_attempts=channel.max_attempts, description=channel.description,
                       created_at=channel.created_at, created_by=channel.created_by, updated_at=channel.updated_at,
                       updated_by=channel.updated_by)


# --- channels ---------------------------------------------------------------------------------------


def _checked_config(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return notifier(kind).check_config(config)
    except ConfigProblem as exc:
        errors = [{"field": f"config.{e['field']}", "message": e["message"]} for e in exc.errors]
        raise BadInput(f"the {kind} channel's settings are not valid: {exc}", errors=errors) from None


def _check_unit(ctx: Context, unit_id: int) -> None:
    """Refuse a unit outside the caller's scope without telling whether it exists."""
    if not get_scope(ctx.session).allows(unit_id):
        raise NotFound(f"organisation unit {unit_id} does not exist or is outside your scope")
    accounts.get_unit(ctx.session, unit_id)


def _check_name_free(ctx: Context, name: str, *, other_than: int | None = None) -> None:
    # Names are global (the CLI and escalation policies name channels): another unit's name clashes too.
    found = ctx.session.scalar(select(NotificationChannel.id).where(NotificationChannel.name == name),
                               execution_options=UNSCOPED)
    if found is not None and found != other_than:
        raise Conflict(f"a notification channel named {name!r} exists")


def _audit_view(channel: NotificationChannel) -> dict[str, Any]:
    settings, secrets = public_settings(channel)
    return {"name": channel.name, "kind": channel.kind, "language": channel.language, "enabled": channel.enabled,
            "max_attempts": channel.max_attempts, "settings": settings, "secrets": secrets}


def create_channel(ctx: Context, *, data: ChannelCreate) -> NotificationChannel:
    unit_id = data.unit_id if data.unit_id is not None else ctx.actor.unit_id
    _check_unit(ctx, unit_id)
    config = _checked_config(data.kind, data.config)
    _check_name_free(ctx, data.name)
    channel = NotificationChannel(unit_id=unit_id, name=data.name, kind=data.kind, language=data.language,
                                  enabled=data.enabled, config=config, max_attempts=data.max_attempts,
                                  description=data.description, created_by=ctx.actor.name, updated_by=ctx.actor.name)
    ctx.session.add(channel)
    ctx.session.flush()
    ctx.audit("notification.channel.create", target_type="notification_channel", target_id=channel.id,
              unit_id=unit_id, details=_audit_view(channel))
    return channel


def update_channel(ctx: Context, *, channel_id: int, data: ChannelUpdate) -> NotificationChannel:
    channel = get_channel(ctx.session, channel_id)
    given = data.model_dump(include=data.model_fields_set)
    for name in ("name", "language", "enabled", "max_attempts", "unit_id"):
        if name in given and given[name] is None:
            raise BadInput(f"{name} cannot be empty", errors=[{"field": name, "message": "required"}])
    if "unit_id" in given:
        _check_unit(ctx, given["unit_id"])
    if "name" in given:
        _check_name_free(ctx, given["name"], other_than=channel.id)
    if given.get("config") is not None:
        given["config"] = _checked_config(channel.kind, merge_settings(
            channel.config, given["config"], secrets=secret_fields(channel.kind)))
    else:
        given.pop("config", None)
    if "description" in given and given["description"] is None:
        given["description"] = ""
    before = {**_audit_view(channel), "unit_id": channel.unit_id}
    old_secrets = {name: (channel.config or {}).get(name) for name in secret_fields(channel.kind)}
    for name, value in given.items():
        setattr(channel, name, value)
    after = {**_audit_view(channel), "unit_id": channel.unit_id}
    changes: dict[str, Any] = {key: [before[key], after[key]] for key in after if before[key] != after[key]
                               and key != "secrets"}
    changed_secrets = sorted(name for name, value in old_secrets.items() if (channel.config or {}).get(name) != value)
    if changed_secrets:
        changes["secrets_changed"] = changed_secrets
    if changes:
        channel.updated_at = utcnow()
        channel.updated_by = ctx.actor.name
        ctx.session.flush()
        ctx.audit("notification.channel.update", target_type="notification_channel", target_id=channel.id,
                  unit_id=channel.unit_id, details={"name": channel.name, "changes": changes})
    return channel


def delete_channel(ctx: Context, *, channel_id: int) -> NotificationChannel:
    """Remove a channel; its deliveries stay in the log under the channel's name."""
    channel = get_channel(ctx.session, channel_id)
    ctx.audit("notification.channel.delete", target_type="notification_channel", target_id=channel.id,
              unit_id=channel.unit_id, details=_audit_view(channel))
    ctx.session.delete(channel)
    ctx.session.flush()
    return channel


def get_channel(session: Session, channel_id: int) -> NotificationChannel:
    found = session.scalar(select(NotificationChannel).where(NotificationChannel.id == channel_id))
    if found is None:
        raise NotFound(f"notification channel {channel_id} does not exist or is outside your scope")
    return found


def find_channel(session: Session, name: str) -> NotificationChannel:
    found = session.scalar(select(NotificationChannel).where(NotificationChannel.name == name))
    if found is None:
        raise NotFound(f"notification channel {name!r} does not exist or is outside your scope")
    return found


def channels_query(*, kind: str | None = None, enabled: bool | None = None) -> Select[NotificationChannel]:
    query = select(NotificationChannel).order_by(NotificationChannel.name)
    if kind:
        query = query.where(NotificationChannel.kind == kind)
    if enabled is not None:
        query = query.where(NotificationChannel.enabled.is_(enabled))
    return query


def list_channels(session: Session) -> list[NotificationChannel]:
    return list(session.scalars(channels_query()))


# --- sending ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What sending needs of a channel, copied, so the attempts can run with no database session open."""

    id: int
    name: str
    kind: str
    language: str
    unit_id: int
    enabled: bool
    config: Mapping[str, Any]
    max_attempts: int

    @classmethod
    def of(cls, channel: NotificationChannel) -> Target:
        return cls(channel.id, channel.name, channel.kind, channel.language, channel.unit_id, channel.enabled,
                   dict(channel.config or {}), channel.max_attempts)

    def scrub(self, text: str) -> str:
        """``text`` with the channel's secrets masked: an error message may quote a URL with its token."""
        for name in secret_fields(self.kind):
            value = str(self.config.get(name) or "")
            if len(value) >= 4:
                text = text.replace(value, "***")
        return text


@dataclass
class Outcome:
    """How the attempts went: ``sent`` or ``failed``, each attempt, the last error and HTTP status."""

    status: str = "failed"
    attempts: int = 0
    attempt_log: list[dict[str, Any]] = field(default_factory=list)
    last_error: str = ""
    http_status: int | None = None
    sent_at: datetime | None = None


def attempt(target: Target, rendered: RenderedMessage, *, client: httpx.Client | None, retry_delay: float,
            timeout: float, sleep: Callable[[float], None], even_disabled: bool = False) -> Outcome:
    """Try the channel up to its ``max_attempts`` times, waiting ``retry_delay``, then twice that, and so on
    between attempts; a refusal that cannot pass by itself ends the tries early. Touches no database."""
    plugin = notifiers().get(target.kind)
    if not target.enabled and not even_disabled:
        return Outcome(last_error="the channel is disabled")
    if plugin is None:
        return Outcome(last_error=f"no notifier of kind {target.kind!r} is installed")
    outcome = Outcome()
    http = client or httpx.Client(follow_redirects=False)
    try:
        for number in range(1, max(target.max_attempts, 1) + 1):
            if number > 1:
                sleep(retry_delay * 2 ** (number - 2))
            at, started = utcnow(), time.monotonic()
            http_status: int | None = None
            error, retryable = "", True
            try:
                http_status = plugin.deliver(target.config, rendered, client=http, timeout=timeout)
            except DeliveryFailed as exc:
                error, http_status, retryable = exc.reason, exc.http_status, exc.retryable
            except Exception as exc:  # a third-party notifier may fail in any way: recorded, never raised
                error = f"{type(exc).__name__}: {exc}"
            error = target.scrub(error)[:2000]
            outcome.attempt_log.append({"at": at.isoformat(), "ok": not error, "http_status": http_status,
                                        "error": error, "seconds": round(time.monotonic() - started, 3)})
            outcome.attempts, outcome.http_status = number, http_status
            if not error:
                outcome.status, outcome.sent_at, outcome.last_error = "sent", utcnow(), ""
                return outcome
            outcome.last_error = error
            if not retryable:
                break
        return outcome
    finally:
        if client is None:
            http.close()


def _open_delivery(ctx: Context, target: Target, message: Message, rendered: RenderedMessage,
                   unit_id: int | None) -> NotificationDelivery:
    delivery = NotificationDelivery(
        unit_id=unit_id if unit_id is not None else target.unit_id, channel_id=target.id, channel_name=target.name,
        channel_kind=target.kind, message_kind=str(message.kind), subject=rendered.title[:2000],
        language=target.language, incident_id=message.incident_id, status="pending", attempts=0, attempt_log=[],
        created_by=ctx.actor.name)
    ctx.session.add(delivery)
    ctx.session.flush()
    return delivery


def _close_delivery(ctx: Context, delivery: NotificationDelivery, outcome: Outcome) -> NotificationDelivery:
    delivery.status, delivery.attempts, delivery.attempt_log = outcome.status, outcome.attempts, outcome.attempt_log
    delivery.last_error, delivery.http_status = outcome.last_error, outcome.http_status
    delivery.sent_at = outcome.sent_at
    ctx.session.flush()
    if delivery.status == "failed":
        log.warning("notification %d to channel %s failed after %d attempt(s): %s", delivery.id,
                    delivery.channel_name, delivery.attempts, delivery.last_error)
    ctx.audit("notification.send", target_type="notification_delivery", target_id=delivery.id,
              unit_id=delivery.unit_id,
              outcome=audit.Outcome.SUCCESS if delivery.status == "sent" else audit.Outcome.FAILURE,
              details={"channel": delivery.channel_name, "channel_id": delivery.channel_id,
                       "message_kind": delivery.message_kind, "incident_id": delivery.incident_id,
                       "status": delivery.status, "attempts": delivery.attempts, "error": delivery.last_error[:500]})
    return delivery


def send(ctx: Context, *, channel_id: int, message: Message, unit_id: int | None = None,
         client: httpx.Client | None = None, retry_delay: float = DEFAULT_RETRY_SECONDS,
         timeout: float = DEFAULT_TIMEOUT_SECONDS, sleep: Callable[[float], None] = time.sleep) -> NotificationDelivery:
    """Send ``message`` through one channel, retrying; the delivery says how it went (see the module's text).

    ``unit_id`` is the unit the delivery belongs to (an incident's unit, so its readers see it); by default
    the channel's. ``client`` reuses an HTTP client; ``sleep`` and ``retry_delay`` let tests skip the waits.
    """
    return _send(ctx, get_channel(ctx.session, channel_id), message, unit_id=unit_id, client=client,
                 retry_delay=retry_delay, timeout=timeout, sleep=sleep, even_disabled=False)


def _send(ctx: Context, channel: NotificationChannel, message: Message, *, unit_id: int | None,
          client: httpx.Client | None, retry_delay: float, timeout: float, sleep: Callable[[float], None],
          even_disabled: bool) -> NotificationDelivery:
    target = Target.of(channel)
    rendered = render(message, language=target.language, channel=target.name)
    delivery = _open_delivery(ctx, target, message, rendered, unit_id)
    outcome = attempt(target, rendered, client=client, retry_delay=retry_delay, timeout=timeout, sleep=sleep,
                      even_disabled=even_disabled)
    return _close_delivery(ctx, delivery, outcome)


def send_detached(database: Database, *, actor: audit.Actor, channel_id: int, message: Message,
                  unit_id: int | None = None, scope: Scope | None = None, client: httpx.Client | None = None,
                  retry_delay: float = DEFAULT_RETRY_SECONDS, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                  sleep: Callable[[float], None] = time.sleep) -> NotificationDelivery:
    """``send`` for background jobs (escalation timers): no transaction stays open while the attempts run.

    One short transaction records the delivery as ``pending`` (so the log shows a message on its way, and
    one a dead process left behind); the attempts run with no session; a second transaction records the
    outcome and the audit record. On embedded SQLite a transaction holds the write lock, so a slow
    endpoint never makes other writers wait. ``scope`` defaults to every unit. The delivery is returned
    detached from any session, its fields loaded.
    """
    scope = scope or Scope.system()
    with database.transaction(scope) as session:
        ctx = Context(session=session, actor=actor)
        target = Target.of(get_channel(session, channel_id))
        rendered = render(message, language=target.language, channel=target.name)
        delivery_id = _open_delivery(ctx, target, message, rendered, unit_id).id
    outcome = attempt(target, rendered, client=client, retry_delay=retry_delay, timeout=timeout, sleep=sleep)
    with database.transaction(scope) as session:
        return _close_delivery(Context(session=session, actor=actor), get_delivery(session, delivery_id), outcome)


def send_many(ctx: Context, *, channel_ids: Iterable[int], message: Message, unit_id: int | None = None,
              client: httpx.Client | None = None, retry_delay: float = DEFAULT_RETRY_SECONDS,
              timeout: float = DEFAULT_TIMEOUT_SECONDS,
              sleep: Callable[[float], None] = time.sleep) -> list[NotificationDelivery]:
    """``send`` to each channel in turn (one failing never stops the others); the deliveries in that order."""
    return [send(ctx, channel_id=channel_id, message=message, unit_id=unit_id, client=client,
                 retry_delay=retry_delay, timeout=timeout, sleep=sleep) for channel_id in channel_ids]


def send_test(ctx: Context, *, channel_id: int, link: str = "", client: httpx.Client | None = None,
              retry_delay: float = DEFAULT_RETRY_SECONDS, timeout: float = DEFAULT_TIMEOUT_SECONDS,
              sleep: Callable[[float], None] = time.sleep) -> NotificationDelivery:
    """A test message through one channel (even a disabled one: testing comes before enabling)."""
    channel = get_channel(ctx.session, channel_id)
    return _send(ctx, channel, Message(MessageKind.TEST, subject=channel.name, link=link), unit_id=None,
                 client=client, retry_delay=retry_delay, timeout=timeout, sleep=sleep, even_disabled=True)


# --- the delivery log -------------------------------------------------------------------------------


def deliveries_query(*, channel_id: int | None = None, incident_id: int | None = None, status: str | None = None,
                     message_kind: str | None = None) -> Select[NotificationDelivery]:
    query = select(NotificationDelivery).order_by(NotificationDelivery.created_at.desc(),
                                                  NotificationDelivery.id.desc())
    if channel_id is not None:
        query = query.where(NotificationDelivery.channel_id == channel_id)
    if incident_id is not None:
        query = query.where(NotificationDelivery.incident_id == incident_id)
    if status:
        query = query.where(NotificationDelivery.status == status)
    if message_kind:
        query = query.where(NotificationDelivery.message_kind == message_kind)
    return query


def get_delivery(session: Session, delivery_id: int) -> NotificationDelivery:
    found = session.scalar(select(NotificationDelivery).where(NotificationDelivery.id == delivery_id))
    if found is None:
        raise NotFound(f"notification delivery {delivery_id} does not exist or is outside your scope")
    return found


def deliveries_of(session: Session, *, channel_ids: Sequence[int], message_kind: str | None = None,
                  limit: int = 20) -> list[NotificationDelivery]:
    """The latest deliveries of these channels (the channels page shows their test messages)."""
    if not channel_ids:
        return []
    query = deliveries_query(message_kind=message_kind).where(NotificationDelivery.channel_id.in_(channel_ids))
    return list(session.scalars(query.limit(limit)))
