"""Playbook shapes: the definition (a trigger and ordered steps), create and update, and the reads of playbooks,
versions, runs and step results.

A definition is JSON (or YAML in the editor)::

    {"trigger": {"on": ["opened", "severity_changed"], "incident_types": ["intrusion"], "min_severity": "P1"},
     "steps": [{"kind": "notify", "channel_id": 3, "summary": "Intrusion playbook started"},
               {"kind": "act", "action_id": 1, "target": "{observable.ipv4}", "requires_approval": true},
               {"kind": "create_task", "title": "Check the firewall block", "phase": "contain"}]}
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vigil.core.inputs import RecordId, Text

Severity = Literal["P1", "P2", "P3", "P4"]
WorkPhase = Literal["identify", "contain", "eradicate", "recover", "review"]
TriggerOn = Literal["opened", "severity_changed", "type_changed"]
RunStatus = Literal["running", "awaiting_approval", "succeeded", "failed", "rejected"]
StepStatus = Literal["pending", "awaiting_approval", "succeeded", "failed", "rejected", "skipped"]
ShortText = Annotated[Text, Field(min_length=1, max_length=200)]
# What an ``act`` step's target may be: a literal value, or one placeholder filled from the incident.
PLACEHOLDER = re.compile(r"^\{(observable\.[a-z0-9_-]+|alert\.(?:host|user|source_ip)|"
                         r"incident\.(?:affected_assets|affected_users))\}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _on_open() -> list[TriggerOn]:
    return ["opened"]


class Trigger(Strict):
    """When a playbook runs by itself: all the conditions given must hold (an empty list is no condition)."""

    on: list[TriggerOn] = Field(default_factory=_on_open, max_length=3)
    incident_types: list[ShortText] = Field(default_factory=list, max_length=50)
    min_severity: Severity | None = Field(default=None, description="At least this severity (P1 is the highest).")
    rule_uids: list[ShortText] = Field(default_factory=list, max_length=200,
                                       description="A linked alert comes from one of these rules.")
    alert_origins: list[Literal["sigma", "correlation", "ioc", "hunt", "health"]] = Field(
        default_factory=list, description="A linked alert has one of these origins.")


class StepBase(Strict):
    name: Text = Field(default="", max_length=200)
    requires_approval: bool = Field(default=False, description="The run waits here for a person's approval.")


class EnrichStep(StepBase):
    kind: Literal["enrich"]


class NotifyStep(StepBase):
    kind: Literal["notify"]
    channel_id: RecordId
    summary: Text = Field(default="", max_length=2000)


class ActStep(StepBase):
    kind: Literal["act"]
    action_id: RecordId
    target: Text = Field(min_length=1, max_length=512, description="A value, or {observable.ipv4}, {alert.host}, "
                                                                   "{alert.user}, {alert.source_ip}, "
                                                                   "{incident.affected_assets}, ...")
    reason: Text = Field(default="", max_length=2000)

    @field_validator("target")
    @classmethod
    def _one_placeholder(cls, value: str) -> str:
        if "{" in value and not PLACEHOLDER.match(value.strip()):
            raise ValueError("must be a plain value or exactly one placeholder such as {observable.ipv4}, "
                             "{alert.host}, {alert.user}, {alert.source_ip}, {incident.affected_assets}")
        return value.strip()


class TaskStep(StepBase):
    kind: Literal["create_task"]
    title: Annotated[Text, Field(min_length=1, max_length=300)]
    description: Text = Field(default="", max_length=20_000)
    phase: WorkPhase | None = None
    required: bool = False


Step = Annotated[EnrichStep | NotifyStep | ActStep | TaskStep, Field(discriminator="kind")]


class Definition(Strict):
    trigger: Trigger = Field(default_factory=Trigger)
    steps: list[Step] = Field(min_length=1, max_length=50)


class PlaybookCreate(Strict):
    name: ShortText
    description: Text = Field(default="", max_length=2000)
    enabled: bool = True
    definition: Definition
    unit_id: RecordId | None = Field(default=None, description="The playbook's unit; default: yours.")


class PlaybookUpdate(Strict):
    """A new ``definition`` makes a new version (with ``comment``); the other fields change in place."""

    name: ShortText | None = None
    description: Text | None = Field(default=None, max_length=2000)
    enabled: bool | None = None
    definition: Definition | None = None
    comment: Text = Field(default="", max_length=2000)


class PlaybookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: int
    name: str
    description: str
    enabled: bool
    version: int
    definition: dict[str, Any]
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


class VersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    definition: dict[str, Any]
    comment: str
    created_at: datetime
    created_by: str


class RunCreate(Strict):
    incident_id: RecordId


class StepResultRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    position: int
    kind: str
    name: str
    status: StepStatus
    output: str
    detail: dict[str, Any]
    execution_ids: list[int]
    decided_by: str | None
    started_at: datetime | None
    finished_at: datetime | None


class RunRead(BaseModel):
    id: int
    unit_id: int
    playbook_id: int | None
    playbook_name: str
    version: int
    incident_id: int | None
    trigger: str
    status: RunStatus
    current_step: int
    started_by: str
    started_at: datetime
    finished_at: datetime | None
    steps: list[StepResultRead]


class Decision(Strict):
    comment: Text = Field(default="", max_length=2000)
