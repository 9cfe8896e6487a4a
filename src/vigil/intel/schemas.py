"""Request and response shapes of threat intelligence: feeds, pulls, indicators, sightings, entities, the
allow-list and retro-hunts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigil.core.inputs import Text
from vigil.intel.indicators import TLP_LEVELS

FeedFormat = Literal["stix", "misp", "misp-feed", "csv", "lines", "otx", "taxii"]
SightingStatus = Literal["new", "true-positive", "false-positive"]


class DecaySettings(BaseModel):
    base_score: float = Field(default=80.0, ge=0, le=100)
    lifetime_days: float = Field(default=30.0, gt=0, le=3650)
    decay_speed: float = Field(default=1.0, gt=0, le=100)
    threshold: float = Field(default=20.0, ge=0, le=100)


class FeedCreate(BaseModel):
    """A feed: a preset (URLhaus, Feodo Tracker, ThreatFox, ET compromised IPs, OTX) or a format and a URL."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    preset: str | None = Field(default=None, max_length=40)
    format: FeedFormat | None = None
    url: str | None = Field(default=None, max_length=2000)
    options: dict[str, Any] = Field(default_factory=dict)
    auth_header: str = Field(default="", max_length=100)
    auth_value: str = Field(default="", max_length=4000)
    enabled: bool = True
    interval_minutes: int = Field(default=60, ge=5, le=10080)
    replace: bool | None = None  # default: true for list formats, false for STIX, MISP, OTX and TAXII
    decay: dict[str, DecaySettings] = Field(default_factory=dict)
    confidence: int | None = Field(default=None, ge=0, le=100)
    tlp: str | None = None
    tags: list[Text] = Field(default_factory=list, max_length=20)

    @field_validator("tlp")
    @classmethod
    def _tlp(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        normal = value.lower().removeprefix("tlp:").replace("white", "clear")
        if normal not in TLP_LEVELS:
            raise ValueError(f"TLP is one of {', '.join(TLP_LEVELS)}")
        return normal


class FeedUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    interval_minutes: int | None = Field(default=None, ge=5, le=10080)
    url: str | None = Field(default=None, max_length=2000)
    options: dict[str, Any] | None = None
    auth_header: str | None = Field(default=None, max_length=100)
    auth_value: str | None = Field(default=None, max_length=4000)
    decay: dict[str, DecaySettings] | None = None
    confidence: int | None = Field(default=None, ge=0, le=100)
    tags: list[Text] | None = Field(default=None, max_length=20)


class FeedRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    format: str
    preset: str | None
    url: str
    options: dict[str, Any]
    auth_header: str
    has_secret: bool
    enabled: bool
    interval_minutes: int
    replace: bool
    decay: dict[str, dict[str, float]]
    confidence: int | None
    tlp: str | None
    tags: list[str]
    status: str
    stale: bool
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str
    consecutive_failures: int
    next_pull_at: datetime | None
    indicator_count: int
    version: str
    created_at: datetime
    created_by: str


class PullRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    feed_id: int | None
    source: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    received: int
    added: int
    updated: int
    removed: int
    entities: int
    error_count: int
    errors: list[dict[str, str]]
    warninglisted: int
    detail: str
    by: str


class ImportRead(BaseModel):
    pull: PullRead
    retrohunt: RetroHuntRead | None = None


class IndicatorSourceRead(BaseModel):
    source: str
    version: str
    external_id: str
    confidence: int | None
    tlp: str | None
    valid_from: datetime | None
    valid_until: datetime | None
    first_seen: datetime | None
    last_seen: datetime | None
    imported_at: datetime
    score: float
    base_score: float
    lifetime_days: float
    decay_speed: float
    threshold: float


class IndicatorRead(BaseModel):
    id: int
    type: str
    value: str
    score: float
    active: bool
    first_seen: datetime | None
    last_seen: datetime | None
    created_at: datetime
    updated_at: datetime
    tags: list[str]
    kill_chain: list[str]
    related: list[dict[str, str]]
    description: str
    pattern: str
    warninglists: list[str]
    allowlisted: bool
    sources: list[IndicatorSourceRead]


class IndicatorCreate(BaseModel):
    """An indicator entered by hand (source ``manual``)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(max_length=20)
    value: str = Field(min_length=1, max_length=2048)
    confidence: int | None = Field(default=None, ge=0, le=100)
    tlp: str | None = None
    tags: list[Text] = Field(default_factory=list, max_length=20)
    description: str = Field(default="", max_length=4000)
    valid_until: datetime | None = None


class SightingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: int
    indicator_id: int
    type: str
    value: str
    field: str
    observed: str
    event_source: str
    host: str | None
    first_seen: datetime
    last_seen: datetime
    count: int
    retroactive: bool
    provenance: dict[str, Any]
    suppressed_by: str
    status: str
    alert_id: int | None
    event: dict[str, Any]
    created_at: datetime


class SightingUpdate(BaseModel):
    """Mark a sighting; ``false-positive`` with ``allow`` also allow-lists the value (with the reason)."""

    model_config = ConfigDict(extra="forbid")

    status: SightingStatus
    allow: bool = False
    reason: str = Field(default="", max_length=2000)


class EntityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    name: str
    external_id: str
    description: str
    aliases: list[str]
    attack_ids: list[str]
    related: list[dict[str, str]]
    sources: list[str]
    first_seen: datetime | None
    last_seen: datetime | None


class AllowRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    type: str
    value: str
    reason: str
    sighting_id: int | None
    created_by: str
    created_at: datetime


class AllowCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(max_length=20)
    value: str = Field(min_length=1, max_length=2048)
    reason: str = Field(min_length=1, max_length=2000)


class RetroHuntRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    trigger: str
    indicators: int
    since: datetime
    until: datetime
    hits: int
    sightings: int
    seconds: float
    detail: str
    created_at: datetime


class LookupRead(BaseModel):
    """What Vigil knows about one observable."""

    query: str
    type: str | None
    value: str
    indicators: list[IndicatorRead]
    sightings: list[SightingRead]
    alerts: list[dict[str, Any]]
    events: list[dict[str, Any]]
    entities: list[EntityRead]
    warninglists: list[str]
    allowlisted: bool
    # The incidents whose observables hold the value (for a reader of incidents): id, ref, title, severity,
    # phase, status.
    incidents: list[dict[str, Any]] = Field(default_factory=list)


class LiveMatchingRead(BaseModel):
    """Live matching in this server's pipeline: the index it matches with and what it has matched since start."""

    running: bool  # a pipeline in this process matches events live
    indicators: int = 0  # indexed now
    version: str = ""
    skipped: int = 0  # active indicators the index could not take
    builds: int = 0
    build_seconds: float = 0.0  # the last build's
    events: int = 0
    hits: int = 0
    bad_events: int = 0  # events matching failed on (skipped; the rest of their batch was matched)
    screened: int = 0  # events and plain JSON documents the screen read in this process
    named: int = 0  # of those, the ones it named and the matcher then read
    seconds: float = 0.0  # spent matching in this process and recording hits
    last_error: str = ""


ImportRead.model_rebuild()
