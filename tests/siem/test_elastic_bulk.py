"""The Elasticsearch-compatible endpoints, driven the way Filebeat 8 / Winlogbeat and Vector drive them:
the handshake (cluster info with the product header, license, templates, ILM), then ``_bulk`` with
per-item results in Elasticsearch's shape; credentials as those clients send them."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from vigil.core.auth import Role
from vigil.core.config import Settings
from vigil.core.db import Database
from vigil.siem import search
from vigil.siem.runtime import Siem
from vigil.web.app import create_app

from .windows_samples import WINLOGBEAT_4624

WINDOW = "3000d"
PRODUCT = "Elasticsearch"


def shipper_token(world: Any, username: str = "beats") -> str:
    if username not in world.tokens:
        world.add_user(username, Role.SHIPPER, world.hq)
    return str(world.tokens[username])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_key(token: str, key_id: str = "vigil") -> dict[str, str]:
    """Filebeat's ``api_key: "<id>:<key>"`` is sent base64 encoded."""
    return {"Authorization": "ApiKey " + base64.b64encode(f"{key_id}:{token}".encode()).decode()}


def basic(token: str, username: str = "fluent") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()}


def bulk_body(*pairs: tuple[dict[str, Any] | bytes, dict[str, Any] | bytes | None]) -> bytes:
    lines: list[bytes] = []
    for action, document in pairs:
        lines.append(action if isinstance(action, bytes) else orjson.dumps(action))
        if document is not None:
            lines.append(document if isinstance(document, bytes) else orjson.dumps(document))
    return b"\n".join(lines) + b"\n"


def events(siem: Siem, query: str) -> list[dict[str, Any]]:
    result = search.search(siem.store, units=None, query=query, window=search.time_range(WINDOW), limit=1000)
    return [event.doc for event in result.events]


def doc(n: int, **more: Any) -> dict[str, Any]:
    return {"@timestamp": "2026-11-28T08:00:00.000Z", "message": f"line {n}", "log": {"file": {"path": "/var/log/a"}},
            "labels": {"n": str(n)}, **more}


