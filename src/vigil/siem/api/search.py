"""/api/v1/events: search stored events, count them over time, top values of a field, export.

Every route needs ``events:read`` and sees only the events of the units where the caller holds it (a
branch analyst never sees another branch's events; an event of another unit is "not found", exactly as
one that does not exist). A query that does not parse is a 422 problem whose ``errors`` carry the line
and column, for the query bar to point at.

``POST /search`` and ``POST /aggregations`` read only: POST carries long queries and field lists in a
body (cookie sessions send the CSRF token as for any POST). The export is on the audit trail.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse

from vigil.core.auth import Permission, Principal
from vigil.siem import search as service
from vigil.siem.schemas import (
    AggregationsRead,
    BucketRead,
    EventAggregations,
    EventDetail,
    EventRead,
    EventSearch,
    ExportQuery,
    FieldCountRead,
    HistogramQuery,
    HistogramRead,
    SearchRead,
    TermRead,
    TimeRangeRead,
    TopValuesQuery,
    TopValuesRead,
)
from vigil.siem.store.base import EventStore, StoredEvent
from vigil.web.deps import SessionDep, context, require

router = APIRouter(prefix="/api/v1/events", tags=["events"])
EventReader = Annotated[Principal, Depends(require(Permission.EVENTS_READ))]

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
# Excel and WPS read a CSV file as the local code page (GBK on Chinese Windows) unless it starts with a BOM.
UTF8_BOM = "\ufeff"


def store_of(request: Request) -> EventStore:
    store: EventStore = request.app.state.siem.store
    return store


def units_of(principal: Principal) -> Collection[int]:
    return principal.units_for(Permission.EVENTS_READ)


def event_read(event: StoredEvent) -> EventRead:
    return EventRead.model_validate({"id": event.id, "@timestamp": event.ts, "source": event.source,
                                     "unit_id": event.unit_id, "document": event.doc})


def range_read(window: service.TimeRange) -> TimeRangeRead:
    return TimeRangeRead(start=window.start, end=window.end)


def run_search(request: Request, principal: Principal, params: EventSearch) -> SearchRead:
    window = service.time_range(params.range)
    query = service.canonical(params.q)
    result = service.search(store_of(request), units=units_of(principal), query=params.q, window=window,
                            limit=params.limit, offset=params.offset, order=params.sort)
    return SearchRead(
        total=result.total, took_ms=round(result.took_ms, 3), events=[event_read(e) for e in result.events],
        range=range_read(window), query=query, limit=params.limit, offset=params.offset, sort=params.sort,
        fields=[FieldCountRead(field=f.field, count=f.count) for f in service.field_summary(result.events)],
    )


@router.get("/search")
def search_events(request: Request, principal: EventReader, params: Annotated[EventSearch, Query()]) -> SearchRead:
    """Events matching ``q`` in the time range, a page at a time (``limit`` at most 1000), with the total."""
    return run_search(request, principal, params)


@router.post("/search")
def search_events_post(request: Request, principal: EventReader, params: EventSearch) -> SearchRead:
    """The same search with the parameters in a JSON body (for queries too long for a URL)."""
    return run_search(request, principal, params)


def run_histogram(request: Request, principal: Principal, params: HistogramQuery,
                  window: service.TimeRange) -> HistogramRead:
    interval, buckets = service.filled_histogram(store_of(request), units=units_of(principal), query=params.q,
                                                 window=window, buckets=params.buckets)
    return HistogramRead(interval_seconds=interval, total=sum(b.count for b in buckets),
                         buckets=[BucketRead(start=b.start, count=b.count) for b in buckets],
                         range=range_read(window), query=service.canonical(params.q))


@router.get("/histogram")
def event_histogram(request: Request, principal: EventReader,
                    params: Annotated[HistogramQuery, Query()]) -> HistogramRead:
    """Matching events counted per interval over the range, every bucket listed (0 when empty), oldest first."""
    return run_histogram(request, principal, params, service.time_range(params.range))


def terms(values: list[Any]) -> list[TermRead]:
    return [TermRead(value=v.value, count=v.count) for v in values]


@router.get("/top-values")
def event_top_values(request: Request, principal: EventReader,
                     params: Annotated[TopValuesQuery, Query()]) -> TopValuesRead:
    """The most frequent values of ``field`` among matching events (each item of a list field counts)."""
    window = service.time_range(params.range)
    store, units = store_of(request), units_of(principal)
    values = service.top_values(store, units=units, query=params.q, window=window, field=params.field,
                                limit=params.limit)
    total = service.count(store, units=units, query=params.q, window=window)
    return TopValuesRead(field=params.field, total=total, values=terms(values), range=range_read(window),
                         query=service.canonical(params.q))


@router.post("/aggregations")
def event_aggregations(request: Request, principal: EventReader, params: EventAggregations) -> AggregationsRead:
    """What a search page draws beside the events in one call: the histogram and top values of several fields."""
    started = time.perf_counter()
    window = service.time_range(params.range)
    store, units = store_of(request), units_of(principal)
    histogram = run_histogram(request, principal,
                              HistogramQuery(q=params.q, range=params.range, buckets=params.buckets), window)
    top = {field: terms(service.top_values(store, units=units, query=params.q, window=window, field=field,
                                           limit=params.limit))
           for field in dict.fromkeys(params.fields)}
    return AggregationsRead(total=histogram.total, took_ms=round((time.perf_counter() - started) * 1000, 3),
                            range=histogram.range, query=histogram.query, histogram=histogram, top_values=top)


@router.get("/export", response_class=StreamingResponse, responses={200: {
    "description": "The events as a CSV or NDJSON attachment.",
    "content": {"text/csv": {"schema": {"type": "string"}}, "application/x-ndjson": {"schema": {"type": "string"}}},
}})
def export_events(request: Request, principal: EventReader, session: SessionDep,
                  params: Annotated[ExportQuery, Query()]) -> StreamingResponse:
    """Every matching event (up to ``max``) as CSV or NDJSON, streamed; the export is audited with its count."""
    window = service.time_range(params.range)
    store, units = store_of(request), units_of(principal)
    fields = service.export_fields(params.fields)
    # Counted first: the audit record is committed before the first byte is sent, and bad input is
    # a clean 422 rather than a stream broken halfway.
    exported = min(service.count(store, units=units, query=params.q, window=window), params.max)
    context(request, session, principal).audit(
        "events.exported", target_type="events",
        details={"query": service.canonical(params.q), "start": window.start.isoformat(),
                 "end": window.end.isoformat(), "format": params.format, "count": exported,
                 **({"fields": fields} if params.format == "csv" else {})})
    events = service.iter_events(store, units=units, query=params.q, window=window, max_events=params.max,
                                 order=params.sort)
    body: Iterator[str] | Iterator[bytes] = (
        _with_bom(service.csv_chunks(events, fields)) if params.format == "csv" else service.ndjson_chunks(events))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(body, media_type=MEDIA_TYPES[params.format], headers={
        "Content-Disposition": f'attachment; filename="vigil-events-{stamp}.{params.format}"',
        "X-Vigil-Event-Count": str(exported),
    })


def _with_bom(chunks: Iterator[str]) -> Iterator[str]:
    yield UTF8_BOM
    yield from chunks


@router.get("/{event_id}")
def get_event(request: Request, principal: EventReader,
              event_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> EventDetail:
    """One event with its whole document and the original record (404 as well for another unit's event)."""
    event = service.get_event(store_of(request), units=units_of(principal), event_id=event_id)
    original = service.original_record(event)
    return EventDetail.model_validate({**event_read(event).model_dump(by_alias=True), "original": original})
