"""/api/v1/intel: feeds and their pulls, imports, indicators, sightings, actors and campaigns, the allow-list,
retro-hunts and the observable lookup.

Reading needs ``intel:read``; feeds, imports, indicators and the allow-list are platform-wide, so changing
them needs ``intel:write`` at a root unit. Sightings belong to the unit of the event that carried the
indicator: they are read and marked within the caller's units (another unit's sighting answers 404).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from sqlalchemy import select

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.errors import BadInput, NotFound
from vigil.core.pagination import Page, PageParams, page_params, paginate
from vigil.intel import export, feeds_service, lookup, service, sightings_service
from vigil.intel.feeds.presets import presets
from vigil.intel.indicators import IndicatorType, InvalidValue, ParsedIndicator, normalise
from vigil.intel.models import IntelAllowlist, IntelFeed, IntelPull, RetroHunt
from vigil.intel.runtime import Intel, live_matching
from vigil.intel.schemas import (
    AllowCreate,
    AllowRead,
    EntityRead,
    FeedCreate,
    FeedRead,
    FeedUpdate,
    ImportRead,
    IndicatorCreate,
    IndicatorRead,
    LiveMatchingRead,
    LookupRead,
    PullRead,
    RetroHuntRead,
    SightingRead,
    SightingUpdate,
)
from vigil.web.deps import SessionDep, context, require

router = APIRouter(prefix="/api/v1/intel", tags=["intel"])
Reader = Annotated[Principal, Depends(require(Permission.INTEL_READ))]
Writer = Annotated[Principal, Depends(require(Permission.INTEL_WRITE, everywhere=True))]
UnitWriter = Annotated[Principal, Depends(require(Permission.INTEL_WRITE))]
RecordId = Annotated[int, PathParam(ge=1, le=MAX_RECORD_ID)]
Pages = Annotated[PageParams, Depends(page_params)]


def intel_of(request: Request) -> Intel:
    intel: Intel = request.app.state.intel
    return intel


def units_of(principal: Principal, permission: Permission = Permission.INTEL_READ) -> Collection[int]:
    return principal.units_for(permission)


# --- feeds ------------------------------------------------------------------------------------------


@router.get("/presets")
def list_presets(principal: Reader, pages: Pages) -> Page[dict[str, Any]]:
    known = [{"name": p.name, "title": p.title, "format": p.format, "url": p.url, "description": p.description,
              "api_key_header": p.api_key_header} for p in presets().values()]
    return Page(items=known[pages.offset:pages.offset + pages.limit], total=len(known), limit=pages.limit,
                offset=pages.offset)


@router.get("/feeds")
def list_feeds(principal: Reader, session: SessionDep, pages: Pages) -> Page[FeedRead]:
    items, total = paginate(session, select(IntelFeed).order_by(IntelFeed.name), pages)
    return Page(items=[feeds_service.feed_read(f) for f in items], total=total, limit=pages.limit,
                offset=pages.offset)


@router.post("/feeds", status_code=status.HTTP_201_CREATED)
def add_feed(data: FeedCreate, request: Request, principal: Writer, session: SessionDep) -> FeedRead:
    return feeds_service.feed_read(feeds_service.add_feed(context(request, session, principal), data))


@router.get("/feeds/{feed_id}")
def read_feed(feed_id: RecordId, principal: Reader, session: SessionDep) -> FeedRead:
    return feeds_service.feed_read(feeds_service.get_feed(session, feed_id))


@router.patch("/feeds/{feed_id}")
def update_feed(feed_id: RecordId, data: FeedUpdate, request: Request, principal: Writer,
                session: SessionDep) -> FeedRead:
    return feeds_service.feed_read(feeds_service.update_feed(context(request, session, principal), feed_id=feed_id,
                                                             data=data))


@router.delete("/feeds/{feed_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_feed(feed_id: RecordId, request: Request, principal: Writer, session: SessionDep) -> Response:
    feeds_service.delete_feed(context(request, session, principal), intel_of(request).store, feed_id=feed_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/feeds/{feed_id}/pull")
def pull_feed(feed_id: RecordId, request: Request, principal: Writer, session: SessionDep,
              force: bool = False) -> PullRead:
    """Pull now (and retro-hunt what is new); answers with the pull's record, whatever its outcome."""
    feeds_service.get_feed(session, feed_id)
    session.commit()  # the pull runs in transactions of its own
    intel = intel_of(request)
    with httpx.Client(timeout=60.0, follow_redirects=True) as client:
        outcome = intel.pull(feed_id, client=client, force=force, actor=context(request, session, principal).actor)
    return PullRead.model_validate(feeds_service.get_pull(session, outcome.pull_id))


