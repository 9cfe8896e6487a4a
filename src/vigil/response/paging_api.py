"""/api/v1/incident-paging: per unit and severity, the escalation policy an incident starts and the channels
told when it opens. Reading needs ``incidents:read``, setting ``incidents:write`` (like the policies)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi import Path as PathParam

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.response import paging_service as service
from vigil.response.paging_service import PagingRead, PagingSet, Severity
from vigil.web.deps import SessionDep, context, require

Reader = Annotated[Principal, Depends(require(Permission.INCIDENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.INCIDENTS_WRITE))]
SeverityPath = Annotated[Severity, PathParam()]

router = APIRouter(prefix="/api/v1/incident-paging", tags=["on-call"])


@router.get("")
def list_paging(principal: Reader, session: SessionDep) -> list[PagingRead]:
    """Every unit's paging rows the caller can see (at most four per unit)."""
    return [PagingRead.model_validate(row) for row in service.list_rules(session)]


@router.put("/{severity}")
def set_paging(severity: SeverityPath, data: PagingSet, request: Request, principal: Writer,
               session: SessionDep) -> PagingRead:
    return PagingRead.model_validate(service.set_rule(context(request, session, principal), severity=severity,
                                                      data=data))


@router.delete("/{severity}", status_code=status.HTTP_204_NO_CONTENT)
def delete_paging(severity: SeverityPath, request: Request, principal: Writer, session: SessionDep,
                  unit_id: Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)] = None) -> Response:
    service.delete_rule(context(request, session, principal), severity=severity, unit_id=unit_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
