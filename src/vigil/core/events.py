"""Typed domain events and the in-process bus that carries them.

A domain states what happened as a frozen dataclass (``IncidentPhaseChanged``...) and calls
``emit(session, event)``. The event waits on the session until its transaction commits, then goes to every
subscriber of its class (or of a base class); a rolled-back transaction drops its events, so nobody is told
of a change that never happened. A savepoint (``begin_nested``) that is released publishes nothing yet; one
that is rolled back drops only the events queued inside it. Subscribers (notifications, playbooks) run after
the commit, in the committing thread; one that raises is logged and does not stop the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from vigil.core.db import utcnow

log = logging.getLogger(__name__)
PENDING_KEY = "vigil.events.pending"
SAVEPOINTS_KEY = "vigil.events.savepoints"  # savepoint -> how many events were queued when it began


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """Something that happened in a domain: when, in which organisation unit, and by whom."""

    unit_id: int
    actor: str
    at: datetime = field(default_factory=utcnow)


E = TypeVar("E", bound=DomainEvent)
Handler = Callable[[Any], None]


class EventBus:
    """Subscribers by event class; ``publish`` hands an event to those of its class and of its bases."""

    def __init__(self) -> None:
        self._handlers: dict[type[DomainEvent], list[Handler]] = {}
        self._lock = threading.Lock()

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> Callable[[], None]:
        """Call ``handler`` with every event of ``kind``; returns the function that unsubscribes it."""
        with self._lock:
            self._handlers.setdefault(kind, []).append(handler)

        def unsubscribe() -> None:
            with self._lock:
                handlers = self._handlers.get(kind, [])
                if handler in handlers:
                    handlers.remove(handler)
        return unsubscribe

    def publish(self, item: DomainEvent) -> None:
        with self._lock:
            handlers = [h for kind in type(item).__mro__ for h in self._handlers.get(kind, [])]
        for handler in handlers:
            try:
                handler(item)
            except Exception:  # a subscriber's failure must not undo or block the change it was told of
                log.exception("subscriber %r failed on %s", handler, type(item).__name__)


bus = EventBus()


def emit(session: Session, item: DomainEvent) -> None:
    """Queue ``item`` on the session; it is published when the session's transaction commits."""
    session.info.setdefault(PENDING_KEY, []).append(item)


def pending(session: Session) -> list[DomainEvent]:
    """The events queued on the session and not yet published (for tests and for callers that inspect)."""
    return list(session.info.get(PENDING_KEY, []))


@event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint was released: nothing is committed until the outer transaction is
    session.info.pop(SAVEPOINTS_KEY, None)
    queued: list[DomainEvent] = session.info.pop(PENDING_KEY, [])
    for item in queued:
        bus.publish(item)


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:  # what was queued before it survives its rollback
        session.info.setdefault(SAVEPOINTS_KEY, {})[id(transaction)] = len(session.info.get(PENDING_KEY, []))


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.nested:
        kept = session.info.get(SAVEPOINTS_KEY, {}).get(id(previous_transaction), 0)
        del session.info.get(PENDING_KEY, [])[kept:]
    else:
        session.info.pop(PENDING_KEY, None)
        session.info.pop(SAVEPOINTS_KEY, None)