@router.get("/pulls")
def list_pulls(principal: Reader, session: SessionDep, pages: Pages, feed_id: int | None = None) -> Page[PullRead]:
    query = select(IntelPull).order_by(IntelPull.started_at.desc(), IntelPull.id.desc())
    if feed_id is not None:
        query = query.where(IntelPull.feed_id == feed_id)
    items, total = paginate(session, query, pages)
    return Page(items=[PullRead.model_validate(p) for p in items], total=total, limit=pages.limit,
                offset=pages.offset)


# --- imports ----------------------------------------------------------------------------------------


async def uploaded(request: Request) -> AsyncIterator[Path]:
    """The request body streamed to a temporary file (removed after the request). A dependency listed before
    the principal's, so the upload is read before the records session opens: a slow upload never holds a
    database transaction open."""
    with tempfile.NamedTemporaryFile(prefix="vigil-import-", delete=False) as body:
        path = Path(body.name)
        try:
            async for chunk in request.stream():
                body.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


Upload = Annotated[Path, Depends(uploaded)]


@router.post("/imports", status_code=status.HTTP_201_CREATED)
def import_file(upload: Upload, request: Request, principal: Writer, session: SessionDep,
                fmt: Annotated[str, Query(alias="format", max_length=40)] = "stix",
                name: Annotated[str, Query(max_length=200)] = "upload",
                retrohunt: bool = True) -> ImportRead:
    """The request body is the file (a STIX bundle, a MISP event, a CSV or list, an OTX pulse); ``format`` is a
    format or a preset's name. What is new is looked for in stored events at once (``retrohunt``)."""
    chosen = presets().get(fmt)
    intel = intel_of(request)
    with upload.open("rb") as body:
        result = service.take_in(context(request, session, principal), intel.store, stream=body,
                                 fmt=chosen.format if chosen else fmt, options=dict(chosen.options) if chosen else {},
                                 source=f"import:{name}", version=datetime.now(UTC).strftime("%Y%m%dT%H%M%S"),
                                 warninglists=intel.warninglists)
    session.commit()  # the pull is recorded before the look-back, which uses transactions of its own
    found = intel.look_back(result.merge.fresh, trigger=f"import:{name}") if retrohunt else None
    hunt = session.get(RetroHunt, found.hunt_id) if found is not None else None
    return ImportRead(pull=PullRead.model_validate(result.pull),
                      retrohunt=RetroHuntRead.model_validate(hunt) if hunt is not None else None)


# --- indicators -------------------------------------------------------------------------------------


@router.get("/indicators")
def list_indicators(request: Request, principal: Reader, pages: Pages,
                    q: Annotated[str, Query(max_length=500)] = "",
                    type: Annotated[list[str] | None, Query(max_length=12)] = None,
                    source: Annotated[str, Query(max_length=300)] = "",
                    tag: Annotated[str, Query(max_length=200)] = "",
                    active: bool = False) -> Page[IndicatorRead]:
    for kind in type or []:
        if kind not in IndicatorType._value2member_map_:
            raise BadInput(f"unknown indicator type {kind!r}; one of {', '.join(IndicatorType)}")
    found, total = intel_of(request).store.search(text=q, types=type or [], source=source, tag=tag,
                                                  active_only=active, limit=pages.limit, offset=pages.offset)
    return Page(items=[lookup.indicator_read(i) for i in found], total=total, limit=pages.limit,
                offset=pages.offset)


