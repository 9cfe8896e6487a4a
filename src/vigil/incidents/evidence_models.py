"""Evidence files of an incident and their chain of custody, and passive reports of suspected incidents.

Evidence hangs off its incident (reached only through it, so the incident's unit scope covers it). The file
itself lies under ``<data_dir>/evidence/`` with a generated name; the record keeps its SHA-256 and size, and
every custody step (upload, download, hand-over, verification) is appended, never changed.

A report belongs to the reporter's unit (its triage queue). An anonymous report keeps no user id, no name and
no address of its reporter; its follow-up token is kept only as a digest.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UnitScoped, utcnow


class Evidence(Base):
    __tablename__ = "incident_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)  # generated; never the client's name
    original_name: Mapped[str] = mapped_column(String(255))  # sanitised, shown and offered on download only
    content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    holder: Mapped[str] = mapped_column(String(64))  # the current custodian
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustodyEntry(Base):
    """One step of an evidence file's chain of custody: upload, download, handover or verify."""

    __tablename__ = "incident_evidence_custody"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("incident_evidence.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source_ip: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
    to_holder: Mapped[str] = mapped_column(String(64), default="")  # handover: who takes it
    sha256: Mapped[str] = mapped_column(String(64), default="")  # upload and verify: the hash computed then
    outcome: Mapped[str] = mapped_column(String(20), default="")  # verify: intact | mismatch | missing
    note: Mapped[str] = mapped_column(Text, default="")


class IncidentReport(UnitScoped, Base):
    """A suspected incident reported by an employee, waiting in the triage queue of the reporter's unit."""

    __tablename__ = "incident_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(64), default="other")  # a type key of the taxonomy
    observed_at: Mapped[datetime | None] = mapped_column()
    anonymous: Mapped[bool] = mapped_column(default=False)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    reporter: Mapped[str] = mapped_column(String(64), default="")  # empty when anonymous
    follow_digest: Mapped[str | None] = mapped_column(String(64), unique=True)  # anonymous: digest of the token
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)  # new | accepted | rejected
    reason: Mapped[str] = mapped_column(Text, default="")  # why it was rejected
    triaged_by: Mapped[str | None] = mapped_column(String(64))
    triaged_at: Mapped[datetime | None] = mapped_column()
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
