"""/api/v1/incident-paging: per unit and severity, the escalation policy an incident starts and the channels
told when it opens. Reading needs ``incidents:read``, setting ``incidents:write`` (like the policies)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi import Path as PathParam

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.pagination import Page, PageParams, page_params, paginate
from vigil.incidents.schemas import Severity
from vigil.response import paging_service as service
from vigil.response.paging_service import PagingRead, PagingSet
from vigil.web.deps import SessionDep, context, require

Reader = Annotated[Principal, Depends(require(Permission.INCIDENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.INCIDENTS_WRITE))]
SeverityPath = Annotated[Severity, PathParam()]

router = APIRouter(prefix="/api/v1/incident-paging", tags=["on-call"])


@router.get("")
def list_paging(principal: Reader, session: SessionDep,
                pages: Annotated[PageParams, Depends(page_params)]) -> Page[PagingRead]:
    """Every unit's paging rows the caller can see (at most four per unit), a page at a time."""
    items, total = paginate(session, service.rules_query(), pages)
    return Page(items=[PagingRead.model_validate(row) for row in items], total=total, limit=pages.limit,
                offset=pages.offset)


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