@router.post("/indicators", status_code=status.HTTP_201_CREATED)
def add_indicator(data: IndicatorCreate, request: Request, principal: Writer, session: SessionDep) -> IndicatorRead:
    """An indicator from an analyst (source ``manual``); looked back for at once."""
    try:
        value = normalise(data.type, data.value)
    except InvalidValue as exc:
        raise BadInput(str(exc)) from None
    intel = intel_of(request)
    item = ParsedIndicator(IndicatorType(data.type), value, confidence=data.confidence,
                           tlp=service.check_tlp(data.tlp), tags=tuple(data.tags), description=data.description,
                           valid_until=data.valid_until)
    merged = intel.store.merge([item], source="manual", version=principal.username)
    ctx = context(request, session, principal)
    service.flag_indicators(session, intel.store, source="manual", warninglists=intel.warninglists)
    stored = intel.store.find(item.type, value)
    if stored is None:
        raise NotFound("the indicator was not stored")
    ctx.audit("intel.indicator.add", target_type="intel_indicator", target_id=stored.id,
              details={"type": stored.type, "value": stored.value})
    session.commit()
    intel.look_back(merged.fresh, trigger=f"manual indicator {stored.id}")
    return lookup.indicator_read(intel.store.get(stored.id) or stored)


@router.get("/indicators/{indicator_id}")
def read_indicator(indicator_id: Annotated[int, PathParam(ge=1)], request: Request, principal: Reader) -> IndicatorRead:
    found = intel_of(request).store.get(indicator_id)
    if found is None:
        raise NotFound(f"no indicator {indicator_id}")
    return lookup.indicator_read(found)


@router.get("/lookup")
def look_up(request: Request, principal: Reader, session: SessionDep,
            value: Annotated[str, Query(min_length=1, max_length=2048)]) -> LookupRead:
    units = principal.units_for(Permission.EVENTS_READ)
    events = request.app.state.siem.existing_store() if units else None
    return lookup.look_up(session, intel_of(request), value, events=events, units=units,
                          incident_units=principal.units_for(Permission.INCIDENTS_READ))


@router.get("/live")
def live_matching_state(request: Request, principal: Reader) -> LiveMatchingRead:
    """Live matching in this server's pipeline: the indicators indexed, events matched, hits, errors."""
    return live_matching(request.app.state.siem.consumers)


@router.get("/export")
def export_bundle(request: Request, principal: Reader, session: SessionDep,
                  source: Annotated[list[str] | None, Query(max_length=20)] = None) -> JSONResponse:
    """The organisation's own intelligence (source ``manual`` unless others are named) as a STIX 2.1 bundle,
    with the sightings in the caller's units."""
    data = export.bundle(session, intel_of(request).store, sources=source or ["manual"])
    return JSONResponse(data, headers={"Content-Disposition": f'attachment; filename="{export.file_name()}"'})


# --- sightings --------------------------------------------------------------------------------------


@router.get("/sightings")
def list_sightings(principal: Reader, session: SessionDep, pages: Pages, retroactive: bool | None = None,
                   sighting_status: Annotated[str | None, Query(alias="status", max_length=20)] = None,
                   indicator_id: int | None = None) -> Page[SightingRead]:
    query = sightings_service.sightings_query(retroactive=retroactive, status=sighting_status or "",
                                              indicator_id=indicator_id)
    rows, total = paginate(session, query, pages)
    return Page(items=[SightingRead.model_validate(r) for r in rows], total=total, limit=pages.limit,
                offset=pages.offset)


@router.get("/sightings/{sighting_id}")
def read_sighting(sighting_id: RecordId, principal: Reader, session: SessionDep) -> SightingRead:
    return SightingRead.model_validate(sightings_service.get_sighting(session, sighting_id))


