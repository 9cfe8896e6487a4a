"""Retention: how long each source's events are kept, whether each policy is met, and the daily job.

A policy is "keep at least N days, and not much longer": N is the source's ``retention_days`` or the
platform default (``Settings.retention_days``, 180 days for the Cybersecurity Law, Art. 21). The job
deletes, source by source, events older than N days; a source nobody configured gets the default.

A policy is **met** when nothing younger than N days was ever deleted by retention: the store holds
the source's events back to N days ago, or (for a source younger than that) back to its first event.
Every run that deleted something (and every run a person starts) writes an audit record
(``siem.retention.run``) naming, per source, the cut-off before which it deleted events; a policy whose
latest cut-off lies inside the last N days (the days were raised after a shorter policy pruned) is not
met. A policy is **due** when events older than N days (plus a day's slack for the daily schedule) are
still held: the next run removes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core import audit
from vigil.core.audit import AuditRecord
from vigil.core.config import Settings
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.core.worker import Worker
from vigil.siem.models import LogSource
from vigil.siem.sources import LEGAL_MINIMUM_DAYS
from vigil.siem.store.base import EventStore
from vigil.siem.store.duckdb import DuckDBEventStore

log = logging.getLogger(__name__)

RUN_ACTION = "siem.retention.run"
JOB_ACTOR = "system:retention"
DAY = timedelta(days=1)
LEDGER_RUNS = 1000  # retention runs read back to find each source's latest cut-off (about three years)


class PolicyStatus(BaseModel):
    source: str
    configured: bool
    unit_id: int | None
    days: int
    default: bool  # the days are the platform default
    oldest: datetime | None  # the oldest event held
    held_days: int | None  # how many days back the store holds this source's events
    cutoff: datetime  # events before this may be deleted
    pruned_before: datetime | None  # the latest cut-off before which retention deleted events
    met: bool
    due: bool
    below_legal_minimum: bool


class RunSummary(BaseModel):
    at: datetime
    actor: str
    deleted: int
    sources: dict[str, dict[str, Any]]


class RetentionStatus(BaseModel):
    default_days: int
    legal_minimum_days: int
    policies: list[PolicyStatus]
    last_run: RunSummary | None
    generated_at: datetime


def effective_days(row: LogSource | None, settings: Settings) -> int:
    return row.retention_days if row is not None and row.retention_days else settings.retention_days


def stored_sources(store: EventStore) -> dict[str, tuple[datetime | None, int]]:
    """Every source the store holds events of: its oldest event and unit (one grouped read)."""
    if not isinstance(store, DuckDBEventStore):
        raise TypeError("retention needs the DuckDB event store")
    cursor = store._reader()  # a read-only aggregate the EventStore protocol does not offer
    try:
        rows = cursor.execute("SELECT source, min(ts), arg_max(unit_id, ts) FROM events GROUP BY source").fetchall()
    except duckdb.Error as exc:
        raise RuntimeError(f"reading the sources held failed: {exc}") from exc
    finally:
        cursor.close()
    return {str(r[0]): (r[1].astimezone(UTC) if r[1] is not None else None, int(r[2])) for r in rows}


def _ledger(session: Session) -> tuple[dict[str, datetime], RunSummary | None]:
    """The latest cut-off per source from the retention runs' audit records, and the latest run."""
    records = session.scalars(select(AuditRecord).where(AuditRecord.action == RUN_ACTION)
                              .order_by(AuditRecord.seq.desc()).limit(LEDGER_RUNS),
                              execution_options={"vigil_unscoped": True})
    cutoffs: dict[str, datetime] = {}
    last: RunSummary | None = None
    for record in records:
        sources = record.details.get("sources", {}) if isinstance(record.details, dict) else {}
        if last is None:
            last = RunSummary(at=record.at, actor=record.actor, deleted=int(record.details.get("deleted", 0)),
                              sources=sources)
        for name, entry in sources.items():
            if name not in cutoffs and isinstance(entry, dict) and entry.get("deleted") and entry.get("cutoff"):
                cutoffs[name] = datetime.fromisoformat(str(entry["cutoff"]))
    return cutoffs, last


