"""Indicators and the allow-list: search the indicator store (text, type, source, tag, active only), one
indicator with the provenance of every source that states it (version, confidence, TLP, its score now and how
it decays), its tags, the actors and campaigns it relates to, the warninglists that flag it and whether it is
allow-listed; the allow-list itself, with the reason and author of each entry, to add to and remove from.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from vigil.core.errors import NotFound
from vigil.core.pagination import PageParams
from vigil.intel import feeds_service, lookup, service, sightings_service
from vigil.intel.indicators import IndicatorType
from vigil.intel.views.common import (
    REFUSED,
    IndicatorId,
    Pages,
    Reader,
    RecordId,
    Writer,
    done_of,
    entity_ids,
    intel_of,
    source_names,
    unit_names,
)
from vigil.web.deps import SessionDep, context, settings_of
from vigil.web.templating import (
    FormDep,
    Pager,
    PageRoute,
    describe_error,
    local_path,
    redirect,
    render,
    text_fields,
    translator,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Short = Annotated[str, Query(max_length=300)]
SIGHTINGS_SHOWN = 20
ALLOW_TYPES = tuple(str(kind) for kind in IndicatorType if kind is not IndicatorType.PATTERN)


# --- indicators ---------------------------------------------------------------------------------------


@router.get("/intel/indicators")
def indicators_page(request: Request, principal: Reader, session: SessionDep, pages: Pages, q: Short = "",
                    kind: Annotated[str, Query(alias="type", max_length=40)] = "", source: Short = "",
                    tag: Short = "", active: Short = "") -> HTMLResponse:
    filters = {"q": q.strip(), "type": kind if kind in IndicatorType._value2member_map_ else "",
               "source": source.strip(), "tag": tag.strip(), "active": "on" if active in ("on", "true", "1") else ""}
    store = intel_of(request).store
    found, total = store.search(text=filters["q"], types=[filters["type"]] if filters["type"] else [],
                                source=filters["source"], tag=filters["tag"], active_only=bool(filters["active"]),
                                limit=pages.limit, offset=pages.offset)
    return render(request, "intel/indicators.html", {
        "indicators": found,
        "total": total,
        "filters": filters,
        "type_options": [(str(kind), str(kind)) for kind in IndicatorType],
        "sources": sorted(store.counts_by_source().items()),
        "source_names": source_names(session),
        "pager": Pager("/intel/indicators", total, pages.limit, pages.offset, filters),
    })


@router.get("/intel/indicators/{indicator_id}")
def indicator_page(indicator_id: IndicatorId, request: Request, principal: Reader,
                   session: SessionDep) -> HTMLResponse:
    stored = intel_of(request).store.get(indicator_id)
    if stored is None:
        raise NotFound(f"no indicator {indicator_id}")
    indicator = lookup.indicator_read(stored)
    allowed = [row for row in service.allowlist(session) if (row.type, row.value) == (indicator.type, indicator.value)]
    return render(request, "intel/indicator.html", {
        "indicator": indicator,
        "source_names": source_names(session),
        "feed_ids": {feeds_service.source_of(feed): feed.id for feed in feeds_service.feeds(session)},
        "entities": entity_ids(session, {r["name"] for r in indicator.related if r.get("name")}),
        "allowed": allowed[0] if allowed else None,
        "sightings": list(session.scalars(
            sightings_service.sightings_query(indicator_id=indicator.id).limit(SIGHTINGS_SHOWN))),
        "unit_names": unit_names(session),
        "allow_type": indicator.type if indicator.type in ALLOW_TYPES else "",
        "zone": settings_of(request).timezone,
    })


# --- the allow-list -----------------------------------------------------------------------------------


def _allowlist(request: Request, session: Session, pages: PageParams, *, values: dict[str, str] | None = None,
               error: str = "", status: int = 200) -> HTMLResponse:
    entries = service.allowlist(session)
    return render(request, "intel/allowlist.html", {
        "entries": entries[pages.offset:pages.offset + pages.limit],
        "pager": Pager("/intel/allowlist", len(entries), pages.limit, pages.offset),
        "types": ALLOW_TYPES,
        "values": values or {"type": "ipv4"},
        "error": error,
        "done": done_of(request),
    }, status=status)


@router.get("/intel/allowlist")
def allowlist_page(request: Request, principal: Reader, session: SessionDep, pages: Pages) -> HTMLResponse:
    return _allowlist(request, session, pages)


@router.post("/intel/allowlist")
def add_allow(request: Request, principal: Writer, session: SessionDep, form: FormDep) -> Response:
    """Allow-list a value with the reason (from the allow-list page or an indicator's page, ``next``)."""
    _ = translator(request)
    values = text_fields(form, "type", "value", "reason", "next")
    if values["type"] not in ALLOW_TYPES:
        return _allowlist(request, session, PageParams(), values=values, status=422,
                          error=_("Choose one of the offered values."))
    try:
        with session.begin_nested():
            service.allow(context(request, session, principal), intel_of(request).store, kind=values["type"],
                          value=values["value"], reason=values["reason"])
    except REFUSED as exc:
        return _allowlist(request, session, PageParams(), values=values, status=422, error=describe_error(exc, _))
    back = local_path(values["next"], "/intel/allowlist")
    return redirect(f"{back}{'&' if '?' in back else '?'}done=allowed")


@router.post("/intel/allowlist/{allow_id}/delete")
def remove_allow(allow_id: RecordId, request: Request, principal: Writer, session: SessionDep) -> Response:
    service.disallow(context(request, session, principal), intel_of(request).store, allow_id=allow_id)
    return redirect("/intel/allowlist?done=removed")
