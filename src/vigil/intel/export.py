"""The organisation's own intelligence as a STIX 2.1 bundle: what its analysts entered (source ``manual``,
or the sources asked for), the actors and campaigns those indicators are related to, and what was
sighted here (STIX sightings, counts and times, without the events themselves).

Objects are built with the ``stix2`` library, so the bundle is valid STIX 2.1; ids are deterministic
(UUIDv5 of the indicator's type and value), so exporting again gives the same objects, updated.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import stix2
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.intel.indicators import IndicatorType
from vigil.intel.models import IntelSighting
from vigil.intel.store import IntelStore, StoredIndicator

NAMESPACE = uuid.UUID("7f3c1a52-2f5e-4a4f-9d0c-9c1b5d2b6a11")  # Vigil's, for deterministic STIX ids
_PATHS = {
    IndicatorType.IPV4: "ipv4-addr:value", IndicatorType.IPV6: "ipv6-addr:value",
    IndicatorType.DOMAIN: "domain-name:value", IndicatorType.HOSTNAME: "domain-name:value",
    IndicatorType.URL: "url:value", IndicatorType.MD5: "file:hashes.MD5",
    IndicatorType.SHA1: "file:hashes.'SHA-1'", IndicatorType.SHA256: "file:hashes.'SHA-256'",
    IndicatorType.EMAIL: "email-addr:value", IndicatorType.FILENAME: "file:name",
}
_TLP = {"clear": stix2.TLP_WHITE, "green": stix2.TLP_GREEN, "amber": stix2.TLP_AMBER, "red": stix2.TLP_RED}
EXPORT_LIMIT = 100_000


def _id(kind: str, *parts: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, '|'.join(parts))}"


def pattern_of(indicator: StoredIndicator) -> str:
    if indicator.type == IndicatorType.PATTERN:
        return indicator.pattern or indicator.value
    kind = IndicatorType(indicator.type)
    if kind is IndicatorType.CIDR:
        path = "ipv6-addr:value" if ":" in indicator.value else "ipv4-addr:value"
    else:
        path = _PATHS[kind]
    escaped = indicator.value.replace("\\", "\\\\").replace("'", "\\'")
    return f"[{path} = '{escaped}']"


def bundle(session: Session, store: IntelStore, *, sources: Sequence[str] = ("manual",),
           organisation: str = "Vigil SOC") -> dict[str, Any]:
    """The bundle as JSON-ready data."""
    identity = stix2.Identity(id=_id("identity", organisation), name=organisation, identity_class="organization")
    objects: list[Any] = [identity]
    chosen: dict[int, StoredIndicator] = {}
    for source in sources:
        found, _ = store.search(source=source, limit=EXPORT_LIMIT)
        chosen.update((i.id, i) for i in found)
    entities: dict[str, Any] = {}
    for indicator in chosen.values():
        own = next((s for s in indicator.sources if s["source"] in sources), indicator.sources[0] if
                   indicator.sources else {})
        marking = _TLP.get(str(own.get("tlp") or ""))
        stix_indicator = stix2.Indicator(
            id=_id("indicator", indicator.type, indicator.value), created_by_ref=identity.id,
            name=f"{indicator.type} {indicator.value}"[:250], pattern=pattern_of(indicator), pattern_type="stix",
            valid_from=own.get("valid_from") or indicator.created_at, valid_until=own.get("valid_until"),
            confidence=own.get("confidence"), labels=indicator.tags or None, description=indicator.description or None,
            kill_chain_phases=[{"kill_chain_name": phase.partition(":")[0] if ":" in phase else "vigil",
                                "phase_name": phase.rpartition(":")[2]} for phase in indicator.kill_chain] or None,
            object_marking_refs=[marking] if marking is not None else None, allow_custom=False)
        objects.append(stix_indicator)
        for related in indicator.related:
            kind = related.get("kind", "")
            if kind not in ("intrusion-set", "campaign", "malware", "tool", "threat-actor"):
                continue
            entity = entities.get(related["name"])
            if entity is None:
                entity = _entity(kind, related["name"], identity.id)
                entities[related["name"]] = entity
                objects.append(entity)
            objects.append(stix2.Relationship(
                id=_id("relationship", stix_indicator.id, entity.id), source_ref=stix_indicator.id,
                target_ref=entity.id, relationship_type="indicates", created_by_ref=identity.id))
    objects.extend(_sightings(session, chosen, identity.id))
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}",
            "objects": [_plain(o) for o in objects]}


def _entity(kind: str, name: str, creator: str) -> Any:
    common = {"id": _id(kind, name), "name": name, "created_by_ref": creator}
    if kind == "intrusion-set":
        return stix2.IntrusionSet(**common)
    if kind == "campaign":
        return stix2.Campaign(**common)
    if kind == "tool":
        return stix2.Tool(**common)
    if kind == "threat-actor":
        return stix2.ThreatActor(**common)
    return stix2.Malware(**common, is_family=True)


def _sightings(session: Session, chosen: dict[int, StoredIndicator], identity: str) -> list[Any]:
    if not chosen:
        return []
    rows = session.scalars(select(IntelSighting).where(IntelSighting.indicator_id.in_(list(chosen)),
                                                       IntelSighting.status != "false-positive"))
    return [stix2.Sighting(
        id=_id("sighting", str(row.id)), sighting_of_ref=_id("indicator", row.type, row.value),
        count=min(row.count, 999_999_999), first_seen=row.first_seen, last_seen=max(row.last_seen, row.first_seen),
        where_sighted_refs=[identity], created_by_ref=identity) for row in rows]


def _plain(obj: Any) -> dict[str, Any]:
    """A stix2 object as JSON-ready data (its own serialisation, read back)."""
    data: dict[str, Any] = orjson.loads(obj.serialize())
    return data


def file_name() -> str:
    return f"vigil-intel-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
