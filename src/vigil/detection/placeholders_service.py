"""Sigma placeholders as the SOC manages them: the platform-wide values of ``%name%`` placeholders
(``expand`` modifier), listed, set and removed, every change on the audit trail.

Rules are compiled with these values: at import (``rules_import``), by live detection
(``rules_service.enabled_rules``: a change recompiles the rules that use the placeholder at its next
refresh), by hunts over stored events and by rule tests. A rule refused at import because a placeholder
had no values was not stored: once the placeholder is set, import its pack again (``refused`` says which
packs). Service functions never commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.core.context import Context
from vigil.core.db import Database, Scope, utcnow
from vigil.core.errors import BadInput, NotFound
from vigil.detection.models import DetectionRule, RulePack, RulePlaceholder
from vigil.detection.schemas_placeholders import PlaceholderList, PlaceholderRead, PlaceholderSet, PlaceholderUse
from vigil.detection.sigma.placeholders import PlaceholderError, check_name, names_in, used_in

AUDIT_VALUES = 50  # values of each side an audit record shows (a list holds up to 1,000)


def _name(name: str) -> str:
    try:
        return check_name(name)
    except PlaceholderError as exc:
        raise BadInput(str(exc), errors=[{"field": "name", "message": str(exc)}]) from None


def values_of(session: Session) -> dict[str, list[str]]:
    """Every placeholder's values: what rules are compiled with."""
    return {row.name: list(row.values) for row in session.scalars(select(RulePlaceholder))}


def current_values(database: Database) -> dict[str, list[str]]:
    """``values_of`` in a transaction of its own."""
    with database.transaction(Scope.system()) as session:
        return values_of(session)


def list_placeholders(session: Session) -> list[RulePlaceholder]:
    return list(session.scalars(select(RulePlaceholder).order_by(RulePlaceholder.name)))


def get_placeholder(session: Session, name: str) -> RulePlaceholder:
    row = session.scalar(select(RulePlaceholder).where(RulePlaceholder.name == _name(name)))
    if row is None:
        raise NotFound(f"no placeholder %{name}% is defined")
    return row


def refused_packs(session: Session, name: str) -> list[str]:
    """The packs holding rules that were refused at import because ``%name%`` had no values."""
    marker = f"%{name}%"
    return [pack.name for pack in session.scalars(select(RulePack).order_by(RulePack.name))
            if any(marker in error and "has no values" in error for error in pack.errors or [])]


def _uses(session: Session) -> dict[str, int]:
    """How many stored rules use each placeholder name."""
    counts: dict[str, int] = {}
    for text in session.scalars(select(DetectionRule.yaml).where(DetectionRule.yaml.contains("expand"))):
        for name in used_in(text):
            counts[name] = counts.get(name, 0) + 1
    return counts


def read(session: Session, row: RulePlaceholder, uses: dict[str, int] | None = None) -> PlaceholderRead:
    counts = _uses(session) if uses is None else uses
    return PlaceholderRead(name=row.name, values=list(row.values), description=row.description,
                           updated_by=row.updated_by, updated_at=row.updated_at, rules=counts.get(row.name, 0),
                           refused=refused_packs(session, row.name))


def read_all(session: Session) -> PlaceholderList:
    """Every placeholder with its values, and those rules needed at import that have none."""
    uses = _uses(session)
    return PlaceholderList(items=[read(session, row, uses) for row in list_placeholders(session)],
                           missing=missing(session))


def missing(session: Session) -> list[PlaceholderUse]:
    """Placeholders without values that refused rules at import, with the packs holding those rules."""
    defined = set(values_of(session))
    found: dict[str, set[str]] = {}
    for pack in session.scalars(select(RulePack).order_by(RulePack.name)):
        for error in pack.errors or []:
            if "has no values" not in error:
                continue
            for name in names_in(error):
                if name not in defined:
                    found.setdefault(name, set()).add(pack.name)
    return [PlaceholderUse(name=name, refused=sorted(packs)) for name, packs in sorted(found.items())]


def _shown(values: Sequence[str]) -> list[str]:
    return list(values[:AUDIT_VALUES]) + ([f"... {len(values) - AUDIT_VALUES} more"] if len(values) > AUDIT_VALUES
                                          else [])


def set_placeholder(ctx: Context, *, name: str, data: PlaceholderSet) -> RulePlaceholder:
    """Create the placeholder or replace its values (and description); audited with old and new values."""
    name = _name(name)
    row = ctx.session.scalar(select(RulePlaceholder).where(RulePlaceholder.name == name))
    created = row is None
    old_values: list[str] = [] if row is None else list(row.values)
    old_description = "" if row is None else row.description
    if row is None:
        row = RulePlaceholder(name=name, values=[], description="")
        ctx.session.add(row)
    if not created and old_values == data.values and old_description == data.description:
        return row
    row.values = list(data.values)
    row.description = data.description
    row.updated_at, row.updated_by = utcnow(), ctx.actor.name
    ctx.session.flush()
    changes: dict[str, object] = {"values": [_shown(old_values), _shown(row.values)],
                                  "count": [len(old_values), len(row.values)]}
    if old_description != data.description:
        changes["description"] = "changed"
    ctx.audit("detection.rule_placeholder.create" if created else "detection.rule_placeholder.update",
              target_type="rule_placeholder", target_id=row.id, details={"name": name, "changes": changes})
    return row


def remove_placeholder(ctx: Context, *, name: str) -> None:
    """Remove the placeholder: rules using it no longer compile (live detection drops them at its next
    refresh, with a warning in the log). Audited with the values it had."""
    row = get_placeholder(ctx.session, name)
    ctx.audit("detection.rule_placeholder.delete", target_type="rule_placeholder", target_id=row.id,
              details={"name": row.name, "values": _shown(list(row.values)), "count": len(row.values)})
    ctx.session.delete(row)
    ctx.session.flush()
