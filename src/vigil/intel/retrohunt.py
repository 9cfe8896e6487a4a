"""Retro-hunt: when indicators arrive or change, look for them in the events already stored.

The look-back is per indicator type (``intel_lookback_days`` in the settings, default 30 days). The
question goes to the event store as one join (``EventStore.match_values``): for each type, the typed
columns that carry it. Hits become sightings and alerts marked retroactive, with the first time the
activity was seen.

Which columns: IPs in ``source.ip`` and ``destination.ip`` (a CIDR as an IPv4 range), domains and host
names in ``dns.question.name`` and ``url.domain`` (a domain also matches its subdomains), URLs in
``url.original`` (with or without the query), file names as the last part of ``file.path`` and
``process.executable``.

Hashes (MD5, SHA-1, SHA-256) and e-mail addresses live in many fields no typed column holds (a Sysmon
``Hashes`` string, a process's or a library's hash, a list of recipients): the event store finds the
documents in the window that hold one of the values as a token (one pass of a regular expression over
them), and the live matcher reads each of those documents, so they are found in the fields, and named as,
live matching finds them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import orjson

from vigil.core.db import Database, Scope
from vigil.intel.indicators import IndicatorType
from vigil.intel.matcher import IndicatorIndex
from vigil.intel.models import RetroHunt
from vigil.intel.sightings import Seen, SightingResult, record_seen
from vigil.intel.store import IntelStore
from vigil.intel.warninglists import WarninglistIndex
from vigil.siem.store.base import EventStore
from vigil.siem.store.lookup import Comparison, TokenKind, ValueMatch, ValueSet, cidr4_range

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
    IndicatorType.FILENAME: (("file.path", "process.executable"), "basename"),
}


# Types looked for as tokens of the stored documents, and their kind of token.
DOCUMENT_TOKENS: Mapping[IndicatorType, TokenKind] = {
    IndicatorType.MD5: "hash", IndicatorType.SHA1: "hash", IndicatorType.SHA256: "hash", IndicatorType.EMAIL: "email",
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


def document_matches(events: EventStore, indicators: Iterable[tuple[int, str, str]], *, start: datetime,
                     end: datetime) -> list[ValueMatch]:
    """The hash and e-mail indicators among these, looked for in the stored documents: the documents holding
    one as a token, read by the live matcher; grouped as ``match_values`` groups (the first document of each
    group kept)."""
    wanted = [(indicator_id, kind, value) for indicator_id, kind, value in indicators if kind in DOCUMENT_TOKENS]
    if not wanted:
        return []
    tokens: dict[TokenKind, set[str]] = {}
    for _, kind, value in wanted:
        tokens.setdefault(DOCUMENT_TOKENS[IndicatorType(kind)], set()).add(value.lower())
    index = IndicatorIndex.build(wanted)
    groups: dict[tuple[int, int, str, str, str], ValueMatch] = {}
    for chunk in events.documents_with_tokens({kind: sorted(values) for kind, values in tokens.items()},
                                              start=start, end=end):
        for _, unit_id, source, ts, document in chunk:  # oldest first: a group's first document is its first
            event = orjson.loads(document)
            for hit in index.match(event) if isinstance(event, dict) else ():
                key = (hit.indicator_id, unit_id, source, hit.field, hit.observed)
                held = groups.get(key)
                groups[key] = (ValueMatch(hit.indicator_id, unit_id, source, hit.field, hit.observed, ts, ts, 1,
                                          document) if held is None
                               else replace(held, last_seen=ts, count=held.count + 1))
    return list(groups.values())


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
    found += document_matches(events, wanted, start=since, end=now)
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