def test_filebeat_handshake_then_bulk(world: Any, client: TestClient) -> None:
    auth = api_key(shipper_token(world))
    info = client.get("/", headers=auth)
    assert info.status_code == 200
    assert info.headers["X-Elastic-Product"] == PRODUCT
    assert info.json()["version"]["number"] == "8.17.0"
    assert info.json()["version"]["build_flavor"] == "default"
    assert info.json()["tagline"] == "You Know, for Search"
    assert client.head("/", headers=auth).headers["X-Elastic-Product"] == PRODUCT
    raw_key = {"Authorization": f"ApiKey {shipper_token(world)}"}  # an ApiKey may be the bare token too
    assert client.get("/", headers=raw_key).status_code == 200
    license_ = client.get("/_license", params={"human": "false"}, headers=auth)
    assert license_.json()["license"]["status"] == "active"
    assert client.get("/_xpack", headers=auth).json()["features"]["ilm"]["available"] is True
    # ILM policy and index template: missing, installed, then found (so Filebeat does not reinstall them).
    assert client.get("/_ilm/policy/filebeat", headers=auth).status_code == 404
    policy = {"policy": {"phases": {"hot": {"actions": {"rollover": {"max_age": "30d"}}}}}}
    assert client.put("/_ilm/policy/filebeat", headers=auth, json=policy).json() == {"acknowledged": True}
    assert client.get("/_ilm/policy/filebeat", headers=auth).json()["filebeat"]["policy"] == policy["policy"]
    assert client.head("/_index_template/filebeat-8.17.0", headers=auth).status_code == 404
    template = {"index_patterns": ["filebeat-8.17.0"], "data_stream": {}, "priority": 150}
    put = client.put("/_index_template/filebeat-8.17.0", headers=auth, json=template)
    assert put.json() == {"acknowledged": True} and put.headers["X-Elastic-Product"] == PRODUCT
    found = client.get("/_index_template/filebeat-8.17.0", headers=auth).json()
    assert found["index_templates"][0]["index_template"] == template
    # Filebeat 8 writes to a data stream: "create" actions, gzip'd.
    body = bulk_body(*[({"create": {"_index": "filebeat-8.17.0"}}, doc(n)) for n in range(3)])
    response = client.post("/_bulk", content=gzip.compress(body),
                           headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.headers["X-Elastic-Product"] == PRODUCT
    result = response.json()
    assert result["errors"] is False and isinstance(result["took"], int)
    assert len(result["items"]) == 3
    for item in result["items"]:
        created = item["create"]
        assert (created["_index"], created["status"], created["result"]) == ("filebeat-8.17.0", 201, "created")
        assert created["_version"] == 1 and created["_primary_term"] == 1 and isinstance(created["_seq_no"], int)
    assert len({item["create"]["_id"] for item in result["items"]}) == 3
    siem: Siem = client.app.state.siem  # type: ignore[attr-defined]
    assert siem.drain()
    stored = events(siem, 'vigil.source:"bulk:tests"')
    assert sorted(event["labels"]["n"] for event in stored) == ["0", "1", "2"]
    assert stored[0]["log"]["file"]["path"] == "/var/log/a"


def test_vector_handshake_then_bulk_into_an_index(world: Any, client: TestClient) -> None:
    auth = bearer(shipper_token(world, "vector"))
    info = client.get("/", headers={**auth, "Accept": "application/json"})
    assert info.json()["version"]["number"].startswith("8.")
    assert client.get("/_cluster/health", headers=auth).json()["status"] == "green"
    body = bulk_body(*[({"index": {"_id": f"v{n}"}}, doc(n, vector=True)) for n in range(2)]).replace(b"\n", b"\r\n")
    response = client.post("/logs-vector/_bulk", content=body, params={"source": "edge"},
                           headers={**auth, "Content-Type": "application/x-ndjson"})
    items = response.json()["items"]
    assert [item["index"]["_id"] for item in items] == ["v0", "v1"]
    assert {item["index"]["_index"] for item in items} == {"logs-vector"}
    siem: Siem = client.app.state.siem  # type: ignore[attr-defined]
    assert siem.drain()
    assert len(events(siem, 'vigil.source:"bulk:edge"')) == 2


def test_winlogbeat_documents_get_the_native_windows_fields(world: Any, client: TestClient) -> None:
    auth = api_key(shipper_token(world, "winlogbeat"))
    body = bulk_body(({"create": {"_index": "winlogbeat-8.17.0"}}, WINLOGBEAT_4624),
                     ({"create": {"_index": "winlogbeat-8.17.0"}}, {**WINLOGBEAT_4624, "winlog": {
                         **WINLOGBEAT_4624["winlog"], "record_id": "902116"}}))
    response = client.post("/_bulk", content=body, headers={**auth, "Content-Type": "application/json"},
                           params={"source": "dc01"})
    assert response.json()["errors"] is False
    siem: Siem = client.app.state.siem  # type: ignore[attr-defined]
    assert siem.drain()
    stored = events(siem, 'vigil.source:"bulk:dc01" AND EventID:4624')
    assert sorted(event["EventRecordID"] for event in stored) == [902115, 902116]
    assert {event["Channel"] for event in stored} == {"Security"}
    assert stored[0]["TargetUserName"] == "bob"
    assert stored[0]["event"]["dataset"] == "windows.security"


def test_bad_action_lines_fail_alone(world: Any, client: TestClient) -> None:
    auth = basic(shipper_token(world, "fluentbit"))
    body = bulk_body(
        ({"create": {"_index": "logs"}}, doc(1)),
        (b"this is not an action", doc(99)),  # malformed: fails, and its document is skipped with it
        ({"delete": {"_index": "logs", "_id": "x"}}, None),
        ({"update": {"_index": "logs", "_id": "y"}}, {"doc": {"a": 1}}),
        ({"create": {"_index": "logs"}}, b"not a json object"),
        ({"create": {}}, doc(3)),  # no index, none in the URL
        ({"index": {"_index": "logs"}}, doc(2)),
    )
    response = client.post("/_bulk", content=body, headers={**auth, "Content-Type": "application/x-ndjson"},
                           params={"source": "fb"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["errors"] is True
    statuses = [(next(iter(item)), next(iter(item.values()))["status"]) for item in result["items"]]
    assert statuses == [("create", 201), ("index", 400), ("delete", 400), ("update", 400), ("create", 400),
                        ("create", 400), ("index", 201)]
    errors = [next(iter(item.values())).get("error", {}).get("type") for item in result["items"]]
    assert errors == [None, "illegal_argument_exception", "illegal_argument_exception", "illegal_argument_exception",
                      "mapper_parsing_exception", "action_request_validation_exception", None]
    assert all(next(iter(item.values()))["error"]["reason"] for item in result["items"][1:6])
    siem: Siem = client.app.state.siem  # type: ignore[attr-defined]
    assert siem.drain()
    assert sorted(event["labels"]["n"] for event in events(siem, 'vigil.source:"bulk:fb"')) == ["1", "2"]


def test_empty_bulk_is_an_error_in_elasticsearch_shape(world: Any, client: TestClient) -> None:
    response = client.post("/_bulk", content=b"\n", headers=bearer(shipper_token(world)))
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "action_request_validation_exception"
    bad_source = client.post("/_bulk", content=b'{"create":{"_index":"x"}}\n{}\n', params={"source": "a b/c"},
                             headers=bearer(shipper_token(world)))
    assert bad_source.status_code == 400 and bad_source.json()["error"]["type"] == "illegal_argument_exception"
    assert bad_source.headers["X-Elastic-Product"] == PRODUCT


def test_credentials_are_checked_like_elasticsearch_does(world: Any, client: TestClient) -> None:
    body = bulk_body(({"create": {"_index": "logs"}}, doc(1)))
    anonymous = client.post("/_bulk", content=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["X-Elastic-Product"] == PRODUCT
    assert anonymous.json()["error"]["type"] == "security_exception"
    assert anonymous.json()["status"] == 401
    challenges = anonymous.headers.get_list("www-authenticate")
    assert any(value.startswith("Basic") for value in challenges) and "ApiKey" in challenges
    for wrong in (bearer("vgl_not-a-token"), basic("vgl_not-a-token"), api_key("vgl_nope"),
                  {"Authorization": "ApiKey !!!"}, {"Authorization": "Digest abc"}):
        refused = client.post("/_bulk", content=body, headers=wrong)
        assert refused.status_code == 401, wrong
        assert refused.json()["error"]["type"] == "security_exception"
    analyst = client.post("/_bulk", content=body, headers=world.headers("analyst"))
    assert analyst.status_code == 403
    assert analyst.json()["error"]["type"] == "security_exception"
    assert client.get("/_license", headers=world.headers("analyst")).status_code == 403


def test_a_browser_on_the_root_still_gets_the_web_ui(world: Any, client: TestClient) -> None:
    page = client.get("/", follow_redirects=False, headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert "X-Elastic-Product" not in page.headers
    # A client sending credentials (or probing with HEAD) talks to the Elasticsearch side.
    probe = client.head("/")
    assert probe.status_code == 401 and probe.headers["X-Elastic-Product"] == PRODUCT
    analyst = client.get("/", headers=world.headers("analyst"))
    assert analyst.status_code == 403 and analyst.json()["error"]["type"] == "security_exception"


def test_a_full_spool_answers_503_with_retry_after(world: Any, database: Database, settings: Settings,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    small = settings.model_copy(update={"spool_quota_bytes": 1024 * 1024, "spool_segment_bytes": 64 * 1024})
    app = create_app(small, database)
    auth = api_key(shipper_token(world))
    with TestClient(app, base_url="https://testserver") as client:
        siem: Siem = app.state.siem
        siem.pipeline.stop()  # the pipeline stands still, so the spool fills up
        monkeypatch.setattr(siem.pipeline, "start", lambda: None)
        acknowledged = 0
        for n in range(300):
            body = bulk_body(*[({"create": {"_index": "logs"}}, doc(n * 10 + k, pad="x" * 2000)) for k in range(10)])
            response = client.post("/_bulk", content=body, headers={**auth, "Content-Type": "application/x-ndjson"},
                                   params={"source": "flood"})
            if response.status_code != 200:
                break
            acknowledged += 1
        assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
        assert response.headers["X-Elastic-Product"] == PRODUCT
        assert response.json()["error"]["type"] == "es_rejected_execution_exception"
        assert siem.drain()
        assert len(events(siem, 'vigil.source:"bulk:flood"')) == 10 * acknowledged > 0
