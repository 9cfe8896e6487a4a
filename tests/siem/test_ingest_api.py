"""`POST /api/v1/ingest`: a shipper's token sends NDJSON or a JSON array; events are searchable once drained,
bad lines become failure events without costing the batch, and a full spool answers 503 with Retry-After
while everything acknowledged before is kept."""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from vigil.core.audit import AuditRecord
from vigil.core.auth import Role
from vigil.core.config import Settings
from vigil.core.db import Database, Scope
from vigil.siem import search
from vigil.siem.api.ingest import MAY_BE_SPECIFIC, choose_format
from vigil.siem.parsers.registry import SPECIFIC_JSON, parsers
from vigil.siem.runtime import Siem
from vigil.web.app import create_app

from .test_zeek_parser import CONN
from .windows_samples import SECURITY_4624, WINLOGBEAT_4624

NOW = datetime.now(UTC).replace(microsecond=0)
WINDOW = "7d"


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert code is None or body["code"] == code, body
    return body


def audit_count(database: Database) -> int:
    with database.transaction(Scope.system()) as session:
        return session.scalar(select(func.count()).select_from(AuditRecord)) or 0


def shipper_headers(world: Any, username: str = "shipper") -> dict[str, str]:
    if username not in world.tokens:
        world.add_user(username, Role.SHIPPER, world.hq)
    return world.headers(username)


def ndjson(documents: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(document) for document in documents) + b"\n"


def logins(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"@timestamp": NOW.isoformat(), "message": f"login {n}", "event": {"action": "logon"},
             "user": {"name": "alice"}, "labels": {"seq": str(n)}} for n in range(start, start + count)]


def found(siem: Siem, query: str, units: list[int] | None = None) -> list[dict[str, Any]]:
    result = search.search(siem.store, units=units, query=query, window=search.time_range(WINDOW), limit=1000)
    return [event.doc for event in result.events]


def post(client: TestClient, body: bytes, headers: dict[str, str], *, content_type: str = "application/x-ndjson",
         params: dict[str, str] | None = None) -> Any:
    return client.post("/api/v1/ingest", content=body, params=params,
                       headers={**headers, "Content-Type": content_type})