def retention_status(session: Session, store: EventStore | None, settings: Settings, *,
                     unit_ids: Collection[int] | None = None, now: datetime | None = None) -> RetentionStatus:
    """Each source's policy and whether it is met: configured rows of the session's scope and the sources
    held in ``unit_ids`` (None: every unit)."""
    now = now or datetime.now(UTC)
    rows = {row.name: row for row in session.scalars(select(LogSource).order_by(LogSource.name))}
    held = stored_sources(store) if store is not None else {}
    if unit_ids is not None:
        allowed = set(unit_ids)
        held = {name: value for name, value in held.items() if value[1] in allowed or name in rows}
    cutoffs, last = _ledger(session)
    policies: list[PolicyStatus] = []
    for name in sorted(rows.keys() | held.keys()):
        row = rows.get(name)
        days = effective_days(row, settings)
        cutoff = now - timedelta(days=days)
        oldest = held.get(name, (None, 0))[0]
        pruned_before = cutoffs.get(name)
        policies.append(PolicyStatus(
            source=name, configured=row is not None, unit_id=row.unit_id if row else held[name][1], days=days,
            default=row is None or not row.retention_days, oldest=oldest,
            held_days=(now - oldest).days if oldest is not None else None, cutoff=cutoff,
            pruned_before=pruned_before, met=pruned_before is None or pruned_before <= cutoff,
            due=oldest is not None and oldest < cutoff - DAY, below_legal_minimum=days < LEGAL_MINIMUM_DAYS,
        ))
    if last is not None and unit_ids is not None:  # a branch sees what the run did to its own sources only
        visible = {policy.source for policy in policies}
        mine = {name: entry for name, entry in last.sources.items() if name in visible}
        deleted = sum(int(entry.get("deleted", 0)) for entry in mine.values())
        last = last.model_copy(update={"sources": mine, "deleted": deleted})
    return RetentionStatus(default_days=settings.retention_days, legal_minimum_days=LEGAL_MINIMUM_DAYS,
                           policies=policies, last_run=last, generated_at=now)


class Pruned(BaseModel):
    deleted: int
    checked: int  # sources looked at
    sources: dict[str, dict[str, Any]]  # per source with deletions: days, cutoff, deleted


def prune_expired(session: Session, store: EventStore, settings: Settings, *,
                  now: datetime | None = None) -> Pruned:
    """Delete each source's events older than its policy's days (every source, whatever the session's scope)."""
    now = now or datetime.now(UTC)
    rows = {row.name: row for row in session.scalars(select(LogSource), execution_options={"vigil_unscoped": True})}
    # Source by source, so that the default never reaches a configured source's events.
    names = sorted(rows.keys() | stored_sources(store).keys())
    sources: dict[str, dict[str, Any]] = {}
    total = 0
    for name in names:
        days = effective_days(rows.get(name), settings)
        cutoff = now - timedelta(days=days)
        deleted = store.prune(cutoff, source=name)
        total += deleted
        if deleted:
            sources[name] = {"days": days, "cutoff": cutoff.isoformat(), "deleted": deleted}
    log.info("retention: deleted %d events of %d sources (%d checked)", total, len(sources), len(names))
    return Pruned(deleted=total, checked=len(names), sources=sources)


def record_run(ctx: Context, pruned: Pruned) -> RunSummary:
    """The run's audit record: the ledger that tells later whether each policy is still met."""
    record = ctx.audit(RUN_ACTION, target_type="retention", details=pruned.model_dump())
    return RunSummary(at=record.at, actor=record.actor, deleted=pruned.deleted, sources=pruned.sources)


def run_retention(database: Database, store: EventStore, settings: Settings, *,
                  now: datetime | None = None) -> RunSummary:
    """The scheduled run, as ``system:retention``; audited when it deleted anything."""
    with database.transaction(Scope.system()) as session:
        pruned = prune_expired(session, store, settings, now=now)
        ctx = Context(session=session, actor=audit.Actor(None, JOB_ACTOR, accounts.root_unit_id(session)))
        if pruned.deleted:
            return record_run(ctx, pruned)
        return RunSummary(at=now or datetime.now(UTC), actor=JOB_ACTOR, deleted=0, sources={})


class RetentionJob:
    """Runs retention shortly after start and then once a day, in a thread of its own.

    ``store`` gives the event store, or None when there is none yet (nothing to prune).
    """

    def __init__(self, database: Database, settings: Settings, *, store: Callable[[], EventStore | None],
                 first_delay: float = 60.0, interval: float = DAY.total_seconds()) -> None:
        self.database = database
        self.settings = settings
        self.store = store
        self.first_delay = first_delay
        self.interval = interval
        self.last_run: RunSummary | None = None
        self.last_error = ""
        self.next_run_at: datetime | None = None
        self._worker = Worker("vigil-retention")

    def run_now(self) -> RunSummary | None:
        store = self.store()
        if store is None:
            return None
        try:
            self.last_run = run_retention(self.database, store, self.settings)
            self.last_error = ""
        except Exception as exc:  # the next day's run tries again; the status page shows the error
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("retention run failed")
        return self.last_run

    def _loop(self) -> None:
        delay = self.first_delay
        while True:
            self.next_run_at = datetime.now(UTC) + timedelta(seconds=delay)
            if self._worker.stopping.wait(delay):
                return
            self.run_now()
            delay = self.interval

    def start(self) -> None:
        self._worker.start(self._loop)

    def stop(self, timeout: float = 10.0) -> None:
        self._worker.stop(timeout)
