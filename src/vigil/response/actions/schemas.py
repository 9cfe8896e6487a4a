"""Request and response shapes of action configurations and executions.

An action's ``config`` goes in whole on creation and key by key on update; it never comes back out. Reads carry
``settings`` (the config without its secrets) and ``secrets`` ("set" or "not set" per secret field).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.core.inputs import RecordId, Text

ExecutionStatus = Literal["requested", "awaiting_approval", "approved", "rejected", "running", "succeeded", "failed",
                          "rolled_back", "rollback_failed"]
SecretState = Literal["set", "not set"]
MAX_TTL = 30 * 24 * 3600


class ActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=40, description="block_ip, disable_account, isolate_host, run_script, "
                                                               "or a third-party vigil.actions plugin.")
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict, description="The kind's settings (docs/response-actions.md).")
    requires_approval: bool = Field(default=True, description="Each run waits for a second person's approval.")
    rollback_after_seconds: int | None = Field(default=None, ge=1, le=MAX_TTL,
                                               description="Undo a successful run this long after it (unblock).")
    description: Text = Field(default="", max_length=2000)
    unit_id: RecordId | None = Field(default=None, description="The action's unit; default: yours.")


class ActionUpdate(BaseModel):
    """Only the fields given change; ``config`` keys given replace the stored ones (``null`` removes one), a
    secret left out or empty keeps its stored value. ``rollback_after_seconds: null`` turns rollback off."""

    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    config: dict[str, Any] | None = None
    requires_approval: bool | None = None
    rollback_after_seconds: int | None = Field(default=None, ge=1, le=MAX_TTL)
    description: Text | None = Field(default=None, max_length=2000)
    unit_id: RecordId | None = None


class ActionRead(BaseModel):
    id: int
    unit_id: int
    name: str
    kind: str
    enabled: bool
    settings: dict[str, Any] = Field(description="The configuration without its secrets.")
    secrets: dict[str, SecretState]
    requires_approval: bool
    rollback_after_seconds: int | None
    reversible: bool = Field(description="Whether the configuration says how to undo a run.")
    description: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


class ActionKind(BaseModel):
    kind: str
    target: str
    fields: list[dict[str, Any]]


class ExecutionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action_id: RecordId
    target: Text = Field(min_length=1, max_length=512, description="The IP address, account, host or argument.")
    reason: Text = Field(default="", max_length=2000)
    incident_id: RecordId | None = Field(default=None, description="The incident this run belongs to (its timeline "
                                                                   "records it).")
    dry_run: bool = Field(default=False, description="Show what would run, run nothing, record nothing.")


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Text = Field(default="", max_length=2000)


class DryRunRead(BaseModel):
    action_id: int
    action: str
    kind: str
    target: str
    steps: list[str] = Field(description="Exactly the commands (argument lists, shell-quoted for reading) or HTTP "
                                         "requests that would run, secrets masked.")
    undo_steps: list[str]
    requires_approval: bool
    rollback_after_seconds: int | None


class StepRead(BaseModel):
    phase: Literal["do", "undo"]
    describe: str
    ok: bool
    output: str = ""
    exit_code: int | None = None
    http_status: int | None = None
    seconds: float = 0.0
    at: datetime


class ExecutionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: int
    action_id: int | None
    action_name: str
    action_kind: str
    target: str
    parameters: dict[str, Any]
    incident_id: int | None
    playbook_run_id: int | None
    reason: str
    status: ExecutionStatus
    requested_by: str
    approved_by: str | None
    decision_comment: str
    steps: list[StepRead]
    output: str
    exit_code: int | None
    http_status: int | None
    requested_at: datetime
    decided_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    rollback_due_at: datetime | None
    rolled_back_at: datetime | None
