"""Demo intelligence: ATT&CK's groups and software, a report on the demo day's RDP intruder with its
indicators (imported after the activity, so the retro-hunt finds it), and two feeds from presets.

The report is a STIX 2.1 bundle written here: the intruder's command-and-control domain (its beacon is in
the demo day's DNS logs: a retroactive sighting and alert), its address and the SSH attacker's (both in
documentation ranges, so the RFC 5735 warninglist holds their sightings back, and the pages say why),
the URL of the script it fetched, and the intrusion set they indicate. Idempotent: a second run finds
the report's import and does nothing.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

import orjson
from sqlalchemy import select

from vigil.core.config import Settings
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.intel import feeds_service, service
from vigil.intel.models import IntelFeed, IntelPull
from vigil.intel.runtime import forget, intel_for
from vigil.intel.schemas import FeedCreate
from vigil.siem.store.duckdb import open_if_free

REPORT_SOURCE = "import:dusty-jump-report.json"
_CREATED = "2026-11-01T08:00:00.000Z"
_IDENTITY = "identity--5b5c3e0e-35f2-4c4a-9d76-1f4bd4f9e6b1"
_ACTOR = "intrusion-set--a3c0b1f6-0f53-4ac8-9a43-6a1a3bbf6f22"


def _indicator(number: int, name: str, pattern: str, confidence: int, labels: list[str]) -> dict[str, object]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--7d1c0a8e-1d3a-4f2b-9c5e-00000000000{number}",
            "created": _CREATED, "modified": _CREATED, "created_by_ref": _IDENTITY, "name": name,
            "pattern": pattern, "pattern_type": "stix", "valid_from": _CREATED, "confidence": confidence,
            "labels": labels, "indicator_types": ["malicious-activity"],
            "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "command-and-control"}],
            "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]}  # TLP:GREEN


def report_bundle() -> bytes:
    indicators = [
        _indicator(1, "Dusty Jump C2 domain", "[domain-name:value = 'dustyjump-c2.com']", 90, ["c2"]),
        _indicator(2, "Dusty Jump RDP operator", "[ipv4-addr:value = '198.51.100.77']", 80, ["rdp-bruteforce"]),
        _indicator(3, "SSH brute-forcer seen with Dusty Jump", "[ipv4-addr:value = '203.0.113.66']", 60,
                   ["ssh-bruteforce"]),
        _indicator(4, "Dusty Jump stager", "[url:value = 'http://198.51.100.77/a.ps1']", 85, ["stager"]),
    ]
    objects: list[dict[str, object]] = [
        {"type": "identity", "spec_version": "2.1", "id": _IDENTITY, "created": _CREATED, "modified": _CREATED,
         "name": "Vigil demo CERT", "identity_class": "organization"},
        {"type": "intrusion-set", "spec_version": "2.1", "id": _ACTOR, "created": _CREATED, "modified": _CREATED,
         "name": "Dusty Jump", "aliases": ["DJ-Group"], "description": "A demo intruder: RDP password guessing, "
         "encoded PowerShell, a scheduled beacon over DNS.", "first_seen": "2026-10-01T00:00:00Z"},
        *indicators,
        *({"type": "relationship", "spec_version": "2.1", "id": f"relationship--6c2d1e4f-2b1a-4c3d-8e9f-00000000000{n}",
           "created": _CREATED, "modified": _CREATED, "relationship_type": "indicates",
           "source_ref": indicator["id"], "target_ref": _ACTOR} for n, indicator in enumerate(indicators, 1)),
        {"type": "report", "spec_version": "2.1", "id": "report--0f3e2d1c-4b5a-4c6d-9e8f-0a1b2c3d4e5f",
         "created": _CREATED, "modified": _CREATED, "name": "Operation Dusty Jump", "published": _CREATED,
         "report_types": ["threat-actor"], "object_refs": [_ACTOR, *(i["id"] for i in indicators)]},
    ]
    return orjson.dumps({"type": "bundle", "id": "bundle--9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", "objects": objects})


def _loaded(database: Database) -> bool:
    with database.transaction(Scope.system()) as session:
        return session.scalars(select(IntelPull.id).where(IntelPull.source == REPORT_SOURCE)).first() is not None


def load(settings: Settings, database: Database,
         transaction: Callable[[], AbstractContextManager[Context]]) -> Mapping[str, int]:
    """Load the demo intelligence (nothing when it is there) acting as ``transaction`` gives (the operator);
    what was added, for the demo's summary."""
    if _loaded(database):
        return {}
    intel = intel_for(settings, database)
    added: dict[str, int] = {}
    events = open_if_free(settings.events_path, memory_limit=settings.events_memory_limit)
    intel.events = lambda: events
    try:
        with transaction() as ctx:
            session = ctx.session
            added["ATT&CK groups, campaigns and software"] = service.import_attack(ctx)
            result = service.take_in(ctx, intel.store, stream=io.BytesIO(report_bundle()), fmt="stix", options={},
                                     source=REPORT_SOURCE, version="1", warninglists=intel.warninglists)
            added["indicators from the Dusty Jump report"] = result.merge.received
            for name, preset in (("abuse.ch Feodo Tracker (enable where the server reaches abuse.ch)", "feodotracker"),
                                 ("abuse.ch URLhaus (enable where the server reaches abuse.ch)", "urlhaus")):
                if session.scalars(select(IntelFeed.id).where(IntelFeed.name == name)).first() is None:
                    feeds_service.add_feed(ctx, FeedCreate(name=name, preset=preset, enabled=False))
        hunt = intel.look_back(result.merge.fresh, trigger=f"{REPORT_SOURCE} (demo)")
        if hunt is not None:
            added["retroactive sightings"] = hunt.sightings.sightings
            added["IOC alerts"] = hunt.sightings.alerts
    finally:
        if events is not None:
            events.close()
        forget(settings)
    return added

