"""Notification records: the configured channels and the delivery log.

A channel belongs to a unit (a branch keeps its own DingTalk group); its ``config`` holds the kind's
settings, secrets included, and is never shown back: reads say only whether each secret is set. A
delivery records one message to one channel with every attempt's outcome. It keeps the channel's name
and kind, so the log still reads after the channel is removed, and an incident id as a plain number
(the incidents domain links to it, not the other way round).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UnitScoped, utcnow


class NotificationChannel(UnitScoped, Base):
    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))  # a vigil.notifiers plugin: dingtalk, wecom, feishu, ...
    language: Mapped[str] = mapped_column(String(10), default="zh_CN")  # en | zh_CN: the messages' language
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # secrets inside: never read back out
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class NotificationDelivery(UnitScoped, Base):
    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("notification_channels.id", ondelete="SET NULL"), index=True)
    channel_name: Mapped[str] = mapped_column(String(200))
    channel_kind: Mapped[str] = mapped_column(String(40))
    message_kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(Text, default="")  # the rendered title
    language: Mapped[str] = mapped_column(String(10), default="")
    incident_id: Mapped[int | None] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Each attempt: {"at", "ok", "http_status", "error", "seconds"}.
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    last_error: Mapped[str] = mapped_column(Text, default="")
    http_status: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(64), default="")
