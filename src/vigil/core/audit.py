"""The tamper-evident audit trail: append-only records, each hash-chained to the one before.

Records are chained when the transaction that wrote them flushes: the single ``audit_head`` row is
locked first (a row lock on PostgreSQL, the write lock on SQLite), so concurrent writers queue and
the chain has no forks. ``verify`` walks the chain and names the first record that does not fit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import JSON, BigInteger, Integer, String, Text, select, update
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from vigil.core.db import Base, UnitScoped, utcnow
from vigil.core.errors import Conflict

GENESIS = "0" * 64


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


class AuditRecord(UnitScoped, Base):
    __tablename__ = "audit_records"
    __scope_write_checked__ = False  # the system appends these for any unit the event concerns

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True, index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    target_type: Mapped[str] = mapped_column(String(100), default="")
    target_id: Mapped[str] = mapped_column(String(200), default="")
    source_ip: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(20), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The last link of the chain; also the lock that serialises appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS)
    note: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class Actor:
    """Who acted, as the audit trail names them."""

    user_id: int | None
    name: str
    unit_id: int
    source_ip: str = ""


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    outcome: Outcome = Outcome.SUCCESS,
    target_type: str = "",
    target_id: str | int = "",
    unit_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one record to the session; it is chained and stored when the session flushes."""
    entry = AuditRecord(
        at=utcnow(),
        actor_id=actor.user_id,
        actor=actor.name,
        action=action,
        outcome=str(outcome),
        target_type=target_type,
        target_id=str(target_id),
        unit_id=unit_id if unit_id is not None else actor.unit_id,
        source_ip=actor.source_ip,
        details=details or {},
    )
    session.add(entry)
    return entry


def _digest(entry: AuditRecord, prev_hash: str) -> str:
    body = {
        "seq": entry.seq,
        "at": entry.at.isoformat(timespec="microseconds"),
        "actor_id": entry.actor_id,
        "actor": entry.actor,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "unit_id": entry.unit_id,
        "source_ip": entry.source_ip,
        "outcome": entry.outcome,
        "details": entry.details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@orm_event.listens_for(Session, "before_flush")
def _chain_new_records(session: Session, flush_context: Any, instances: Any) -> None:
    if any(isinstance(obj, AuditRecord) for obj in [*session.dirty, *session.deleted]):
        raise Conflict("audit records are append-only")
    pending = sorted((obj for obj in session.new if isinstance(obj, AuditRecord)), key=lambda e: e.at)
    if not pending:
        return
    conn = session.connection()
    # Taking the head's row lock (or SQLite's write lock) before reading it serialises appenders.
    conn.execute(update(AuditHead).where(AuditHead.id == 1).values(note=""))
    head = conn.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one_or_none()
    if head is None:
        raise RuntimeError("the audit trail is not initialised; run `vigil init`")
    seq, last_hash = head
    for entry in pending:
        seq += 1
        entry.seq = seq
        entry.prev_hash = last_hash
        entry.hash = _digest(entry, last_hash)
        last_hash = entry.hash
    conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=last_hash))


@orm_event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes(state: ORMExecuteState) -> None:
    """A bulk UPDATE or DELETE bypasses the flush: refuse it on the trail too."""
    if (state.is_update or state.is_delete) and any(
        issubclass(mapper.class_, (AuditRecord, AuditHead)) for mapper in state.all_mappers
    ):
        raise Conflict("audit records are append-only")


def ensure_head(session: Session) -> None:
    if session.get(AuditHead, 1) is None:
        session.add(AuditHead(id=1, seq=0, hash=GENESIS))


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""


def _walk(session: Session, batch: int = 5000) -> Iterator[AuditRecord]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditRecord).where(AuditRecord.seq > last).order_by(AuditRecord.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        for row in rows:  # keep memory flat on long trails, without dropping the caller's objects
            session.expunge(row)


def verify(session: Session) -> Verification:
    """Check every link; run it with the system scope so no unit's records are skipped."""
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    for entry in _walk(session):
        if entry.seq != expected_seq:
            return Verification(False, checked, expected_seq, f"record {expected_seq} is missing")
        if entry.prev_hash != prev_hash:
            return Verification(False, checked, entry.seq, "its link to the previous record is broken")
        if _digest(entry, prev_hash) != entry.hash:
            return Verification(False, checked, entry.seq, "its content does not match its hash")
        prev_hash, expected_seq, checked = entry.hash, expected_seq + 1, checked + 1
    head = session.get(AuditHead, 1)
    if head is None:
        return Verification(False, checked, None, "the chain head is missing")
    if head.seq != checked or head.hash != prev_hash:
        return Verification(False, checked, checked + 1, f"records after {checked} were removed")
    return Verification(True, checked)
