"""Request and response shapes of hunts over stored events (Pydantic v2)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from vigil.core.inputs import Text
from vigil.siem.query import MAX_LENGTH as QUERY_MAX_LENGTH

MAX_RULES = 5_000  # rule ids one hunt names at most (more: hunt with every enabled rule)


class HuntCreate(BaseModel):
    """What to hunt for: rules (none named: every enabled rule), a window, an optional extra filter."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Text = Field(default="", max_length=200, description="A name to find the hunt by later.")
    rule_uids: list[str] = Field(default_factory=list, max_length=MAX_RULES,
                                 description="Sigma rule ids; empty: every enabled rule.")
    query: Text = Field(default="", max_length=QUERY_MAX_LENGTH,
                        description="Search language narrowing the events hunted over; '' = every event.")
    range: Text = Field(default="24h", max_length=64,
                        description="15m, 24h, 7d or START/END (ISO 8601 or now-1h); ignored when start is given.")
    start: AwareDatetime | None = Field(default=None, description="The window's start (with end).")
    end: AwareDatetime | None = Field(default=None, description="The window's end (default: now).")
    background: bool | None = Field(default=None, description="Run in the background (default: only when the "
                                                              "window holds many events).")


class HuntEventRef(BaseModel):
    id: int
    unit_id: int
    url: str = Field(description="The event's page.")


class HuntRuleHits(BaseModel):
    """One rule's matches: how many, and the first events (those of units the reader may see)."""

    uid: str
    title: str
    level: str
    count: int
    events: list[HuntEventRef]
    search_url: str = Field(description="The search page over the hunt's window and filter, for these events' "
                                        "context.")


class HuntSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    created_by: str
    unit_id: int
    rule_uids: list[str]
    query: str
    window_start: datetime
    window_end: datetime
    status: str
    events_scanned: int
    hits: int
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class HuntRead(HuntSummary):
    rules: list[HuntRuleHits] = Field(description="Rules with at least one hit, most hits first.")
    rules_hunted: int | None = Field(description="How many rules were named; None: every enabled rule.")


class HuntPage(BaseModel):
    items: list[HuntSummary]
    total: int
    limit: int
    offset: int
