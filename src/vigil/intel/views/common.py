"""What the threat-intelligence pages share: their guards, the process's ``Intel``, the sightings a page lists,
and the fixed confirmations shown after a redirect.

Reading needs ``intel:read``; feeds, imports, indicators and the allow-list are platform-wide, so changing them
needs ``intel:write`` at a root unit (as the API). Sightings belong to units: they are listed and marked in
the units where the user holds the permission, since the guard narrows the session's scope to those.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID, utcnow
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.pagination import PageParams, page_params
from vigil.intel import feeds_service
from vigil.intel.models import IntelEntity, IntelSighting
from vigil.intel.runtime import Intel
from vigil.web.templating import page_guard

Reader = Annotated[Principal, Depends(page_guard(Permission.INTEL_READ))]
Writer = Annotated[Principal, Depends(page_guard(Permission.INTEL_WRITE, everywhere=True))]
UnitWriter = Annotated[Principal, Depends(page_guard(Permission.INTEL_WRITE))]
RecordId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]
IndicatorId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Pages = Annotated[PageParams, Depends(page_params)]
REFUSED = (BadInput, Conflict, NotFound)
SIGHTING_STATUSES = ("new", "true-positive", "false-positive")
# Confirmations after a redirect (``?done=key``): the templates hold their fixed texts, never the URL's.
DONE = frozenset({"feed-added", "feed-enabled", "feed-disabled", "feed-deleted", "pulled", "marked", "allowed",
                  "removed"})


def intel_of(request: Request) -> Intel:
    intel: Intel = request.app.state.intel
    return intel


def done_of(request: Request) -> str:
    done = request.query_params.get("done", "")
    return done if done in DONE else ""


def unit_names(session: Session) -> dict[int, str]:
    return {unit.id: unit.name for unit in accounts.list_units(session)}


def recent_sighting_counts(session: Session, *, days: int, now: datetime | None = None) -> dict[str, int]:
    """Sightings active in the last ``days`` days in the caller's units: all, those that raised an alert, and
    those a warninglist or the allow-list held back."""
    since = (now or utcnow()) - timedelta(days=days)
    rows = session.execute(select(func.count(), func.count(IntelSighting.alert_id),
                                  func.sum(case((IntelSighting.suppressed_by != "", 1), else_=0)))
                           .where(IntelSighting.last_seen >= since)).one()
    return {"sightings": int(rows[0] or 0), "alerted": int(rows[1] or 0), "held": int(rows[2] or 0)}


def held_back_lists(suppressed_by: str, checked: list[str]) -> list[str]:
    """The warninglists named by a sighting's ``suppressed_by`` ("warninglist: A, B"), else none. A list's name
    may hold a comma, so the names checked at match time are looked for first."""
    prefix = "warninglist: "
    if not suppressed_by.startswith(prefix):
        return []
    named = f", {suppressed_by[len(prefix):]}, "
    found = [name for name in checked if f", {name}, " in named]
    return found or [name.strip() for name in named.split(", ") if name.strip()]


def source_names(session: Session) -> dict[str, str]:
    """A readable name for each feed's source ("feed:3" is the feed called URLhaus)."""
    return {feeds_service.source_of(feed): feed.name for feed in feeds_service.feeds(session)}


def entity_ids(session: Session, names: set[str]) -> dict[str, int]:
    """The ids of the actors, campaigns and others of these names, to link to their pages."""
    if not names:
        return {}
    return {row.name: row.id for row in session.scalars(select(IntelEntity).where(IntelEntity.name.in_(names)))}
