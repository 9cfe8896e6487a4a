"""The event search page: query bar, time picker, histogram, field sidebar, event table, event detail,
and the user's saved searches.

Everything is read through ``vigil.siem.search`` (the service the API and the CLI use too), limited to
the units where the user may read events. A query that does not parse is shown back with the place
of the mistake marked, never a server error. Visible text lives in the templates (siem/search*.html,
siem/event*.html), translated there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.errors import BadInput, Conflict
from vigil.core.pagination import PageParams, page_params
from vigil.siem import saved, search
from vigil.siem.fields import FIELD_PATTERN, check_field
from vigil.siem.query import MAX_LENGTH, Or, QuerySyntaxError, parse
from vigil.siem.schemas import SavedSearchCreate
from vigil.siem.store.base import Bucket, EventStore, StoredEvent
from vigil.web.deps import SessionDep, context, settings_of
from vigil.web.templating import FormDep, PageRoute, page_guard, redirect, render, text_fields, wants_fragment

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Searcher = Annotated[Principal, Depends(page_guard(Permission.EVENTS_READ))]
QueryText = Annotated[str, Query(max_length=MAX_LENGTH)]
RangeText = Annotated[str, Query(alias="range", max_length=200)]
LocalTime = Annotated[str, Query(max_length=40)]
ColumnsText = Annotated[str, Query(alias="columns", max_length=2000)]
Pages = Annotated[PageParams, Depends(page_params)]
EventId = Annotated[int, Path(ge=1, le=2**63 - 1)]
SavedId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]

PRESETS = ("15m", "1h", "24h", "7d", "30d")
DEFAULT_RANGE = "24h"
CUSTOM = "custom"
HISTOGRAM_BARS = 60
TOP_VALUES = 10
SIDEBAR_FIELDS = 40
MAX_COLUMNS = 10
# Shown in the table's own columns or too long for a list of values: left out of the sidebar.
NOT_IN_SIDEBAR = frozenset({"@timestamp", "message", "event.original", "event.ingested", "vigil.unit_id"})
TIME_FIELDS = frozenset({"@timestamp", "event.ingested", "event.created"})  # searched with the time picker
LOCAL_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


# --- the time picker -------------------------------------------------------------------------------


@dataclass
class Picker:
    """What the time picker shows: the preset chosen (or ``custom``) and the custom times in the user's zone."""

    choice: str = DEFAULT_RANGE
    start: str = ""
    end: str = ""
    error: str = ""  # "start", "end" or "range": which part could not be read


def parse_local(value: str, zone: ZoneInfo) -> datetime | None:
    """A time typed in the display zone (as a datetime-local field sends it), made aware; None if unreadable."""
    for pattern in LOCAL_FORMATS:
        try:
            return datetime.strptime(value.strip(), pattern).replace(tzinfo=zone)
        except ValueError:
            continue
    return None


def iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_input(text: str, zone: ZoneInfo) -> str:
    """One side of a ``START/END`` range as a datetime-local value in the display zone ('' for ``now…``)."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return ""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")


def read_picker(range_text: str, start: str, end: str, zone: ZoneInfo) -> tuple[str, Picker]:
    """The range to search (``24h`` or ``START/END``) from the picker's fields, and how to show the picker."""
    choice = range_text.strip() or DEFAULT_RANGE
    if choice == CUSTOM or (choice not in PRESETS and "/" not in choice and (start or end)):
        picker = Picker(CUSTOM, start.strip(), end.strip())
        begin = parse_local(start, zone) if start.strip() else None
        finish = parse_local(end, zone) if end.strip() else None
        if begin is None:
            picker.error = "start"
            return "", picker
        if end.strip() and finish is None:
            picker.error = "end"
            return "", picker
        return f"{iso_utc(begin)}/{iso_utc(finish) if finish else 'now'}", picker
    if "/" in choice:
        first, _, second = choice.partition("/")
        return choice, Picker(CUSTOM, local_input(first, zone), local_input(second, zone))
    return choice, Picker(choice)


