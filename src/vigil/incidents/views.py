"""The incident pages: the queue with its SLA badges and filters, and one incident with its phase stepper,
SLA figures, time per phase, tasks, alerts, observables, evidence, comments, post-mortem and timeline. Reading
needs ``incidents:read``, and another unit's incident is "not found" like everywhere else; the forms on the
incident page post to ``work_views``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

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
from vigil.incidents.schemas import IncidentFilter, TimelineRead
from vigil.incidents.workflow import ORDER
from vigil.response.actions.executions import executions_query
from vigil.response.actions.views import STATUS_LABELS
from vigil.response.playbooks.runs import runs_query
from vigil.response.playbooks.views import RUN_STATUS
from vigil.web.deps import SessionDep, settings_of
from vigil.web.templating import N_, Pager, PageRoute, Translator, language_of, page_guard, render, translator

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PageReader = Annotated[Principal, Depends(page_guard(Permission.INCIDENTS_READ))]
Pages = Annotated[PageParams, Depends(page_params)]
Short = Annotated[str, Query(max_length=64)]
PHASES = [str(phase) for phase in ORDER]
RESPONSE_ROWS = 50  # the newest response actions and playbook runs shown on an incident; their pages list all
RESPONSE_STATUS = {**STATUS_LABELS, **RUN_STATUS}
PHASE_NAMES = {"identify": N_("Identify"), "contain": N_("Contain"), "eradicate": N_("Eradicate"),
               "recover": N_("Recover"), "review": N_("Review"), "closed": N_("Closed")}
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
    items = action_item_rows(session, item.postmortem.action_items if item.postmortem else [],
                             settings_of(request).timezone)
    _ = translator(request)
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
        "action_items": items,
        "action_item_text": action_item_text(items),
        "executions": session.scalars(executions_query(incident_id=incident.id).limit(RESPONSE_ROWS)).all(),
        "playbook_runs": session.scalars(runs_query(incident_id=incident.id).limit(RESPONSE_ROWS)).all(),
        "response_status": lambda value: _(str(RESPONSE_STATUS.get(value) or value)),
        "said": lambda entry: timeline_text(entry, _),
    }, status=status)


def timeline_text(entry: TimelineRead, _: Translator) -> str:
    """A timeline entry in the reader's language: its message and values when it has them (phases named as the
    stepper names them), else its summary as stored (a person's words, an entry older than the messages)."""
    message, params = entry.payload.get("message"), entry.payload.get("params")
    if not isinstance(message, str) or not isinstance(params, dict):
        return entry.summary
    shown = {key: _(PHASE_NAMES[value]) if key == "phase" and value in PHASE_NAMES else value
             for key, value in params.items()}
    try:
        return _(message, **shown)
    except (KeyError, TypeError, ValueError):  # a translation whose variables do not fit: the English text
        return entry.summary


def action_item_rows(session: Session, items: Sequence[Mapping[str, Any]], zone: str) -> list[dict[str, Any]]:
    """A post-mortem's action items for display: title, owner's user name, due date (in ``zone``), task."""
    names = user_names(session, [item.get("owner_id") for item in items])
    rows = []
    for item in items:
        due = item.get("due_at")
        due_at = datetime.fromisoformat(due) if isinstance(due, str) else due
        rows.append({"title": item.get("title", ""), "owner": names.get(item.get("owner_id") or 0, ""),
                     "due": due_at.astimezone(ZoneInfo(zone)).date().isoformat() if due_at else "",
                     "task_id": item.get("task_id")})
    return rows


def action_item_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as the post-mortem form edits them: one a line, ``what | owner | YYYY-MM-DD``."""
    return "\n".join(" | ".join((row["title"], row["owner"], row["due"])).rstrip(" |") for row in rows)
