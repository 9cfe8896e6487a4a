"""/api/v1/siem: log sources (settings and what was seen of each), retention, and the SIEM's status.

Reading needs ``sources:read`` and covers the units where the caller holds it: configured sources of
those units and the events stored for them. Changing a source needs ``sources:write`` on its unit;
starting a retention run deletes events of every unit, so it needs ``sources:write`` at headquarters.
Every change is on the audit trail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from pydantic import BaseModel

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.pagination import Page, PageParams, page_params
from vigil.siem import retention, sources
from vigil.siem.runtime import Siem
from vigil.siem.sources import (
    SiemStatus,
    SourceCreate,
    SourceRead,
    SourceSaved,
    SourceStatus,
    SourceUpdate,
)
from vigil.web.deps import SessionDep, context, require, settings_of

router = APIRouter(prefix="/api/v1/siem", tags=["log sources"])
SourcesReader = Annotated[Principal, Depends(require(Permission.SOURCES_READ))]
SourcesWriter = Annotated[Principal, Depends(require(Permission.SOURCES_WRITE))]
RetentionRunner = Annotated[Principal, Depends(require(Permission.SOURCES_WRITE, everywhere=True))]
Id = Annotated[int, Path(ge=1, le=MAX_RECORD_ID, description="A log source's id.")]


class RetentionRead(retention.RetentionStatus):
    next_run_at: datetime | None
    last_error: str


def siem_of(request: Request) -> Siem:
    siem: Siem = request.app.state.siem
    return siem


def refresh_after_commit(request: Request, session: SessionDep) -> None:
    """The pipeline reads the new settings as soon as the change is committed."""
    directory = siem_of(request).directory
    if directory is not None:
        sources.after_commit(session, directory.invalidate)


def saved(row: object, days: int | None) -> SourceSaved:
    return SourceSaved.model_validate({**SourceRead.model_validate(row).model_dump(),
                                       "warnings": sources.retention_warnings(days)})


@router.get("/sources")
def list_sources(request: Request, principal: SourcesReader, session: SessionDep,
                 pages: Annotated[PageParams, Depends(page_params)], silent: bool | None = None) -> Page[SourceStatus]:
    """Configured and observed sources: last event, events per second, parse failures, silent or not.
    ``?silent=true`` lists only the sources that went quiet past their expected interval."""
    siem = siem_of(request)
    listing = sources.source_statuses(session, siem.store, settings_of(request), stats=siem.source_stats,
                                      unit_ids=principal.units_for(Permission.SOURCES_READ))
    chosen = [item for item in listing.items if silent is None or item.silent == silent]
    return Page(items=chosen[pages.offset:pages.offset + pages.limit], total=len(chosen), limit=pages.limit,
                offset=pages.offset)


@router.post("/sources", status_code=status.HTTP_201_CREATED)
def create_source(data: SourceCreate, request: Request, principal: SourcesWriter, session: SessionDep) -> SourceSaved:
    """Configure a source; ``warnings`` says when its retention is below the legal minimum."""
    row = sources.create_source(context(request, session, principal), data=data)
    refresh_after_commit(request, session)
    return saved(row, row.retention_days)


@router.get("/sources/{source_id}")
def read_source(source_id: Id, principal: SourcesReader, session: SessionDep) -> SourceRead:
    return SourceRead.model_validate(sources.get_source(session, source_id))


@router.patch("/sources/{source_id}")
def update_source(source_id: Id, data: SourceUpdate, request: Request, principal: SourcesWriter,
                  session: SessionDep) -> SourceSaved:
    row = sources.update_source(context(request, session, principal), source_id=source_id, data=data)
    refresh_after_commit(request, session)
    return saved(row, row.retention_days)


@router.delete("/sources/{source_id}")
def delete_source(source_id: Id, request: Request, principal: SourcesWriter, session: SessionDep) -> SourceRead:
    """Forget the settings; the events stay and the source is read with the defaults from now on."""
    row = sources.delete_source(context(request, session, principal), source_id=source_id)
    refresh_after_commit(request, session)
    return SourceRead.model_validate(row)


@router.get("/status")
def read_status(request: Request, principal: SourcesReader) -> SiemStatus:
    """The pipeline, the spool and the receivers, with a warning when ingestion is falling behind."""
    siem = siem_of(request)
    return sources.siem_status(siem.pipeline, siem.spool, siem.receivers)


@router.get("/retention")
def read_retention(request: Request, principal: SourcesReader, session: SessionDep) -> RetentionRead:
    """Each source's policy: days, oldest event held, whether it is met and whether pruning is due."""
    siem = siem_of(request)
    found = retention.retention_status(session, siem.store, settings_of(request),
                                       unit_ids=principal.units_for(Permission.SOURCES_READ))
    job = siem.retention
    return RetentionRead(**found.model_dump(), next_run_at=job.next_run_at if job else None,
                         last_error=job.last_error if job else "")


class RunRead(BaseModel):
    summary: retention.RunSummary
    checked: int


@router.post("/retention/run")
def run_retention(request: Request, principal: RetentionRunner, session: SessionDep) -> RunRead:
    """Run retention now (the daily job does the same): events older than each policy's days go."""
    pruned = retention.prune_expired(session, siem_of(request).store, settings_of(request))
    summary = retention.record_run(context(request, session, principal), pruned)
    return RunRead(summary=summary, checked=pruned.checked)
