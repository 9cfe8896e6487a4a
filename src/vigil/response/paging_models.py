"""Which escalation policy pages, and which channels are told, when an incident of a severity opens in a unit.

One row per unit and severity; a unit without a row takes the nearest unit above it that has one; no row at
all means nobody is paged and nothing is sent (the default).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UnitScoped, utcnow


class IncidentPaging(UnitScoped, Base):
    __tablename__ = "incident_paging"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    severity: Mapped[str] = mapped_column(String(10))  # P1..P4
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("escalation_policies.id", ondelete="SET NULL"))
    # Told "incident opened" (a list of notification channel ids).
    channel_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (UniqueConstraint("unit_id", "severity", name="uq_incident_paging_unit_severity"),)
