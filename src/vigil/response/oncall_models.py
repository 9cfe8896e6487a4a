"""On-call records: schedules (layers kept on the schedule) and their overrides, escalation policies, and the
escalations that page people for an incident with every step they took.

All belong to an organisation unit: a branch keeps its own rota and policies. An escalation takes the unit of
its policy; its steps (``EscalationStep``) that of the escalation, so the incident timeline can read them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UnitScoped, utcnow


class OncallSchedule(UnitScoped, Base):
    __tablename__ = "oncall_schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    time_zone: Mapped[str] = mapped_column(String(64))
    # Lowest first: [{"name", "participants": [user ids], "rotation", "hours", "handoff": "HH:MM",
    #                 "start": "YYYY-MM-DD", "restrictions": [{"days": [0-6], "start": "HH:MM", "end": "HH:MM"}]}]
    layers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("unit_id", "name", name="uq_oncall_schedules_unit_name"),)


class OncallOverride(UnitScoped, Base):
    """A user on call instead of whoever the layers put there, from ``starts_at`` to ``ends_at``."""

    __tablename__ = "oncall_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("oncall_schedules.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")


class EscalationPolicy(UnitScoped, Base):
    __tablename__ = "escalation_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # In order: [{"timeout_minutes": N, "targets": [{"kind": "user" | "schedule", "id": N}]}]
    levels: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    repeat: Mapped[int] = mapped_column(Integer, default=0)  # times the whole policy runs again after the last level
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("unit_id", "name", name="uq_escalation_policies_unit_name"),)


class Escalation(UnitScoped, Base):
    """Paging for one incident through a policy, until someone acknowledges or the policy runs out."""

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(Integer, index=True)
    title: Mapped[str] = mapped_column(String(500))
    severity: Mapped[str] = mapped_column(String(10))
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("escalation_policies.id", ondelete="SET NULL"))
    policy_name: Mapped[str] = mapped_column(String(200))
    # The policy as it was at the start, so editing the policy does not change a running escalation.
    levels: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    repeat: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="active", index=True)  # active | acknowledged | exhausted
    level: Mapped[int] = mapped_column(Integer, default=-1)  # the level last notified (0-based), -1 before the first
    round: Mapped[int] = mapped_column(Integer, default=0)  # 0 for the first pass through the levels
    next_at: Mapped[datetime | None] = mapped_column(index=True)  # when the engine takes the next step
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_by: Mapped[str] = mapped_column(String(64), default="")
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[str] = mapped_column(String(64), default="")
    acknowledged_via: Mapped[str] = mapped_column(String(10), default="")  # ui | api | link | cli


class EscalationStep(UnitScoped, Base):
    """One thing an escalation did: started, moved to a level, notified someone (or failed to), was acknowledged,
    ran out. What the incident timeline shows of the paging."""

    __tablename__ = "escalation_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"), index=True)
    incident_id: Mapped[int] = mapped_column(Integer, index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # started | level | queued | sending | notified | notify-failed | nobody-on-call | acknowledged | exhausted
    kind: Mapped[str] = mapped_column(String(20))
    level: Mapped[int | None] = mapped_column(Integer)
    round: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[str] = mapped_column(String(60), default="")  # the notifier that carried it
    detail: Mapped[str] = mapped_column(Text, default="")
    # With notification channels wired: the channel a page goes through and its delivery in the log.
    channel_id: Mapped[int | None] = mapped_column(Integer)
    delivery_id: Mapped[int | None] = mapped_column(Integer)
