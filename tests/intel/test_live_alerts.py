"""The live path whole: indicators imported, events ingested through the SIEM pipeline (with parse workers),
the `vigil.consumers` plugin matching them, sightings and IOC alerts recorded with their provenance."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import select
from tests.conftest import World, cli_context

from vigil.core.config import Settings, load_settings
from vigil.core.db import Database, Scope
from vigil.detection.models import Alert
from vigil.intel import service
from vigil.intel.models import IntelSighting
from vigil.intel.runtime import forget, intel_for
from vigil.siem.runtime import Siem
from vigil.siem.spool import BatchMeta

FEED = "91.92.109.44\nbadcorp-c2.net\n45.9.148.0/24\n8.8.8.0/24\n"


@pytest.fixture
def live(settings: Settings, database: Database, world: World) -> Iterator[Siem]:
    current = load_settings(data_dir=settings.data_dir, database_url=settings.database_url, pipeline_workers=1)
    intel = intel_for(current, database)
    with database.transaction(Scope.system()) as session:
        service.take_in(cli_context(session), intel.store, stream=io.BytesIO(FEED.encode()), fmt="lines",
                        options={}, source="feed:test", warninglists=intel.warninglists)
    siem = Siem(current, database)
    assert any(c.name == "intel" for c in siem.consumers)  # the plugin is installed
    yield siem
    siem.stop()
    forget(current)


def send(siem: Siem, unit: int, *docs: dict[str, object]) -> None:
    now = datetime.now(UTC).isoformat()
    siem.submit([orjson.dumps({"@timestamp": now, **doc}) for doc in docs],
                BatchMeta(source="http:fw", unit_id=unit, format="json"))
    assert siem.drain(60)


def test_a_matching_event_raises_an_ioc_alert_with_its_provenance(live: Siem, database: Database,
                                                                  world: World) -> None:
    send(live, world.branch_a,
         {"source": {"ip": "10.2.0.9"}, "destination": {"ip": "91.92.109.44"}, "host": {"hostname": "pc-sh-9"}},
         {"dns": {"question": {"name": "x.badcorp-c2.net"}}, "host": {"hostname": "pc-sh-9"}},
         {"destination": {"ip": "45.9.148.3"}},
         {"destination": {"ip": "8.8.8.8"}},  # the /24 around a public resolver is on a warninglist: not matched
         {"destination": {"ip": "93.184.216.34"}})
    with database.transaction(Scope.system()) as session:
        seen = {(s.type, s.observed, s.suppressed_by.split(":")[0]) for s in session.scalars(select(IntelSighting))}
        alerts = list(session.scalars(select(Alert).where(Alert.origin == "ioc")))
    assert seen == {("ipv4", "91.92.109.44", ""), ("domain", "x.badcorp-c2.net", ""), ("cidr", "45.9.148.3", "")}
    flagged = intel_for(live.settings, database).store.find("cidr", "8.8.8.0/24")
    assert flagged is not None and flagged.warninglists and not flagged.active
    assert sorted(a.title for a in alerts) == ["Threat-intel match: cidr 45.9.148.0/24",
                                               "Threat-intel match: domain badcorp-c2.net",
                                               "Threat-intel match: ipv4 91.92.109.44"]
    first = next(a for a in alerts if "91.92" in a.title)
    assert first.unit_id == world.branch_a and first.host == "pc-sh-9"
    assert first.event["vigil.intel"]["sources"][0]["source"] == "feed:test"
    assert first.event["vigil.intel"]["field"] == "destination.ip"


def test_repeats_count_on_the_sighting_and_the_alert(live: Siem, database: Database, world: World) -> None:
    for _ in range(3):
        send(live, world.hq, {"destination": {"ip": "91.92.109.44"}, "host": {"hostname": "srv-1"}})
    with database.transaction(Scope.system()) as session:
        sighting = session.scalars(select(IntelSighting)).one()
        alert = session.scalars(select(Alert)).one()
    assert sighting.count == 3 and alert.count == 3 and sighting.alert_id == alert.id
