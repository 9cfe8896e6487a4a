"""/api/v1/response-actions (configurations) and /api/v1/action-executions (runs).

Separation of duties: configuring an action (what command runs, which firewall, its token) is an integration,
``integrations:write`` (the security administrator); asking for a run, approving one and rolling one back is
``response:execute`` (responders), and the approver is never the requester. So whoever writes a command template
cannot fire it, and whoever fires it cannot change what it does. Both may dry-run: it runs nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.inputs import Text
from vigil.core.pagination import Page, PageParams, page_params, paginate
from vigil.response.actions import executions, service
from vigil.response.actions.schemas import (
    ActionCreate,
    ActionKind,
    ActionRead,
    ActionUpdate,
    Decision,
    DryRunRead,
    ExecutionCreate,
    ExecutionRead,
    ExecutionStatus,
)
from vigil.web.deps import SessionDep, context, require

router = APIRouter(prefix="/api/v1", tags=["response actions"])
Configurer = Annotated[Principal, Depends(require(Permission.INTEGRATIONS_WRITE))]
Responder = Annotated[Principal, Depends(require(Permission.RESPONSE_EXECUTE))]
ActionId = Annotated[int, PathParam(ge=1, le=MAX_RECORD_ID, description="A response action's id.")]
ExecutionId = Annotated[int, PathParam(ge=1, le=MAX_RECORD_ID, description="An action execution's id.")]
Pages = Annotated[PageParams, Depends(page_params)]
FilterId = Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)]


class DryRunInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: Text = Field(min_length=1, max_length=512)
    reason: Text = Field(default="", max_length=2000)


@router.get("/action-kinds")
def list_kinds(principal: Configurer, pages: Pages) -> Page[ActionKind]:
    """The action kinds installed (built-in and plugins) and the settings each takes."""
    found = service.kinds()
    return Page(items=found[pages.offset:pages.offset + pages.limit], total=len(found), limit=pages.limit,
                offset=pages.offset)


@router.get("/response-actions")
def list_actions(principal: Configurer, session: SessionDep, pages: Pages,
                 kind: Annotated[str | None, Query(max_length=40)] = None) -> Page[ActionRead]:
    items, total = paginate(session, service.actions_query(kind=kind), pages)
    return Page(items=[service.action_read(row) for row in items], total=total, limit=pages.limit,
                offset=pages.offset)


@router.post("/response-actions", status_code=status.HTTP_201_CREATED)
def create_action(data: ActionCreate, request: Request, principal: Configurer, session: SessionDep) -> ActionRead:
    """An action of a kind (``GET /action-kinds``); a wrong setting is a 422 naming it."""
    return service.action_read(service.create_action(context(request, session, principal), data=data))


@router.get("/response-actions/{action_id}")
def read_action(action_id: ActionId, principal: Configurer, session: SessionDep) -> ActionRead:
    return service.action_read(service.get_action(session, action_id))


@router.patch("/response-actions/{action_id}")
def update_action(action_id: ActionId, data: ActionUpdate, request: Request, principal: Configurer,
                  session: SessionDep) -> ActionRead:
    return service.action_read(service.update_action(context(request, session, principal), action_id=action_id,
                                                     data=data))


@router.delete("/response-actions/{action_id}")
def delete_action(action_id: ActionId, request: Request, principal: Configurer, session: SessionDep) -> ActionRead:
    """Remove the action; its executions stay under its name."""
    return service.action_read(service.delete_action(context(request, session, principal), action_id=action_id))


@router.post("/response-actions/{action_id}/dry-run")
def dry_run_action(action_id: ActionId, data: DryRunInput, request: Request, principal: Configurer,
                   session: SessionDep) -> DryRunRead:
    """Exactly the commands or requests a run on ``target`` would make (secrets masked); runs nothing."""
    return service.dry_run(context(request, session, principal), action_id=action_id, target=data.target,
                           reason=data.reason)


@router.post("/action-executions", status_code=status.HTTP_201_CREATED)
def request_execution(data: ExecutionCreate, request: Request, response: Response, principal: Responder,
                      session: SessionDep) -> ExecutionRead | DryRunRead:
    """Run an action on a target: it waits for another person's approval when the action says so, else it runs
    now and the reply says how it went (``failed`` with the output is an answer, not an error). With
    ``dry_run: true`` nothing runs or is stored: the reply shows what would run."""
    ctx = context(request, session, principal)
    if data.dry_run:
        response.status_code = status.HTTP_200_OK  # nothing is created
        return service.dry_run(ctx, action_id=data.action_id, target=data.target, reason=data.reason)
    return ExecutionRead.model_validate(executions.request_execution(ctx, data=data))


@router.get("/action-executions")
def list_executions(principal: Responder, session: SessionDep, pages: Pages,
                    status: ExecutionStatus | None = None, incident_id: FilterId = None,
                    action_id: FilterId = None, playbook_run_id: FilterId = None) -> Page[ExecutionRead]:
    query = executions.executions_query(status=status, incident_id=incident_id, action_id=action_id,
                                        playbook_run_id=playbook_run_id)
    items, total = paginate(session, query, pages)
    return Page(items=[ExecutionRead.model_validate(row) for row in items], total=total, limit=pages.limit,
                offset=pages.offset)


@router.get("/action-executions/{execution_id}")
def read_execution(execution_id: ExecutionId, principal: Responder, session: SessionDep) -> ExecutionRead:
    return ExecutionRead.model_validate(executions.get_execution(session, execution_id))


@router.post("/action-executions/{execution_id}/approve")
def approve_execution(execution_id: ExecutionId, data: Decision, request: Request, principal: Responder,
                      session: SessionDep) -> ExecutionRead:
    """Approve a waiting run (403 for one's own request) and run it now."""
    return ExecutionRead.model_validate(executions.approve_execution(
        context(request, session, principal), execution_id=execution_id, comment=data.comment))


@router.post("/action-executions/{execution_id}/reject")
def reject_execution(execution_id: ExecutionId, data: Decision, request: Request, principal: Responder,
                     session: SessionDep) -> ExecutionRead:
    return ExecutionRead.model_validate(executions.reject_execution(
        context(request, session, principal), execution_id=execution_id, comment=data.comment))


@router.post("/action-executions/{execution_id}/rollback")
def rollback_execution(execution_id: ExecutionId, request: Request, principal: Responder,
                       session: SessionDep) -> ExecutionRead:
    """Undo a run that succeeded now, before its TTL (409 when the action has no undo)."""
    return ExecutionRead.model_validate(executions.rollback(context(request, session, principal),
                                                            execution_id=execution_id))


routers: list[APIRouter] = [router]
