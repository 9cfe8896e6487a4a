"""What the audit API takes and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

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
    q: str = ""
    actor: str = ""
    action: str = ""
    outcome: str = ""
    since: datetime | None = None
    until: datetime | None = None


class VerificationRead(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str
