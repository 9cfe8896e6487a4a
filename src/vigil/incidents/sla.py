"""SLA clocks: targets per severity to acknowledge, contain and resolve an incident, on a 24x7 or a
business-hours clock, and the scheduler's pass that records warnings and breaches once.

Every clock starts when the incident is opened (``created_at``) and stops at its milestone
(``acknowledged_at``, ``contained_at``: first entry into eradicate, ``resolved_at``: first entry into
review). On the business clock only working time counts: the calendar's weekdays between its day start
and day end, in its time zone (``zoneinfo``). A figure is ``met`` (done in time), ``breached`` (done late,
or running past its due time), ``warning`` (running, with at least ``warn_ratio`` of the target used) or
``ok`` (running).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from vigil.core.errors import BadInput
from vigil.core.events import emit
from vigil.incidents.events import SlaBreached, SlaWarning
from vigil.incidents.models import Incident, IncidentType, SlaCalendar, SlaRecord, SlaTarget, TimelineEntry

METRICS: Sequence[str] = ("acknowledge", "contain", "resolve")
SEVERITIES: Sequence[str] = ("P1", "P2", "P3", "P4")
MAX_DAYS = 3700  # a business-hours walk never goes further (about ten years)


class Clock(StrEnum):
    ALWAYS = "24x7"
    BUSINESS = "business"


class SlaState(StrEnum):
    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"
    MET = "met"


@dataclass(frozen=True)
class Calendar:
    zone: ZoneInfo
    weekdays: frozenset[int]
    start: time
    end: time
    warn_ratio: float = 0.8

    @classmethod
    def of(cls, row: SlaCalendar) -> Calendar:
        return cls(zone=ZoneInfo(row.timezone), weekdays=frozenset(row.weekdays), start=parse_hhmm(row.day_start),
                   end=parse_hhmm(row.day_end), warn_ratio=row.warn_ratio)

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The working hours of ``day`` (local date) as aware UTC times, or None on a day off."""
        if day.weekday() not in self.weekdays:
            return None
        opens = datetime.combine(day, self.start, self.zone).astimezone(UTC)
        closes = datetime.combine(day, self.end, self.zone).astimezone(UTC)
        return opens, closes


def parse_hhmm(text: str) -> time:
    try:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise BadInput(f"{text!r} is no time of day (HH:MM)", errors=[{"field": "day_start",
                                                                     "message": "HH:MM"}]) from exc


def check_calendar(*, timezone: str, weekdays: Sequence[int], day_start: str, day_end: str,
                   warn_ratio: float) -> None:
    """Refuse a calendar the clock could not run on; nothing is changed when this raises."""
    errors: list[dict[str, str]] = []
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append({"field": "timezone", "message": f"unknown time zone {timezone!r}"})
    if not weekdays or any(day not in range(7) for day in weekdays):
        errors.append({"field": "weekdays", "message": "one or more of 0 (Monday) .. 6 (Sunday)"})
    if parse_hhmm(day_start) >= parse_hhmm(day_end):
        errors.append({"field": "day_end", "message": "the working day must end after it starts"})
    if not 0 < warn_ratio < 1:
        errors.append({"field": "warn_ratio", "message": "between 0 and 1 (0.8: warn at 80% of the target)"})
    if errors:
        raise BadInput("the business-hours calendar is not valid", errors=errors)


def business_minutes(calendar: Calendar, start: datetime, end: datetime) -> float:
    """Working minutes between ``start`` and ``end``."""
    if end <= start:
        return 0.0
    total = 0.0
    day = start.astimezone(calendar.zone).date() - timedelta(days=1)
    last = end.astimezone(calendar.zone).date()
    while day <= last:
        window = calendar.window(day)
        if window is not None:
            opens, closes = max(window[0], start), min(window[1], end)
            if closes > opens:
                total += (closes - opens).total_seconds() / 60
        day += timedelta(days=1)
    return total


def add_business(calendar: Calendar, start: datetime, minutes: float) -> datetime:
    """The moment ``minutes`` of working time after ``start``."""
    remaining = timedelta(minutes=minutes)
    day = start.astimezone(calendar.zone).date()
    for _ in range(MAX_DAYS):
        window = calendar.window(day)
        if window is not None:
            opens = max(window[0], start)
            if window[1] > opens:
                available = window[1] - opens
                if remaining <= available:
                    return opens + remaining
                remaining -= available
        day += timedelta(days=1)
    raise BadInput("the business-hours calendar has no working time within ten years")


def elapsed_minutes(clock: str, calendar: Calendar, start: datetime, end: datetime) -> float:
    if clock == Clock.BUSINESS:
        return business_minutes(calendar, start, end)
    return max((end - start).total_seconds() / 60, 0.0)


def due_at(clock: str, calendar: Calendar, start: datetime, minutes: int) -> datetime:
    if clock == Clock.BUSINESS:
        return add_business(calendar, start, minutes)
    return start + timedelta(minutes=minutes)


