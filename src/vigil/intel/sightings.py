"""Indicator hits become sightings and alerts, with their provenance.

A hit (an indicator found in an event, live or by a retro-hunt) is checked once more at match time:
the observed value against the warninglists and the allow-list. A hit held back by either is still
recorded as a sighting, with the list that held it (the explanation the analyst sees), but raises no
alert. Sightings of one indicator in one unit, field and host within the dedup window share a row and
raise its count; every other raises an alert of origin ``ioc`` carrying the feeds that vouched for the
indicator, their versions and its score at match time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
from sqlalchemy import select

from vigil.core.db import Database, Scope
from vigil.detection.alerts import OPEN_STATES, Match, alert_fields, dedup_key, event_time, record_matches
from vigil.detection.models import Alert
from vigil.detection.sigma import Rule
from vigil.intel.indicators import IndicatorType
from vigil.intel.models import IntelAllowlist, IntelSighting
from vigil.intel.store import IntelStore, StoredIndicator
from vigil.intel.warninglists import WarninglistIndex

IOC_RULE_ID = "vigil-intel-match"
MAX_KEPT_EVENT = 16 * 1024


class HitLike(Protocol):
    @property
    def indicator_id(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def field(self) -> str: ...
    @property
    def observed(self) -> str: ...


@dataclass(frozen=True)
class Seen:
    """One hit in one event, as the live matcher or a retro-hunt found it."""

    hit: HitLike
    event: Mapping[str, Any]
    unit_id: int
    source: str
    count: int = 1  # a retro-hunt finds many events of one observable at once
    first_seen: datetime | None = None  # else the event's own time
    last_seen: datetime | None = None


@dataclass(frozen=True)
class SightingResult:
    sightings: int = 0  # new sighting rows
    repeated: int = 0  # hits counted on an existing sighting
    alerts: int = 0  # alerts raised (a repeat within the alert's dedup window counts on it instead)
    held_back: int = 0  # hits a warninglist or the allow-list kept from alerting


def level_of(score: float) -> str:
    return "high" if score >= 75 else "medium" if score >= 40 else "low"


def _techniques(indicator: StoredIndicator) -> tuple[str, ...]:
    found = [r["external_id"] for r in indicator.related
             if r.get("kind") == "attack-pattern" and r.get("external_id", "").upper().startswith("T")]
    return tuple(f"attack.{t.lower()}" for t in found)


def ioc_rule(indicator: StoredIndicator, *, retroactive: bool = False) -> Rule:
    """The alert's rule: the indicator itself, named by its type and value, levelled by its score; a
    retro-hunt's alert says so in its title."""
    related = ", ".join(sorted({r["name"] for r in indicator.related if r.get("name")}))[:300]
    sources = ", ".join(s["source"] for s in indicator.sources)
    return Rule(
        id=IOC_RULE_ID, title=(f"{'Retro-hunt' if retroactive else 'Threat-intel'} match: "
                               f"{indicator.type} {indicator.value}")[:480],
        level=level_of(indicator.score), status="stable",
        description=(f"An event carried {indicator.value}, an indicator stated by {sources or 'no source now'}"
                     + (f"; related to {related}" if related else "") + "."),
        author="Vigil threat intelligence", tags=_techniques(indicator), pack="vigil-intel",
        falsepositives=("A shared or recycled address: check the warninglists, allow-list it with a reason",),
    )


def _provenance(indicator: StoredIndicator, checked: Sequence[str], held_by: str) -> dict[str, Any]:
    return {
        "score": indicator.score,
        "sources": [{"source": s["source"], "version": s["version"], "score": round(float(s["score"]), 1),
                     "confidence": s["confidence"], "tlp": s["tlp"]} for s in indicator.sources],
        "related": indicator.related,
        "warninglists_checked": list(checked),
        "held_back_by": held_by,
    }


