"""Request and response shapes of notification channels and their delivery log.

A channel's ``config`` goes in whole on creation and key by key on update; it never comes back out.
Reads carry ``settings`` (the config without its secrets) and ``secrets`` ("set" or "not set" per
secret field), so a reply, a page or a log line cannot leak a token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.core.inputs import RecordId, Text

Language = Literal["en", "zh_CN"]
DeliveryStatus = Literal["pending", "sent", "failed"]
SecretState = Literal["set", "not set"]


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=40, description="dingtalk, wecom, feishu, email, slack, webhook, "
                                                               "or a third-party vigil.notifiers plugin.")
    language: Language = Field(default="zh_CN", description="Language of the messages this channel receives.")
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict, description="The kind's settings (docs/notifications.md).")
    max_attempts: int = Field(default=3, ge=1, le=10, description="Tries per message before it counts as failed.")
    description: Text = Field(default="", max_length=2000)
    unit_id: RecordId | None = Field(default=None, description="The channel's unit; default: yours.")


class ChannelUpdate(BaseModel):
    """Only the fields given change. ``config`` keys given replace the stored ones (``null`` removes one);
    a secret left out keeps its stored value."""

    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    language: Language | None = None
    enabled: bool | None = None
    config: dict[str, Any] | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=10)
    description: Text | None = Field(default=None, max_length=2000)
    unit_id: RecordId | None = None


class ChannelRead(BaseModel):
    id: int
    unit_id: int
    name: str
    kind: str
    language: str
    enabled: bool
    settings: dict[str, Any] = Field(description="The configuration without its secrets.")
    secrets: dict[str, SecretState] = Field(description="Whether each secret field holds a value.")
    max_attempts: int
    description: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


class AttemptRead(BaseModel):
    at: datetime
    ok: bool
    http_status: int | None = None
    error: str = ""
    seconds: float = 0.0


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: int
    channel_id: int | None
    channel_name: str
    channel_kind: str
    message_kind: str
    subject: str
    language: str
    incident_id: int | None
    status: DeliveryStatus
    attempts: int
    attempt_log: list[AttemptRead]
    last_error: str
    http_status: int | None
    created_at: datetime
    sent_at: datetime | None
    created_by: str


class NotifierKind(BaseModel):
    """A channel kind the platform can send through, with its settings."""

    kind: str
    fields: list[dict[str, Any]]
