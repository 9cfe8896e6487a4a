"""/api/v1/intel over HTTP: importing a file, searching indicators, the lookup, sightings of one unit hidden from
another, marking a false positive into the allow-list, feeds and their pulls against a local server."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from tests.conftest import World

from vigil.core.db import Scope
from vigil.intel.indicators import IndicatorType, ParsedIndicator
from vigil.intel.models import IntelEntity, IntelFeed, IntelSighting

NOW = datetime.now(UTC).replace(microsecond=0)


# --- records the role matrix (tests/api/test_role_matrix.py) builds its requests on -------------------------


def fresh_feed_id(world: World) -> int:
    """A feed that points at a closed port on loopback (a pull fails fast, and says so)."""
    with world.database.transaction(Scope.system()) as session:
        row = IntelFeed(name=f"matrix-{uuid.uuid4().hex[:12]}", format="lines", url="http://127.0.0.1:9/list.txt",
                        options={}, decay={}, tags=[], created_by="tests")
        session.add(row)
        session.flush()
        return row.id


def fresh_sighting_id(world: World, unit_id: int | None = None) -> int:
    """A sighting of ``unit_id`` (default line_a, below branch_a)."""
    with world.database.transaction(Scope.system()) as session:
        row = IntelSighting(unit_id=unit_id or world.line_a, indicator_id=1, type="ipv4", value="91.92.109.44",
                            field="destination.ip", observed="91.92.109.44", event_source="fw", host="pc-1",
                            first_seen=NOW, last_seen=NOW, provenance={}, event={}, dedup_key=uuid.uuid4().hex)
        session.add(row)
        session.flush()
        return row.id


def fresh_entity_id(world: World) -> int:
    with world.database.transaction(Scope.system()) as session:
        row = IntelEntity(kind="intrusion-set", name=f"Matrix Panda {uuid.uuid4().hex[:8]}", aliases=[],
                          attack_ids=["G0001"], related=[], sources=["tests"])
        session.add(row)
        session.flush()
        return row.id


def fresh_indicator_id(app: Any) -> int:
    store = app.state.intel.store
    value = f"m{uuid.uuid4().hex[:10]}.example.org"
    store.merge([ParsedIndicator(IndicatorType.DOMAIN, value)], source="tests")
    found = store.find("domain", value)
    assert found is not None
    return int(found.id)


def fresh_allow_id(client_app: Any, world: World) -> int:
    from tests.conftest import cli_context

    from vigil.intel import service

    with world.database.transaction(Scope.system()) as session:
        row = service.allow(cli_context(session), client_app.state.intel.store, kind="domain",
                            value=f"a{uuid.uuid4().hex[:10]}.example.org", reason="tests")
        return int(row.id)


STIX_BUNDLE = {
    "type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
    "objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
         "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z", "name": "C2",
         "pattern": "[ipv4-addr:value = '91.92.109.44']", "pattern_type": "stix",
         "valid_from": "2026-11-01T00:00:00Z", "confidence": 85},
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--2e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
         "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z", "name": "broken",
         "pattern": "[ipv4-addr:value = '999.1.1.1']", "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z"},
    ],
}


# --- the API ------------------------------------------------------------------------------------------------


def test_import_then_search_then_look_up(client: TestClient, world: World) -> None:
    store = client.app.state.siem.store  # type: ignore[attr-defined]
    store.append([{"@timestamp": (NOW - timedelta(days=1)).isoformat(), "destination": {"ip": "91.92.109.44"},
                   "host": {"hostname": "pc-sh-1"}}], unit_id=world.line_a, source="fw")
    answer = client.post("/api/v1/intel/imports", params={"format": "stix", "name": "c2.json"},
                         content=json.dumps(STIX_BUNDLE), headers=world.headers("analyst"))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["pull"]["added"] == 1 and body["pull"]["error_count"] == 1
    assert body["pull"]["errors"][0]["position"].startswith("objects[1]")
    assert body["retrohunt"]["hits"] == 1 and body["retrohunt"]["sightings"] == 1
    found = client.get("/api/v1/intel/indicators", params={"q": "91.92"}, headers=world.headers("viewer"))
    assert found.status_code == 403  # viewers read no intelligence
    found = client.get("/api/v1/intel/indicators", params={"q": "91.92"}, headers=world.headers("analyst"))
    assert found.json()["total"] == 1
    indicator = found.json()["items"][0]
    assert indicator["sources"][0]["source"] == "import:c2.json" and indicator["sources"][0]["confidence"] == 85
    looked = client.get("/api/v1/intel/lookup", params={"value": "91.92.109[.]44"}, headers=world.headers("analyst"))
    assert looked.status_code == 200
    data = looked.json()
    assert data["type"] == "ipv4" and data["indicators"][0]["value"] == "91.92.109.44"
    assert data["sightings"][0]["retroactive"] and data["sightings"][0]["host"] == "pc-sh-1"
    assert data["alerts"][0]["origin"] == "ioc" and data["events"][0]["source"] == "fw"


def test_a_sighting_of_another_unit_is_not_found(client: TestClient, world: World) -> None:
    theirs = fresh_sighting_id(world, unit_id=world.branch_b)
    ours = fresh_sighting_id(world, unit_id=world.line_a)
    assert client.get(f"/api/v1/intel/sightings/{theirs}", headers=world.headers("secadmin_a")).status_code == 404
    assert client.get(f"/api/v1/intel/sightings/{ours}", headers=world.headers("secadmin_a")).status_code == 200
    listed = client.get("/api/v1/intel/sightings", headers=world.headers("secadmin_a")).json()
    assert [item["id"] for item in listed["items"]] == [ours]
    changed = client.patch(f"/api/v1/intel/sightings/{theirs}", json={"status": "false-positive"},
                           headers=world.headers("secadmin_a"))
    assert changed.status_code == 404


def test_a_false_positive_feeds_the_allow_list(client: TestClient, world: World) -> None:
    sighting = fresh_sighting_id(world)
    answer = client.patch(f"/api/v1/intel/sightings/{sighting}", headers=world.headers("analyst"),
                          json={"status": "false-positive", "allow": True, "reason": "our pentest box"})
    assert answer.status_code == 200 and answer.json()["status"] == "false-positive"
    allowed = client.get("/api/v1/intel/allowlist", headers=world.headers("analyst")).json()["items"]
    assert [(a["value"], a["reason"], a["sighting_id"]) for a in allowed] == [
        ("91.92.109.44", "our pentest box", sighting)]
    # A branch's administrator may mark its sightings but not change matching everywhere.
    other = fresh_sighting_id(world)
    refused = client.patch(f"/api/v1/intel/sightings/{other}", headers=world.headers("secadmin_a"),
                           json={"status": "false-positive", "allow": True, "reason": "x"})
    assert refused.status_code == 422


def test_an_indicator_value_that_is_not_its_type_is_refused(client: TestClient, world: World) -> None:
    answer = client.post("/api/v1/intel/indicators", json={"type": "ipv4", "value": "evil.example.com"},
                         headers=world.headers("analyst"))
    assert answer.status_code == 422 and "is not an IPv4 address" in answer.json()["detail"]


class _ListServer(BaseHTTPRequestHandler):
    """A feed server: an ETag, a 304 when it matches, garbage on /broken."""

    body = b"# a blocklist\n91.92.109.44\n45.9.148.0/24\nnot-an-ioc!\n"
    hits: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        type(self).hits.append(dict(self.headers))
        if self.path == "/down":
            self.send_response(503)
            self.end_headers()
            return
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", '"v1"')
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def list_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ListServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _ListServer.hits = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_feed_is_pulled_then_not_modified_then_fails_without_losing_anything(
        client: TestClient, world: World, list_server: str) -> None:
    headers = world.headers("secadmin")
    made = client.post("/api/v1/intel/feeds", headers=headers, json={
        "name": "Local blocklist", "format": "lines", "url": f"{list_server}/list.txt", "tags": ["local"]})
    assert made.status_code == 201, made.text
    feed = made.json()
    assert feed["replace"] is True and feed["status"] == "never"
    first = client.post(f"/api/v1/intel/feeds/{feed['id']}/pull", headers=headers).json()
    assert (first["outcome"], first["added"], first["error_count"]) == ("ok", 2, 1)
    second = client.post(f"/api/v1/intel/feeds/{feed['id']}/pull", headers=headers).json()
    assert second["outcome"] == "not-modified" and _ListServer.hits[-1]["If-None-Match"] == '"v1"'
    client.patch(f"/api/v1/intel/feeds/{feed['id']}", headers=headers, json={"url": f"{list_server}/down"})
    failed = client.post(f"/api/v1/intel/feeds/{feed['id']}/pull", headers=headers).json()
    assert failed["outcome"] == "error" and "HTTP 503" in failed["detail"]
    health = client.get(f"/api/v1/intel/feeds/{feed['id']}", headers=headers).json()
    assert health["status"] == "error" and health["consecutive_failures"] == 1 and "503" in health["last_error"]
    assert health["indicator_count"] == 2  # what the feed stated before is still held
    listed = client.get("/api/v1/intel/indicators", params={"source": f"feed:{feed['id']}"}, headers=headers)
    assert listed.json()["total"] == 2 and "local" in listed.json()["items"][0]["tags"]


def test_feed_secrets_are_never_shown(client: TestClient, world: World, tmp_path: Path) -> None:
    made = client.post("/api/v1/intel/feeds", headers=world.headers("secadmin"), json={
        "name": "OTX", "preset": "otx", "auth_value": "s3cr3t-key"})
    assert made.status_code == 201, made.text
    assert made.json()["has_secret"] is True and "s3cr3t" not in made.text
    assert made.json()["auth_header"] == "X-OTX-API-KEY"


def test_the_own_intelligence_exports_as_a_valid_stix_bundle(client: TestClient, world: World) -> None:
    import stix2

    headers = world.headers("analyst")
    made = client.post("/api/v1/intel/indicators", headers=headers, json={
        "type": "domain", "value": "login-verify.badcorp-c2.net", "confidence": 70, "tlp": "amber",
        "tags": ["phishing"]})
    assert made.status_code == 201, made.text
    fresh_sighting_id(world)  # a sighting of another indicator: not exported with this one
    answer = client.get("/api/v1/intel/export", headers=headers)
    assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
    parsed = stix2.parse(answer.json(), allow_custom=False)
    indicators = [o for o in parsed.objects if o.type == "indicator"]
    assert [i.pattern for i in indicators] == ["[domain-name:value = 'login-verify.badcorp-c2.net']"]
    assert indicators[0].confidence == 70 and indicators[0].labels == ["phishing"]
    assert indicators[0].object_marking_refs == [stix2.TLP_AMBER.id]
