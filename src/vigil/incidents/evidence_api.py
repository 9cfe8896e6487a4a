"""/api/v1/incidents/{id}/evidence (evidence files and their chain of custody) and /api/v1/incident-reports
(passive reports and their triage).

Evidence: reading and downloading need ``incidents:read`` on the incident's unit, adding, handing over and
verifying ``incidents:write``; another unit's incident or evidence answers 404. The request body of an upload
is the file itself (``?name=`` its file name), streamed to disk and hashed as it arrives.

Reports: any signed-in user reports (the scope is their own unit, where the report lands) and lists their own
named reports; an anonymous reporter follows with the token (no sign-in: the token is the credential). The
triage queue, accepting and rejecting need ``incidents:write`` on the report's unit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID, Scope, set_scope
from vigil.core.errors import PayloadTooLarge
from vigil.core.pagination import Page, PageParams, page_params, paginate
from vigil.incidents import evidence, reports
from vigil.incidents.api import full
from vigil.incidents.evidence_models import CustodyEntry, Evidence
from vigil.incidents.evidence_schemas import (
    CustodyRead,
    EvidenceRead,
    HandOver,
    ReportAccept,
    ReportCreate,
    ReportCreated,
    ReportRead,
    ReportReject,
    ReportStatus,
)
from vigil.incidents.schemas import IncidentRead
from vigil.web.deps import SelfDep, SessionDep, context, require, settings_of

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
reports_router = APIRouter(prefix="/api/v1/incident-reports", tags=["incident reports"])
routers = [router, reports_router]
Reader = Annotated[Principal, Depends(require(Permission.INCIDENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.INCIDENTS_WRITE))]
IncidentId = Annotated[int, PathParam(ge=1, le=MAX_RECORD_ID, description="An incident's id.")]
ChildId = Annotated[int, PathParam(ge=1, le=MAX_RECORD_ID)]
Pages = Annotated[PageParams, Depends(page_params)]
ReportStatusFilter = Annotated[str | None, Query(alias="status", pattern="^(new|accepted|rejected)$")]


def evidence_folder(request: Request) -> Path:
    return settings_of(request).evidence_dir


async def streamed_evidence(request: Request) -> AsyncIterator[evidence.Received]:
    """The request body streamed into a part file, hashed and counted as it arrives (over the limit: 413 and
    the part file deleted). Listed before the principal, like the intel import, so a slow upload never holds a
    records transaction open; whatever is not moved into place is deleted after the request."""
    settings = settings_of(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.evidence_max_bytes:
        raise PayloadTooLarge(f"the evidence file is larger than the limit of {settings.evidence_max_bytes} bytes; "
                              "nothing was kept", limit=settings.evidence_max_bytes)
    incoming = evidence.Incoming(settings.evidence_dir, settings.evidence_max_bytes)
    try:
        async for chunk in request.stream():
            incoming.write(chunk)
        received = incoming.finish()
    except BaseException:
        incoming.discard()
        raise
    try:
        yield received
    finally:
        received.path.unlink(missing_ok=True)


Streamed = Annotated[evidence.Received, Depends(streamed_evidence)]


def _read(item: Evidence, custody: list[CustodyEntry]) -> EvidenceRead:
    read = EvidenceRead.model_validate(item)
    read.custody = [CustodyRead.model_validate(entry) for entry in custody]
    return read


@router.post("/{incident_id}/evidence", status_code=status.HTTP_201_CREATED)
def upload_evidence(upload: Streamed, incident_id: IncidentId, request: Request, principal: Writer,
                    session: SessionDep,
                    name: Annotated[str, Query(min_length=1, max_length=1000, description="The file's name "
                                                                                          "(shown only).")],
                    description: Annotated[str, Query(max_length=5000)] = "") -> EvidenceRead:
    """The body is the file. Stored with its SHA-256 under a generated name; the first custody step recorded."""
    item = evidence.add_evidence(context(request, session, principal), incident_id=incident_id, received=upload,
                                 folder=evidence_folder(request), name=name, description=description.replace("\0", ""),
                                 content_type=request.headers.get("content-type", ""))
    return _read(item, evidence.custody_of(session, [item.id])[item.id])


@router.get("/{incident_id}/evidence")
def list_evidence(incident_id: IncidentId, principal: Reader, session: SessionDep,
                  pages: Pages) -> Page[EvidenceRead]:
    items = list(evidence.evidence_of(session, incident_id))
    shown = items[pages.offset:pages.offset + pages.limit]
    custody = evidence.custody_of(session, [item.id for item in shown])
    return Page(items=[_read(item, custody[item.id]) for item in shown], total=len(items), **pages.model_dump())


@router.get("/{incident_id}/evidence/{evidence_id}")
def read_evidence(incident_id: IncidentId, evidence_id: ChildId, principal: Reader,
                  session: SessionDep) -> EvidenceRead:
    _, item = evidence.get_evidence(session, incident_id, evidence_id)
    return _read(item, evidence.custody_of(session, [item.id])[item.id])


@router.get("/{incident_id}/evidence/{evidence_id}/download")
def download_evidence(incident_id: IncidentId, evidence_id: ChildId, request: Request, principal: Reader,
                      session: SessionDep) -> FileResponse:
    """The file, under its sanitised original name; the download is recorded in the chain of custody."""
    item, path = evidence.record_download(context(request, session, principal), incident_id=incident_id,
                                          evidence_id=evidence_id, folder=evidence_folder(request))
    return FileResponse(path, filename=item.original_name, media_type="application/octet-stream",
                        headers={"X-Content-SHA256": item.sha256})


@router.post("/{incident_id}/evidence/{evidence_id}/handover")
def hand_over_evidence(incident_id: IncidentId, evidence_id: ChildId, data: HandOver, request: Request,
                       principal: Writer, session: SessionDep) -> EvidenceRead:
    item = evidence.hand_over(context(request, session, principal), incident_id=incident_id,
                              evidence_id=evidence_id, to_username=data.to, note_text=data.note)
    return _read(item, evidence.custody_of(session, [item.id])[item.id])


@router.post("/{incident_id}/evidence/{evidence_id}/verify")
def verify_evidence(incident_id: IncidentId, evidence_id: ChildId, request: Request, principal: Writer,
                    session: SessionDep) -> CustodyRead:
    """Hash the stored file again; the result (intact, mismatch, missing) is recorded and returned."""
    return CustodyRead.model_validate(evidence.verify(context(request, session, principal), incident_id=incident_id,
                                                      evidence_id=evidence_id, folder=evidence_folder(request)))


# --- reports --------------------------------------------------------------------------------------------


@reports_router.post("", status_code=status.HTTP_201_CREATED)
def submit_report(data: ReportCreate, request: Request, principal: SelfDep, session: SessionDep) -> ReportCreated:
    """Any signed-in user; ``anonymous`` keeps no trace of the reporter and returns a follow-up token once."""
    report, token = reports.submit(context(request, session, principal), data=data)
    return ReportCreated(**reports.status_of(session, report).model_dump(), follow_token=token)


@reports_router.get("/mine")
def my_reports(principal: SelfDep, session: SessionDep, pages: Pages) -> Page[ReportStatus]:
    """The caller's own named reports, newest first (anonymous ones are linked to nobody)."""
    items, total = paginate(session, reports.own_reports_query(principal.user_id), pages)
    return Page(items=[reports.status_of(session, r) for r in items], total=total, **pages.model_dump())


