"""The correlation engine: sliding windows per group of events, bounded, and saved across a restart.

``observe`` is called for every base-rule match with the event's time. Each correlation keeps, per
group (the values of its ``group-by`` fields), the matches of the last timespan, sorted by time.

- ``gt``/``gte`` conditions are decided as soon as they hold: a window is any ``timespan`` long stretch
  of time (both ends included) that contains the new match. A match that arrives in order needs one
  window (the timespan before it); one that arrives late (at most ``lateness`` behind the group's
  newest match, by default the timespan) is tried in every window that can contain it.
- ``lt``/``lte``/``eq``/``neq`` can only be decided once no more matches can join: the group's window
  starts at its first match and is judged when it has closed (a match more than timespan + lateness
  after its start, or ``advance``). A group exists only once a match arrived: absence is not seen.
- Once a window fired, the group starts again: the matches of that window are dropped and a late match
  from within it is ignored. One burst raises one hit, not one per further event (Chainsaw and
  Hayabusa do the same).

Memory is bounded: at most ``max_groups`` groups per correlation (the least recently seen group goes
first) and ``max_events`` matches per group (the oldest go first; raised to the threshold for counting
correlations so that they can still fire). ``snapshot``/``restore`` keep the windows across a restart;
the state of a correlation whose definition changed is dropped.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vigil.detection.correlation_rules import CorrelationRule
from vigil.detection.sigma.predicates import field_value, is_missing

log = logging.getLogger(__name__)

MAX_GROUPS = 10_000
MAX_EVENTS = 256
SAMPLES = 20  # contributing events listed in a hit
VALUES = 100  # distinct values listed in a hit
SNAPSHOT_FORMAT = 1
MAX_CHAIN = 4  # correlations of correlations: how deep hits are fed on
# Fields that identify an event, looked up for the summaries in a hit (first one present).
REF_FIELDS = ("_id", "event.id", "EventRecordID", "id")

_COUNTING = frozenset({"event_count", "value_count"})
# One match in a window: (time, arrival number, index of the rule in correlation.rules, value, event ref).
# Tuples sort by time, then arrival: matches at the same second keep the order they came in.
_Entry = tuple[float, int, int, str | None, str | None]


@dataclass(frozen=True)
class EventSummary:
    rule: str  # id of the base rule (or correlation) that matched
    at: datetime
    ref: str | None  # the event's id when it has one
    value: str | None  # value_count: the value of the counted field


@dataclass(frozen=True)
class CorrelationHit:
    correlation: CorrelationRule
    group: tuple[tuple[str, str], ...]  # group-by field -> value
    value: int  # matches, distinct values, or rules matched (temporal_ordered: in order)
    values: tuple[str, ...]  # value_count: the distinct values; temporal: the ids of the rules that matched
    first: datetime
    last: datetime
    matches: int  # base-rule matches in the window
    events: tuple[EventSummary, ...]  # the first of them (at most SAMPLES)


@dataclass
class CorrelationStats:
    observed: int = 0
    missing_field: int = 0  # matches without a group-by (or counted) field: they do not count
    too_late: int = 0  # matches older than the lateness allows, or from a window that already fired
    evicted_groups: int = 0
    hits: int = 0


@dataclass(slots=True)
class _Group:
    entries: list[_Entry] = field(default_factory=list)
    latest: float = -math.inf
    fired_until: float = -math.inf  # matches at or before this belong to a decided window
    start: float = math.inf  # lt/lte/eq/neq: where the open window starts
    extra: int = 0  # lt/lte/eq/neq: matches of the open window dropped by the cap (still counted)


@dataclass
class _State:
    rule: CorrelationRule
    cap: int
    lateness: float
    groups: OrderedDict[tuple[str, ...], _Group] = field(default_factory=OrderedDict)
    # The event last counted, held (not its id(), which a new event could reuse): an event that
    # matches two of the listed rules is one event for event_count and value_count.
    last_event: Mapping[str, Any] | None = None
    last_at: float = math.nan


class CorrelationEngine:
    """Evaluates correlation rules over the matches of their base rules."""

    def __init__(self, correlations: Sequence[CorrelationRule], *, max_groups: int = MAX_GROUPS,
                 max_events: int = MAX_EVENTS, lateness: timedelta | None = None) -> None:
        self.correlations = list(correlations)
        self.max_groups = max(1, max_groups)
        self.stats = CorrelationStats()
        self.watermark = -math.inf  # the newest match time seen
        self._seq = 0
        self._states: list[_State] = []
        self._by_key: dict[str, list[tuple[int, int]]] = {}  # rule id or name -> (state, rule index)
        for number, rule in enumerate(self.correlations):
            counting = rule.type in _COUNTING
            cap = max(max_events, rule.threshold.count + 1) if counting else max(max_events, 2 * len(rule.rules))
            late = float(rule.timespan) if lateness is None else lateness.total_seconds()
            self._states.append(_State(rule, cap, max(0.0, late)))
            for index, ref in enumerate(rule.rules):
                for key in ref.keys:
                    self._by_key.setdefault(key, []).append((number, index))

    @property
    def rule_keys(self) -> frozenset[str]:
        """Ids and names of the rules whose matches the engine needs."""
        return frozenset(self._by_key)

    def groups(self, correlation_id: str | None = None) -> int:
        """Groups held now (for one correlation, or all)."""
        return sum(len(state.groups) for state in self._states
                   if correlation_id is None or state.rule.id == correlation_id)

    def observe(self, rule: str, event: Mapping[str, Any], at: datetime, *,
                ref: str | None = None) -> list[CorrelationHit]:
        """A match of ``rule`` (its id or Sigma name) on ``event`` at ``at``: the hits it completes."""
        return self._observe(rule, event, _seconds(at), ref, 0)

    def observe_many(self, matches: Iterable[tuple[str, Mapping[str, Any], datetime]]) -> list[CorrelationHit]:
        hits: list[CorrelationHit] = []
        for rule, event, at in matches:
            hits.extend(self.observe(rule, event, at))
        return hits

    def advance(self, now: datetime | None = None) -> list[CorrelationHit]:
        """Close the windows that ended before ``now`` (default: the newest match time) and drop
        expired groups. Returns the hits of closed ``lt``/``lte``/``eq``/``neq`` windows."""
        moment = self.watermark if now is None else _seconds(now)
        hits: list[CorrelationHit] = []
        for state in self._states:
            for key in list(state.groups):
                group = state.groups[key]
                if not state.rule.threshold.early:
                    hits.extend(self._close(state, key, group, moment))
                else:
                    _prune(group, moment - state.rule.timespan - state.lateness)
                if not group.entries and group.fired_until < moment - state.rule.timespan - state.lateness:
                    del state.groups[key]
        self.stats.hits += len(hits)
        return hits

    def _observe(self, rule: str, event: Mapping[str, Any], at: float, ref: str | None,
                 depth: int) -> list[CorrelationHit]:
        targets = self._by_key.get(rule)
        if not targets:
            return []
        self.stats.observed += 1
        self.watermark = max(self.watermark, at)
        if ref is None:
            ref = _event_ref(event)
        hits: list[CorrelationHit] = []
        for number, index in targets:
            hits.extend(self._add(self._states[number], index, event, at, ref))
        self.stats.hits += len(hits)  # before the chained ones: their own call counts them
        if depth < MAX_CHAIN:
            for hit in list(hits):  # correlations of correlations see a hit as an event of its group
                hits.extend(self._observe(hit.correlation.id, dict(hit.group), _seconds(hit.last), None, depth + 1))
        return hits

    def _add(self, state: _State, index: int, event: Mapping[str, Any], at: float,
             ref: str | None) -> list[CorrelationHit]:
        rule = state.rule
        if rule.type in _COUNTING:
            if state.last_event is event and state.last_at == at:
                return []
            state.last_event, state.last_at = event, at
        rule_id = rule.rules[index].id
        key = _group_key(rule, rule_id, event)
        value = _text(field_value(event, rule.field_for(rule.field, rule_id))) if rule.field else None
        if key is None or (rule.field and value is None):
            self.stats.missing_field += 1
            return []
        group = state.groups.get(key)
        if group is None:
            group = state.groups[key] = _Group()
            if len(state.groups) > self.max_groups:
                state.groups.popitem(last=False)
                self.stats.evicted_groups += 1
        else:
            state.groups.move_to_end(key)
        if at <= group.fired_until or at < group.latest - state.lateness:
            self.stats.too_late += 1
            return []
        in_order = at >= group.latest
        self._seq += 1
        bisect.insort(group.entries, (at, self._seq, index, value, ref))
        group.latest = max(group.latest, at)
        if not rule.threshold.early:
            group.start = min(group.start, at)
            if len(group.entries) > state.cap:
                del group.entries[0]
                group.extra += 1
            return self._close(state, key, group, group.latest)
        _prune(group, group.latest - rule.timespan - state.lateness)
        if len(group.entries) > state.cap:
            del group.entries[: len(group.entries) - state.cap]
        hit = self._fire_early(state, key, group, at, in_order)
        return [hit] if hit is not None else []

    def _fire_early(self, state: _State, key: tuple[str, ...], group: _Group, at: float,
                    in_order: bool) -> CorrelationHit | None:
        span = state.rule.timespan
        entries = group.entries
        if in_order:
            windows = [(bisect.bisect_left(entries, (at - span,)), bisect.bisect_right(entries, (at, math.inf)))]
        else:  # every timespan-long window that contains the late match, by its first match
            first = bisect.bisect_left(entries, (at - span,))
            last = bisect.bisect_right(entries, (at, math.inf))
            starts = sorted({entries[i][0]: i for i in range(last - 1, first - 1, -1)}.values())
            windows = [(i, bisect.bisect_right(entries, (entries[i][0] + span, math.inf))) for i in starts]
        for low, high in windows:
            window = entries[low:high]
            value = _aggregate(state.rule, window)
            if state.rule.threshold.holds(value):
                group.fired_until = window[-1][0]
                del entries[:high]
                return _hit(state.rule, key, window, value, 0)
        return None

    def _close(self, state: _State, key: tuple[str, ...], group: _Group, moment: float) -> list[CorrelationHit]:
        """Judge the group's open windows that no match can join any more (lt/lte/eq/neq)."""
        rule = state.rule
        hits: list[CorrelationHit] = []
        while group.entries and moment > group.start + rule.timespan + state.lateness:
            end = group.start + rule.timespan
            high = bisect.bisect_right(group.entries, (end, math.inf))
            window = group.entries[:high]
            del group.entries[:high]
            value = _aggregate(rule, window) + (group.extra if rule.type == "event_count" else 0)
            if window and rule.threshold.holds(value):
                hits.append(_hit(rule, key, window, value, group.extra))
            group.fired_until = end
            group.extra = 0
            group.start = group.entries[0][0] if group.entries else math.inf
        return hits

    # Saving across a restart -------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The windows as JSON, for ``restore`` after a restart."""
        correlations = []
        for state in self._states:
            groups = [[list(key), _number(group.latest), _number(group.fired_until), _number(group.start),
                       group.extra, [[at, index, value, ref] for at, _, index, value, ref in group.entries]]
                      for key, group in state.groups.items()]
            correlations.append({"id": state.rule.id, "fingerprint": state.rule.fingerprint, "groups": groups})
        data = {"format": SNAPSHOT_FORMAT, "watermark": _number(self.watermark), "correlations": correlations}
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def restore(cls, correlations: Sequence[CorrelationRule], data: bytes | str | None, *,
                max_groups: int = MAX_GROUPS, max_events: int = MAX_EVENTS,
                lateness: timedelta | None = None) -> CorrelationEngine:
        """An engine for ``correlations`` with the windows of a ``snapshot``. The state of correlations
        that are gone or changed is dropped; unreadable data gives an empty engine (logged)."""
        engine = cls(correlations, max_groups=max_groups, max_events=max_events, lateness=lateness)
        if not data:
            return engine
        try:
            engine._load(json.loads(data))
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            log.warning("correlation state not restored (%s: %s): starting with empty windows",
                        type(exc).__name__, exc)
            return cls(correlations, max_groups=max_groups, max_events=max_events, lateness=lateness)
        return engine

    def _load(self, data: Any) -> None:
        if data.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"snapshot format {data.get('format')!r}, expected {SNAPSHOT_FORMAT}")
        self.watermark = _float(data["watermark"], -math.inf)
        states = {(state.rule.id, state.rule.fingerprint): state for state in self._states}
        for saved in data["correlations"]:
            state = states.get((saved["id"], saved["fingerprint"]))
            if state is None:
                continue  # the rule is gone or changed: its windows no longer mean anything
            for key, latest, fired_until, start, extra, entries in saved["groups"][-self.max_groups:]:
                group = _Group(latest=_float(latest, -math.inf), fired_until=_float(fired_until, -math.inf),
                               start=_float(start, math.inf), extra=int(extra))
                for at, index, value, ref in entries[-state.cap:]:
                    if not 0 <= int(index) < len(state.rule.rules):
                        raise ValueError(f"rule index {index} out of range")
                    self._seq += 1
                    group.entries.append((float(at), self._seq, int(index), _optional(value), _optional(ref)))
                group.entries.sort()
                state.groups[tuple(str(part) for part in key)] = group


