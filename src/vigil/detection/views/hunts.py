"""The hunts page: a form to hunt over stored events (rules picked from the enabled ones, filtered by title or
tactic; a window; an optional search-language filter), the past hunts of the user's units, and one hunt's
results (hits per rule, links to the matching events and to the search page over the window).

Everything goes through ``hunts_service``, as the API does; a hunt reads only the events of the units
where the user may read events. A hunt still running shows its status and the page reloads itself.
"""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.errors import BadInput
from vigil.core.pagination import PageParams
from vigil.detection import hunts_service as service
from vigil.detection.api.hunts import home_unit, store_of, units_of
from vigil.detection.models import DetectionRule
from vigil.detection.rules_service import TACTICS, tactics_of
from vigil.detection.schemas_hunts import HuntCreate
from vigil.siem.query import QuerySyntaxError
from vigil.siem.views.search import PRESETS, Picker, read_picker
from vigil.web.deps import SessionDep, context, settings_of
from vigil.web.templating import FormDep, Pager, PageRoute, page_guard, redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Hunter = Annotated[Principal, Depends(page_guard(Permission.EVENTS_READ))]
HuntId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]
Short = Annotated[str, Query(max_length=200)]
PAGE_SIZE = 25
PICKER_RULES = 200  # rules the picker lists at most (the filter narrows them)


def picker_rules(session: Session, *, text: str, tactic: str) -> tuple[list[dict[str, Any]], int]:
    """Enabled rules matching the picker's filter (title or id contains ``text``; a tactic), and how many."""
    rows = session.execute(select(DetectionRule.rule_uid, DetectionRule.title, DetectionRule.level,
                                  DetectionRule.level_override, DetectionRule.tags)
                           .where(DetectionRule.enabled.is_(True)).order_by(DetectionRule.title)).all()
    needle = text.strip().lower()
    chosen: dict[str, dict[str, Any]] = {}
    for uid, title, level, override, tags in rows:
        tactics = tactics_of(tags or [])
        if needle and needle not in title.lower() and needle not in uid.lower():
            continue
        if tactic and tactic not in tactics:
            continue
        chosen.setdefault(uid, {"uid": uid, "title": title, "level": override or level, "tactics": tactics})
    found = list(chosen.values())
    return found[:PICKER_RULES], len(found)


def _page(request: Request, principal: Principal, session: Session, *, values: dict[str, str],
          picked: list[str], picker: Picker, error: str = "", offset: int = 0, status: int = 200) -> HTMLResponse:
    rules, matching = picker_rules(session, text=values.get("rule_q", ""), tactic=values.get("tactic", ""))
    hunts, total = service.list_hunts(session, params=PageParams(limit=PAGE_SIZE, offset=offset))
    return render(request, "detection/hunts.html", {
        "values": values, "picked": set(picked), "rules": rules, "matching": matching, "shown": len(rules),
        "tactics": TACTICS, "picker": picker, "presets": PRESETS, "error": error, "hunts": hunts,
        "pager": Pager("/detection/hunts", total, PAGE_SIZE, offset), "zone": settings_of(request).timezone,
    }, status=status)


@router.get("/detection/hunts")
def hunts_page(request: Request, principal: Hunter, session: SessionDep, rule_q: Short = "", tactic: Short = "",
               offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> HTMLResponse:
    values = {"rule_q": rule_q, "tactic": tactic if tactic in TACTICS else "", "range": "24h", "q": "", "name": ""}
    return _page(request, principal, session, values=values, picked=[], picker=Picker(), offset=offset)


@router.post("/detection/hunts")
def start_hunt(request: Request, principal: Hunter, session: SessionDep, form: FormDep) -> Response:
    """Start a hunt; to its page when it is recorded, else back to the form with the reason."""
    values = {key: value.strip() if isinstance(value := form.get(key), str) else ""
              for key in ("name", "q", "range", "start", "end", "rule_q", "tactic")}
    picked = [value for value in form.getlist("rule") if isinstance(value, str) and value.strip()]
    zone = ZoneInfo(settings_of(request).timezone)
    range_text, picker = read_picker(values["range"], values["start"], values["end"], zone)
    if picker.error:
        return _page(request, principal, session, values=values, picked=picked, picker=picker, error="range",
                     status=422)
    try:
        data = HuntCreate(name=values["name"], rule_uids=picked, query=values["q"], range=range_text)
    except ValidationError:
        return _page(request, principal, session, values=values, picked=picked, picker=picker, error="input",
                     status=422)
    session.commit()  # loading the enabled rules takes a transaction of its own (SQLite: one writer at a time)
    enabled = service.enabled_rules(request.app.state.db)
    try:
        with session.begin_nested():
            hunt, plan = service.begin_hunt(context(request, session, principal), enabled=enabled,
                                            store=store_of(request), data=data, units=units_of(principal),
                                            unit_id=home_unit(principal))
    except QuerySyntaxError:
        return _page(request, principal, session, values=values, picked=picked, picker=picker, error="query",
                     status=422)
    except BadInput as exc:
        return _page(request, principal, session, values=values, picked=picked, picker=picker,
                     error="rules" if "rule" in exc.detail else "range", status=422)
    session.commit()  # the hunt's record must exist before it runs (maybe in another thread)
    service.launch(request.app.state.db, store_of(request), plan)
    return redirect(f"/detection/hunts/{hunt.id}")


@router.get("/detection/hunts/{hunt_id}")
def hunt_page(hunt_id: HuntId, request: Request, principal: Hunter, session: SessionDep) -> HTMLResponse:
    read = service.hunt_read(service.get_hunt(session, hunt_id), units=units_of(principal))
    return render(request, "detection/hunts_detail.html", {"hunt": read})
