"""/api/v1/hunts: hunts over stored events (start one, list them, read one with its hits per rule).

Every route needs ``events:read``; a hunt reads only the events of the units where its author holds it,
and is recorded in the author's unit. Another unit's hunt answers 404, like one that does not exist, and a
hunt's sample events are shown only where the reader may read them. Starting a hunt is audited.

``POST`` answers 201 with the hunt: finished (``done``) when its window was small enough to run at once,
else ``running``; read it again until its status is ``done`` or ``failed``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID, Database
from vigil.core.pagination import PageParams, page_params
from vigil.detection import hunts_service as service
from vigil.detection.schemas_hunts import HuntCreate, HuntPage, HuntRead, HuntSummary
from vigil.siem.store.duckdb import DuckDBEventStore
from vigil.web.deps import SessionDep, context, require

router = APIRouter(prefix="/api/v1/hunts", tags=["hunts"])
Hunter = Annotated[Principal, Depends(require(Permission.EVENTS_READ))]
HuntId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID, description="A hunt's id.")]
Pages = Annotated[PageParams, Depends(page_params)]


def store_of(request: Request) -> DuckDBEventStore:
    store: DuckDBEventStore = request.app.state.siem.store
    return store


def database_of(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


def units_of(principal: Principal) -> Collection[int]:
    return principal.units_for(Permission.EVENTS_READ)


def home_unit(principal: Principal) -> int:
    """Where the principal's hunts are recorded: their own unit when they read events there, else the first
    unit where they do."""
    units = units_of(principal)
    return principal.unit_id if principal.unit_id in units else min(units)


@router.post("", status_code=status.HTTP_201_CREATED)
def start_hunt(data: HuntCreate, request: Request, principal: Hunter, session: SessionDep) -> HuntRead:
    database, store = database_of(request), store_of(request)
    session.commit()  # loading the enabled rules takes a transaction of its own (SQLite: one writer at a time)
    enabled = service.enabled_rules(database)
    hunt, plan = service.begin_hunt(context(request, session, principal), enabled=enabled, store=store,
                                    data=data, units=units_of(principal), unit_id=home_unit(principal))
    session.commit()  # the hunt's record must exist before it runs (maybe in another thread)
    service.launch(database, store, plan)
    session.refresh(hunt)
    return service.hunt_read(hunt, units=units_of(principal))


@router.get("")
def list_hunts(principal: Hunter, session: SessionDep, pages: Pages) -> HuntPage:
    items, total = service.list_hunts(session, params=pages)
    return HuntPage(items=[HuntSummary.model_validate(item) for item in items], total=total, limit=pages.limit,
                    offset=pages.offset)


@router.get("/{hunt_id}")
def read_hunt(hunt_id: HuntId, principal: Hunter, session: SessionDep) -> HuntRead:
    return service.hunt_read(service.get_hunt(session, hunt_id), units=units_of(principal))
