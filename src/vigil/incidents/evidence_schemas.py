"""Request and response shapes of evidence files (with their chain of custody) and of passive reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from vigil.core.inputs import Text
from vigil.incidents.schemas import LongText, Severity, Strict, Title


class CustodyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    action: str
    actor: str
    source_ip: str
    at: datetime
    to_holder: str
    sha256: str
    outcome: str
    note: str


class EvidenceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_id: int
    original_name: str
    content_type: str
    size: int
    sha256: str
    description: str
    holder: str
    uploaded_by: str
    uploaded_at: datetime
    custody: list[CustodyRead] = Field(default_factory=list)


class HandOver(Strict):
    to: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    note: Annotated[Text, Field(max_length=5000)] = ""


class ReportCreate(Strict):
    title: Title
    description: LongText = ""
    category: Annotated[str, Field(max_length=64, description="A type key of the taxonomy; default other.")] = "other"
    observed_at: AwareDatetime | None = None
    anonymous: bool = Field(default=False, description="Keep no trace of who reported it; a follow-up token "
                                                       "is returned once instead.")


class ReportRead(BaseModel):
    """A report as the triage queue sees it (an anonymous one names no reporter)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: int
    title: str
    description: str
    category: str
    observed_at: datetime | None
    anonymous: bool
    reporter: str
    status: str
    reason: str
    triaged_by: str | None
    triaged_at: datetime | None
    incident_id: int | None
    created_at: datetime


class ReportStatus(BaseModel):
    """What the reporter may follow: the state of the report, never who triaged it."""

    id: int
    title: str
    status: str
    reason: str
    incident_ref: str | None
    created_at: datetime


class ReportCreated(ReportStatus):
    follow_token: str | None = Field(default=None, description="Anonymous reports only: shown once; follow the "
                                                               "report with it at /reports/follow/{token}.")


class ReportAccept(Strict):
    title: Title | None = Field(default=None, description="Default: the report's title.")
    type: Annotated[str, Field(max_length=64)] | None = Field(default=None, description="Default: its category.")
    severity: Severity = "P3"


class ReportReject(Strict):
    reason: Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
