"""Report pages: the report form any signed-in employee can use (``/reports/new``; no business role needed),
their own named reports (``/reports/mine``), the follow-up page of an anonymous report
(``/reports/follow/{token}``: no sign-in, the token is the credential), and the analysts' triage queue
(``/reports/triage``, ``incidents:write``: accept opens an incident, reject keeps the reason)."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID, Scope, set_scope
from vigil.core.errors import BadInput, Conflict, NotFound, PermissionDenied
from vigil.core.pagination import PageParams, page_params, paginate
from vigil.incidents import reports, settings_service
from vigil.incidents.evidence_schemas import ReportAccept, ReportCreate, ReportReject
from vigil.web.deps import SessionDep, context
from vigil.web.templating import (
    FormDep,
    Pager,
    PageRoute,
    describe_error,
    field_errors,
    language_of,
    page_guard,
    redirect,
    render,
    text_fields,
    translator,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
routers = [router]
Anyone = Annotated[Principal, Depends(page_guard())]  # any signed-in user, scoped to their own unit
Triager = Annotated[Principal, Depends(page_guard(Permission.INCIDENTS_WRITE))]
ReportId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]
Pages = Annotated[PageParams, Depends(page_params)]
REFUSED = (BadInput, Conflict, NotFound, PermissionDenied)
STATUSES = ("new", "accepted", "rejected")


def _types(request: Request, principal: Principal | None, session: Session) -> list[tuple[str, str]]:
    language = language_of(request, principal)
    return [(t.key, settings_service.type_name(t, language)) for t in settings_service.list_types(session)]


def _form(request: Request, principal: Principal, session: Session, values: dict[str, str], error: str = "",
          status: int = 200) -> HTMLResponse:
    return render(request, "incidents/report_new.html", {"values": defaultdict(str, values), "error": error,
                                                         "type_options": _types(request, principal, session)},
                  status=status)


@router.get("/reports/new")
def report_form(request: Request, principal: Anyone, session: SessionDep) -> HTMLResponse:
    return _form(request, principal, session, {"category": "other"})


@router.post("/reports/new")
def submit_report(request: Request, principal: Anyone, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "title", "description", "category", "anonymous")
    try:
        data = ReportCreate(title=values["title"], description=values["description"],
                            category=values["category"] or "other", anonymous=values["anonymous"] == "on")
        with session.begin_nested():
            report, token = reports.submit(context(request, session, principal), data=data)
    except ValidationError as exc:
        errors = field_errors(exc, _)
        return _form(request, principal, session, values, "; ".join(f"{k}: {v}" for k, v in errors.items()), 422)
    except REFUSED as exc:
        return _form(request, principal, session, values, describe_error(exc, _), exc.status)
    if token is None:
        return redirect(f"/reports/mine?sent={report.id}")
    # Shown once, on this answer only: the page is not cached and the token is not stored.
    return render(request, "incidents/report_sent.html", {"token": token, "report": reports.status_of(session, report)})


@router.get("/reports/mine")
def my_reports(request: Request, principal: Anyone, session: SessionDep) -> HTMLResponse:
    sent = request.query_params.get("sent", "")
    return render(request, "incidents/report_mine.html", {
        "reports": [reports.status_of(session, r) for r in reports.own_reports(session, principal.user_id)],
        "sent": sent if sent.isdigit() else ""})


@router.get("/reports/follow/{token}")
def follow_report(token: Annotated[str, Path(max_length=100)], request: Request, session: SessionDep) -> Response:
    set_scope(session, Scope.system())  # the token, found by its digest, is the authority here
    return render(request, "incidents/report_follow.html", {"report": reports.follow(session, token)})


# --- triage ---------------------------------------------------------------------------------------------


def _queue(request: Request, principal: Principal, session: Session, pages: PageParams, status: str,
           error: str = "", code: int = 200) -> HTMLResponse:
    shown = status if status in STATUSES else ""
    items, total = paginate(session, reports.reports_query(shown or None), pages)
    return render(request, "incidents/report_triage.html", {
        "reports": items, "status": shown, "error": error, "type_options": _types(request, principal, session),
        "pager": Pager("/reports/triage", total, pages.limit, pages.offset, {"status": shown}),
    }, status=code)


@router.get("/reports/triage")
def triage_page(request: Request, principal: Triager, session: SessionDep, pages: Annotated[
        PageParams, Depends(page_params)]) -> HTMLResponse:
    return _queue(request, principal, session, pages, request.query_params.get("status", "new"))


@router.post("/reports/triage/{report_id}/accept")
def accept_report(report_id: ReportId, request: Request, principal: Triager, session: SessionDep,
                  form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "type", "severity")
    try:
        data = ReportAccept(type=values["type"] or None, severity=values["severity"] or "P3")
        with session.begin_nested():
            incident = reports.accept(context(request, session, principal), report_id=report_id, data=data)
    except ValidationError as exc:
        return _queue(request, principal, session, PageParams(), "new", "; ".join(field_errors(exc, _).values()), 422)
    except REFUSED as exc:
        return _queue(request, principal, session, PageParams(), "new", describe_error(exc, _), exc.status)
    return redirect(f"/incidents/{incident.id}?done=opened")


@router.post("/reports/triage/{report_id}/reject")
def reject_report(report_id: ReportId, request: Request, principal: Triager, session: SessionDep,
                  form: FormDep) -> Response:
    _ = translator(request)
    try:
        data = ReportReject(reason=text_fields(form, "reason")["reason"])
        with session.begin_nested():
            reports.reject(context(request, session, principal), report_id=report_id, data=data)
    except ValidationError as exc:
        return _queue(request, principal, session, PageParams(), "new", "; ".join(field_errors(exc, _).values()), 422)
    except REFUSED as exc:
        return _queue(request, principal, session, PageParams(), "new", describe_error(exc, _), exc.status)
    return redirect("/reports/triage?status=rejected")
