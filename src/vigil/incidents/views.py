"""The incident pages: the queue with its SLA badges and filters, and one incident with its phase stepper,
SLA figures, time per phase, tasks, alerts, observables, evidence, comments, post-mortem and timeline. Reading
needs ``incidents:read``, and another unit's incident is "not found" like everywhere else; the forms on the
incident page post to ``work_views``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID, utcnow
from vigil.core.pagination import PageParams, page_params
from vigil.incidents import evidence, service, settings_service
from vigil.incidents.common import get_incident, user_names
from vigil.incidents.reads import Reader
from vigil.incidents.schemas import IncidentFilter
from vigil.incidents.workflow import ORDER
from vigil.web.deps import SessionDep, settings_of
from vigil.web.templating import Pager, PageRoute, language_of, page_guard, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PageReader = Annotated[Principal, Depends(page_guard(Permission.INCIDENTS_READ))]
Pages = Annotated[PageParams, Depends(page_params)]
Short = Annotated[str, Query(max_length=64)]
PHASES = [str(phase) for phase in ORDER]
SEVERITIES = ["P1", "P2", "P3", "P4"]


@router.get("/incidents")
def incidents_page(request: Request, principal: PageReader, session: SessionDep, pages: Pages, phase: Short = "",
                   severity: Short = "", status: Short = "", sla: Short = "",
                   q: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    """The queue; a filter value the page does not offer is ignored, not an error."""
    shown = {"phase": phase if phase in PHASES else "", "severity": severity if severity in SEVERITIES else "",
             "status": status if status in ("open", "closed") else "",
             "sla": sla if sla in ("ok", "warning", "breached") else "", "q": q}
    try:
        filters = IncidentFilter.model_validate({
            "phase": [shown["phase"]] if shown["phase"] else [], "severity": [shown["severity"]] if shown["severity"]
            else [], "status": shown["status"] or None, "sla": shown["sla"] or None, "q": q})
    except ValidationError:  # text with a NUL character: show the whole queue
        filters, shown["q"] = IncidentFilter(), ""
    items, total = service.list_incidents(session, filters=filters, params=pages)
    return render(request, "incidents/list.html", {
        "incidents": Reader(session, utcnow()).summaries(items),
        "filters": shown,
        "phases": PHASES,
        "severities": SEVERITIES,
        "pager": Pager("/incidents", total, pages.limit, pages.offset, shown),
        "zone": settings_of(request).timezone,
    })


@router.get("/incidents/{incident_id}")
def incident_page(incident_id: Annotated[int, Path(ge=1, le=MAX_RECORD_ID)], request: Request,
                  principal: PageReader, session: SessionDep) -> HTMLResponse:
    return show_incident(request, principal, session, incident_id)


def show_incident(request: Request, principal: Principal, session: Session, incident_id: int, *, error: str = "",
                  status: int = 200, values: Mapping[str, str] | None = None) -> HTMLResponse:
    """The incident page; after a refused change, with the refusal (``error``) and what the form held."""
    incident = get_incident(session, incident_id)
    item = Reader(session, utcnow()).full(incident)
    language = language_of(request, principal)
    types = settings_service.list_types(session, include_disabled=True)
    kind = next((t for t in types if t.key == item.type), None)
    files = evidence.evidence_of(session, incident.id)
    custody = evidence.custody_of(session, [f.id for f in files])
    done = request.query_params.get("done", "")
    return render(request, "incidents/incident.html", {
        "incident": item,
        "type_name": settings_service.type_name(kind, language) if kind else item.type,
        "type_options": [(t.key, settings_service.type_name(t, language)) for t in types if t.enabled],
        "fields": settings_service.list_fields(session),
        "phases": PHASES,
        "reached": PHASES[:PHASES.index(item.phase) + 1] if item.phase in PHASES else [],
        "zone": settings_of(request).timezone,
        "evidence": [{"file": f, "custody": custody[f.id]} for f in files],
        "error": error,
        "values": defaultdict(str, values or {}),  # a field the form did not send is empty
        "done": done if done.replace("-", "").isalpha() and len(done) < 40 else "",
        "user_names": user_names(session, [t.assignee_id for t in item.tasks]),
    }, status=status)
