"""Working sightings: reading and marking them (a false positive may feed the allow-list), an actor's or
campaign's timeline of sightings against our assets, and a retro-hunt for every active indicator."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import NotFound
from vigil.intel import service
from vigil.intel.models import IntelSighting
from vigil.intel.retrohunt import RetroResult, retro_hunt
from vigil.intel.runtime import Intel
from vigil.intel.schemas import EntityRead, SightingRead, SightingUpdate
from vigil.intel.store import IntelStore
from vigil.siem.store.base import EventStore

TIMELINE_LIMIT = 500


def get_sighting(session: Session, sighting_id: int) -> IntelSighting:
    """A sighting in the session's units (another unit's answers like a missing one)."""
    row = session.get(IntelSighting, sighting_id)
    if row is None:
        raise NotFound(f"no sighting {sighting_id}")
    return row


def sightings_query(*, retroactive: bool | None = None, status: str = "", held: bool | None = None,
                    indicator_id: int | None = None) -> Select[IntelSighting]:
    """Sightings newest activity first, filtered by how they were found, status,
    held back or not, indicator; the session's scope keeps them to the caller's units."""
    query = select(IntelSighting).order_by(IntelSighting.last_seen.desc(), IntelSighting.id.desc())
    if retroactive is not None:
        query = query.where(IntelSighting.retroactive.is_(retroactive))
    if status:
        query = query.where(IntelSighting.status == status)
    if held is not None:
        query = query.where(IntelSighting.suppressed_by != "" if held else IntelSighting.suppressed_by == "")
    if indicator_id is not None:
        query = query.where(IntelSighting.indicator_id == indicator_id)
    return query


def recent(session: Session, *, retroactive: bool | None = None, limit: int = 50) -> list[IntelSighting]:
    """The session's units' sightings, most recent first."""
    return list(session.scalars(sightings_query(retroactive=retroactive).limit(limit)))


def mark(ctx: Context, store: IntelStore, *, sighting_id: int, data: SightingUpdate) -> IntelSighting:
    row = get_sighting(ctx.session, sighting_id)
    before = row.status
    row.status = data.status
    row.updated_at = utcnow()
    ctx.session.flush()
    ctx.audit("intel.sighting.mark", target_type="intel_sighting", target_id=row.id, unit_id=row.unit_id,
              details={"from": before, "to": data.status, "indicator": f"{row.type} {row.value}"})
    if data.status == "false-positive" and data.allow:
        reason = data.reason.strip() or f"false positive (sighting {row.id})"
        service.allow(ctx, store, kind=row.type, value=row.value, reason=reason, sighting_id=row.id)
    return row


def entity_timeline(session: Session, store: IntelStore, *, entity_id: int) -> dict[str, Any]:
    """Who did what, when, with which method, against which asset: the entity, its indicators and the
    sightings of those in the caller's units, oldest first."""
    entity = service.entity(session, entity_id)
    ids = store.related_to(entity.name)
    indicators = store.by_ids(ids[:TIMELINE_LIMIT])
    rows = list(session.scalars(select(IntelSighting).where(IntelSighting.indicator_id.in_(ids))
                                .order_by(IntelSighting.first_seen).limit(TIMELINE_LIMIT))) if ids else []
    return {
        "entity": EntityRead.model_validate(entity).model_dump(mode="json"),
        "indicators": [{"id": i.id, "type": i.type, "value": i.value, "score": i.score, "active": i.active}
                       for i in indicators],
        "indicator_count": len(ids),
        "timeline": [{"when": r.first_seen.isoformat(), "until": r.last_seen.isoformat(), "asset": r.host,
                      "unit_id": r.unit_id, "indicator": f"{r.type} {r.value}", "field": r.field,
                      "observed": r.observed, "count": r.count, "retroactive": r.retroactive,
                      "techniques": entity.attack_ids, "sighting": SightingRead.model_validate(r).id,
                      "alert_id": r.alert_id} for r in rows],
    }


def retro_all(intel: Intel, events: EventStore, *, days: int, by: str, now: datetime) -> RetroResult:
    """Look back for every active indicator."""
    active = list(intel.store.active())
    return retro_hunt(intel.db, intel.store, events, indicators=active, trigger=f"all active indicators, by {by}",
                      lookback_days=days, warninglists=intel.warninglists, now=now)