def test_ndjson_batch_is_acknowledged_then_searchable(world: Any, client: TestClient) -> None:
    headers = shipper_headers(world)
    audit_before = audit_count(world.database)
    response = post(client, ndjson(logins(5)), headers, params={"source": "web01"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 5 and body["not_json"] == 0
    assert body["format"] == "json" and body["source"] == "http:web01"
    assert body["position"]["segment"] >= 1 and body["position"]["offset"] > 0
    siem: Siem = client.app.state.siem  # type: ignore[attr-defined]
    assert siem.drain()
    events = found(siem, 'vigil.source:"http:web01"', [world.hq])
    assert sorted(event["labels"]["seq"] for event in events) == [str(n) for n in range(5)]
    assert all(event["user"]["name"] == "alice" for event in events)
    # Ingestion is not audited: a record per batch would drown the trail.
    assert audit_count(world.database) == audit_before
    # ... it is counted for Prometheus.
    metrics = client.get("/metrics", headers=world.headers("sysadmin")).text
    assert re.search(r'^vigil_ingest_records_total\{transport="http"\} [1-9]', metrics, re.MULTILINE), metrics[-500:]


def test_json_array_and_gzip_are_accepted(world: Any, client: TestClient) -> None:
    headers = shipper_headers(world)
    array = orjson.dumps(logins(3, start=100))
    response = post(client, array, headers, content_type="application/json", params={"source": "array"})
    assert response.status_code == 202 and response.json()["accepted"] == 3
    packed = gzip.compress(ndjson(logins(1, start=200))) + gzip.compress(ndjson(logins(1, start=201)))  # 2 members
    response = post(client, packed, {**headers, "Content-Encoding": "gzip"}, params={"source": "gz"})
    assert response.status_code == 202 and response.json()["accepted"] == 2
    siem: Siem = client.app.state.siem  # type: ignore[attr-defined]
    assert siem.drain()
    assert len(found(siem, 'vigil.source:"http:array"')) == 3
    assert {event["labels"]["seq"] for event in found(siem, 'vigil.source:"http:gz"')} == {"200", "201"}


def test_default_source_is_the_users_name(world: Any, client: TestClient) -> None:
    response = post(client, ndjson(logins(1)), shipper_headers(world))
    assert response.json()["source"] == "http:shipper"


def test_bad_lines_become_failure_events_and_the_good_ones_are_stored(world: Any, client: TestClient) -> None:
    good = logins(3, start=10)
    body = (orjson.dumps(good[0]) + b"\nthis is not json\n" + orjson.dumps(good[1]) + b'\n{"truncated": \n'
            + orjson.dumps(good[2]) + b"\n")
    response = post(client, body, shipper_headers(world), params={"source": "mixed"})
    assert response.status_code == 202
    assert response.json()["accepted"] == 5 and response.json()["not_json"] == 2
    siem: Siem = client.app.state.siem  # type: ignore[attr-defined]
    assert siem.drain()
    events = found(siem, 'vigil.source:"http:mixed"')
    stored = sorted(event["labels"]["seq"] for event in events if "labels" in event)
    assert stored == ["10", "11", "12"]
    failures = found(siem, 'vigil.source:"http:mixed" AND event.kind:pipeline_error')
    assert sorted(event["event"]["original"] for event in failures) == ["this is not json", '{"truncated": ']
    assert all(event["error"]["message"] for event in failures)
    # A JSON array that is not valid JSON is one record, stored as a failure saying why.
    broken = post(client, b'[{"a": 1}, {"b": ', shipper_headers(world), content_type="application/json",
                  params={"source": "broken"})
    assert broken.status_code == 202 and broken.json()["accepted"] == 1 and broken.json()["not_json"] == 1
    assert siem.drain()
    assert found(siem, 'vigil.source:"http:broken"')[0]["event"]["kind"] == "pipeline_error"


def test_specific_formats_are_detected(world: Any, client: TestClient) -> None:
    eve = {"timestamp": "2026-11-28T10:00:00.000000+0000", "event_type": "alert", "src_ip": "10.0.0.5",
           "src_port": 4444, "dest_ip": "10.0.0.9", "dest_port": 80, "proto": "TCP",
           "alert": {"signature": "ET SCAN test", "signature_id": 2000001, "severity": 2}}
    response = post(client, ndjson([eve]), shipper_headers(world), params={"source": "ids"})
    assert response.json()["format"] == "suricata"
    mixed = post(client, ndjson([eve, logins(1)[0]]), shipper_headers(world), params={"source": "ids2"})
    assert mixed.json()["format"] == "detect"
    # An ECS document of Filebeat's Suricata module names event_type and timestamp too, nested: plain JSON.
    ecs = {"@timestamp": NOW.isoformat(), "event": {"module": "suricata", "dataset": "suricata.eve"},
           "suricata": {"eve": {"event_type": "alert", "timestamp": NOW.isoformat()}}, "source": {"ip": "10.0.0.8"}}
    module = post(client, ndjson([ecs]), shipper_headers(world), params={"source": "fbsuricata"})
    assert module.json()["format"] == "json"
    forced = post(client, ndjson(logins(1)), shipper_headers(world), params={"format": "json"})
    assert forced.json()["format"] == "json"
    line = f"<34>1 {NOW.isoformat()} fw01 kernel - - - link eth0 down\n".encode()
    text = post(client, line, shipper_headers(world), content_type="text/plain",
                params={"format": "syslog", "source": "fw"})
    assert text.json()["format"] == "syslog" and text.json()["not_json"] == 0
    siem: Siem = client.app.state.siem  # type: ignore[attr-defined]
    assert siem.drain()
    alert = found(siem, 'vigil.source:"http:ids"')[0]
    assert alert["source"]["ip"] == "10.0.0.5"
    assert len(found(siem, 'vigil.source:"http:ids2"')) == 2
    assert found(siem, 'vigil.source:"http:fw"')[0]["message"] == "link eth0 down"
    assert found(siem, 'vigil.source:"http:fbsuricata"')[0]["suricata"]["eve"]["event_type"] == "alert"


def test_a_format_set_for_the_source_wins_over_detection(world: Any, client: TestClient) -> None:
    # A security administrator says the source http:fw2 sends syslog lines (even if they look like JSON).
    created = client.post("/api/v1/siem/sources", headers=world.headers("secadmin"),
                          json={"name": "http:fw2", "format": "syslog"})
    assert created.status_code == 201, created.text
    line = f"<34>1 {NOW.isoformat()} fw02 kernel - - - link eth1 down\n".encode()
    response = post(client, line, shipper_headers(world), content_type="text/plain", params={"source": "fw2"})
    assert response.json()["format"] == "syslog" and response.json()["not_json"] == 0
    siem: Siem = client.app.state.siem  # type: ignore[attr-defined]
    assert siem.drain()
    assert found(siem, 'vigil.source:"http:fw2"')[0]["message"] == "link eth1 down"
    # ?format= on the request still comes first.
    assert post(client, b"{}", shipper_headers(world), params={"source": "fw2", "format": "json"}).json()[
        "format"] == "json"


def test_bad_requests_are_refused_with_a_reason(world: Any, client: TestClient) -> None:
    headers = shipper_headers(world)
    assert_problem(post(client, b"", headers), 422, "bad-input")
    assert_problem(post(client, b"\n\n  \n", headers), 422, "bad-input")
    assert_problem(post(client, b"{}", headers, params={"format": "no_such_parser"}), 422)
    assert_problem(post(client, b"{}", headers, params={"source": "bad name/with slash"}), 422)
    assert_problem(post(client, b"a=b", headers, content_type="application/x-www-form-urlencoded"), 415)
    assert_problem(post(client, b"not gzip", {**headers, "Content-Encoding": "gzip"}), 422)
    cut = gzip.compress(ndjson(logins(50)))[:-30]
    assert "cut short" in assert_problem(post(client, cut, {**headers, "Content-Encoding": "gzip"}), 422)["detail"]
    assert_problem(post(client, b"{}", {**headers, "Content-Encoding": "br"}), 415)


def test_a_token_is_needed_and_it_must_hold_the_ingest_permission(world: Any, client: TestClient) -> None:
    assert_problem(post(client, ndjson(logins(1)), {}), 401, "not-authenticated")
    assert_problem(post(client, ndjson(logins(1)), {"Authorization": "Bearer vgl_wrong"}), 401)
    assert_problem(post(client, ndjson(logins(1)), world.headers("analyst")), 403, "permission-denied")
    assert_problem(post(client, ndjson(logins(1)), world.headers("sysadmin")), 403, "permission-denied")


def test_events_belong_to_the_shippers_unit(world: Any, client: TestClient) -> None:
    world.add_user("shipper_a", Role.SHIPPER, world.branch_a)
    response = post(client, ndjson(logins(2)), world.headers("shipper_a"), params={"source": "branch"})
    assert response.status_code == 202
    siem: Siem = client.app.state.siem  # type: ignore[attr-defined]
    assert siem.drain()
    assert len(found(siem, 'vigil.source:"http:branch"', [world.branch_a])) == 2
    assert found(siem, 'vigil.source:"http:branch"', [world.branch_b]) == []


@pytest.fixture
def small_spool_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"spool_quota_bytes": 1024 * 1024, "spool_segment_bytes": 64 * 1024})


