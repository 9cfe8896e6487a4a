"""Reading the audit trail: search, CSV export and chain verification. Writing lives in core.audit."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import orjson
from sqlalchemy import Select, String, cast, func, or_, select

from vigil.audit.schemas import AuditFilter
from vigil.core import audit
from vigil.core.audit import AuditRecord
from vigil.core.context import Context
from vigil.core.db import Scope, set_scope
from vigil.core.pagination import PageParams, paginate

CSV_COLUMNS = ["seq", "at", "actor", "actor_id", "action", "target_type", "target_id", "unit_id",
               "source_ip", "outcome", "details", "hash"]


def _query(filters: AuditFilter) -> Select[AuditRecord]:
    statement = select(AuditRecord).order_by(AuditRecord.seq.desc())
    if filters.actor:
        statement = statement.where(AuditRecord.actor == filters.actor)
    if filters.action:
        # "user" matches user.create, user.role.grant, ...: actions are dotted families.
        statement = statement.where(
            or_(AuditRecord.action == filters.action, AuditRecord.action.like(f"{filters.action}.%"))
        )
    if filters.outcome:
        statement = statement.where(AuditRecord.outcome == filters.outcome)
    if filters.since:
        statement = statement.where(AuditRecord.at >= filters.since)
    if filters.until:
        statement = statement.where(AuditRecord.at < filters.until)
    if filters.q:
        like = f"%{filters.q.lower()}%"
        statement = statement.where(
            or_(
                func.lower(AuditRecord.actor).like(like),
                func.lower(AuditRecord.action).like(like),
                func.lower(AuditRecord.target_id).like(like),
                func.lower(AuditRecord.source_ip).like(like),
                func.lower(cast(AuditRecord.details, String)).like(like),
            )
        )
    return statement


def search(ctx: Context, *, filters: AuditFilter, params: PageParams) -> tuple[list[AuditRecord], int]:
    return paginate(ctx.session, _query(filters), params)


def export_csv(ctx: Context, *, filters: AuditFilter) -> Iterator[str]:
    """CSV rows of every matching record, newest first; the export itself is audited."""
    ctx.audit("audit.export", target_type="audit", details=filters.model_dump(mode="json", exclude_defaults=True))
    ctx.session.flush()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for entry in ctx.session.scalars(_query(filters).execution_options(yield_per=1000)):
        writer.writerow([
            entry.seq, entry.at.isoformat(), entry.actor, entry.actor_id or "", entry.action, entry.target_type,
            entry.target_id, entry.unit_id, entry.source_ip, entry.outcome,
            orjson.dumps(entry.details, option=orjson.OPT_SORT_KEYS).decode(), entry.hash,
        ])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


def verify(ctx: Context) -> audit.Verification:
    """Verify the whole chain (every unit: a chain cannot be checked in part) and audit the check."""
    set_scope(ctx.session, Scope.system())
    result = audit.verify(ctx.session)
    ctx.audit("audit.verify", outcome=audit.Outcome.SUCCESS if result.ok else audit.Outcome.FAILURE,
              target_type="audit", details={"checked": result.checked, "first_bad_seq": result.first_bad_seq,
                                            "reason": result.reason})
    return result