@dataclass(frozen=True)
class SlaFigure:
    metric: str
    target_minutes: int
    clock: str
    due_at: datetime
    done_at: datetime | None
    elapsed_minutes: float
    remaining_minutes: float | None  # None once done
    used_ratio: float
    state: SlaState


def milestone(incident: Incident, metric: str) -> datetime | None:
    return {"acknowledge": incident.acknowledged_at, "contain": incident.contained_at,
            "resolve": incident.resolved_at}[metric]


def target_minutes(target: SlaTarget, metric: str) -> int:
    return {"acknowledge": target.acknowledge_minutes, "contain": target.contain_minutes,
            "resolve": target.resolve_minutes}[metric]


def evaluate(incident: Incident, target: SlaTarget, calendar: Calendar, now: datetime) -> list[SlaFigure]:
    """The incident's three SLA figures at ``now``."""
    figures: list[SlaFigure] = []
    for metric in METRICS:
        minutes = target_minutes(target, metric)
        done = milestone(incident, metric)
        until = done or now
        used = elapsed_minutes(target.clock, calendar, incident.created_at, until)
        ratio = used / minutes if minutes else 1.0
        due = due_at(target.clock, calendar, incident.created_at, minutes)
        if done is not None:
            state = SlaState.MET if done <= due else SlaState.BREACHED
        elif now >= due:
            state = SlaState.BREACHED
        elif ratio >= calendar.warn_ratio:
            state = SlaState.WARNING
        else:
            state = SlaState.OK
        remaining = None if done is not None else max(minutes - used, 0.0)
        figures.append(SlaFigure(metric, minutes, target.clock, due, done, round(used, 2),
                                 None if remaining is None else round(remaining, 2), round(ratio, 4), state))
    return figures


# --- settings: targets and the calendar ------------------------------------------------------------


def targets(session: Session) -> dict[str, SlaTarget]:
    return {row.severity: row for row in session.scalars(select(SlaTarget))}


def calendar_row(session: Session) -> SlaCalendar:
    row = session.get(SlaCalendar, 1)
    if row is None:  # the migration seeds it; a store without it is broken, not empty
        raise BadInput("the SLA calendar is missing; run `vigil migrate`")
    return row


def calendar(session: Session) -> Calendar:
    return Calendar.of(calendar_row(session))


def figures_of(session: Session, incident: Incident, now: datetime,
               known: Mapping[str, SlaTarget] | None = None, clock: Calendar | None = None) -> list[SlaFigure]:
    all_targets = known if known is not None else targets(session)
    target = all_targets.get(incident.severity)
    if target is None:
        return []
    return evaluate(incident, target, clock or calendar(session), now)


# --- the scheduler's pass ---------------------------------------------------------------------------


def record_sla(session: Session, *, now: datetime, recent_days: int = 7) -> list[SlaRecord]:
    """Record every warning and breach not yet recorded, of open incidents and of those closed in the last
    ``recent_days`` (a milestone reached late between two passes is a breach too). Each is recorded once:
    an ``SlaRecord``, a timeline entry and a domain event (``SlaWarning``, ``SlaBreached``). Call it with a
    session scoped to every unit (the scheduler) or to the units whose incidents it should look at."""
    known = targets(session)
    clock = calendar(session)
    recent = now - timedelta(days=recent_days)
    rows = session.execute(select(Incident, IncidentType.key).join(IncidentType, IncidentType.id == Incident.type_id)
                           .where(or_(Incident.status == "open", Incident.closed_at >= recent))
                           .order_by(Incident.id)).all()
    ids = [incident.id for incident, _ in rows]
    seen = {(r.incident_id, r.metric, r.kind) for r in session.scalars(
        select(SlaRecord).where(SlaRecord.incident_id.in_(ids)))} if ids else set()
    created: list[SlaRecord] = []
    for incident, type_key in rows:
        for figure in figures_of(session, incident, now, known, clock):
            kind = {SlaState.BREACHED: "breach", SlaState.WARNING: "warning"}.get(figure.state)
            if kind is None or (incident.id, figure.metric, kind) in seen:
                continue
            record = SlaRecord(incident_id=incident.id, metric=figure.metric, kind=kind, due_at=figure.due_at,
                               recorded_at=now)
            session.add(record)
            created.append(record)
            word = "breached" if kind == "breach" else "at risk"
            session.add(TimelineEntry(
                incident_id=incident.id, kind="sla", actor="vigil", at=now,
                summary=f"SLA to {figure.metric} {word} (due {figure.due_at:%Y-%m-%d %H:%M} UTC)",
                payload={"metric": figure.metric, "kind": kind, "due_at": figure.due_at.isoformat(),
                         "target_minutes": figure.target_minutes, "clock": figure.clock}))
            event_type = SlaBreached if kind == "breach" else SlaWarning
            emit(session, event_type(unit_id=incident.unit_id, actor="vigil", incident_id=incident.id,
                                     ref=incident.ref, severity=incident.severity, type_key=type_key,
                                     metric=figure.metric, due_at_iso=figure.due_at.isoformat()))
    session.flush()
    return created
