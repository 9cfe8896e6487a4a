"""The SIEM's records in the records store: log-source settings and saved searches (events live in DuckDB)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UnitScoped, utcnow


class LogSource(UnitScoped, Base):
    """How one input is read and kept; ``name`` is the ``source`` its events carry ("syslog", "http:fw01").

    Events of a source belong to its unit. Unset fields take the platform defaults (Settings).
    """

    __tablename__ = "log_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[str | None] = mapped_column(String(64))  # parser name; None: detected
    timezone: Mapped[str | None] = mapped_column(String(64))  # for zone-less stamps; None: log_timezone
    keep_original: Mapped[bool] = mapped_column(Boolean, default=True)
    retention_days: Mapped[int | None] = mapped_column(Integer)  # None: Settings.retention_days
    # Flag the source as silent when no event arrived for this long; None: never flagged.
    expected_interval_minutes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class SavedSearch(UnitScoped, Base):
    """A user's own named query with its time range; ``unit_id`` is the owner's unit."""

    __tablename__ = "saved_searches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    query: Mapped[str] = mapped_column(Text, default="")
    time_range: Mapped[str] = mapped_column(String(64), default="24h")  # "24h", "7d" or "START/END" (ISO 8601)
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_saved_searches_user_name"),)