def _sighting_key(seen: Seen, host: str | None) -> str:
    text = f"{seen.hit.indicator_id}|{seen.unit_id}|{seen.hit.field}|{host or ''}"
    return hashlib.sha256(text.encode()).hexdigest()


def _kept(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as JSON can hold it (parsed times become text), without its oversized text values."""
    kept = {k: v for k, v in event.items() if not isinstance(v, str) or len(v) <= MAX_KEPT_EVENT}
    loaded = orjson.loads(orjson.dumps(kept, default=str, option=orjson.OPT_NON_STR_KEYS))
    return loaded if isinstance(loaded, dict) else {}


def record_seen(db: Database, store: IntelStore, seen: Sequence[Seen], *, retroactive: bool = False,
                warninglists: WarninglistIndex | None = None, dedup_minutes: int = 60,
                now: datetime | None = None) -> SightingResult:
    """Record hits as sightings and raise the alerts they call for (one transaction)."""
    if not seen:
        return SightingResult()
    now = now or datetime.now(UTC)
    indicators = {i.id: i for i in store.by_ids(sorted({s.hit.indicator_id for s in seen}))}
    checked = warninglists.names if warninglists is not None else []
    created = repeated = held = 0
    to_alert: list[tuple[Seen, IntelSighting]] = []
    groups = _grouped(seen, indicators, now)
    with db.transaction(Scope.system()) as session:
        allowed = {(row.type, row.value) for row in session.scalars(select(IntelAllowlist))}
        open_rows = _recent(session, groups, retroactive=retroactive, dedup_minutes=dedup_minutes)
        for key, group in groups.items():
            item, indicator, host = group.item, indicators[group.item.hit.indicator_id], group.host
            row = open_rows.get(key)
            if row is not None and row.last_seen >= group.first - timedelta(minutes=dedup_minutes):
                row.count += group.count
                row.first_seen = min(row.first_seen, group.first)
                row.last_seen = max(row.last_seen, group.last)
                row.updated_at = now
                repeated += group.hits
                _count_on_alert(session, row, group.count, group.last, now)
                continue
            held_by = _held_by(item, indicator, allowed, warninglists)
            row = IntelSighting(
                unit_id=item.unit_id, indicator_id=indicator.id, type=indicator.type, value=indicator.value,
                field=item.hit.field[:200], observed=item.hit.observed[:2000], event_source=item.source[:300],
                host=host, first_seen=group.first, last_seen=group.last, count=group.count, retroactive=retroactive,
                provenance=_provenance(indicator, checked, held_by), suppressed_by=held_by,
                event=_kept(item.event), dedup_key=key, created_at=now, updated_at=now)
            session.add(row)
            created += 1
            repeated += group.hits - 1
            if held_by:
                held += 1
            else:
                to_alert.append((item, row))
        session.flush()
    alerts = _raise_alerts(db, to_alert, indicators, retroactive=retroactive, dedup_minutes=dedup_minutes, now=now)
    return SightingResult(sightings=created, repeated=repeated, alerts=alerts, held_back=held)


@dataclass
class _Group:
    """The hits of one batch that share a sighting: the first, and the counts and times of all."""

    item: Seen
    host: str | None
    first: datetime
    last: datetime
    count: int = 0
    hits: int = 0


def _grouped(seen: Sequence[Seen], indicators: Mapping[int, StoredIndicator], now: datetime) -> dict[str, _Group]:
    """Hits by sighting key (a batch often repeats one observable many times): one row each to look up."""
    groups: dict[str, _Group] = {}
    for item in seen:
        if item.hit.indicator_id not in indicators:  # removed since the index was built
            continue
        host = alert_fields(item.event)["host"]
        key = _sighting_key(item, host)
        when = item.first_seen or event_time(item.event) or now
        until = item.last_seen or when
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(item, host, when, until)
        group.first, group.last = min(group.first, when), max(group.last, until)
        group.count += item.count
        group.hits += 1
    return groups


def _recent(session: Any, groups: Mapping[str, _Group], *, retroactive: bool,
            dedup_minutes: int) -> dict[str, IntelSighting]:
    """The newest existing sighting of each key seen within the window (one query for the batch)."""
    if not groups or dedup_minutes <= 0:
        return {}
    oldest = min(g.first for g in groups.values()) - timedelta(minutes=dedup_minutes)
    found: dict[str, IntelSighting] = {}
    keys = list(groups)
    for start in range(0, len(keys), 500):
        rows = session.scalars(select(IntelSighting).where(
            IntelSighting.dedup_key.in_(keys[start:start + 500]), IntelSighting.last_seen >= oldest,
            IntelSighting.retroactive.is_(retroactive)).order_by(IntelSighting.last_seen))
        found.update({row.dedup_key: row for row in rows})  # the newest wins
    return found


def _count_on_alert(session: Any, sighting: IntelSighting, count: int, seen: datetime, now: datetime) -> None:
    """A repeat of a sighting that raised an alert counts on that alert while it is open."""
    if sighting.alert_id is None:
        return
    alert = session.get(Alert, sighting.alert_id)
    if alert is not None and alert.status in OPEN_STATES:
        alert.count += count
        alert.last_seen = max(alert.last_seen, seen)
        alert.updated_at = now


def _held_by(item: Seen, indicator: StoredIndicator, allowed: set[tuple[str, str]],
             warninglists: WarninglistIndex | None) -> str:
    if (indicator.type, indicator.value) in allowed:
        return "allow-list"
    if warninglists is not None and indicator.type != IndicatorType.PATTERN:
        kind = IndicatorType(item.hit.type) if item.hit.type in IndicatorType._value2member_map_ else None
        observed_kind = _observed_kind(kind, item.hit.observed)
        if observed_kind is not None:
            hits = warninglists.check(observed_kind, item.hit.observed)
            if hits:
                return "warninglist: " + ", ".join(hit.name for hit in hits)
    return ""


def _observed_kind(kind: IndicatorType | None, observed: str) -> IndicatorType | None:
    """The type to check an observed value as: a CIDR's hit is an address, a domain's a host name."""
    if kind is IndicatorType.CIDR:
        return IndicatorType.IPV6 if ":" in observed else IndicatorType.IPV4
    if kind is IndicatorType.DOMAIN:
        return IndicatorType.HOSTNAME
    return kind


def _raise_alerts(db: Database, to_alert: Sequence[tuple[Seen, IntelSighting]],
                  indicators: Mapping[int, StoredIndicator], *, retroactive: bool, dedup_minutes: int,
                  now: datetime) -> int:
    if not to_alert:
        return 0
    matches: list[Match] = []
    keys: list[tuple[int, str]] = []
    for item, sighting in to_alert:
        indicator = indicators[item.hit.indicator_id]
        rule = ioc_rule(indicator, retroactive=retroactive)
        event = dict(item.event)
        event["vigil.intel"] = {"indicator": {"id": indicator.id, "type": indicator.type, "value": indicator.value},
                                "field": item.hit.field, "observed": item.hit.observed, "retroactive": retroactive,
                                "sighting_id": sighting.id, **sighting.provenance}
        extra = f"intel:{indicator.id}"
        matches.append(Match(rule, event, item.unit_id, item.source, origin="ioc", key=extra))
        keys.append((sighting.id, dedup_key(rule.id, item.unit_id, alert_fields(event), extra)))
    result = record_matches(db, matches, dedup_minutes=dedup_minutes, now=now)
    with db.transaction(Scope.system()) as session:
        for sighting_id, key in keys:
            alert_id = session.scalars(select(Alert.id).where(Alert.dedup_key == key, Alert.status.in_(OPEN_STATES))
                                       .order_by(Alert.last_seen.desc()).limit(1)).first()
            if alert_id is not None:
                row = session.get(IntelSighting, sighting_id)
                if row is not None:
                    row.alert_id = alert_id
    return result.raised