# --- the query -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryProblem:
    """Why a query was refused; for a syntax error, the line it is on and a caret under the column."""

    detail: str
    line_text: str = ""
    caret: str = ""


def query_problem(query: str, exc: BadInput) -> QueryProblem:
    if isinstance(exc, QuerySyntaxError):
        lines = query.split("\n")
        line_text = lines[exc.line - 1] if 0 < exc.line <= len(lines) else query
        return QueryProblem(exc.detail, line_text, " " * (exc.column - 1) + "^")
    return QueryProblem(exc.detail)


def phrase(value: Any) -> str:
    """A value as a quoted phrase of the search language."""
    text = value if isinstance(value, str) else json_text(value) if isinstance(
        value, dict | list) else str(value).lower() if isinstance(value, bool) else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def narrowed(query: str, name: str, value: Any) -> str:
    """The query with ``name:"value"`` added (an OR query is bracketed first, so the new term binds to all)."""
    clause = f"{name}:{phrase(value)}"
    if not query.strip():
        return clause
    try:
        tree = parse(query)
    except BadInput:
        return clause
    return f"({query.strip()}) AND {clause}" if isinstance(tree, Or) else f"{query.strip()} AND {clause}"


def read_columns(text: str) -> list[str]:
    """The extra table columns asked for (``a,b``): field names only, each once, at most ``MAX_COLUMNS``."""
    chosen: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if name and FIELD_PATTERN.match(name) and name not in chosen:
            chosen.append(name)
    return chosen[:MAX_COLUMNS]


def search_url(query: str, range_text: str, columns: Sequence[str] = (), **extra: str) -> str:
    params = {"q": query, "range": range_text, "columns": ",".join(columns), **extra}
    return "/siem/search?" + urlencode({key: value for key, value in params.items() if value})


def toggled(columns: Sequence[str], name: str) -> list[str]:
    return [column for column in columns if column != name] if name in columns else [*columns, name]


# --- the page --------------------------------------------------------------------------------------


def store_of(request: Request) -> EventStore:
    store: EventStore = request.app.state.siem.store
    return store


def units_of(principal: Principal) -> frozenset[int]:
    return principal.units_for(Permission.EVENTS_READ)


@dataclass
class SaveForm:
    name: str = ""
    error: str = ""  # "name" (missing or too long), "taken", or a service's refusal


@dataclass
class Results:
    total: int = 0
    took_ms: float = 0.0
    events: list[StoredEvent] = field(default_factory=list)
    interval: int = 0
    histogram: dict[str, Any] = field(default_factory=dict)
    fields: list[tuple[str, int]] = field(default_factory=list)


def histogram_data(buckets: list[Bucket], interval: int, zone: ZoneInfo) -> dict[str, Any]:
    """What search.js draws: one bar per bucket, labelled in the display zone, each with its UTC bounds."""
    short = "%H:%M" if interval < 86400 else "%m-%d"
    spans_days = len({bucket.start.astimezone(zone).date() for bucket in buckets}) > 1
    label = ("%m-%d %H:%M" if spans_days and interval < 86400 else short)
    return {
        "interval": interval,
        "labels": [bucket.start.astimezone(zone).strftime(label) for bucket in buckets],
        "counts": [bucket.count for bucket in buckets],
        "ranges": [f"{iso_utc(bucket.start)}/{iso_utc(bucket.start + timedelta(seconds=interval))}"
                   for bucket in buckets],
    }


def run_search(store: EventStore, units: frozenset[int], query: str, window: search.TimeRange, pages: PageParams,
               zone: ZoneInfo) -> Results:
    started = time.perf_counter()
    found = search.search(store, units=units, query=query, window=window, limit=pages.limit, offset=pages.offset)
    interval, buckets = search.filled_histogram(store, units=units, query=query, window=window,
                                                buckets=HISTOGRAM_BARS)
    took = (time.perf_counter() - started) * 1000
    fields = [(item.field, item.count) for item in search.field_summary(found.events)
              if item.field not in NOT_IN_SIDEBAR][:SIDEBAR_FIELDS]
    return Results(found.total, took, found.events, interval, histogram_data(buckets, interval, zone), fields)


