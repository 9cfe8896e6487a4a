"""Response action records: the configured actions and every execution of one.

A configuration belongs to a unit (a branch keeps its own firewall); its ``config`` holds the kind's settings,
secrets included, and is never shown back (reads say only whether each secret is set), as notification
channels keep theirs. An execution records one request to run an action against one target: who asked, who
approved, each step that ran (command or HTTP request, its output and exit code or HTTP status), and the
rollback when its TTL passed. It keeps the action's name and kind, so it still reads after the action is
removed, and an incident id and a playbook run id as plain numbers. A run for an incident belongs to the
incident's unit, any other to the action's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UnitScoped, utcnow


class ActionConfig(UnitScoped, Base):
    __tablename__ = "response_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))  # a vigil.actions plugin: block_ip, disable_account, ...
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # secrets inside: never read back out
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=True)
    rollback_after_seconds: Mapped[int | None] = mapped_column(Integer)  # None: no automatic rollback
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class ActionExecution(UnitScoped, Base):
    __tablename__ = "response_action_executions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action_id: Mapped[int | None] = mapped_column(ForeignKey("response_actions.id", ondelete="SET NULL"), index=True)
    action_name: Mapped[str] = mapped_column(String(200))
    action_kind: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(512))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    incident_id: Mapped[int | None] = mapped_column(Integer, index=True)
    playbook_run_id: Mapped[int | None] = mapped_column(Integer, index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    # requested | awaiting_approval | approved | rejected | running | succeeded | failed | rolled_back |
    # rollback_failed
    status: Mapped[str] = mapped_column(String(20), index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_by_id: Mapped[int | None] = mapped_column(Integer)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_by_id: Mapped[int | None] = mapped_column(Integer)
    decision_comment: Mapped[str] = mapped_column(Text, default="")
    # Each step that ran: {"phase": "do"|"undo", "describe", "ok", "exit_code", "http_status", "output", "at"}.
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    output: Mapped[str] = mapped_column(Text, default="")
    exit_code: Mapped[int | None] = mapped_column(Integer)
    http_status: Mapped[int | None] = mapped_column(Integer)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    decided_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    rollback_due_at: Mapped[datetime | None] = mapped_column(index=True)
    rolled_back_at: Mapped[datetime | None] = mapped_column()
