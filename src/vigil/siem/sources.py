"""Log sources: their settings (format, time zone, original record, retention, expected interval, unit),
what the event store has seen of each (per source and host), and the providers the pipeline reads.

A source is the ``source`` name events carry ("syslog", "http:fw01"). A configured source is a
``LogSource`` row; a source that sends without one is still listed (observed) and read with the
platform defaults (Settings). A configured source with an expected interval is *silent* when its last
event arrived longer ago than that interval (or never arrived).

Service functions take a ``Context`` or a session, write the audit trail for every change, and never
commit: the caller owns the transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core.config import Settings
from vigil.core.context import Context
from vigil.core.db import MAX_RECORD_ID, Database, Scope, get_scope, utcnow
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.inputs import Text
from vigil.siem.models import LogSource
from vigil.siem.parsers.registry import parsers
from vigil.siem.parsing import SourceConfig
from vigil.siem.pipeline import Pipeline
from vigil.siem.receivers import Receiver
from vigil.siem.source_stats import Held, SourceStats, Window, held
from vigil.siem.spool import Spool
from vigil.siem.store.base import EventStore

UNSCOPED = {"vigil_unscoped": True}
# The Cybersecurity Law (Art. 21) asks for network logs to be kept for at least six months.
LEGAL_MINIMUM_DAYS = 180
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,199}$"
LOW_RETENTION_WARNING = (
    "retention of {days} days is below the {minimum} days the Cybersecurity Law (Art. 21) requires for "
    "network logs"
)


# --- shapes ----------------------------------------------------------------------------------------


def check_format(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    known = parsers()
    if value not in known:
        raise ValueError(f"unknown log format {value!r}; known formats: {', '.join(sorted(known))}")
    return value


def check_timezone(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai or UTC") from exc
    return value


# A parser name and an IANA zone, checked wherever a source's settings are given ('' means the default).
FormatName = Annotated[Text | None, AfterValidator(check_format)]
ZoneName = Annotated[Text | None, AfterValidator(check_timezone)]


class SourceFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: Text = Field(default="", max_length=2000)
    format: FormatName = Field(default=None, description="Parser name; empty: detected per record.")
    timezone: ZoneName = Field(default=None, description="IANA zone for zone-less stamps; empty: log_timezone.")
    keep_original: bool = Field(default=True, description="Keep each record as received in event.original.")
    retention_days: int | None = Field(default=None, ge=1, le=36500,
                                       description="Days events are kept; empty: the platform default.")
    expected_interval_minutes: int | None = Field(default=None, ge=1, le=525600,
                                                  description="Flag the source silent after this long.")


class SourceCreate(SourceFields):
    name: str = Field(pattern=NAME_PATTERN, description="The ``source`` its events carry.")
    unit_id: int | None = Field(default=None, ge=1, le=MAX_RECORD_ID,
                                description="Unit its events belong to; default: yours.")


class SourceUpdate(BaseModel):
    """Only the fields given change; ``null`` returns a field to the platform default."""

    model_config = ConfigDict(extra="forbid")

    description: Text | None = Field(default=None, max_length=2000)
    format: FormatName = None
    timezone: ZoneName = None
    keep_original: bool | None = None
    retention_days: int | None = Field(default=None, ge=1, le=36500)
    expected_interval_minutes: int | None = Field(default=None, ge=1, le=525600)
    unit_id: int | None = Field(default=None, ge=1, le=MAX_RECORD_ID)


class SourceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    unit_id: int
    description: str
    format: str | None
    timezone: str | None
    keep_original: bool
    retention_days: int | None
    expected_interval_minutes: int | None
    created_at: datetime
    updated_at: datetime
    updated_by: str


class SourceSaved(SourceRead):
    warnings: list[str] = Field(default_factory=list)


class HostStats(BaseModel):
    """One host of a source over the last 24 hours (hosts that sent nothing since are not listed)."""

    host: str
    last_seen: datetime | None
    events_24h: int
    events_per_second: float  # over the last 5 minutes
    failures_24h: int  # records no parser could read (event.kind: pipeline_error)
    failure_rate_24h: float


class SourceStatus(BaseModel):
    """One source as the sources page shows it: its settings (effective) and what was seen of it."""

    name: str
    configured: bool
    id: int | None = None
    unit_id: int | None = None
    description: str = ""
    format: str | None = None
    timezone: str
    keep_original: bool
    retention_days: int
    expected_interval_minutes: int | None = None
    last_seen: datetime | None = None  # when its latest event was received
    events: int = 0  # events held
    events_24h: int = 0
    events_per_second: float = 0.0  # over the last 5 minutes
    failures_24h: int = 0  # records no parser could read (event.kind: pipeline_error)
    failure_rate_24h: float = 0.0
    silent: bool = False
    hosts: list[HostStats] = Field(default_factory=list)


class SourceList(BaseModel):
    items: list[SourceStatus]
    total: int
    silent: int
    generated_at: datetime


def retention_warnings(days: int | None) -> list[str]:
    if days is not None and days < LEGAL_MINIMUM_DAYS:
        return [LOW_RETENTION_WARNING.format(days=days, minimum=LEGAL_MINIMUM_DAYS)]
    return []


# --- configured sources ----------------------------------------------------------------------------


def list_configured(session: Session) -> list[LogSource]:
    """The configured sources of the session's scope, by name."""
    return list(session.scalars(select(LogSource).order_by(LogSource.name)))


