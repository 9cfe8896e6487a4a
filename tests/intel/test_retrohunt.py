"""Intelligence arriving after the activity: events are stored first, then an indicator that appears in them
is imported, and the retro-hunt turns the old events into sightings and alerts marked retroactive."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from tests.conftest import World, cli_context

from vigil.core.db import Scope
from vigil.detection.models import Alert
from vigil.intel import service
from vigil.intel.models import IntelSighting, RetroHunt
from vigil.intel.runtime import Intel
from vigil.siem.store.duckdb import DuckDBEventStore

NOW = datetime.now(UTC).replace(microsecond=0)
EARLIER = NOW - timedelta(days=3)


def stored(events: DuckDBEventStore, unit_id: int, *docs: dict[str, Any]) -> None:
    events.append([{"@timestamp": EARLIER.isoformat(), **doc} for doc in docs], unit_id=unit_id, source="fw")


def take(intel: Intel, text: str, fmt: str = "lines", source: str = "import:test") -> tuple[int, ...]:
    with intel.db.transaction(Scope.system()) as session:
        result = service.take_in(cli_context(session), intel.store, stream=io.BytesIO(text.encode()), fmt=fmt,
                                 options={}, source=source, warninglists=intel.warninglists)
    return result.merge.fresh


def sightings(intel: Intel) -> list[IntelSighting]:
    with intel.db.transaction(Scope.system()) as session:
        return list(session.scalars(select(IntelSighting).order_by(IntelSighting.id)))


def alerts(intel: Intel) -> list[Alert]:
    with intel.db.transaction(Scope.system()) as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def test_an_indicator_imported_after_the_activity_raises_a_retroactive_alert(
        intel: Intel, events: DuckDBEventStore, world: World) -> None:
    stored(events, world.branch_a, {"source": {"ip": "10.1.1.7"}, "destination": {"ip": "91.92.109.47"},
                                    "host": {"hostname": "pc-sh-007"}},
           {"source": {"ip": "10.1.1.8"}, "destination": {"ip": "91.92.109.47"}, "host": {"hostname": "pc-sh-007"}},
           {"source": {"ip": "10.1.1.9"}, "destination": {"ip": "93.184.216.34"}})
    fresh = take(intel, "91.92.109.47\n")
    result = intel.look_back(fresh, trigger="test import")
    assert result is not None and result.hits == 2
    found = sightings(intel)
    assert len(found) == 1
    sighting = found[0]
    assert (sighting.value, sighting.field, sighting.count, sighting.retroactive) == (
        "91.92.109.47", "destination.ip", 2, True)
    assert sighting.unit_id == world.branch_a and sighting.host == "pc-sh-007"
    assert sighting.first_seen == EARLIER  # when the activity happened, not when it was found
    assert sighting.provenance["sources"][0]["source"] == "import:test"
    raised = alerts(intel)
    assert len(raised) == 1
    alert = raised[0]
    assert alert.origin == "ioc" and alert.title == "Retro-hunt match: ipv4 91.92.109.47"
    assert alert.unit_id == world.branch_a and alert.first_seen == EARLIER
    assert sighting.alert_id == alert.id
    with intel.db.transaction(Scope.system()) as session:
        hunt = session.scalars(select(RetroHunt)).one()
        assert (hunt.indicators, hunt.hits, hunt.sightings) == (1, 2, 1)


def test_retro_hunts_match_networks_and_subdomains(intel: Intel, events: DuckDBEventStore, world: World) -> None:
    stored(events, world.hq, {"destination": {"ip": "45.9.148.200"}},
           {"dns": {"question": {"name": "cdn.update.badcorp-c2.net"}}},
           {"dns": {"question": {"name": "notbadcorp-c2.net"}}},
           {"url": {"original": "http://payload.badcorp-c2.net/x.exe?id=7"}})
    fresh = take(intel, "45.9.148.0/24\nbadcorp-c2.net\nhttp://payload.badcorp-c2.net/x.exe\n")
    intel.look_back(fresh, trigger="test")
    seen = {(s.type, s.field, s.observed) for s in sightings(intel)}
    assert seen == {("cidr", "destination.ip", "45.9.148.200"),
                    ("domain", "dns.question.name", "cdn.update.badcorp-c2.net"),
                    ("url", "url.original", "http://payload.badcorp-c2.net/x.exe?id=7")}


def test_a_warninglisted_observation_is_a_sighting_with_the_list_named_and_no_alert(
        intel: Intel, events: DuckDBEventStore, world: World) -> None:
    stored(events, world.hq, {"destination": {"ip": "8.8.8.8"}})
    # A feed states the whole network of a public resolver: the import flags nothing (a /24 is not on the
    # list) but the address seen is.
    fresh = take(intel, "8.8.8.0/24\n")
    intel.look_back(fresh, trigger="test")
    (sighting,) = sightings(intel)
    assert sighting.suppressed_by.startswith("warninglist: ") and "DNS resolvers" in sighting.suppressed_by
    assert sighting.alert_id is None and alerts(intel) == []
    assert sighting.provenance["held_back_by"] == sighting.suppressed_by
    assert len(sighting.provenance["warninglists_checked"]) > 50


def test_an_allow_listed_value_raises_no_alert(intel: Intel, events: DuckDBEventStore, world: World) -> None:
    stored(events, world.hq, {"destination": {"ip": "203.0.113.80"}})
    with intel.db.transaction(Scope.system()) as session:
        service.allow(cli_context(session), intel.store, kind="ipv4", value="203.0.113.80",
                      reason="our own scanner")
    fresh = take(intel, "203.0.113.80\n")
    intel.look_back(fresh, trigger="test")
    (sighting,) = sightings(intel)
    assert sighting.suppressed_by == "allow-list" and alerts(intel) == []
    assert list(intel.store.active()) == []  # and the live matcher is not given it


def test_old_events_outside_the_look_back_are_left(intel: Intel, events: DuckDBEventStore, world: World) -> None:
    events.append([{"@timestamp": (NOW - timedelta(days=45)).isoformat(), "destination": {"ip": "91.92.109.9"}}],
                  unit_id=world.hq, source="fw")
    fresh = take(intel, "91.92.109.9\n")
    result = intel.look_back(fresh, trigger="test")
    assert result is not None and result.hits == 0 and sightings(intel) == []


def test_a_second_import_of_the_same_list_looks_back_for_nothing(intel: Intel, events: DuckDBEventStore,
                                                                  world: World) -> None:
    assert len(take(intel, "91.92.109.10\n91.92.109.11\n")) == 2
    assert take(intel, "91.92.109.10\n91.92.109.11\n") == ()


MD5 = "42893adbc36605ec79b5bd610759947e"
SHA1 = "b4e581f173f782a2f1da5d29c95946ee500eb2d0"
SHA256 = "1a061c74619de6af8c02cba0fa00754bdd9e3515c0e08cad6350c7adfc8cdd5b"


def test_hashes_and_e_mail_addresses_are_found_in_the_fields_live_matching_reads(
        intel: Intel, events: DuckDBEventStore, world: World) -> None:
    """No typed column holds them: the documents holding them are read by the live matcher, so a hash in
    Sysmon's Hashes (in capitals), a library's hash or a recipient in a list is found, named by its field, and
    a value that is only inside other text (a longer hex run, a message) is not."""
    stored(events, world.hq,
           {"Hashes": f"SHA1={SHA1.upper()},MD5={MD5.upper()},IMPHASH=00000000000000000000000000000000",
            "Image": "C:\\Users\\Public\\a.exe"},
           {"dll": {"hash": {"sha1": SHA1}}},
           {"file": {"hash": {"sha256": SHA256}}},
           {"file": {"hash": {"sha256": SHA256}}},
           {"email": {"to": {"address": ["it@example.org", "Boss@CEO-Fraud.example"]}}},
           {"message": f"blob {MD5}ff and a note to boss@ceo-fraud.example"},
           {"process": {"hash": {"md5": MD5 + "0"}}})
    events.append([{"@timestamp": (NOW - timedelta(days=45)).isoformat(), "process": {"hash": {"md5": MD5}}}],
                  unit_id=world.hq, source="edr")
    fresh = take(intel, f"{MD5}\n{SHA1}\n{SHA256}\nboss@ceo-fraud.example\n")
    result = intel.look_back(fresh, trigger="test")
    assert result is not None and result.hits == 6
    seen = {(s.type, s.field, s.observed, s.count, s.retroactive) for s in sightings(intel)}
    assert seen == {("md5", "Hashes", MD5.upper(), 1, True), ("sha1", "Hashes", SHA1.upper(), 1, True),
                    ("sha1", "dll.hash.sha1", SHA1, 1, True), ("sha256", "file.hash.sha256", SHA256, 2, True),
                    ("email", "email.to.address", "Boss@CEO-Fraud.example", 1, True)}
    assert all(s.first_seen == EARLIER for s in sightings(intel))
    assert {a.title for a in alerts(intel)} >= {f"Retro-hunt match: md5 {MD5}",
                                                "Retro-hunt match: email boss@ceo-fraud.example"}