def _group_key(rule: CorrelationRule, rule_id: str, event: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The values of the group-by fields (aliases mapped for this rule); None when one is missing."""
    values: list[str] = []
    for name in rule.group_by:
        value = _text(field_value(event, rule.field_for(name, rule_id)))
        if value is None:
            return None
        values.append(value)
    return tuple(values)


def _aggregate(rule: CorrelationRule, window: list[_Entry]) -> int:
    if rule.type == "event_count":
        return len(window)
    if rule.type == "value_count":
        return len({entry[3] for entry in window})
    if rule.type == "temporal":
        return len({entry[2] for entry in window})
    # temporal_ordered: the most referenced rules matched one after the other, in the listed order
    best = [0] * len(rule.rules)
    for entry in window:
        index = entry[2]
        best[index] = max(best[index], 1 + max(best[:index], default=0))
    return max(best, default=0)


def _hit(rule: CorrelationRule, key: tuple[str, ...], window: list[_Entry], value: int,
         extra: int) -> CorrelationHit:
    if rule.type == "value_count":
        values = tuple(dict.fromkeys(entry[3] for entry in window if entry[3] is not None))[:VALUES]
    else:
        values = tuple(dict.fromkeys(rule.rules[entry[2]].id for entry in window))
    events = tuple(EventSummary(rule.rules[index].id, _datetime(at), ref, value_)
                   for at, _, index, value_, ref in window[:SAMPLES])
    return CorrelationHit(correlation=rule, group=tuple(zip(rule.group_by, key, strict=True)), value=value,
                          values=values, first=_datetime(window[0][0]), last=_datetime(window[-1][0]),
                          matches=len(window) + extra, events=events)


def _prune(group: _Group, horizon: float) -> None:
    """Drop matches older than ``horizon``: no window that a new match can join reaches them."""
    if group.entries and group.entries[0][0] < horizon:
        del group.entries[: bisect.bisect_left(group.entries, (horizon,))]


def _text(value: Any) -> str | None:
    """A field value as a group key or counted value; None for a missing or null field."""
    if is_missing(value) or value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return json.dumps(value, sort_keys=True, default=str)


def _event_ref(event: Mapping[str, Any]) -> str | None:
    for name in REF_FIELDS:
        value = _text(field_value(event, name))
        if value is not None:
            return value
    return None


def _seconds(at: datetime) -> float:
    """Seconds since the epoch; a time without zone is taken as UTC."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()


def _datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no infinities


def _float(value: Any, default: float) -> float:
    return default if value is None else float(value)


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)