def get_source(session: Session, source_id: int) -> LogSource:
    found = session.scalar(select(LogSource).where(LogSource.id == source_id))
    if found is None:
        raise NotFound(f"log source {source_id} does not exist or is outside your scope")
    return found


def find_source(session: Session, name: str) -> LogSource | None:
    return session.scalar(select(LogSource).where(LogSource.name == name))


def _check_unit(ctx: Context, unit_id: int) -> None:
    """Refuse a unit outside the caller's scope without telling whether it exists."""
    if not get_scope(ctx.session).allows(unit_id):
        raise NotFound(f"organisation unit {unit_id} does not exist or is outside your scope")
    accounts.get_unit(ctx.session, unit_id)


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's transaction commits (never when it rolls back)."""
    event.listen(session, "after_commit", lambda _session: callback(), once=True)


def _settings_of(row: LogSource) -> dict[str, Any]:
    return {"unit_id": row.unit_id, "description": row.description, "format": row.format,
            "timezone": row.timezone, "keep_original": row.keep_original, "retention_days": row.retention_days,
            "expected_interval_minutes": row.expected_interval_minutes}


def create_source(ctx: Context, *, data: SourceCreate) -> LogSource:
    unit_id = data.unit_id if data.unit_id is not None else ctx.actor.unit_id
    _check_unit(ctx, unit_id)
    # Names are global (events carry only the name): another unit's source of that name clashes too.
    clash = ctx.session.scalar(select(LogSource.id).where(LogSource.name == data.name), execution_options=UNSCOPED)
    if clash is not None:
        raise Conflict(f"a log source named {data.name!r} is already configured")
    row = LogSource(name=data.name, unit_id=unit_id, description=data.description, format=data.format,
                    timezone=data.timezone, keep_original=data.keep_original, retention_days=data.retention_days,
                    expected_interval_minutes=data.expected_interval_minutes, updated_by=ctx.actor.name)
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit("siem.source.create", target_type="log_source", target_id=row.id, unit_id=unit_id,
              details={"name": row.name, **_settings_of(row)})
    return row


def update_source(ctx: Context, *, source_id: int, data: SourceUpdate) -> LogSource:
    row = get_source(ctx.session, source_id)
    given = data.model_dump(include=data.model_fields_set)
    if given.get("keep_original", True) is None:
        raise BadInput("keep_original must be true or false", errors=[{"field": "keep_original",
                                                                        "message": "not a boolean"}])
    if "unit_id" in given:
        if given["unit_id"] is None:
            raise BadInput("unit_id cannot be empty", errors=[{"field": "unit_id", "message": "required"}])
        _check_unit(ctx, given["unit_id"])
    if "description" in given and given["description"] is None:
        given["description"] = ""
    before = _settings_of(row)
    for name, value in given.items():
        setattr(row, name, value)
    changes = {name: [before[name], value] for name, value in given.items() if before[name] != value}
    if changes:
        row.updated_at = utcnow()
        row.updated_by = ctx.actor.name
        ctx.session.flush()
        ctx.audit("siem.source.update", target_type="log_source", target_id=row.id, unit_id=row.unit_id,
                  details={"name": row.name, **changes})
    return row


