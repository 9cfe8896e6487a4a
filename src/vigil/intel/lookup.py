"""The observable lookup: "what do we know about X?".

One value (an IP, domain, URL, hash, e-mail address, file name) against everything Vigil holds: the
indicators that state it or contain it (a CIDR around an address, a listed parent domain of a name),
their sources and scores, the actors and campaigns they are related to, the sightings and alerts in
the caller's units, recent events that carry it, and whether a warninglist or the allow-list knows it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from vigil.detection.models import Alert
from vigil.incidents.activity import incidents_with_observable
from vigil.intel.indicators import IndicatorType, InvalidValue, guess
from vigil.intel.models import IntelAllowlist, IntelEntity, IntelSighting
from vigil.intel.retrohunt import PLAN
from vigil.intel.runtime import Intel
from vigil.intel.schemas import EntityRead, IndicatorRead, LookupRead, SightingRead
from vigil.intel.store import StoredIndicator
from vigil.siem.search import TimeRange, search
from vigil.siem.store.base import EventStore

EVENT_DAYS = 30
LIMIT = 50


def indicator_read(indicator: StoredIndicator) -> IndicatorRead:
    return IndicatorRead.model_validate(indicator, from_attributes=True)


def _containing(intel: Intel, kind: IndicatorType, value: str) -> list[StoredIndicator]:
    """Indicators that hold the value without being it: networks around an address, parent domains of a name."""
    found: list[StoredIndicator] = []
    if kind in (IndicatorType.IPV4, IndicatorType.IPV6):
        address = ipaddress.ip_address(value)
        networks, _ = intel.store.search(types=[IndicatorType.CIDR], limit=10_000)
        found += [n for n in networks if address in ipaddress.ip_network(n.value, strict=False)]
    if kind in (IndicatorType.DOMAIN, IndicatorType.HOSTNAME):
        labels = value.split(".")
        for start in range(1, len(labels) - 1):  # each parent domain, down to two labels
            parent = intel.store.find(IndicatorType.DOMAIN, ".".join(labels[start:]))
            if parent is not None:
                found.append(parent)
    return found


def _exact(intel: Intel, kind: IndicatorType, value: str) -> list[StoredIndicator]:
    kinds = [kind]
    if kind is IndicatorType.DOMAIN:
        kinds.append(IndicatorType.HOSTNAME)
    found = [intel.store.find(k, value) for k in kinds]
    return [f for f in found if f is not None]


# The typed fields the lookup searches for each type: those a retro-hunt joins on, and SHA-256's column
# (retro-hunts look for hashes in whole documents).
_FIELDS: dict[IndicatorType, tuple[str, ...]] = {
    **{kind: fields for kind, (fields, _) in PLAN.items() if kind is not IndicatorType.CIDR},
    IndicatorType.SHA256: ("file.hash.sha256",),
}


def _events(events: EventStore | None, units: Collection[int] | None, kind: IndicatorType | None,
            value: str) -> list[dict[str, object]]:
    """Recent events carrying the value: in the typed fields of its type (as a retro-hunt looks), or in the text."""
    if events is None:
        return []
    now = datetime.now(UTC)
    phrase = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    fields = _FIELDS.get(kind, ()) if kind is not None else ()
    query = " OR ".join([*(f"{field}:{phrase}" for field in fields), phrase])
    result = search(events, units=units, query=query, window=TimeRange(now - timedelta(days=EVENT_DAYS), now),
                    limit=20, with_total=False)
    return [{"id": e.id, "@timestamp": e.ts.isoformat(), "source": e.source, "unit_id": e.unit_id,
             "message": str(e.doc.get("message", ""))[:500]} for e in result.events]


def look_up(session: Session, intel: Intel, query: str, *, events: EventStore | None,
            units: Collection[int] | None = None, incident_units: Collection[int] | None = None) -> LookupRead:
    """Everything known about ``query`` that the session's scope may see (sightings and alerts by unit), and the
    incidents of ``incident_units`` (the units where the caller reads incidents; None: every unit in scope)
    whose observables hold it."""
    text = query.strip()
    try:
        kind, value = guess(text)
    except InvalidValue:
        kind, value = None, text
        if text and "/" not in text and "\\" not in text and len(text) < 256:
            kind, value = IndicatorType.FILENAME, text.lower()
    indicators: list[StoredIndicator] = []
    warninglists: list[str] = []
    allowlisted = False
    if kind is not None:
        indicators = _exact(intel, kind, value) + _containing(intel, kind, value)
        if kind is not IndicatorType.FILENAME:
            warninglists = [hit.name for hit in intel.warninglists.check(kind, value)]
        allowlisted = session.scalars(select(IntelAllowlist.id).where(
            IntelAllowlist.type == str(kind), IntelAllowlist.value == value)).first() is not None
    ids = [i.id for i in indicators]
    sightings = list(session.scalars(
        select(IntelSighting).where(or_(IntelSighting.indicator_id.in_(ids), IntelSighting.observed == text,
                                        IntelSighting.value == value))
        .order_by(IntelSighting.last_seen.desc()).limit(LIMIT)))
    alert_ids = [s.alert_id for s in sightings if s.alert_id is not None]
    alerts = list(session.scalars(
        select(Alert).where(or_(Alert.id.in_(alert_ids), Alert.source_ip == value, Alert.host == value,
                                Alert.user_name == value))
        .order_by(Alert.last_seen.desc()).limit(LIMIT)))
    names = {r["name"] for i in indicators for r in i.related if r.get("name")}
    entities = list(session.scalars(select(IntelEntity).where(IntelEntity.name.in_(names)))) if names else []
    return LookupRead(
        query=text, type=str(kind) if kind is not None else None, value=value,
        indicators=[indicator_read(i) for i in indicators],
        sightings=[SightingRead.model_validate(s) for s in sightings],
        alerts=[{"id": a.id, "title": a.title, "level": a.level, "status": a.status, "origin": a.origin,
                 "last_seen": a.last_seen.isoformat(), "count": a.count} for a in alerts],
        events=_events(events, units, kind, value if kind is not None else text),
        entities=[EntityRead.model_validate(e) for e in entities], warninglists=warninglists,
        allowlisted=allowlisted,
        incidents=[{"id": i.id, "ref": i.ref, "title": i.title, "severity": i.severity, "phase": i.phase,
                    "status": i.status} for i in incidents_with_observable(
                        session, values=[value, text], units=list(incident_units) if incident_units is not None
                        else None, limit=LIMIT)])