def test_a_full_spool_answers_503_and_keeps_what_it_acknowledged(world: Any, database: Database,
                                                                 small_spool_settings: Settings,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(small_spool_settings, database)
    headers = shipper_headers(world)
    padding = "x" * 2000
    with TestClient(app, base_url="https://testserver") as client:
        siem: Siem = app.state.siem
        # The pipeline stands still (as when the store cannot keep up), so the spool fills up.
        siem.pipeline.stop()
        monkeypatch.setattr(siem.pipeline, "start", lambda: None)
        acknowledged: list[int] = []
        refused = None
        for batch in range(200):
            documents = [{**doc, "padding": padding, "batch": batch} for doc in logins(20, start=batch * 20)]
            response = post(client, ndjson(documents), headers, params={"source": "flood"})
            if response.status_code != 202:
                refused = response
                break
            acknowledged.append(batch)
        assert refused is not None, "a 1 MiB spool never filled up"
        problem = assert_problem(refused, 503, "spool-full")
        assert int(refused.headers["Retry-After"]) > 0
        assert problem["retry_after"] == int(refused.headers["Retry-After"])
        assert acknowledged, "the spool refused even the first batch"
        assert siem.drain()
        events = found(siem, 'vigil.source:"http:flood"')
        assert sorted({event["batch"] for event in events}) == acknowledged
        assert len(events) == 20 * len(acknowledged)
        # Once the pipeline has caught up, the spool takes batches again.
        assert post(client, ndjson(logins(1)), headers, params={"source": "flood"}).status_code == 202


EVE = {"timestamp": "2026-11-28T10:00:00.000000+0000", "event_type": "alert", "src_ip": "10.0.0.5",
       "dest_ip": "10.0.0.9", "proto": "TCP", "alert": {"signature": "ET SCAN test", "signature_id": 1}}


def test_each_specific_format_is_chosen_for_a_batch_of_it() -> None:
    samples = {"winlogbeat": WINLOGBEAT_4624, "windows_json": SECURITY_4624, "suricata": EVE, "zeek": CONN}
    assert set(samples) == set(SPECIFIC_JSON)
    for name, sample in samples.items():
        record = orjson.dumps(sample)
        assert parsers()[name].sniff(record) and MAY_BE_SPECIFIC.search(record), name
        assert choose_format([record, record]) == name
    assert choose_format([orjson.dumps(WINLOGBEAT_4624), orjson.dumps(EVE)]) is None
    assert choose_format([orjson.dumps({"message": "plain"}), b"not json"]) == "json"
    assert choose_format([b"not json"]) == "json"


def test_a_gzip_bomb_is_refused_without_unpacking_it_all(world: Any, client: TestClient) -> None:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    settings.ingest_max_body_bytes = 1024 * 1024  # a small limit keeps the test's own bomb small
    limit = settings.ingest_max_body_bytes * 10
    bomb = gzip.compress(b"{}\n" * (limit // 3 + 1000), compresslevel=9)
    response = post(client, bomb, {**shipper_headers(world), "Content-Encoding": "gzip"})
    assert_problem(response, 413, "payload-too-large")


def test_ingestion_takes_bigger_bodies_than_other_routes(world: Any, settings: Settings) -> None:
    limits = settings.model_copy(update={"max_body_bytes": 2048, "ingest_max_body_bytes": 8192})
    body = ndjson([{"message": "x" * 100, "n": n} for n in range(30)])  # about 3.5 KB
    assert 2048 < len(body) < 8192
    with TestClient(create_app(limits, world.database), base_url="https://testserver") as small:
        headers = shipper_headers(world)
        assert post(small, body, headers).status_code == 202
        assert_problem(post(small, body * 3, headers), 413, "payload-too-large")
        other = small.post("/api/v1/me/password", content=body, headers={**headers, "Content-Type": "application/json"})
        assert_problem(other, 413, "payload-too-large")
