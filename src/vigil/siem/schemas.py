"""Request and response shapes of the SIEM's API (Pydantic v2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigil.core.inputs import Text
from vigil.core.pagination import Page
from vigil.siem.fields import FIELD_PATTERN
from vigil.siem.query import MAX_LENGTH as QUERY_MAX_LENGTH

# --- search (events) -------------------------------------------------------------------------------

MAX_PAGE = 1_000  # events one search call returns; more is an export


class EventQuery(BaseModel):
    """What to search: a query and a time range (``15m``, ``24h``, ``7d`` or ``START/END``)."""

    q: Text = Field(default="", max_length=QUERY_MAX_LENGTH,
                    description="The search query (Lucene/KQL subset); empty means every event.")
    range: Text = Field(default="24h", max_length=200,
                        description="15m, 24h, 7d (the last …), or START/END with ISO 8601 times or now-1h.")


class EventSearch(EventQuery):
    limit: int = Field(default=100, ge=0, le=MAX_PAGE, description="Events per page (0: only the total).")
    offset: int = Field(default=0, ge=0, le=1_000_000, description="Events to skip.")
    sort: Literal["desc", "asc"] = Field(default="desc", description="desc: newest first.")


class HistogramQuery(EventQuery):
    buckets: int = Field(default=60, ge=1, le=500, description="Bars wanted at most (the interval is rounded up).")


class TopValuesQuery(EventQuery):
    field: Text = Field(min_length=1, max_length=300, description="The field whose values to count.")
    limit: int = Field(default=10, ge=1, le=100)


class ExportQuery(EventQuery):
    format: Literal["csv", "ndjson"] = "csv"
    fields: Text = Field(default="", max_length=4000,
                         description="CSV columns, comma separated (default @timestamp, vigil.source, host.name, "
                                     "event.action, message).")
    max: int = Field(default=100_000, ge=1, le=1_000_000, description="Events exported at most.")
    sort: Literal["desc", "asc"] = "desc"


class TimeRangeRead(BaseModel):
    start: datetime
    end: datetime


class EventRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    timestamp: datetime = Field(alias="@timestamp")
    source: str
    unit_id: int
    document: dict[str, Any]


class EventDetail(EventRead):
    original: str | None = Field(default=None, description="The record as received, when it was kept.")


class FieldCountRead(BaseModel):
    field: str
    count: int


class SearchRead(BaseModel):
    total: int
    took_ms: float
    events: list[EventRead]
    range: TimeRangeRead
    query: str = Field(description="The query as understood, written canonically.")
    limit: int
    offset: int
    sort: Literal["desc", "asc"]
    fields: list[FieldCountRead] = Field(description="Fields present in the returned events, most common first.")


class BucketRead(BaseModel):
    start: datetime
    count: int


class HistogramRead(BaseModel):
    interval_seconds: int
    total: int
    buckets: list[BucketRead]
    range: TimeRangeRead
    query: str


class TermRead(BaseModel):
    value: Any
    count: int


class TopValuesRead(BaseModel):
    field: str
    total: int = Field(description="Events matching the query in the range.")
    values: list[TermRead]
    range: TimeRangeRead
    query: str


class EventAggregations(EventQuery):
    buckets: int = Field(default=60, ge=1, le=500, description="Histogram bars wanted at most.")
    fields: list[Text] = Field(default_factory=list, max_length=20, description="Fields whose top values to count.")
    limit: int = Field(default=10, ge=1, le=100, description="Top values per field.")


class AggregationsRead(BaseModel):
    total: int
    took_ms: float
    range: TimeRangeRead
    query: str
    histogram: HistogramRead
    top_values: dict[str, list[TermRead]]


# --- saved searches --------------------------------------------------------------------------------


class SavedSearchCreate(BaseModel):
    """A query and time range kept under a name by the user who saves it (names are unique per user)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text = Field(min_length=1, max_length=200)
    query: Text = Field(default="", max_length=QUERY_MAX_LENGTH, description="The search language; '' = every event.")
    time_range: Text = Field(default="24h", min_length=1, max_length=64,
                             description="15m, 24h, 7d or START/END (ISO 8601 or now-1h on either side).")
    columns: list[str] = Field(default_factory=list, max_length=50, description="Fields shown as columns.")

    @field_validator("columns")
    @classmethod
    def _field_names(cls, columns: list[str]) -> list[str]:
        bad = [name for name in columns if not FIELD_PATTERN.match(name)]
        if bad:
            raise ValueError(f"not field names: {', '.join(repr(name) for name in bad[:5])}")
        return columns


class SavedSearchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    query: str
    time_range: str
    columns: list[str]
    created_at: datetime
    updated_at: datetime


SavedSearchPage = Page[SavedSearchRead]
