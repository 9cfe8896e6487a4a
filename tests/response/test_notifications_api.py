"""/api/v1/notification-channels and /api/v1/notification-deliveries over HTTP: secrets never in a reply,
a bad configuration refused with 422 and nothing stored, "send a test" against a stand-in DingTalk robot,
a failing endpoint answered with a failed delivery, the log filtered and kept to the reader's units."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from tests.api.support import assert_problem, row_count
from tests.conftest import World

from vigil.core.db import Scope
from vigil.response.notifications.models import NotificationChannel

from . import platforms

TOKEN, SECRET = "ding-token-4c1d9e", "SECding-secret-77aa01"
BASE = "/api/v1/notification-channels"


# --- records the role matrix and the unit-scope test (tests/api) build their requests on ----------------


def fresh_channel_id(world: World, unit_id: int | None = None) -> int:
    """A webhook channel of ``unit_id`` (default line_a, below branch_a) aimed at a closed port on loopback, tried
    once: a test message fails at once, and says so."""
    with world.database.transaction(Scope.system()) as session:
        row = NotificationChannel(unit_id=unit_id or world.line_a, name=f"matrix-{uuid.uuid4().hex[:12]}",
                                  kind="webhook", language="en", config={"url": "http://127.0.0.1:9/hook"},
                                  max_attempts=1, created_by="tests", updated_by="tests")
        session.add(row)
        session.flush()
        return row.id


def channel_form(c_name: str, unit_id: int) -> dict[str, str]:
    return {"kind": "webhook", "name": f"page channel {c_name} {uuid.uuid4().hex[:8]}", "language": "zh_CN",
            "unit_id": str(unit_id), "max_attempts": "1", "cfg_url": "http://127.0.0.1:9/hook", "cfg_secret": "s3",
            "description": "", "enabled": "on"}


def dingtalk_body(url: str, **extra: Any) -> dict[str, Any]:
    return {"name": "SOC 值班群", "kind": "dingtalk", "language": "zh_CN",
            "config": {"url": f"{url}/robot/send?access_token={TOKEN}", "secret": SECRET}, **extra}


def test_a_channel_is_created_read_and_listed_without_its_secrets(world: World, client: TestClient) -> None:
    h = world.headers("secadmin")
    created = client.post(BASE, json=dingtalk_body("https://oapi.dingtalk.com"), headers=h)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secrets"] == {"access_token": "set", "secret": "set"}
    assert body["settings"]["url"] == "https://oapi.dingtalk.com/robot/send"  # the token moved out of the URL
    for response in (created, client.get(f"{BASE}/{body['id']}", headers=h), client.get(BASE, headers=h)):
        assert TOKEN not in response.text and SECRET not in response.text
    assert client.get(BASE, headers=h).json()["total"] == 1
    kinds = client.get("/api/v1/notification-kinds", headers=h).json()["items"]
    assert {k["kind"] for k in kinds} == {"dingtalk", "wecom", "feishu", "email", "slack", "webhook"}


def test_a_bad_configuration_is_refused_and_nothing_is_stored(world: World, client: TestClient) -> None:
    h = world.headers("secadmin")
    refused = client.post(BASE, json={"name": "mail", "kind": "email",
                                      "config": {"host": "smtp.example.cn", "to": ["not an address"]}}, headers=h)
    problem = assert_problem(refused, 422, "bad-input")
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"config.from_address", "config.to"}, problem
    assert_problem(client.post(BASE, json={"name": "x", "kind": "sms", "config": {}}, headers=h), 422, "bad-input")
    assert_problem(client.post(BASE, json={**dingtalk_body("http://x"), "colour": "red"}, headers=h), 422)
    assert row_count(world.database, NotificationChannel) == 0
    channel = client.post(BASE, json=dingtalk_body("https://oapi.dingtalk.com"), headers=h).json()
    bad = client.patch(f"{BASE}/{channel['id']}", json={"config": {"url": "file:///etc/passwd"}}, headers=h)
    assert_problem(bad, 422, "bad-input")
    assert client.get(f"{BASE}/{channel['id']}", headers=h).json()["settings"]["url"] == \
        "https://oapi.dingtalk.com/robot/send"


def test_send_a_test_through_the_api(world: World, client: TestClient) -> None:
    h = world.headers("secadmin")
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as server:
        channel = client.post(BASE, json=dingtalk_body(server.url), headers=h).json()
        answer = client.post(f"{BASE}/{channel['id']}/test", headers=h)
    assert answer.status_code == 200, answer.text
    delivery = answer.json()
    assert delivery["status"] == "sent" and delivery["attempts"] == 1 and delivery["http_status"] == 200
    assert delivery["message_kind"] == "test" and delivery["subject"] == "Vigil 测试消息"
    sent = server.received[0].json()["markdown"]
    assert "收到这条测试消息，说明通知渠道 SOC 值班群 可以送达。" in sent["text"]
    assert "https://testserver/response/notifications" in sent["text"]


def test_a_failing_endpoint_is_an_answer_not_an_error(world: World, client: TestClient) -> None:
    h = world.headers("secadmin")
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as server:
        server.always_fail = True
        channel = client.post(BASE, json=dingtalk_body(server.url, max_attempts=3), headers=h).json()
        answer = client.post(f"{BASE}/{channel['id']}/test", headers=h)
    assert answer.status_code == 200
    delivery = answer.json()
    assert delivery["status"] == "failed" and delivery["attempts"] == 3 and len(server.received) == 3
    assert delivery["last_error"].startswith("HTTP 500") and delivery["http_status"] == 500
    assert [a["ok"] for a in delivery["attempt_log"]] == [False, False, False]
    assert TOKEN not in answer.text and SECRET not in answer.text


def test_the_delivery_log_is_filtered_and_needs_incidents_read(world: World, client: TestClient) -> None:
    h = world.headers("secadmin")
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as server:
        good = client.post(BASE, json=dingtalk_body(server.url), headers=h).json()
        broken = client.post(BASE, json={**dingtalk_body(f"http://127.0.0.1:{platforms.free_port()}"),
                                          "name": "broken", "max_attempts": 1}, headers=h).json()
        client.post(f"{BASE}/{good['id']}/test", headers=h)
        client.post(f"{BASE}/{broken['id']}/test", headers=h)
    log = "/api/v1/notification-deliveries"
    everything = client.get(log, headers=world.headers("viewer"))
    assert everything.status_code == 200 and everything.json()["total"] == 2
    failed = client.get(log, params={"status": "failed"}, headers=world.headers("analyst")).json()
    assert [d["channel_name"] for d in failed["items"]] == ["broken"]
    assert "ConnectError" in failed["items"][0]["last_error"]
    by_channel = client.get(log, params={"channel_id": good["id"]}, headers=world.headers("responder")).json()
    assert [d["status"] for d in by_channel["items"]] == ["sent"]
    assert client.get(log, params={"incident_id": 99}, headers=world.headers("viewer")).json()["total"] == 0
    assert_problem(client.get(log, params={"status": "lost"}, headers=world.headers("viewer")), 422)
    assert_problem(client.get(log, headers=h), 403, "permission-denied")


def test_a_branch_sees_and_changes_only_its_own_channels(world: World, client: TestClient) -> None:
    hq = client.post(BASE, json=dingtalk_body("https://oapi.dingtalk.com"), headers=world.headers("secadmin")).json()
    mine = client.post(BASE, json={"name": "Shanghai WeCom", "kind": "wecom", "config": {"key": "k-sh"}},
                       headers=world.headers("secadmin_a"))
    assert mine.status_code == 201 and mine.json()["unit_id"] == world.branch_a
    h = world.headers("secadmin_a")
    assert [c["name"] for c in client.get(BASE, headers=h).json()["items"]] == ["Shanghai WeCom"]
    for method, path in (("GET", f"{BASE}/{hq['id']}"), ("PATCH", f"{BASE}/{hq['id']}"),
                         ("DELETE", f"{BASE}/{hq['id']}"), ("POST", f"{BASE}/{hq['id']}/test")):
        answer = client.request(method, path, json={"enabled": False} if method == "PATCH" else None, headers=h)
        assert_problem(answer, 404, "not-found")
    with world.database.transaction(Scope.system()) as session:
        untouched = session.get(NotificationChannel, hq["id"])
        assert untouched is not None and untouched.enabled and untouched.unit_id == world.hq
    placed = client.post(BASE, json={"name": "into hq", "kind": "wecom", "config": {"key": "k"},
                                     "unit_id": world.hq}, headers=h)
    assert_problem(placed, 404)


def test_update_and_delete(world: World, client: TestClient) -> None:
    h = world.headers("secadmin")
    channel = client.post(BASE, json=dingtalk_body("https://oapi.dingtalk.com"), headers=h).json()
    changed = client.patch(f"{BASE}/{channel['id']}", json={"language": "en", "enabled": False,
                                                            "config": {"secret": None}}, headers=h)
    assert changed.status_code == 200
    assert changed.json()["secrets"] == {"access_token": "set", "secret": "not set"}
    assert changed.json()["language"] == "en" and changed.json()["enabled"] is False
    assert client.delete(f"{BASE}/{channel['id']}", headers=h).status_code == 200
    assert_problem(client.get(f"{BASE}/{channel['id']}", headers=h), 404)
