"""Sightings and actors: the sightings of the user's units (live or found by a retro-hunt, by status), one
sighting with its event, the provenance it was matched on and, when no alert was raised, which warninglist or
the allow-list held it back and why; the buttons to mark it. Actors, campaigns, malware, reports and
techniques by kind, and one of them with its aliases, ATT&CK IDs, related entities and the timeline of its
indicators' sightings here (``sightings_service.entity_timeline``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from vigil.core.auth import Permission, Principal
from vigil.core.errors import BadInput
from vigil.core.pagination import paginate
from vigil.intel import service, sightings_service
from vigil.intel.feeds.stix import ENTITY_KINDS
from vigil.intel.models import IntelSighting
from vigil.intel.schemas import SightingUpdate
from vigil.intel.views.common import (
    REFUSED,
    SIGHTING_STATUSES,
    Pages,
    Reader,
    RecordId,
    UnitWriter,
    done_of,
    entity_ids,
    held_back_lists,
    intel_of,
    source_names,
    unit_names,
)
from vigil.web.deps import SessionDep, context, settings_of
from vigil.web.templating import FormDep, Pager, PageRoute, describe_error, redirect, render, text_fields, translator

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Short = Annotated[str, Query(max_length=40)]
Text = Annotated[str, Query(max_length=200)]
KINDS = sorted(ENTITY_KINDS)
SEARCH_RANGE = "30d"  # the event search a sighting links to


# --- sightings ----------------------------------------------------------------------------------------


@router.get("/intel/sightings")
def sightings_page(request: Request, principal: Reader, session: SessionDep, pages: Pages, found: Short = "",
                   status: Short = "", held: Short = "") -> HTMLResponse:
    """``found``: live or retro; ``held``: yes (a list held it back) or no (it raised an alert)."""
    filters = {"found": found if found in ("live", "retro") else "",
               "status": status if status in SIGHTING_STATUSES else "", "held": held if held in ("yes", "no") else ""}
    query = sightings_service.sightings_query(
        retroactive={"live": False, "retro": True}.get(filters["found"]), status=filters["status"],
        held={"yes": True, "no": False}.get(filters["held"]))
    rows, total = paginate(session, query, pages)
    return render(request, "intel/sightings.html", {
        "sightings": rows,
        "filters": filters,
        "statuses": SIGHTING_STATUSES,
        "unit_names": unit_names(session),
        "pager": Pager("/intel/sightings", total, pages.limit, pages.offset, filters),
        "zone": settings_of(request).timezone,
    })


def search_url(row: IntelSighting) -> str:
    """The event search for the observed value in its field, over the last 30 days."""
    phrase = '"' + row.observed.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "/siem/search?" + urlencode({"q": f"{row.field}:{phrase}", "range": SEARCH_RANGE})


def _sighting(request: Request, principal: Principal, session: Session, row: IntelSighting, *, error: str = "",
              reason: str = "", status: int = 200) -> HTMLResponse:
    provenance: dict[str, Any] = row.provenance or {}
    checked = [str(name) for name in provenance.get("warninglists_checked", [])]
    allowed = [entry for entry in service.allowlist(session) if (entry.type, entry.value) == (row.type, row.value)]
    indicator = intel_of(request).store.get(row.indicator_id)
    return render(request, "intel/sighting.html", {
        "sighting": row,
        "provenance": provenance,
        "checked": checked,
        "held_lists": held_back_lists(row.suppressed_by, checked),
        "allowed": allowed[0] if allowed else None,
        "indicator": indicator,
        "source_names": source_names(session),
        "entities": entity_ids(session, {str(r.get("name")) for r in provenance.get("related", []) if r.get("name")}),
        "event_json": orjson.dumps(row.event, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
                                   | orjson.OPT_NON_STR_KEYS).decode(),
        "search_url": search_url(row),
        "unit_name": unit_names(session).get(row.unit_id, ""),
        "writer": row.unit_id in principal.units_for(Permission.INTEL_WRITE),
        "root_writer": principal.has_everywhere(Permission.INTEL_WRITE),
        "statuses": SIGHTING_STATUSES,
        "reason": reason,
        "error": error,
        "done": done_of(request),
        "zone": settings_of(request).timezone,
    }, status=status)


@router.get("/intel/sightings/{sighting_id}")
def sighting_page(sighting_id: RecordId, request: Request, principal: Reader, session: SessionDep) -> HTMLResponse:
    return _sighting(request, principal, session, sightings_service.get_sighting(session, sighting_id))


@router.post("/intel/sightings/{sighting_id}/mark")
def mark_sighting(sighting_id: RecordId, request: Request, principal: UnitWriter, session: SessionDep,
                  form: FormDep) -> Response:
    """Mark a true or false positive; a false positive with ``allow`` also allow-lists the value (which changes
    matching everywhere, so it needs ``intel:write`` at a root unit)."""
    _ = translator(request)
    row = sightings_service.get_sighting(session, sighting_id)  # 404 outside the user's units, before the form
    values = text_fields(form, "status", "allow", "reason")
    allow = values["allow"] in ("on", "true", "1")
    try:
        data = SightingUpdate.model_validate({"status": values["status"], "allow": allow, "reason": values["reason"]})
        if data.allow and not principal.has_everywhere(Permission.INTEL_WRITE):
            raise BadInput("allow-listing changes matching everywhere: it needs intel:write at a root unit")
        if data.allow and data.status != "false-positive":
            raise BadInput("only a false positive is allow-listed")
        with session.begin_nested():
            sightings_service.mark(context(request, session, principal), intel_of(request).store,
                                   sighting_id=sighting_id, data=data)
    except ValidationError:
        return _sighting(request, principal, session, row, reason=values["reason"], status=422,
                         error=_("Choose true positive or false positive."))
    except REFUSED as exc:
        session.refresh(row)
        return _sighting(request, principal, session, row, reason=values["reason"], status=exc.status,
                         error=describe_error(exc, _))
    return redirect(f"/intel/sightings/{sighting_id}?done={'allowed' if allow else 'marked'}")


# --- actors, campaigns and the rest -------------------------------------------------------------------------


@router.get("/intel/actors")
def actors_page(request: Request, principal: Reader, session: SessionDep, pages: Pages, kind: Short = "",
                q: Text = "") -> HTMLResponse:
    filters = {"kind": kind if kind in ENTITY_KINDS else "", "q": q.strip()}
    rows, total = paginate(session, service.entities_query(kind=filters["kind"] or None, text=filters["q"]), pages)
    return render(request, "intel/actors.html", {
        "entities": rows,
        "filters": filters,
        "kinds": KINDS,
        "pager": Pager("/intel/actors", total, pages.limit, pages.offset, filters),
    })


def _times(row: dict[str, Any]) -> dict[str, Any]:
    """A timeline row with its times as datetimes (the service gives ISO text, for JSON)."""
    return {**row, "when": datetime.fromisoformat(row["when"]), "until": datetime.fromisoformat(row["until"])}


@router.get("/intel/actors/{entity_id}")
def actor_page(entity_id: RecordId, request: Request, principal: Reader, session: SessionDep) -> HTMLResponse:
    found = sightings_service.entity_timeline(session, intel_of(request).store, entity_id=entity_id)
    entity = found["entity"]
    return render(request, "intel/actor.html", {
        "entity": entity,
        "first_seen": datetime.fromisoformat(entity["first_seen"]) if entity["first_seen"] else None,
        "last_seen": datetime.fromisoformat(entity["last_seen"]) if entity["last_seen"] else None,
        "indicators": found["indicators"],
        "indicator_count": found["indicator_count"],
        "timeline": [_times(row) for row in found["timeline"]],
        "related": entity_ids(session, {str(r.get("name")) for r in entity["related"] if r.get("name")}),
        "unit_names": unit_names(session),
        "zone": settings_of(request).timezone,
    })
