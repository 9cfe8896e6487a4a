"""Threat intelligence's records: feeds and their pulls, sightings, actors and campaigns, the allow-list.

The indicators themselves are bulk data and live in the DuckDB indicator store (``store.py``); these
tables refer to them by id. Feeds, entities and the allow-list are platform-wide (the intel team keeps
them); a sighting belongs to the unit of the event that carried the indicator.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UnitScoped, utcnow


class IntelFeed(Base):
    """A source of indicators pulled on a schedule: a URL in one of the feed formats, or a TAXII collection."""

    __tablename__ = "intel_feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    format: Mapped[str] = mapped_column(String(40))  # a vigil.feeds parser, "misp-feed" or "taxii"
    preset: Mapped[str | None] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the parser's options (CSV columns...)
    # An HTTP header sent with each pull (Authorization, an API key); never shown back, never logged.
    auth_header: Mapped[str] = mapped_column(String(100), default="")
    auth_value: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    interval_minutes: Mapped[int] = mapped_column(Integer, default=60)
    replace: Mapped[bool] = mapped_column(Boolean, default=True)  # each pull is the feed's whole list
    # Per indicator type (or "*"): {"base_score", "lifetime_days", "decay_speed", "threshold"}.
    decay: Mapped[dict[str, dict[str, float]]] = mapped_column(JSON, default=dict)
    # What the feed's items lack: applied to every item (a CSV has no TLP).
    confidence: Mapped[int | None] = mapped_column(Integer)
    tlp: Mapped[str | None] = mapped_column(String(20))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Health, as the last pulls left it.
    status: Mapped[str] = mapped_column(String(20), default="never")  # never | ok | not-modified | error
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    last_success_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str] = mapped_column(Text, default="")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_pull_at: Mapped[datetime | None] = mapped_column()
    indicator_count: Mapped[int] = mapped_column(Integer, default=0)  # what the feed states now
    etag: Mapped[str] = mapped_column(Text, default="")
    last_modified: Mapped[str] = mapped_column(String(100), default="")
    cursor: Mapped[str] = mapped_column(String(100), default="")  # TAXII added_after
    version: Mapped[str] = mapped_column(String(64), default="")  # digest of the last content taken
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class IntelPull(Base):
    """One pull of a feed or one import of a file: what came, what was taken, what was refused."""

    __tablename__ = "intel_pulls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("intel_feeds.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(300))  # "feed:3" or "import:<file name>"
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str] = mapped_column(String(20), default="running")  # ok | not-modified | error | running
    received: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    entities: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)  # the first ones: {position, reason}
    warninglisted: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str] = mapped_column(Text, default="")  # why it failed as a whole
    by: Mapped[str] = mapped_column(String(64), default="")


class IntelEntity(Base):
    """An actor (intrusion set), campaign, malware family, tool, report or technique."""

    __tablename__ = "intel_entities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(300))
    external_id: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    attack_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Other entities it is linked to: [{"kind", "name", "external_id"}].
    related: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    sources: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_seen: Mapped[datetime | None] = mapped_column()
    last_seen: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("kind", "name", name="uq_intel_entities_kind_name"),)


class IntelSighting(UnitScoped, Base):
    """An indicator seen in our events: live as they arrived, or found later by a retro-hunt.

    Sightings of one indicator in one unit, field and host within the dedup window share a row and
    raise its ``count``."""

    __tablename__ = "intel_sightings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    indicator_id: Mapped[int] = mapped_column(BigInteger, index=True)
    type: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(Text)
    field: Mapped[str] = mapped_column(String(200))
    observed: Mapped[str] = mapped_column(Text)
    event_source: Mapped[str] = mapped_column(String(300), default="")
    host: Mapped[str | None] = mapped_column(String(300))
    first_seen: Mapped[datetime] = mapped_column()  # of the activity, not of the match
    last_seen: Mapped[datetime] = mapped_column()
    count: Mapped[int] = mapped_column(Integer, default=1)
    retroactive: Mapped[bool] = mapped_column(Boolean, default=False)
    # What vouched for the indicator at match time: [{"source", "version", "score"}], the score, and the
    # warninglists and allow-list it was checked against (and which, if any, held it back).
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    suppressed_by: Mapped[str] = mapped_column(Text, default="")  # a warninglist or the allow-list: no alert
    status: Mapped[str] = mapped_column(String(20), default="new")  # new | true-positive | false-positive
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    event: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the first event, trimmed
    dedup_key: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class IntelAllowlist(Base):
    """A value the SOC knows to be harmless here: never raises an alert, flagged on import."""

    __tablename__ = "intel_allowlist"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text, default="")
    sighting_id: Mapped[int | None] = mapped_column(ForeignKey("intel_sightings.id", ondelete="SET NULL"))
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("type", "value", name="uq_intel_allowlist_type_value"),)


class RetroHunt(Base):
    """A look back through stored events for new or changed indicators."""

    __tablename__ = "intel_retrohunts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger: Mapped[str] = mapped_column(String(300))  # the pull or import that brought the indicators
    indicators: Mapped[int] = mapped_column(Integer, default=0)
    since: Mapped[datetime] = mapped_column()
    until: Mapped[datetime] = mapped_column()
    hits: Mapped[int] = mapped_column(Integer, default=0)
    sightings: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(default=0.0)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
