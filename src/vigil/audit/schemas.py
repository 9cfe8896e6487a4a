"""What the audit API takes and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from vigil.core.inputs import Text
from vigil.core.pagination import Page


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    at: datetime
    actor_id: int | None
    actor: str
    action: str
    target_type: str
    target_id: str
    unit_id: int
    source_ip: str
    outcome: str
    details: dict[str, Any]
    hash: str


AuditPage = Page[AuditRead]


class AuditFilter(BaseModel):
    q: Text = Field(default="", max_length=200, description="Part of the actor, action, target, address or details.")
    actor: Text = Field(default="", max_length=200)
    action: Text = Field(default="", max_length=200, description="An action or a family, e.g. `user`.")
    outcome: Text = Field(default="", max_length=20)
    # With an offset (2026-01-31T08:00:00+08:00 or ...Z): a bare local time would be ambiguous.
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None


class VerificationRead(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str