def event_row(event: StoredEvent, columns: Sequence[str] = ()) -> dict[str, Any]:
    """The table's cells of one event (the time is formatted by the template in the display zone)."""
    def value(name: str) -> str:
        found = search.field_value(event, name)
        return "" if found is None or isinstance(found, dict | list) else str(found)

    def cell(name: str) -> str:
        found = search.field_value(event, name)
        return "" if found is None else found if isinstance(found, str) else json_text(found)

    message = search.summary(event)
    return {
        "id": event.id,
        "ts": event.ts,
        "source": event.source,
        "host": value("host.name") or value("host.hostname") or value("Computer"),
        "action": value("event.action"),
        "kind": value("event.kind"),
        "message": message if len(message) <= 300 else message[:300] + "…",
        "extra": [cell(name) for name in columns],
    }


def _search_page(request: Request, principal: Principal, session: Session, *, query: str, range_text: str,
                 start: str, end: str, columns: list[str], pages: PageParams, save_form: SaveForm | None = None,
                 status: int = 200) -> HTMLResponse:
    zone = ZoneInfo(settings_of(request).timezone)
    effective, picker = read_picker(range_text, start, end, zone)
    problem: QueryProblem | None = None
    range_error = ""
    results = Results()
    window: search.TimeRange | None = None
    if not picker.error:
        try:
            window = search.time_range(effective)
        except BadInput as exc:
            range_error = exc.detail
    if window is not None:
        try:
            results = run_search(store_of(request), units_of(principal), query, window, pages, zone)
        except BadInput as exc:
            problem = query_problem(query, exc)
    refused = bool(picker.error or range_error or problem)
    saved.scope_to_owner(session, principal)
    own, _ = saved.list_saved(session, owner_id=principal.user_id, params=PageParams(limit=200))
    base = {"q": query, "range": effective, **({"columns": ",".join(columns)} if columns else {})}
    exported = list(dict.fromkeys([*search.DEFAULT_EXPORT_FIELDS, *columns]))
    context_ = {
        "query": query,
        "range_text": effective,
        "picker": picker,
        "presets": PRESETS,
        "range_error": range_error,
        "problem": problem,
        "refused": refused,
        "window": window,
        "results": results,
        "columns": columns,
        # Only names the search language can address become columns (a document may hold others).
        "column_links": {name: search_url(query, effective, toggled(columns, name))
                         for name, _count in results.fields if FIELD_PATTERN.match(name)},
        "rows": [event_row(event, columns) for event in results.events],
        "pages": pages,
        "previous_url": search_url(query, effective, columns, limit=str(pages.limit),
                                   offset=str(max(pages.offset - pages.limit, 0))) if pages.offset > 0 else None,
        "next_url": search_url(query, effective, columns, limit=str(pages.limit),
                               offset=str(pages.offset + pages.limit))
        if pages.offset + pages.limit < results.total else None,
        "export": {fmt: "/api/v1/events/export?" + urlencode({"q": query, "range": effective, "format": fmt,
                                                              **({"fields": ",".join(exported)} if columns else {})})
                   for fmt in ("csv", "ndjson")},
        "fields_query": urlencode(base),
        "saved_searches": [(item, search_url(item.query, item.time_range, item.columns)) for item in own],
        "save_form": save_form or SaveForm(),
        "zone": settings_of(request).timezone,
        "done": request.query_params.get("done", ""),
        "histogram_json": results.histogram,
    }
    return render(request, "siem/search.html", context_, status=422 if refused and status == 200 else status)


@router.get("/siem/search")
def search_page(request: Request, principal: Searcher, session: SessionDep, pages: Pages, q: QueryText = "",
                range_text: RangeText = DEFAULT_RANGE, start: LocalTime = "", end: LocalTime = "",
                columns: ColumnsText = "") -> HTMLResponse:
    return _search_page(request, principal, session, query=q, range_text=range_text, start=start, end=end,
                        columns=read_columns(columns), pages=pages)


