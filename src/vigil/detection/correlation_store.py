"""The enabled correlation rules of the records store, resolved against the enabled base rules."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence

from sqlalchemy import select

from vigil.core.db import Database, Scope
from vigil.detection.correlation import CorrelationRule, load_correlations
from vigil.detection.models import DetectionRule
from vigil.detection.sigma import Rule

log = logging.getLogger(__name__)

CORRELATION_KIND = "correlation"


def enabled_correlations(db: Database, base_rules: Sequence[Rule]) -> tuple[str, list[CorrelationRule]]:
    """A version (changes with the rows, their overrides and the base rules) and the usable correlations.

    A correlation whose base rule is not enabled cannot fire, so it is left out (and logged)."""
    with db.transaction(Scope.system()) as session:
        rows = list(session.scalars(select(DetectionRule).where(
            DetectionRule.kind == CORRELATION_KIND, DetectionRule.enabled.is_(True)).order_by(DetectionRule.id)))
    material = [f"{row.id}:{row.digest}:{row.level_override}" for row in rows]
    material += sorted(rule.id for rule in base_rules) if rows else []
    version = hashlib.sha256("\n".join(material).encode()).hexdigest()[:24]
    if not rows:
        return version, []
    sources = [(row.path or f"rule {row.rule_uid}", row.yaml) for row in rows]
    correlations, errors = load_correlations(sources, base_rules)
    for error in errors:
        log.warning("detection: correlation not used: %s", error)
    overrides = {row.rule_uid: row.level_override for row in rows if row.level_override}
    return version, [dataclasses.replace(c, level=overrides[c.id]) if c.id in overrides else c
                     for c in correlations]
