"""Who is on call: the rotation arithmetic of an on-call schedule, free of any store.

A schedule (PagerDuty-style) has a time zone and layers. A layer hands the pager from one participant to
the next at a local hand-off time, every day, every week or every N hours, from a start date; restrictions
keep a layer to some hours (weekdays 09:00-18:00, nights). Higher layers override lower ones wherever they
have someone; overrides (a user stands in from T1 to T2) override every layer.

Daily and weekly rotations hand off at the local wall-clock time, so across a DST change the shift around
it is an hour shorter or longer and the hand-off stays at 09:00 local. An N-hour rotation counts real
elapsed hours from its first hand-off. A hand-off time that a spring-forward gap skips happens at the
instant the clocks jump over it (Python's fold=0 reading); one that a fall-back repeats, at its first
occurrence. All instants are aware datetimes; shifts are returned in UTC.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

RotationKind = Literal["daily", "weekly", "hours"]
OVERRIDE = "override"  # the layer name of a shift an override makes


@dataclass(frozen=True)
class Restriction:
    """A window the layer is active in: on these weekdays (0 = Monday), from ``start`` to ``end`` local time.
    An ``end`` at or before ``start`` runs into the next day (a night shift); the day is the start's day."""

    days: frozenset[int]
    start: time
    end: time


@dataclass(frozen=True)
class Layer:
    name: str
    participants: tuple[int, ...]  # user ids, in rotation order
    rotation: RotationKind
    handoff: time  # local time of the hand-off
    start: date  # local date of the first hand-off
    hours: int = 24  # the length of an "hours" rotation
    restrictions: tuple[Restriction, ...] = ()

    def length(self) -> timedelta:
        if self.rotation == "daily":
            return timedelta(days=1)
        if self.rotation == "weekly":
            return timedelta(days=7)
        return timedelta(hours=self.hours)


@dataclass(frozen=True)
class Override:
    user_id: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Shift:
    user_id: int
    start: datetime
    end: datetime
    layer: str  # the layer's name, or OVERRIDE


@dataclass(frozen=True)
class ScheduleSpec:
    time_zone: str
    layers: tuple[Layer, ...]  # lowest first: a later layer overrides an earlier one
    overrides: tuple[Override, ...] = ()  # a later override wins where two overlap


def _local(zone: ZoneInfo, day: date, at: time) -> datetime:
    """The UTC instant of a local wall-clock time (fold=0 for gaps and repeats, see the module's note)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


class _Rotation:
    """The hand-off instants of one layer: boundary(k) starts turn k, held by participant k mod n."""

    def __init__(self, layer: Layer, zone: ZoneInfo) -> None:
        self.layer = layer
        self.zone = zone
        self.first = _local(zone, layer.start, layer.handoff)
        self.days = {"daily": 1, "weekly": 7}.get(layer.rotation)

    def boundary(self, k: int) -> datetime:
        if self.days is None:
            return self.first + k * timedelta(hours=self.layer.hours)
        return _local(self.zone, self.layer.start + timedelta(days=k * self.days), self.layer.handoff)

    def turn_at(self, instant: datetime) -> int:
        """The turn whose interval holds ``instant`` (negative before the first hand-off)."""
        if self.days is None:
            return math.floor((instant - self.first) / timedelta(hours=self.layer.hours))
        # Estimate from the wall-clock distance, then correct by at most a step for DST.
        wall = instant.astimezone(self.zone).replace(tzinfo=None)
        start_wall = datetime.combine(self.layer.start, self.layer.handoff)
        k = math.floor((wall - start_wall) / timedelta(days=self.days))
        while self.boundary(k) > instant:
            k -= 1
        while self.boundary(k + 1) <= instant:
            k += 1
        return k

    def turns(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime, int]]:
        """(from, to, user) of every turn overlapping [start, end), clipped to it."""
        participants = self.layer.participants
        if not participants:
            return
        k = max(self.turn_at(max(start, self.first)), 0)
        while True:
            begin, finish = self.boundary(k), self.boundary(k + 1)
            if begin >= end:
                return
            lo, hi = max(begin, start), min(finish, end)
            if lo < hi:
                yield lo, hi, participants[k % len(participants)]
            k += 1


def _windows(zone: ZoneInfo, restrictions: Sequence[Restriction], start: datetime,
             end: datetime) -> list[tuple[datetime, datetime]]:
    """The restrictions' windows overlapping [start, end), as UTC intervals."""
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    found: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        for rule in restrictions:
            if day.weekday() not in rule.days:
                continue
            to_day = day if rule.end > rule.start else day + timedelta(days=1)
            lo, hi = _local(zone, day, rule.start), _local(zone, to_day, rule.end)
            lo, hi = max(lo, start), min(hi, end)
            if lo < hi:
                found.append((lo, hi))
        day += timedelta(days=1)
    return found


def layer_shifts(layer: Layer, zone: ZoneInfo, start: datetime, end: datetime) -> list[Shift]:
    """One layer's own shifts over [start, end), restrictions applied, before any other layer."""
    turns = list(_Rotation(layer, zone).turns(start, end))
    if not layer.restrictions:
        return [Shift(user, lo, hi, layer.name) for lo, hi, user in turns]
    windows = _windows(zone, layer.restrictions, start, end)
    shifts: list[Shift] = []
    for lo, hi, user in turns:
        for w_lo, w_hi in windows:
            a, b = max(lo, w_lo), min(hi, w_hi)
            if a < b:
                shifts.append(Shift(user, a, b, layer.name))
    return _merge(sorted(shifts, key=lambda s: s.start))


def _merge(shifts: Sequence[Shift]) -> list[Shift]:
    """Joins touching or overlapping shifts of the same user and layer (sorted by start)."""
    merged: list[Shift] = []
    for shift in shifts:
        last = merged[-1] if merged else None
        if last is not None and last.user_id == shift.user_id and last.layer == shift.layer \
                and shift.start <= last.end:
            merged[-1] = Shift(last.user_id, last.start, max(last.end, shift.end), last.layer)
        else:
            merged.append(shift)
    return merged


def final_shifts(spec: ScheduleSpec, start: datetime, end: datetime) -> list[Shift]:
    """Who is on call over [start, end) after layering and overrides: the schedule's calendar. Gaps where
    no layer has anyone are left out."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware datetimes")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return []
    zone = ZoneInfo(spec.time_zone)
    # Sources lowest first: each layer, then each override; the last source covering an instant wins.
    sources = [layer_shifts(layer, zone, start, end) for layer in spec.layers]
    sources += [[Shift(o.user_id, max(o.start, start), min(o.end, end), OVERRIDE)]
                for o in spec.overrides if o.start < end and o.end > start]
    cuts = sorted({start, end, *(t for source in sources for s in source for t in (s.start, s.end))})
    pieces: list[Shift] = []
    for lo, hi in itertools.pairwise(cuts):
        winner = None
        for source in sources:
            for shift in source:
                if shift.start <= lo and shift.end >= hi:
                    winner = shift
                    break
        if winner is not None:
            pieces.append(Shift(winner.user_id, lo, hi, winner.layer))
    return _merge(pieces)


def on_call_at(spec: ScheduleSpec, instant: datetime) -> Shift | None:
    """The shift holding ``instant`` (its whole extent as the calendar shows it), or None if nobody is on call."""
    shifts = final_shifts(spec, instant - timedelta(days=8), instant + timedelta(days=8))
    for shift in shifts:
        if shift.start <= instant < shift.end:
            return shift
    return None