@router.get("/siem/search/values")
def field_values(request: Request, principal: Searcher, name: Annotated[str, Query(alias="field", max_length=400)],
                 q: QueryText = "", range_text: RangeText = DEFAULT_RANGE, columns: ColumnsText = "") -> HTMLResponse:
    """The top values of one field for the current query (HTMX swaps them into the sidebar)."""
    shown = read_columns(columns)
    values: list[tuple[Any, int, str]] = []
    error = ""
    try:
        check_field(name)
        window = search.time_range(range_text)
        for term in search.top_values(store_of(request), units=units_of(principal), query=q, window=window,
                                      field=name, limit=TOP_VALUES):
            values.append((term.value, term.count, search_url(narrowed(q, name, term.value), range_text, shown)))
    except BadInput as exc:
        error = exc.detail
    template = "siem/search_values.html" if wants_fragment(request) else "siem/search_values_page.html"
    return render(request, template, {"field_name": name, "values": values, "error": error,
                                      "back_url": search_url(q, range_text, shown)},
                  status=422 if error else 200)


@router.get("/siem/events/{event_id}")
def event_detail(request: Request, principal: Searcher, event_id: EventId) -> HTMLResponse:
    event = search.get_event(store_of(request), units=units_of(principal), event_id=event_id)
    back_url = search_referer(request)
    # "Search for this value" keeps the time range of the search the user came from.
    pivot_range = parse_qs(urlsplit(back_url).query).get("range", [DEFAULT_RANGE])[0]
    fields: list[tuple[str, str, str]] = []
    for name, value in sorted(search.flatten(event.doc).items()):
        if name == "event.original":
            continue
        scalar = isinstance(value, str | int | float | bool) and name not in TIME_FIELDS
        fields.append((name, value if isinstance(value, str) else json_text(value),
                       search_url(narrowed("", name, value), pivot_range) if scalar else ""))
    return render(request, "siem/event.html", {
        "event": event,
        "row": event_row(event),
        "fields": fields,
        "original": search.original_record(event),
        "document": json_text(event.doc, indent=True),
        "back_url": back_url,
    })


def json_text(value: Any, *, indent: bool = False) -> str:
    """JSON for people to read; integers beyond 64 bits (kept from the raw record) through the standard library."""
    try:
        return orjson.dumps(value, default=str,
                            option=orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)).decode()
    except TypeError:
        return json.dumps(value, default=str, ensure_ascii=False, indent=2 if indent else None)


def search_referer(request: Request) -> str:
    """The search the user came from (path and query of this site's search page), else the empty search."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and referer.path == "/siem/search":
        return "/siem/search" + (f"?{referer.query}" if referer.query else "")
    return "/siem/search"


# --- saved searches --------------------------------------------------------------------------------


@router.post("/siem/search/saved")
def save_search(request: Request, principal: Searcher, session: SessionDep, form: FormDep) -> Response:
    values = text_fields(form, "name", "q", "range", "columns")
    query, range_text = values["q"], values["range"] or DEFAULT_RANGE
    columns = read_columns(values["columns"])
    state = SaveForm(values["name"])
    try:
        data = SavedSearchCreate(name=values["name"], query=query, time_range=range_text, columns=columns)
    except ValidationError as exc:
        locations = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        state.error = "name" if "name" in locations else "search"
    else:
        saved.scope_to_owner(session, principal)
        try:
            with session.begin_nested():
                saved.create_saved(context(request, session, principal), data=data)
            return redirect(search_url(query, range_text, columns, done="saved"))
        except Conflict:
            state.error = "taken"
        except BadInput:
            state.error = "search"
    return _search_page(request, principal, session, query=query, range_text=range_text, start="", end="",
                        columns=columns, pages=PageParams(), save_form=state, status=422)


@router.post("/siem/search/saved/{saved_id}/delete")
def delete_saved_search(saved_id: SavedId, request: Request, principal: Searcher, session: SessionDep) -> Response:
    saved.scope_to_owner(session, principal)
    found = saved.get_saved(session, owner_id=principal.user_id, saved_id=saved_id)
    saved.delete_saved(context(request, session, principal), saved=found)
    return redirect("/siem/search?done=deleted")
