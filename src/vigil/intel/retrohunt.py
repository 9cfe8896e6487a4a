"""Retro-hunt: when indicators arrive or change, look for them in the events already stored.

The look-back is per indicator type (``intel_lookback_days`` in the settings, default 30 days). The
question goes to the event store as one join (``EventStore.match_values``): for each type, the typed
columns that carry it. Hits become sightings and alerts marked retroactive, with the first time the
activity was seen.

Which columns: IPs in ``source.ip`` and ``destination.ip`` (a CIDR as an IPv4 range), domains and host
names in ``dns.question.name`` and ``url.domain`` (a domain also matches its subdomains), URLs in
``url.original`` (with or without the query), SHA-256 in ``file.hash.sha256``, file names as the last
part of ``file.path`` and ``process.executable``. Fields that live only inside the stored document (a
Sysmon ``Hashes`` string, e-mail addresses) are matched live but not looked back for.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from vigil.core.db import Database, Scope
from vigil.intel.indicators import IndicatorType
from vigil.intel.models import RetroHunt
from vigil.intel.sightings import Seen, SightingResult, record_seen
from vigil.intel.store import IntelStore
from vigil.intel.warninglists import WarninglistIndex
from vigil.siem.store.base import EventStore
from vigil.siem.store.lookup import Comparison, ValueSet, cidr4_range

DEFAULT_LOOKBACK_DAYS = 30
_IPS = ("source.ip", "destination.ip")
_NAMES = ("dns.question.name", "url.domain")
# For each indicator type: where to look and how to compare.
PLAN: Mapping[IndicatorType, tuple[tuple[str, ...], Comparison]] = {
    IndicatorType.IPV4: (_IPS, "address"),
    IndicatorType.IPV6: (_IPS, "address"),
    IndicatorType.CIDR: (_IPS, "cidr4"),
    IndicatorType.DOMAIN: (_NAMES, "domain"),
    IndicatorType.HOSTNAME: (_NAMES, "exact"),
    IndicatorType.URL: (("url.original",), "url"),
    IndicatorType.SHA256: (("file.hash.sha256",), "exact"),
    IndicatorType.FILENAME: (("file.path", "process.executable"), "basename"),
}


@dataclass(frozen=True)
class RetroHit:
    """What the event store found for one indicator, shaped as the matcher's hits."""

    indicator_id: int
    type: str
    value: str
    field: str
    observed: str


@dataclass(frozen=True)
class RetroResult:
    hunt_id: int
    indicators: int
    hits: int
    sightings: SightingResult
    seconds: float


def value_sets(indicators: Iterable[tuple[int, str, str]]) -> list[ValueSet]:
    """The event-store question for a set of (id, type, value) indicators."""
    grouped: dict[IndicatorType, tuple[list[str], list[int]]] = {}
    for indicator_id, kind, value in indicators:
        try:
            indicator_type = IndicatorType(kind)
        except ValueError:
            continue
        if indicator_type not in PLAN:
            continue
        if indicator_type is IndicatorType.CIDR:
            value = cidr4_range(value) or ""
            if not value:
                continue
        values, ids = grouped.setdefault(indicator_type, ([], []))
        values.append(value)
        ids.append(indicator_id)
    return [ValueSet(PLAN[kind][0], PLAN[kind][1], tuple(values), tuple(ids))
            for kind, (values, ids) in grouped.items()]


def retro_hunt(db: Database, store: IntelStore, events: EventStore, *, indicator_ids: Sequence[int] | None = None,
               indicators: Sequence[tuple[int, str, str]] | None = None, trigger: str,
               lookback_days: int = DEFAULT_LOOKBACK_DAYS, warninglists: WarninglistIndex | None = None,
               now: datetime | None = None) -> RetroResult:
    """Look back for the given indicators (ids, or ready (id, type, value) triples) and record what is found."""
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    wanted = list(indicators) if indicators is not None else [
        (i.id, i.type, i.value) for i in store.by_ids(list(indicator_ids or ()))]
    since = now - timedelta(days=lookback_days)
    found = events.match_values(value_sets(wanted), start=since, end=now) if wanted else []
    by_id = {indicator_id: (kind, value) for indicator_id, kind, value in wanted}
    seen: list[Seen] = []
    for match in found:
        kind, value = by_id[match.tag]
        event = orjson.loads(match.document)
        hit = RetroHit(match.tag, kind, value, match.field, match.observed)
        seen.append(Seen(hit, event if isinstance(event, dict) else {}, match.unit_id, match.source,
                         count=match.count, first_seen=match.first_seen, last_seen=match.last_seen))
    result = record_seen(db, store, seen, retroactive=True, warninglists=warninglists, now=now)
    seconds = time.perf_counter() - started
    with db.transaction(Scope.system()) as session:
        hunt = RetroHunt(trigger=trigger[:300], indicators=len(wanted), since=since, until=now,
                         hits=sum(m.count for m in found), sightings=result.sightings, seconds=round(seconds, 3))
        session.add(hunt)
        session.flush()
        hunt_id = hunt.id
    return RetroResult(hunt_id=hunt_id, indicators=len(wanted), hits=sum(m.count for m in found),
                       sightings=result, seconds=seconds)
