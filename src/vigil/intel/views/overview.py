"""The intelligence overview (what is held, what was seen this week, which feeds need care) and the observable
lookup ("what do we know about X?"), whose search box sits in the header of every intelligence page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from vigil.core.auth import Permission
from vigil.intel import feeds_service, lookup, sightings_service
from vigil.intel.models import RetroHunt
from vigil.intel.runtime import live_matching
from vigil.intel.views.common import (
    Reader,
    held_back_lists,
    intel_of,
    recent_sighting_counts,
    unit_names,
)
from vigil.web.deps import SessionDep, settings_of
from vigil.web.templating import PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
RECENT_DAYS = 7
RECENT_SIGHTINGS = 10
RECENT_HUNTS = 5


@router.get("/intel")
def overview_page(request: Request, principal: Reader, session: SessionDep) -> HTMLResponse:
    store = intel_of(request).store
    feeds = [feeds_service.feed_read(feed) for feed in feeds_service.feeds(session)]
    _, active = store.search(active_only=True, limit=1)
    return render(request, "intel/overview.html", {
        "indicators": store.count(),
        "active": active,
        "recent": recent_sighting_counts(session, days=RECENT_DAYS),
        "days": RECENT_DAYS,
        "feeds": feeds,
        "troubled": sum(1 for feed in feeds if feed.status == "error" or feed.stale),
        "sightings": list(session.scalars(sightings_service.sightings_query().limit(RECENT_SIGHTINGS))),
        "hunts": list(session.scalars(select(RetroHunt).order_by(RetroHunt.created_at.desc(), RetroHunt.id.desc())
                                      .limit(RECENT_HUNTS))),
        "unit_names": unit_names(session),
        "zone": settings_of(request).timezone,
        "live": live_matching(request.app.state.siem.consumers),
    })


@router.get("/intel/lookup")
def lookup_page(request: Request, principal: Reader, session: SessionDep,
                value: Annotated[str, Query(max_length=2048)] = "") -> HTMLResponse:
    """Everything known about one value; the sightings and alerts of the user's units, the events of the units
    where the user may read events."""
    found = None
    if value.strip():
        units = principal.units_for(Permission.EVENTS_READ)
        events = request.app.state.siem.existing_store() if units else None
        found = lookup.look_up(session, intel_of(request), value, events=events, units=units,
                               incident_units=principal.units_for(Permission.INCIDENTS_READ))
    return render(request, "intel/lookup.html", {
        "value": value.strip(),
        "found": found,
        "held_lists": {s.id: held_back_lists(s.suppressed_by, s.provenance.get("warninglists_checked", []))
                       for s in (found.sightings if found else [])},
        "alerts": [{**alert, "last_seen": _time(alert.get("last_seen"))} for alert in (found.alerts if found else [])],
        "events": [{**event, "time": _time(event.get("@timestamp"))} for event in (found.events if found else [])],
        "unit_names": unit_names(session),
        "event_days": lookup.EVENT_DAYS,
    })


def _time(value: object) -> datetime | None:
    """A time the lookup gives as ISO text (for JSON), as a datetime to show in the display zone."""
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
