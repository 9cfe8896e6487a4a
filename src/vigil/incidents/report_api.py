"""The incident report and publishing the post-mortem: ``POST /api/v1/incidents/{id}/postmortem/prefill|publish``,
``GET /api/v1/incidents/{id}/report.md`` and ``report.pdf``, and the pages ``/incidents/{id}/report`` (laid out
for printing), ``/incidents/{id}/report.md`` and ``/incidents/{id}/report.pdf`` (A4, made on the server).

Reading needs ``incidents:read``; filling in and publishing ``incidents:write``. Included before the incidents
router, so ``/postmortem/publish`` is not read as a review action."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.incidents import postmortem_report
from vigil.incidents.common import get_incident
from vigil.incidents.schemas import PostMortemRead
from vigil.kb.render import render_markdown
from vigil.web.deps import SessionDep, context, require, settings_of
from vigil.web.templating import PageRoute, page_guard, render

Reader = Annotated[Principal, Depends(require(Permission.INCIDENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.INCIDENTS_WRITE))]
PageReader = Annotated[Principal, Depends(page_guard(Permission.INCIDENTS_READ))]
IncidentId = Annotated[int, PathParam(ge=1, le=MAX_RECORD_ID)]

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
pages = APIRouter(route_class=PageRoute, include_in_schema=False)
routers = [router, pages]


class PublicationRead(BaseModel):
    kb_slug: str
    kb_version: int
    git_commit: str | None
    git_error: str  # empty unless the git wiki refused (the knowledge-base page is published all the same)


def _markdown(session: Session, incident_id: int) -> Response:
    incident = get_incident(session, incident_id)
    text = postmortem_report.report_markdown(session, incident)
    return Response(text, media_type="text/markdown; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{incident.ref}.md"'})


def _pdf(session: Session, incident_id: int) -> Response:
    incident = get_incident(session, incident_id)
    data = postmortem_report.report_pdf(session, incident)
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{incident.ref}.pdf"'})


@router.post("/{incident_id}/postmortem/prefill")
def prefill_postmortem(incident_id: IncidentId, request: Request, principal: Writer,
                       session: SessionDep) -> PostMortemRead:
    """Fill the draft's empty sections from the incident (drafting it first when there is none)."""
    return PostMortemRead.model_validate(postmortem_report.prefill(context(request, session, principal),
                                                                   incident_id=incident_id))


@router.post("/{incident_id}/postmortem/publish")
def publish_postmortem(incident_id: IncidentId, request: Request, principal: Writer,
                       session: SessionDep) -> PublicationRead:
    """Publish the approved post-mortem to the knowledge base and, when configured, the git wiki."""
    done = postmortem_report.publish(context(request, session, principal), settings=settings_of(request),
                                     incident_id=incident_id)
    return PublicationRead(kb_slug=done.slug, kb_version=done.version, git_commit=done.git_commit,
                           git_error=done.git_error)


@router.get("/{incident_id}/report.md")
def report_markdown(incident_id: IncidentId, principal: Reader, session: SessionDep) -> Response:
    return _markdown(session, incident_id)


@router.get("/{incident_id}/report.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}, "description": "The incident report, A4."}})
def report_pdf(incident_id: IncidentId, principal: Reader, session: SessionDep) -> Response:
    return _pdf(session, incident_id)


@pages.get("/incidents/{incident_id}/report.pdf")
def report_pdf_page(incident_id: IncidentId, principal: PageReader, session: SessionDep) -> Response:
    return _pdf(session, incident_id)


@pages.get("/incidents/{incident_id}/report.md")
def report_markdown_page(incident_id: IncidentId, principal: PageReader, session: SessionDep) -> Response:
    return _markdown(session, incident_id)


@pages.get("/incidents/{incident_id}/report")
def report_print_page(incident_id: IncidentId, request: Request, principal: PageReader,
                      session: SessionDep) -> HTMLResponse:
    """The report alone, laid out for paper: the browser's "Print" makes the PDF."""
    incident = get_incident(session, incident_id)
    html = render_markdown(postmortem_report.report_markdown(session, incident))
    return render(request, "incidents/report_print.html", {"incident": incident, "html": html})