def delete_source(ctx: Context, *, source_id: int) -> LogSource:
    """Forget a source's settings: its stored events stay, read with the defaults from now on."""
    row = get_source(ctx.session, source_id)
    ctx.audit("siem.source.delete", target_type="log_source", target_id=row.id, unit_id=row.unit_id,
              details={"name": row.name, **_settings_of(row)})
    ctx.session.delete(row)
    ctx.session.flush()
    return row


# --- what the event store has seen -----------------------------------------------------------------


def _rate(count: int, total: int) -> float:
    return round(count / total, 4) if total else 0.0


def _per_second(recent: int, seconds: float) -> float:
    return round(recent / seconds, 3) if seconds > 0 else 0.0


def is_silent(row: LogSource | None, last_seen: datetime | None, now: datetime) -> bool:
    if row is None or row.expected_interval_minutes is None:
        return False
    return last_seen is None or now - last_seen > timedelta(minutes=row.expected_interval_minutes)


def _hosts(found: Sequence[Window]) -> list[HostStats]:
    """One line per host; a host with events in several units (a source that moved) is added up."""
    totals: dict[str, tuple[datetime | None, int, int, int]] = {}
    seconds = max((item.rate_seconds for item in found), default=0.0)
    for item in found:
        last, events, recent, failures = totals.get(item.host, (None, 0, 0, 0))
        if item.last_seen is not None and (last is None or item.last_seen > last):
            last = item.last_seen
        totals[item.host] = (last, events + item.events, recent + item.recent, failures + item.failures)
    hosts = [HostStats(host=host, last_seen=last, events_24h=events, events_per_second=_per_second(recent, seconds),
                       failures_24h=failures, failure_rate_24h=_rate(failures, events))
             for host, (last, events, recent, failures) in totals.items()]
    return sorted(hosts, key=lambda h: (-h.events_24h, h.host))


def source_statuses(session: Session, store: EventStore | None, settings: Settings, *,
                    unit_ids: Collection[int] | None, now: datetime | None = None,
                    stats: SourceStats | None = None) -> SourceList:
    """Configured sources of the session's scope merged with the sources seen in ``unit_ids``' events.

    ``stats`` keeps the per-host figures between calls (the runtime's); without it they are read afresh.
    """
    now = now or datetime.now(UTC)
    stats = stats or SourceStats(clock=lambda: now)
    rows = {row.name: row for row in list_configured(session)}
    stored: dict[str, list[Held]] = {}
    recent: dict[str, list[Window]] = {}
    if store is not None:
        for item in held(store, unit_ids=unit_ids):
            stored.setdefault(item.source, []).append(item)
        for found in stats.window(store, unit_ids=unit_ids):
            recent.setdefault(found.source, []).append(found)
    items: list[SourceStatus] = []
    for name in sorted(rows.keys() | stored.keys()):
        row = rows.get(name)
        parts, hosts = stored.get(name, []), _hosts(recent.get(name, []))
        last_seen = max((p.last_seen for p in parts if p.last_seen), default=None)
        events_24h = sum(h.events_24h for h in hosts)
        failures_24h = sum(h.failures_24h for h in hosts)
        items.append(SourceStatus(
            name=name, configured=row is not None, id=row.id if row else None,
            unit_id=row.unit_id if row else max(parts, key=lambda p: p.events).unit_id,
            description=row.description if row else "",
            format=row.format if row else None,
            timezone=(row.timezone if row and row.timezone else settings.log_timezone),
            keep_original=row.keep_original if row else settings.keep_original,
            retention_days=(row.retention_days if row and row.retention_days else settings.retention_days),
            expected_interval_minutes=row.expected_interval_minutes if row else None,
            last_seen=last_seen, events=sum(p.events for p in parts), events_24h=events_24h,
            events_per_second=_per_second(sum(f.recent for f in recent.get(name, [])),
                                          max((f.rate_seconds for f in recent.get(name, [])), default=0.0)),
            failures_24h=failures_24h, failure_rate_24h=_rate(failures_24h, events_24h),
            silent=is_silent(row, last_seen, now), hosts=hosts,
        ))
    return SourceList(items=items, total=len(items), silent=sum(1 for i in items if i.silent), generated_at=now)


# --- providers for the pipeline and the receivers ---------------------------------------------------


