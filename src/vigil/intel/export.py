"""The organisation's own intelligence as a STIX 2.1 bundle: what its analysts entered (source ``manual``,
or the sources asked for), the actors and campaigns those indicators are related to, and what was
sighted here (STIX sightings, counts and times, without the events themselves).

Objects are written as STIX 2.1 JSON (the tests read them back with the ``stix2`` library, which is slow
to import for every command); ids are deterministic
(UUIDv5 of the indicator's type and value), so exporting again gives the same objects, updated.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

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
# The TLP marking definitions STIX 2.1 predefines (their ids are fixed by the specification).
_TLP = {"clear": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        "green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        "amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"}
_ENTITY_KINDS = frozenset({"intrusion-set", "campaign", "malware", "tool", "threat-actor"})
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


def _stamp(value: datetime | None) -> str | None:
    """A STIX timestamp (UTC, milliseconds, ``Z``)."""
    if value is None:
        return None
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _sdo(kind: str, object_id: str, now: str, **fields: Any) -> dict[str, Any]:
    """A STIX 2.1 object with its common properties; None-valued properties are left out."""
    return {"type": kind, "spec_version": "2.1", "id": object_id, "created": now, "modified": now,
            **{key: value for key, value in fields.items() if value not in (None, [], "")}}


def bundle(session: Session, store: IntelStore, *, sources: Sequence[str] = ("manual",),
           organisation: str = "Vigil SOC") -> dict[str, Any]:
    """The bundle as JSON-ready data (tests check it with ``stix2.parse``)."""
    now = _stamp(datetime.now(UTC)) or ""
    identity = _id("identity", organisation)
    objects: list[dict[str, Any]] = [_sdo("identity", identity, now, name=organisation,
                                          identity_class="organization")]
    chosen: dict[int, StoredIndicator] = {}
    for source in sources:
        found, _ = store.search(source=source, limit=EXPORT_LIMIT)
        chosen.update((i.id, i) for i in found)
    entities: dict[str, str] = {}
    for indicator in chosen.values():
        own = next((s for s in indicator.sources if s["source"] in sources),
                   indicator.sources[0] if indicator.sources else {})
        marking = _TLP.get(str(own.get("tlp") or ""))
        indicator_id = _id("indicator", indicator.type, indicator.value)
        objects.append(_sdo(
            "indicator", indicator_id, now, created_by_ref=identity,
            name=f"{indicator.type} {indicator.value}"[:250], pattern=pattern_of(indicator), pattern_type="stix",
            valid_from=_stamp(own.get("valid_from") or indicator.created_at),
            valid_until=_stamp(own.get("valid_until")),
            confidence=own.get("confidence"), labels=indicator.tags, description=indicator.description,
            kill_chain_phases=[{"kill_chain_name": phase.partition(":")[0] if ":" in phase else "vigil",
                                "phase_name": phase.rpartition(":")[2]} for phase in indicator.kill_chain],
            object_marking_refs=[marking] if marking else None))
        for related in indicator.related:
            kind = related.get("kind", "")
            if kind not in _ENTITY_KINDS:
                continue
            entity = entities.get(related["name"])
            if entity is None:
                entity = entities[related["name"]] = _id(kind, related["name"])
                objects.append(_sdo(kind, entity, now, name=related["name"], created_by_ref=identity,
                                    is_family=True if kind == "malware" else None))
            objects.append(_sdo("relationship", _id("relationship", indicator_id, entity), now,
                                relationship_type="indicates", source_ref=indicator_id, target_ref=entity,
                                created_by_ref=identity))
    objects.extend(_sightings(session, chosen, identity, now))
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}


def _sightings(session: Session, chosen: dict[int, StoredIndicator], identity: str, now: str) -> list[dict[str, Any]]:
    if not chosen:
        return []
    rows = session.scalars(select(IntelSighting).where(IntelSighting.indicator_id.in_(list(chosen)),
                                                       IntelSighting.status != "false-positive"))
    return [_sdo("sighting", _id("sighting", str(row.id)), now, sighting_of_ref=_id("indicator", row.type, row.value),
                 count=min(row.count, 999_999_999), first_seen=_stamp(row.first_seen),
                 last_seen=_stamp(max(row.last_seen, row.first_seen)), where_sighted_refs=[identity],
                 created_by_ref=identity) for row in rows]


def file_name() -> str:
    return f"vigil-intel-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
