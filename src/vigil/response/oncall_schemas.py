"""Request and response shapes of on-call schedules, overrides, escalation policies and escalations."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from vigil.core.inputs import RecordId, Text
from vigil.response.oncall import RotationKind

Severity = Literal["P1", "P2", "P3", "P4"]
AckVia = Literal["ui", "api", "link", "cli"]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai") from exc
    return value


class RestrictionIn(BaseModel):
    """The layer is active on these weekdays (0 = Monday ... 6 = Sunday) from ``start`` to ``end`` local time;
    an end at or before the start runs into the next day (nights)."""

    model_config = ConfigDict(extra="forbid")

    days: list[int] = Field(min_length=1, max_length=7)
    start: time
    end: time

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(day < 0 or day > 6 for day in value):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return sorted(set(value))

    @model_validator(mode="after")
    def _not_empty(self) -> RestrictionIn:
        if self.start == self.end and self.start != time(0):
            raise ValueError("start and end are the same: write 00:00 to 00:00 for whole days")
        return self


class LayerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=100)
    participants: list[RecordId] = Field(min_length=1, max_length=100)  # user ids, in rotation order
    rotation: RotationKind = "weekly"
    hours: int = Field(default=24, ge=1, le=24 * 28)  # the length of an "hours" rotation
    handoff: time = time(9)
    start: date
    restrictions: list[RestrictionIn] = Field(default_factory=list, max_length=14)

    @field_validator("handoff")
    @classmethod
    def _whole_minutes(cls, value: time) -> time:
        return value.replace(second=0, microsecond=0, tzinfo=None)


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=4000)
    time_zone: str = Field(default="Asia/Shanghai", max_length=64)
    layers: list[LayerIn] = Field(default_factory=list, max_length=10)
    unit_id: RecordId | None = None  # default: the caller's unit

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _zone(value)


class ScheduleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    description: Text | None = Field(default=None, max_length=4000)
    time_zone: str | None = Field(default=None, max_length=64)
    layers: list[LayerIn] | None = Field(default=None, max_length=10)  # replaces every layer

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else _zone(value)


class ScheduleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: int
    name: str
    description: str
    time_zone: str
    layers: list[LayerIn]
    created_at: datetime
    created_by: str
    updated_at: datetime


class OverrideCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: RecordId
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    note: Text = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _ordered(self) -> OverrideCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if (self.ends_at - self.starts_at).days > 90:
            raise ValueError("an override lasts at most 90 days; change the layers for longer")
        return self


class OverrideRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    schedule_id: int
    user_id: int
    username: str = ""
    starts_at: datetime
    ends_at: datetime
    note: str
    created_at: datetime
    created_by: str


class ShiftRead(BaseModel):
    user_id: int
    username: str
    display_name: str
    start: datetime
    end: datetime
    layer: str  # a layer's name, or "override"


class OnCallRead(BaseModel):
    """Who is on call in one schedule at one instant; ``shift`` is None when nobody is."""

    schedule_id: int
    schedule_name: str
    time_zone: str
    at: datetime
    shift: ShiftRead | None


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["user", "schedule"]
    id: RecordId


class LevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout_minutes: int = Field(default=15, ge=1, le=24 * 60)  # wait this long for an acknowledgement
    targets: list[TargetIn] = Field(min_length=1, max_length=20)
    # The notification channels this level pages through (ids); none: nothing is sent, the steps say so.
    channel_ids: list[RecordId] = Field(default_factory=list, max_length=10)


class PolicyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=4000)
    levels: list[LevelIn] = Field(min_length=1, max_length=10)
    repeat: int = Field(default=0, ge=0, le=9)
    unit_id: RecordId | None = None


class PolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    description: Text | None = Field(default=None, max_length=4000)
    levels: list[LevelIn] | None = Field(default=None, min_length=1, max_length=10)
    repeat: int | None = Field(default=None, ge=0, le=9)


class PolicyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: int
    name: str
    description: str
    levels: list[LevelIn]
    repeat: int
    created_at: datetime
    created_by: str
    updated_at: datetime


class EscalationCreate(BaseModel):
    """Page people for an incident through a policy (the incident by its id and title)."""

    model_config = ConfigDict(extra="forbid")

    incident_id: RecordId
    title: Text = Field(min_length=1, max_length=500)
    severity: Severity = "P2"
    policy_id: RecordId


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Text = Field(default="", max_length=1000)


class StepRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    kind: str
    level: int | None
    round: int | None
    user_id: int | None
    username: str
    channel: str
    detail: str
    channel_id: int | None = None
    delivery_id: int | None = None


class EscalationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: int
    incident_id: int
    title: str
    severity: str
    policy_id: int | None
    policy_name: str
    status: str
    level: int
    round: int
    repeat: int
    levels: list[LevelIn]
    next_at: datetime | None
    started_at: datetime
    started_by: str
    acknowledged_at: datetime | None
    acknowledged_by: str
    acknowledged_via: str


class EscalationDetail(EscalationRead):
    steps: list[StepRead]
