"""The incident domain's records: incidents and what hangs off them (alerts, observables, tasks, timeline,
comments, phase history, status changes, post-mortem, SLA records), and the platform-wide configuration
(the type taxonomy, custom-field definitions, task templates, SLA targets and clock, grouping rules).

An incident belongs to an organisation unit (``UnitScoped``); its child records are reached only through
their incident, which the scope has already let the caller see. Configuration is platform-wide.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UnitScoped, utcnow


class IncidentType(Base):
    """One entry of the type taxonomy: a stable key and its name per language (``{"en": ..., "zh_CN": ...}``)."""

    __tablename__ = "incident_types"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    names: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class FieldDefinition(Base):
    """A custom field incidents may carry: its key, label, kind (text, number, boolean, choice, date) and rules."""

    __tablename__ = "incident_field_definitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    choices: Mapped[list[str]] = mapped_column(JSON, default=list)
    required: Mapped[bool] = mapped_column(Boolean, default=False)


class Incident(UnitScoped, Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)  # INC-2026-0001
    year: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    type_id: Mapped[int] = mapped_column(ForeignKey("incident_types.id"), index=True)
    severity: Mapped[str] = mapped_column(String(2), index=True)  # P1..P4
    phase: Mapped[str] = mapped_column(String(20), index=True)
    status: Mapped[str] = mapped_column(String(10), index=True)  # open | closed
    cause: Mapped[str] = mapped_column(Text, default="")
    affected_assets: Mapped[list[str]] = mapped_column(JSON, default=list)
    affected_users: Mapped[list[str]] = mapped_column(JSON, default=list)
    business_lines: Mapped[list[str]] = mapped_column(JSON, default=list)
    affected_data: Mapped[list[str]] = mapped_column(JSON, default=list)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    team: Mapped[str] = mapped_column(String(100), default="", index=True)
    participants: Mapped[list[int]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(20), default="manual")  # manual | alerts | grouping
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    contained_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()


class IncidentAlert(Base):
    """An alert (detection's) linked to an incident; an alert belongs to at most one incident."""

    __tablename__ = "incident_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), unique=True)
    linked_by: Mapped[str] = mapped_column(String(64))
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)


class Observable(Base):
    """A value seen in the incident (address, domain, hash...), normalised as intel normalises indicators, so
    it is found in the indicator store by (type, value)."""

    __tablename__ = "incident_observables"
    __table_args__ = (UniqueConstraint("incident_id", "type", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(2048), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    malicious: Mapped[bool] = mapped_column(Boolean, default=False)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskTemplate(Base):
    """A task every incident of a type (or of every type) gets when it enters a phase."""

    __tablename__ = "incident_task_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type_id: Mapped[int | None] = mapped_column(ForeignKey("incident_types.id", ondelete="CASCADE"), index=True)
    phase: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Task(Base):
    __tablename__ = "incident_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("incident_task_templates.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    phase: Mapped[str] = mapped_column(String(20))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | done
    due_at: Mapped[datetime | None] = mapped_column()
    done_by: Mapped[str | None] = mapped_column(String(64))
    done_at: Mapped[datetime | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TimelineEntry(Base):
    """One line of the incident's story: alert, state_change, task, action, notification, comment or manual."""

    __tablename__ = "incident_timeline"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Comment(Base):
    __tablename__ = "incident_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    mentions: Mapped[list[int]] = mapped_column(JSON, default=list)  # user ids resolved from @username
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PhaseSpan(Base):
    """One stay of an incident in a phase: entered, left (None while there). Time per phase is their sum."""

    __tablename__ = "incident_phase_spans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    phase: Mapped[str] = mapped_column(String(20))
    entered_at: Mapped[datetime] = mapped_column()
    left_at: Mapped[datetime | None] = mapped_column()
    entered_by: Mapped[str] = mapped_column(String(64))


class StatusChange(Base):
    """The status-change history the SLA figures and metrics are computed from: opened, acknowledged, every
    phase change, reopened; never updated, only appended."""

    __tablename__ = "incident_status_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # opened | acknowledged | phase | reopened
    from_phase: Mapped[str | None] = mapped_column(String(20))
    to_phase: Mapped[str | None] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(Text, default="")


class PostMortem(Base):
    """The review of one incident: draft -> in_review -> approved (or back to draft); the approver is never the
    author."""

    __tablename__ = "incident_postmortems"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text, default="")
    timeline: Mapped[str] = mapped_column(Text, default="")
    impact: Mapped[str] = mapped_column(Text, default="")
    root_cause: Mapped[str] = mapped_column(Text, default="")
    five_whys: Mapped[list[str]] = mapped_column(JSON, default=list)
    went_well: Mapped[str] = mapped_column(Text, default="")
    went_badly: Mapped[str] = mapped_column(Text, default="")
    action_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    submitted_at: Mapped[datetime | None] = mapped_column()
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column()
    review_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Where it was published (vigil.response.postmortem_publish): the knowledge-base page and the git commit.
    kb_slug: Mapped[str | None] = mapped_column(String(100))
    kb_version: Mapped[int | None] = mapped_column(Integer)
    git_commit: Mapped[str | None] = mapped_column(String(64))
    published_at: Mapped[datetime | None] = mapped_column()
    published_by: Mapped[str | None] = mapped_column(String(64))


class SlaTarget(Base):
    """Minutes to acknowledge, contain and resolve an incident of one severity, and the clock they run on."""

    __tablename__ = "incident_sla_targets"

    severity: Mapped[str] = mapped_column(String(2), primary_key=True)
    acknowledge_minutes: Mapped[int] = mapped_column(Integer)
    contain_minutes: Mapped[int] = mapped_column(Integer)
    resolve_minutes: Mapped[int] = mapped_column(Integer)
    clock: Mapped[str] = mapped_column(String(20), default="24x7")  # 24x7 | business
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SlaCalendar(Base):
    """The business-hours clock (one row, id 1): working weekdays and hours in a time zone, the warning ratio."""

    __tablename__ = "incident_sla_calendar"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    weekdays: Mapped[list[int]] = mapped_column(JSON)  # 0 Monday .. 6 Sunday
    day_start: Mapped[str] = mapped_column(String(5))  # HH:MM
    day_end: Mapped[str] = mapped_column(String(5))
    warn_ratio: Mapped[float] = mapped_column()
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SlaRecord(Base):
    """A warning or a breach of one SLA target of one incident, recorded once when first seen."""

    __tablename__ = "incident_sla_records"
    __table_args__ = (UniqueConstraint("incident_id", "metric", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    metric: Mapped[str] = mapped_column(String(20))  # acknowledge | contain | resolve
    kind: Mapped[str] = mapped_column(String(10))  # warning | breach
    due_at: Mapped[datetime] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupingRule(Base):
    """How alerts join an open incident: by the same rule, host, user or indicator within a window."""

    __tablename__ = "incident_grouping_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    match_on: Mapped[str] = mapped_column(String(20))  # rule | host | user | indicator
    window_minutes: Mapped[int] = mapped_column(Integer)
    min_level: Mapped[str] = mapped_column(String(20), default="high")  # alerts below this level are left alone
    type_key: Mapped[str] = mapped_column(String(64), default="other")  # type of an incident it opens
    severity: Mapped[str] = mapped_column(String(2), default="P3")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(64), default="")
