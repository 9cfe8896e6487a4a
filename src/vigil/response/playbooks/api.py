"""/api/v1/playbooks (definitions and versions) and /api/v1/playbook-runs (runs, approvals).

Writing a playbook is configuring automation: ``integrations:write``, as actions are. Running one on an
incident and approving or rejecting its waiting steps is ``response:execute``; whoever started a run never
approves its steps.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi import Path as PathParam

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.pagination import Page, PageParams, page_params, paginate
from vigil.response.playbooks import runs, service
from vigil.response.playbooks.schemas import (
    Decision,
    PlaybookCreate,
    PlaybookRead,
    PlaybookUpdate,
    RunCreate,
    RunRead,
    RunStatus,
    VersionRead,
)
from vigil.response.playbooks.web import options_of
from vigil.web.deps import SessionDep, context, require

router = APIRouter(prefix="/api/v1", tags=["playbooks"])
Configurer = Annotated[Principal, Depends(require(Permission.INTEGRATIONS_WRITE))]
Responder = Annotated[Principal, Depends(require(Permission.RESPONSE_EXECUTE))]
PlaybookId = Annotated[int, PathParam(ge=1, le=MAX_RECORD_ID, description="A playbook's id.")]
RunId = Annotated[int, PathParam(ge=1, le=MAX_RECORD_ID, description="A playbook run's id.")]
Pages = Annotated[PageParams, Depends(page_params)]
FilterId = Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)]


def read(session: SessionDep, playbook_id: int) -> PlaybookRead:
    return service.playbook_read(session, service.get_playbook(session, playbook_id))


@router.get("/playbooks")
def list_playbooks(principal: Configurer, session: SessionDep, pages: Pages) -> Page[PlaybookRead]:
    items, total = paginate(session, service.playbooks_query(), pages)
    return Page(items=[read(session, row.id) for row in items], total=total, limit=pages.limit, offset=pages.offset)


@router.post("/playbooks", status_code=status.HTTP_201_CREATED)
def create_playbook(data: PlaybookCreate, request: Request, principal: Configurer,
                    session: SessionDep) -> PlaybookRead:
    """A playbook, version 1; a definition that does not fit, or names what does not exist, is a 422 naming it."""
    return read(session, service.create_playbook(context(request, session, principal), data=data).id)


@router.get("/playbooks/{playbook_id}")
def read_playbook(playbook_id: PlaybookId, principal: Configurer, session: SessionDep) -> PlaybookRead:
    return read(session, playbook_id)


@router.patch("/playbooks/{playbook_id}")
def update_playbook(playbook_id: PlaybookId, data: PlaybookUpdate, request: Request, principal: Configurer,
                    session: SessionDep) -> PlaybookRead:
    """A changed ``definition`` becomes a new version; runs keep the version they started with."""
    return read(session, service.update_playbook(context(request, session, principal), playbook_id=playbook_id,
                                                 data=data).id)


@router.delete("/playbooks/{playbook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_playbook(playbook_id: PlaybookId, request: Request, principal: Configurer, session: SessionDep) -> None:
    service.delete_playbook(context(request, session, principal), playbook_id=playbook_id)


@router.get("/playbooks/{playbook_id}/versions")
def list_versions(playbook_id: PlaybookId, principal: Configurer, session: SessionDep,
                  pages: Pages) -> Page[VersionRead]:
    playbook = service.get_playbook(session, playbook_id)
    found = service.versions_of(session, playbook)
    return Page(items=[VersionRead.model_validate(v) for v in found[pages.offset:pages.offset + pages.limit]],
                total=len(found), limit=pages.limit, offset=pages.offset)


@router.post("/playbooks/{playbook_id}/runs", status_code=status.HTTP_201_CREATED)
def run_playbook(playbook_id: PlaybookId, data: RunCreate, request: Request, principal: Responder,
                 session: SessionDep) -> RunRead:
    """Run the playbook's current version on an incident now; the reply shows where it stands (it may wait for
    an approval)."""
    run = runs.start_run(context(request, session, principal), playbook_id=playbook_id, incident_id=data.incident_id,
                         options=options_of(request))
    return runs.run_read(session, run)


@router.get("/playbook-runs")
def list_runs(principal: Responder, session: SessionDep, pages: Pages, status: RunStatus | None = None,
              incident_id: FilterId = None, playbook_id: FilterId = None) -> Page[RunRead]:
    items, total = paginate(session, runs.runs_query(status=status, incident_id=incident_id,
                                                     playbook_id=playbook_id), pages)
    return Page(items=[runs.run_read(session, row) for row in items], total=total, limit=pages.limit,
                offset=pages.offset)


@router.get("/playbook-runs/{run_id}")
def read_run(run_id: RunId, principal: Responder, session: SessionDep) -> RunRead:
    return runs.run_read(session, runs.get_run(session, run_id))


@router.post("/playbook-runs/{run_id}/approve")
def approve_run(run_id: RunId, data: Decision, request: Request, principal: Responder,
                session: SessionDep) -> RunRead:
    """Approve the step the run waits at (403 in a run one started); it runs and the run goes on."""
    run = runs.approve_step(context(request, session, principal), run_id=run_id, comment=data.comment,
                            options=options_of(request))
    return runs.run_read(session, run)


@router.post("/playbook-runs/{run_id}/reject")
def reject_run(run_id: RunId, data: Decision, request: Request, principal: Responder,
               session: SessionDep) -> RunRead:
    return runs.run_read(session, runs.reject_step(context(request, session, principal), run_id=run_id,
                                                   comment=data.comment))


routers: list[APIRouter] = [router]