@reports_router.get("/follow/{token}")
def follow_report(token: Annotated[str, PathParam(min_length=20, max_length=100)], session: SessionDep
                  ) -> ReportStatus:
    set_scope(session, Scope.system())  # the token, checked by its digest, is the authority here
    return reports.follow(session, token)


@reports_router.get("")
def triage_queue(principal: Writer, session: SessionDep, pages: Pages,
                 report_status: ReportStatusFilter = None) -> Page[ReportRead]:
    items, total = paginate(session, reports.reports_query(report_status), pages)
    return Page(items=[ReportRead.model_validate(r) for r in items], total=total, **pages.model_dump())


@reports_router.get("/{report_id}")
def read_report(report_id: ChildId, principal: Writer, session: SessionDep) -> ReportRead:
    return ReportRead.model_validate(reports.get_report(session, report_id))


@reports_router.post("/{report_id}/accept", status_code=status.HTTP_201_CREATED)
def accept_report(report_id: ChildId, data: ReportAccept, request: Request, principal: Writer,
                  session: SessionDep) -> IncidentRead:
    incident = reports.accept(context(request, session, principal), report_id=report_id, data=data)
    return full(request, session, incident.id)


@reports_router.post("/{report_id}/reject")
def reject_report(report_id: ChildId, data: ReportReject, request: Request, principal: Writer,
                  session: SessionDep) -> ReportRead:
    return ReportRead.model_validate(reports.reject(context(request, session, principal), report_id=report_id,
                                                    data=data))
