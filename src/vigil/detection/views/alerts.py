"""The alert queue, an alert's page and the suppressions page: the analyst's side of detection.

The queue filters by state, level, rule, host, user, origin, time and text, and works many alerts at once
(checkboxes and one action). An alert's page shows the matching event, the rule with its author and
references (the Detection Rule License asks for attribution), the workflow's buttons, and a "suppress
similar" form drafted from the event. Everything goes through ``vigil.detection.alerts_service``, in the
units where the user holds the permission; visible text lives in the templates (detection/alerts*.html,
detection/suppressions*.html).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID, utcnow
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.pagination import PageParams, page_params
from vigil.detection import alerts_service as service
from vigil.detection.alerts import SUPPRESSION_OPS
from vigil.detection.alerts_service import MISSABLE
from vigil.detection.models import Alert
from vigil.detection.schemas_alerts import (
    GROUP_BYS,
    LEVELS,
    ORIGINS,
    AlertAssign,
    AlertBulk,
    AlertFilter,
    AlertGroup,
    AlertMatchingBulk,
    AlertTransition,
    Condition,
    SuppressionCreate,
    SuppressionUpdate,
)
from vigil.detection.workflow import AlertStatus, allowed_actions
from vigil.web.deps import SessionDep, context, settings_of
from vigil.web.templating import (
    FormDep,
    Pager,
    PageRoute,
    describe_error,
    local_path,
    page_guard,
    redirect,
    render,
    text_fields,
    translator,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
AlertsReader = Annotated[Principal, Depends(page_guard(Permission.ALERTS_READ))]
AlertsWriter = Annotated[Principal, Depends(page_guard(Permission.ALERTS_WRITE))]
AlertId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]
SuppressionId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]
Pages = Annotated[PageParams, Depends(page_params)]
Short = Annotated[str, Query(max_length=255)]
LOCAL_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
NOISIEST_DAYS = 7
SUPPRESS_ROWS = 6  # condition rows of the "suppress similar" form
# Confirmations after a redirect (``?done=key``): the templates hold their fixed texts, never the URL's.
DONE = frozenset({"acknowledge", "escalate", "close", "reopen", "assign", "bulk", "matching", "suppressed", "saved",
                  "deleted"})
REFUSED = (BadInput, Conflict, NotFound)


def parse_local(value: str, zone: ZoneInfo) -> datetime | None:
    """A time typed in the display zone (as a datetime-local field sends it), made aware; None if unreadable."""
    for pattern in LOCAL_FORMATS:
        try:
            return datetime.strptime(value.strip(), pattern).replace(tzinfo=zone)
        except ValueError:
            continue
    return None


def _done(request: Request) -> str:
    done = request.query_params.get("done", "")
    return done if done in DONE else ""


# --- the queue -------------------------------------------------------------------------------------

LIST_KEYS = ("status", "level", "without")  # filters that take several values (comma-joined in links)
TEXT_KEYS = ("rule", "host", "user", "source_ip", "origin", "q", "since", "until")


def _query(shown: dict[str, Any], *, group: bool = True) -> dict[str, str]:
    """The filters as URL parameters (lists comma-joined, empty ones left out), with the grouping or not."""
    query = {key: shown[key] for key in TEXT_KEYS if shown[key]}
    query.update({key: ",".join(shown[key]) for key in LIST_KEYS if shown[key]})
    if group and shown["group"]:
        query["group"] = shown["group"]
    return query


def _url(query: dict[str, str]) -> str:
    return "/detection/alerts" + (f"?{urlencode(query)}" if query else "")


def _filters(request: Request, shown: dict[str, Any]) -> tuple[AlertFilter | None, dict[str, str]]:
    """The queue's filters from what the page shows (times in the display zone), or the fields' errors."""
    _ = translator(request)
    zone = ZoneInfo(settings_of(request).timezone)
    errors: dict[str, str] = {}
    times: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        times[name] = parse_local(shown[name], zone) if shown[name] else None
        if shown[name] and times[name] is None:
            errors[name] = _("Enter a date and time such as 2026-01-31 08:00.")
    if errors:
        return None, errors
    return AlertFilter.model_validate({
        "status": [value for value in shown["status"] if value in set(AlertStatus)],
        "level": [value for value in shown["level"] if value in LEVELS],
        "without": [value for value in shown["without"] if value in MISSABLE], "rule": shown["rule"],
        "host": shown["host"], "user": shown["user"], "source_ip": shown["source_ip"],
        "origin": shown["origin"] if shown["origin"] in ORIGINS else None, "q": shown["q"], **times}), {}


def _outcome(request: Request) -> dict[str, int]:
    """The figures of a step over a group, after its redirect (numbers only, never the URL's text)."""
    found = {name: request.query_params.get(name, "") for name in ("changed", "unchanged", "skipped")}
    return {name: int(value) for name, value in found.items() if value.isdigit() and len(value) < 10}


def _queue(request: Request, principal: Principal, session: Session, pages: PageParams, shown: dict[str, Any],
           *, status: int = 200, error: str = "") -> HTMLResponse:
    filters, errors = _filters(request, shown)
    alerts: list[Alert] = []
    groups: list[AlertGroup] = []
    total = 0
    if filters is not None and shown["group"]:
        groups, total = service.group_alerts(session, filters=filters, by=shown["group"], params=pages)
    elif filters is not None:
        alerts, total = service.list_alerts(session, filters=filters, params=pages)
    ungrouped = _query(shown, group=False)
    return render(request, "detection/alerts.html", {
        "alerts": alerts,
        "groups": groups,
        # A group's link: the filters of the page narrowed to the group, shown as alerts.
        "group_urls": [_url({**ungrouped, **group.filter}) for group in groups],
        "filters": shown,
        "hidden": ungrouped,
        "narrowed": bool(ungrouped),
        "total": total,
        "errors": errors,
        "pager": Pager("/detection/alerts", total, pages.limit, pages.offset, _query(shown)),
        "statuses": list(AlertStatus),
        "levels": LEVELS,
        "origins": ORIGINS,
        "group_bys": GROUP_BYS,
        "noisiest": service.noisiest_rules(session, days=NOISIEST_DAYS, limit=5),
        "noisiest_days": NOISIEST_DAYS,
        "live": service.detection_status(request.app.state.siem.consumers),
        "assignees": service.user_names(session, (alert.assignee_id for alert in alerts)),
        "unit_names": {unit.id: unit.name for unit in accounts.list_units(session)},
        "zone": settings_of(request).timezone,
        "back": _url(_query(shown)),
        "shown_at": utcnow().isoformat(),
        "done": _done(request),
        "outcome": _outcome(request),
        "error": error,
    }, status=status)


def _split(values: list[str]) -> list[str]:
    """Repeated parameters and comma-separated ones alike (the pager joins them with commas)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@router.get("/detection/alerts")
def alerts_page(
    request: Request, principal: AlertsReader, session: SessionDep, pages: Pages,
    status: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006 - FastAPI copies defaults
    level: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    without: Annotated[list[str], Query(max_length=40)] = [],  # noqa: B006
    rule: Short = "", host: Short = "", user: Short = "", origin: Short = "", source_ip: Short = "",
    q: Annotated[str, Query(max_length=200)] = "", since: Short = "", until: Short = "", group: Short = "",
) -> HTMLResponse:
    shown: dict[str, Any] = {"status": _split(status), "level": _split(level), "without": _split(without),
                             "rule": rule.strip(), "host": host.strip(), "user": user.strip(), "origin": origin,
                             "source_ip": source_ip.strip(), "q": q.strip(), "since": since, "until": until,
                             "group": group if group in GROUP_BYS else ""}
    return _queue(request, principal, session, pages, shown)


@router.post("/detection/alerts/bulk")
def bulk_action(request: Request, principal: AlertsWriter, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    back = local_path(str(form.get("back") or ""), "/detection/alerts")
    ids = [value for value in form.getlist("ids") if isinstance(value, str)]
    fields = text_fields(form, "action", "resolution")
    if not ids:
        return redirect(_with(back, "done", "bulk"))
    try:
        data = AlertBulk.model_validate({"ids": ids, "action": fields["action"],
                                         "resolution": fields["resolution"] or None})
        with session.begin_nested():
            service.bulk_transition(context(request, session, principal), data=data)
    except ValidationError:
        return _queue(request, principal, session, PageParams(), _empty_filters(), status=422,
                      error=_("Choose alerts and an action (closing needs a resolution)."))
    except REFUSED as exc:
        return _queue(request, principal, session, PageParams(), _empty_filters(),
                      status=exc.status, error=describe_error(exc, _))
    return redirect(_with(back, "done", "bulk"))


def _form_filters(form: FormDep) -> dict[str, Any]:
    """The filters a form carries as hidden fields, as the queue shows them (without grouping)."""
    sent = text_fields(form, *TEXT_KEYS, *LIST_KEYS)
    shown: dict[str, Any] = {key: sent[key][:255] for key in TEXT_KEYS}
    shown.update({key: _split([sent[key]]) for key in LIST_KEYS})
    shown["group"] = ""
    return shown


@router.post("/detection/alerts/bulk-matching")
def bulk_matching(request: Request, principal: AlertsWriter, session: SessionDep, form: FormDep) -> Response:
    """One step for every alert of the selected group (all the filters select, on every page), raised
    before the page was shown; alerts whose state refuses the step are skipped and counted."""
    _ = translator(request)
    shown = _form_filters(form)
    fields = text_fields(form, "action", "resolution", "raised_before")
    filters, errors = _filters(request, shown)
    error = ""
    if filters is None:
        error = " ".join(errors.values())
    else:
        try:
            raised_before = datetime.fromisoformat(fields["raised_before"]) if fields["raised_before"] else None
            data = AlertMatchingBulk.model_validate({
                "filter": filters.model_copy(update={"raised_before": raised_before}),
                "action": fields["action"], "resolution": fields["resolution"] or None})
            with session.begin_nested():
                result = service.bulk_matching(context(request, session, principal), data=data)
        except (ValidationError, ValueError):
            error = _("Choose an action (closing needs a resolution).")
        except REFUSED as exc:
            error = describe_error(exc, _)
    if error:
        return _queue(request, principal, session, PageParams(), shown, status=422, error=error)
    figures = {"changed": len(result.changed), "unchanged": len(result.unchanged), "skipped": len(result.skipped)}
    return redirect(_url({**_query(shown), "done": "matching", **{k: str(v) for k, v in figures.items()}}))


def _empty_filters() -> dict[str, Any]:
    return {"status": [], "level": [], "without": [], "rule": "", "host": "", "user": "", "origin": "",
            "source_ip": "", "q": "", "since": "", "until": "", "group": ""}


def _with(path: str, key: str, value: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{urlencode({key: value})}"


# --- one alert -------------------------------------------------------------------------------------


@dataclass
class SuppressForm:
    """The "suppress similar" form: the condition rows offered (or sent back), the reason and the expiry."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    scope: str = "rule"
    reason: str = ""
    expires_days: str = "30"
    error: str = ""


def _proposal_form(alert: Alert) -> SuppressForm:
    proposed = service.suppression_from_alert(alert).conditions
    chosen = {condition.field for condition in proposed}
    rows = [{"field": c.field, "op": c.op, "value": c.value, "on": True} for c in proposed]
    for name, value in _flat_fields(alert.event):  # more of the event's fields, offered unticked
        if len(rows) >= SUPPRESS_ROWS:
            break
        if name not in chosen and value:
            rows.append({"field": name, "op": "equals", "value": value[:1000], "on": False})
    return SuppressForm(rows=rows)


def _flat_fields(event: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for key, value in event.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            found.extend(_flat_fields(value, name + "."))
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            found.append((name, str(value)))
    return found


def _detail(request: Request, principal: Principal, session: Session, alert: Alert, *, status: int = 200,
            error: str = "", suppress: SuppressForm | None = None) -> HTMLResponse:
    rule = service.rule_of(session, alert)
    names = service.user_names(session, [alert.assignee_id])
    return render(request, "detection/alerts_detail.html", {
        "alert": alert,
        "rule": rule,
        "event_json": orjson.dumps(alert.event, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
                                   | orjson.OPT_NON_STR_KEYS).decode(),
        "actions": [str(action) for action in allowed_actions(alert.status)],
        "assignee": names.get(alert.assignee_id or 0, ""),
        "mine": alert.assignee_id == principal.user_id,
        "unit_name": {unit.id: unit.name for unit in accounts.list_units(session)}.get(alert.unit_id, ""),
        "suppress": suppress or _proposal_form(alert),
        "ops": SUPPRESSION_OPS,
        "writer": alert.unit_id in principal.units_for(Permission.ALERTS_WRITE),
        "done": _done(request),
        "error": error,
    }, status=status)


@router.get("/detection/alerts/{alert_id}")
def alert_page(alert_id: AlertId, request: Request, principal: AlertsReader, session: SessionDep) -> HTMLResponse:
    return _detail(request, principal, session, service.get_alert(session, alert_id))


@router.post("/detection/alerts/{alert_id}/transition")
def transition_alert(alert_id: AlertId, request: Request, principal: AlertsWriter, session: SessionDep,
                     form: FormDep) -> Response:
    _ = translator(request)
    alert = service.get_alert(session, alert_id)  # 404 outside the caller's units, before reading the form
    fields = text_fields(form, "action", "resolution", "comment")
    try:
        data = AlertTransition.model_validate({"action": fields["action"], "resolution": fields["resolution"] or None,
                                               "comment": fields["comment"]})
        with session.begin_nested():
            service.transition(context(request, session, principal), alert_id=alert_id, data=data)
    except ValidationError:
        return _detail(request, principal, session, alert, status=422,
                       error=_("Choose an action (closing needs a resolution)."))
    except REFUSED as exc:
        session.refresh(alert)
        return _detail(request, principal, session, alert, status=exc.status, error=describe_error(exc, _))
    return redirect(f"/detection/alerts/{alert_id}?done={data.action}")


@router.post("/detection/alerts/{alert_id}/assign")
def assign_alert(alert_id: AlertId, request: Request, principal: AlertsWriter, session: SessionDep,
                 form: FormDep) -> Response:
    """Take the alert (``assignee=me``) or give it back (``assignee=``)."""
    service.get_alert(session, alert_id)
    assignee = principal.user_id if text_fields(form, "assignee")["assignee"] == "me" else None
    service.assign(context(request, session, principal), alert_id=alert_id, data=AlertAssign(assignee_id=assignee))
    return redirect(f"/detection/alerts/{alert_id}?done=assign")


def _suppress_form(form: FormDep) -> SuppressForm:
    rows = []
    for index in range(SUPPRESS_ROWS):
        values = text_fields(form, f"field_{index}", f"op_{index}", f"value_{index}")
        if values[f"field_{index}"]:
            rows.append({"field": values[f"field_{index}"], "op": values[f"op_{index}"] or "equals",
                         "value": values[f"value_{index}"], "on": form.get(f"on_{index}") in ("on", "true", "1")})
    sent = text_fields(form, "scope", "reason", "expires_days")
    return SuppressForm(rows=rows, scope=sent["scope"] or "rule", reason=sent["reason"],
                        expires_days=sent["expires_days"])


@router.post("/detection/alerts/{alert_id}/suppress")
def suppress_similar(alert_id: AlertId, request: Request, principal: AlertsWriter, session: SessionDep,
                     form: FormDep) -> Response:
    """Create a suppression from the alert's page: the ticked conditions, for its rule (or every rule)."""
    _ = translator(request)
    alert = service.get_alert(session, alert_id)
    state = _suppress_form(form)
    conditions = [Condition.model_validate({"field": row["field"], "op": row["op"], "value": row["value"]})
                  for row in state.rows if row["on"] and row["op"] in SUPPRESSION_OPS]
    days = state.expires_days
    problem = ""
    if not conditions:
        problem = _("Tick at least one condition.")
    elif not state.reason:
        problem = _("Say why these alerts are noise.")
    elif days and (not days.isdigit() or not 1 <= int(days) <= 3650):
        problem = _("Enter the days as a whole number from 1 to 3650, or leave it empty for no expiry.")
    if not problem:
        try:
            data = SuppressionCreate(rule_uid=alert.rule_uid if state.scope != "all" else None, conditions=conditions,
                                     reason=state.reason, unit_id=alert.unit_id,
                                     expires_at=utcnow() + timedelta(days=int(days)) if days else None)
            with session.begin_nested():
                service.create_suppression(context(request, session, principal), data=data)
            return redirect("/detection/suppressions?done=suppressed")
        except ValidationError:
            problem = _("Check the conditions: each needs a field and, except exists, a value.")
        except REFUSED as exc:
            problem = describe_error(exc, _)
    state.error = problem
    return _detail(request, principal, session, alert, status=422, suppress=state)


# --- suppressions ----------------------------------------------------------------------------------


def _suppressions(request: Request, principal: Principal, session: Session, pages: PageParams) -> HTMLResponse:
    items, total = service.list_suppressions(session, params=pages)
    now = utcnow()
    return render(request, "detection/suppressions.html", {
        "suppressions": items,
        "active": {row.id: service.is_active(row, now) for row in items},
        "pager": Pager("/detection/suppressions", total, pages.limit, pages.offset),
        "unit_names": {unit.id: unit.name for unit in accounts.list_units(session)},
        "writer": principal.has(Permission.ALERTS_WRITE),
        "done": _done(request),
    })


@router.get("/detection/suppressions")
def suppressions_page(request: Request, principal: AlertsReader, session: SessionDep, pages: Pages) -> HTMLResponse:
    return _suppressions(request, principal, session, pages)


@router.post("/detection/suppressions/{suppression_id}")
def toggle_suppression(suppression_id: SuppressionId, request: Request, principal: AlertsWriter,
                       session: SessionDep, form: FormDep) -> Response:
    """Turn a suppression off (its matches raise alerts again) or back on."""
    enabled = text_fields(form, "enabled")["enabled"] in ("on", "true", "1")
    service.update_suppression(context(request, session, principal), suppression_id=suppression_id,
                               data=SuppressionUpdate(enabled=enabled))
    return redirect("/detection/suppressions?done=saved")


@router.post("/detection/suppressions/{suppression_id}/delete")
def delete_suppression(suppression_id: SuppressionId, request: Request, principal: AlertsWriter,
                       session: SessionDep) -> Response:
    service.delete_suppression(context(request, session, principal), suppression_id=suppression_id)
    return redirect("/detection/suppressions?done=deleted")