@dataclass(frozen=True)
class Directory:
    configs: dict[str, SourceConfig]
    units: dict[str, int]


class SourceDirectory:
    """Cached ``source_configs`` and ``unit_for`` from the LogSource rows, with the Settings defaults.

    Reloaded at most every ``refresh_seconds`` (a change made by another process, `vigil sources set`,
    shows within that time) and at once after a change committed in this process (``invalidate``).
    """

    def __init__(self, database: Database, settings: Settings, *, default_unit: Callable[[str], int],
                 refresh_seconds: float = 30.0) -> None:
        self.database = database
        self.settings = settings
        self.default_unit = default_unit
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._directory: Directory | None = None
        self._loaded_at = 0.0

    def default_config(self) -> SourceConfig:
        return SourceConfig(timezone=ZoneInfo(self.settings.log_timezone), keep_original=self.settings.keep_original)

    def _load(self) -> Directory:
        with self.database.transaction(Scope.system()) as session:
            rows = list(session.scalars(select(LogSource)))
            configs = {row.name: SourceConfig(
                format=row.format, timezone=ZoneInfo(row.timezone or self.settings.log_timezone),
                keep_original=row.keep_original) for row in rows}
            return Directory(configs=configs, units={row.name: row.unit_id for row in rows})

    def current(self) -> Directory:
        with self._lock:
            if self._directory is None or time.monotonic() - self._loaded_at > self.refresh_seconds:
                self._directory = self._load()
                self._loaded_at = time.monotonic()
            return self._directory

    def invalidate(self) -> None:
        with self._lock:
            self._directory = None

    def config(self, source: str) -> SourceConfig:
        return self.current().configs.get(source) or self.default_config()

    def unit(self, source: str) -> int:
        found = self.current().units.get(source)
        return found if found is not None else self.default_unit(source)

    def configured(self, source: str) -> bool:
        return source in self.current().units



# --- the status panel: pipeline, spool, receivers --------------------------------------------------

# The pipeline is falling behind when this much accepted input waits to be stored (or the spool is
# over FULL_SHARE of its quota: receivers start answering 503 when it is full).
BEHIND_BYTES = 64 * 1024 * 1024
FULL_SHARE = 0.8


class PipelineState(BaseModel):
    state: Literal["running", "idle", "stopped"]  # idle: nothing received yet, it starts with the first batch
    running: bool
    batches: int
    events: int
    failures: int
    errors: int
    pending_bytes: int
    last_batch_at: datetime | None
    last_error: str


class SpoolState(BaseModel):
    used_bytes: int
    quota_bytes: int
    used_share: float


class ReceiverState(BaseModel):
    name: str
    status: dict[str, int | str]


class SiemStatus(BaseModel):
    pipeline: PipelineState
    spool: SpoolState
    receivers: list[ReceiverState]
    falling_behind: bool
    warnings: list[str]


def siem_status(pipeline: Pipeline, spool: Spool, receivers: Sequence[Receiver]) -> SiemStatus:
    state = pipeline.status
    pending = spool.pending_bytes(state.position)  # read now: the pipeline updates its own copy per round
    used, quota = spool.used_bytes, spool.quota_bytes
    share = round(used / quota, 4) if quota else 0.0
    warnings: list[str] = []
    threshold = min(BEHIND_BYTES, quota // 4) if quota else BEHIND_BYTES
    if pending > threshold:
        warnings.append(f"the pipeline is falling behind: {pending:,} bytes of accepted input wait to be stored")
    if share > FULL_SHARE:
        warnings.append(f"the spool holds {share:.0%} of its quota; when it is full, senders are asked to "
                        "retry later (HTTP 503) until the pipeline catches up")
    running = state.running
    if not running and pending:
        warnings.append("the pipeline is not running while accepted input waits in the spool")
    return SiemStatus(
        pipeline=PipelineState(state="running" if running else ("stopped" if pending else "idle"), running=running,
                               batches=state.batches, events=state.events, failures=state.failures,
                               errors=state.errors, pending_bytes=pending, last_batch_at=state.last_batch_at,
                               last_error=state.last_error),
        spool=SpoolState(used_bytes=used, quota_bytes=quota, used_share=share),
        receivers=[ReceiverState(name=r.name, status=r.status()) for r in receivers],
        falling_behind=pending > threshold or share > FULL_SHARE,
        warnings=warnings,
    )
