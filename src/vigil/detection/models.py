"""Detection's records: rule packs and their rules, alerts, suppressions, hunts.

Rules are platform-wide (security admins manage them); alerts, suppressions and hunts belong to an
organisation unit (an alert to the unit of the events that raised it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UnitScoped, utcnow


class RulePack(Base):
    """Where a set of rules came from: a folder, a git checkout, a release zip, or Vigil's starter pack."""

    __tablename__ = "rule_packs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(Text, default="")  # the path or archive imported
    version: Mapped[str] = mapped_column(String(200), default="")  # git commit, archive name or content digest
    rule_count: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[str]] = mapped_column(JSON, default=list)  # "file:line: reason", per broken rule
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(64), default="")


class DetectionRule(Base):
    """One Sigma rule of a pack, with the SOC's own settings for it (enabled, level override, notes)."""

    __tablename__ = "detection_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pack_id: Mapped[int] = mapped_column(ForeignKey("rule_packs.id", ondelete="CASCADE"), index=True)
    rule_uid: Mapped[str] = mapped_column(String(64), index=True)  # the Sigma rule's id
    title: Mapped[str] = mapped_column(String(500))
    level: Mapped[str] = mapped_column(String(20))  # as the rule says
    status: Mapped[str | None] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20), default="sigma")  # sigma | correlation
    product: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str | None] = mapped_column(String(100))
    service: Mapped[str | None] = mapped_column(String(100))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    author: Mapped[str] = mapped_column(Text, default="")
    references: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    falsepositives: Mapped[list[str]] = mapped_column(JSON, default=list)
    path: Mapped[str] = mapped_column(Text, default="")  # file inside the pack
    yaml: Mapped[str] = mapped_column(Text, default="")
    digest: Mapped[str] = mapped_column(String(64), default="")  # sha256 of the YAML: what changed on update
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    level_override: Mapped[str | None] = mapped_column(String(20))
    notes: Mapped[str] = mapped_column(Text, default="")
    # Test cases: [{"name", "expect": "match"|"no_match", "format": a parser, "record": raw text, "source"}]
    tests: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    hits: Mapped[int] = mapped_column(Integer, default=0)  # alerts raised (each dedup counts once)
    false_positives: Mapped[int] = mapped_column(Integer, default=0)  # alerts closed as false positive
    last_hit_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (UniqueConstraint("pack_id", "rule_uid", name="uq_detection_rules_pack_rule"),)

    @property
    def effective_level(self) -> str:
        return self.level_override or self.level


class Alert(UnitScoped, Base):
    """A detection's finding. Matches of the same rule with the same key inside the dedup window raise
    ``count`` on the open alert instead of opening another."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("detection_rules.id", ondelete="SET NULL"), index=True)
    rule_uid: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(500))
    level: Mapped[str] = mapped_column(String(20), index=True)
    origin: Mapped[str] = mapped_column(String(20), default="sigma")  # sigma | correlation | ioc | hunt | health
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    resolution: Mapped[str | None] = mapped_column(String(20))  # true_positive | false_positive
    dedup_key: Mapped[str] = mapped_column(String(64), index=True)  # digest of rule + key fields
    group_key: Mapped[str] = mapped_column(String(200), default="")  # host or user, for grouping in the queue
    host: Mapped[str | None] = mapped_column(String(255), index=True)
    user_name: Mapped[str | None] = mapped_column(String(255))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    event_source: Mapped[str] = mapped_column(String(200), default="")  # the log source of the event
    techniques: Mapped[list[str]] = mapped_column(JSON, default=list)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(index=True)
    last_seen: Mapped[datetime] = mapped_column(index=True)
    event: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the first matching event
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    incident_id: Mapped[int | None] = mapped_column(Integer)  # set when escalated (issue 6 links it)
    closed_at: Mapped[datetime | None] = mapped_column()
    closed_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(UnitScoped, Base):
    """A tuning decision: matches of a rule (or of every rule) whose event meets all ``conditions`` raise no
    alert, until ``expires_at``. ``conditions``: [{"field": "User", "op": "equals", "value": "svc_backup"}]."""

    __tablename__ = "alert_suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_uid: Mapped[str | None] = mapped_column(String(64), index=True)  # None: every rule
    conditions: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column()
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    last_hit_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Hunt(UnitScoped, Base):
    """A search for rule matches over stored events in a time window: who ran it, what, and what it found."""

    __tablename__ = "hunts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(64))
    rule_uids: Mapped[list[str]] = mapped_column(JSON, default=list)  # rules hunted with (empty: all enabled)
    query: Mapped[str] = mapped_column(Text, default="")  # an extra search-language filter, or ""
    window_start: Mapped[datetime] = mapped_column()
    window_end: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(20), default="running")  # running | done | failed
    events_scanned: Mapped[int] = mapped_column(Integer, default=0)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # per rule: uid, title, count
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


class RulePlaceholder(Base):
    """The values of a Sigma placeholder (``%name%`` in a value with the ``expand`` modifier), for every
    rule of the platform: each becomes the OR of these values when rules are compiled."""

    __tablename__ = "rule_placeholders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)  # the text between the % signs
    values: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