@router.patch("/sightings/{sighting_id}")
def mark_sighting(sighting_id: RecordId, data: SightingUpdate, request: Request, principal: UnitWriter,
                  session: SessionDep) -> SightingRead:
    """Mark a sighting true or false positive; a false positive with ``allow`` allow-lists the value (that needs
    ``intel:write`` at a root unit)."""
    if data.allow and not principal.has_everywhere(Permission.INTEL_WRITE):
        raise BadInput("allow-listing changes matching everywhere: it needs intel:write at a root unit")
    row = sightings_service.mark(context(request, session, principal), intel_of(request).store,
                                 sighting_id=sighting_id, data=data)
    return SightingRead.model_validate(row)


# --- entities, allow-list, retro-hunts ----------------------------------------------------------------


@router.get("/entities")
def list_entities(principal: Reader, session: SessionDep, pages: Pages,
                  kind: Annotated[str | None, Query(max_length=40)] = None,
                  q: Annotated[str, Query(max_length=200)] = "") -> Page[EntityRead]:
    items, total = paginate(session, service.entities_query(kind=kind, text=q), pages)
    return Page(items=[EntityRead.model_validate(e) for e in items], total=total, limit=pages.limit,
                offset=pages.offset)


@router.post("/entities/attack", status_code=status.HTTP_201_CREATED)
def import_attack(request: Request, principal: Writer, session: SessionDep) -> dict[str, int]:
    """ATT&CK Enterprise's groups, campaigns and software, from the offline data shipped with Vigil."""
    return {"entities": service.import_attack(context(request, session, principal))}


@router.get("/entities/{entity_id}")
def read_entity(entity_id: RecordId, request: Request, principal: Reader, session: SessionDep) -> dict[str, Any]:
    """An actor, campaign or other entity with its indicators and the timeline of their sightings here."""
    return sightings_service.entity_timeline(session, intel_of(request).store, entity_id=entity_id)


@router.get("/allowlist")
def list_allowlist(principal: Reader, session: SessionDep, pages: Pages) -> Page[AllowRead]:
    items, total = paginate(session, select(IntelAllowlist).order_by(IntelAllowlist.created_at.desc()), pages)
    return Page(items=[AllowRead.model_validate(r) for r in items], total=total, limit=pages.limit,
                offset=pages.offset)


@router.post("/allowlist", status_code=status.HTTP_201_CREATED)
def add_allow(data: AllowCreate, request: Request, principal: Writer, session: SessionDep) -> AllowRead:
    row = service.allow(context(request, session, principal), intel_of(request).store, kind=data.type,
                        value=data.value, reason=data.reason)
    return AllowRead.model_validate(row)


@router.delete("/allowlist/{allow_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_allow(allow_id: RecordId, request: Request, principal: Writer, session: SessionDep) -> Response:
    service.disallow(context(request, session, principal), intel_of(request).store, allow_id=allow_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/retrohunts")
def list_retrohunts(principal: Reader, session: SessionDep, pages: Pages) -> Page[RetroHuntRead]:
    items, total = paginate(session, select(RetroHunt).order_by(RetroHunt.created_at.desc(), RetroHunt.id.desc()),
                            pages)
    return Page(items=[RetroHuntRead.model_validate(r) for r in items], total=total, limit=pages.limit,
                offset=pages.offset)


@router.post("/retrohunts", status_code=status.HTTP_201_CREATED)
def start_retrohunt(request: Request, principal: Writer, session: SessionDep,
                    days: Annotated[int, Query(ge=1, le=3650)] = 30) -> RetroHuntRead:
    """Look back for every active indicator now, over ``days`` days (a new deployment, a changed setting)."""
    intel = intel_of(request)
    events = request.app.state.siem.store
    session.commit()
    found = sightings_service.retro_all(intel, events, days=days, by=principal.username,
                                        now=datetime.now(UTC) + timedelta(seconds=1))
    hunt = session.get(RetroHunt, found.hunt_id)
    if hunt is None:
        raise NotFound("the retro-hunt was not recorded")
    context(request, session, principal).audit("intel.retrohunt", target_type="intel_retrohunt", target_id=hunt.id,
                                               details={"days": days, "indicators": hunt.indicators,
                                                        "hits": hunt.hits})
    return RetroHuntRead.model_validate(hunt)


routers: list[APIRouter] = [router]
