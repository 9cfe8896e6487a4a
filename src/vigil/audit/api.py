"""/api/v1/audit: the audit administrator's view of the trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from vigil.audit import service
from vigil.audit.schemas import AuditFilter, AuditPage, AuditRead, VerificationRead
from vigil.core.auth import Permission, Principal
from vigil.core.pagination import PageParams, page_params
from vigil.web.deps import SessionDep, context, require

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
AuditReader = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
AuditVerifier = Annotated[Principal, Depends(require(Permission.AUDIT_VERIFY, everywhere=True))]


@router.get("")
def search_audit(
    request: Request,
    principal: AuditReader,
    session: SessionDep,
    filters: Annotated[AuditFilter, Depends()],
    pages: Annotated[PageParams, Depends(page_params)],
) -> AuditPage:
    items, total = service.search(context(request, session, principal), filters=filters, params=pages)
    return AuditPage(items=[AuditRead.model_validate(e) for e in items], total=total, **pages.model_dump())


@router.get("/export.csv")
def export_audit(
    request: Request, principal: AuditReader, session: SessionDep, filters: Annotated[AuditFilter, Depends()]
) -> StreamingResponse:
    rows = list(service.export_csv(context(request, session, principal), filters=filters))
    return StreamingResponse(
        iter(rows), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="vigil-audit.csv"'},
    )


@router.post("/verify")
def verify_audit(request: Request, principal: AuditVerifier, session: SessionDep) -> VerificationRead:
    result = service.verify(context(request, session, principal))
    return VerificationRead(ok=result.ok, checked=result.checked, first_bad_seq=result.first_bad_seq,
                            reason=result.reason)
