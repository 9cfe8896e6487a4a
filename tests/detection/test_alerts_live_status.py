"""The live detection figures of the alerts page and GET /api/v1/alerts/status: the running app's detection
consumer (the one its SIEM pipeline feeds) counts rules, events, matches and alerts raised, deduplicated
and suppressed; without one the page says so."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from tests.api.support import assert_problem
from tests.web.support import signed_in, text_of

from vigil.detection import alerts_service as service
from vigil.detection.live import LiveDetection

from .test_alerts_service import install_rule, process_event


def live_of(client: TestClient) -> LiveDetection:
    found = [each for each in client.app.state.siem.consumers  # type: ignore[attr-defined]
             if getattr(each, "name", None) == "detection"]
    assert len(found) == 1 and isinstance(found[0], LiveDetection), "the app's pipeline has no detection consumer"
    return found[0]


def figures(page: Any) -> dict[str, str]:
    return dict(re.findall(r'data-figure="(\w+)">([^<]*)<', page.text))


def test_status_counts_what_the_pipelines_detection_did(world: Any, client: TestClient) -> None:
    h = world.headers("viewer")  # alerts:read is enough
    idle = client.get("/api/v1/alerts/status", headers=h).json()
    assert idle["running"] is True and idle["events"] == 0 and idle["ms_per_1000_events"] is None

    rule = install_rule(world.database)
    live = live_of(client)
    live.refresh()
    now = datetime.now(UTC)
    live.consume([process_event(host="WS01", at=now), process_event(host="WS01", at=now + timedelta(seconds=1)),
                  process_event("C:\\Windows\\notepad.exe", host="WS01", at=now)], source="sysmon",
                 unit_id=world.line_a)
    body = client.get("/api/v1/alerts/status", headers=h).json()
    assert body["rules"] >= 1 and body["rules_version"]
    assert (body["events"], body["matches"], body["raised"], body["deduplicated"], body["suppressed"]) == (
        3, 2, 1, 1, 0)
    assert body["seconds"] > 0 and body["ms_per_1000_events"] > 0
    assert client.get("/api/v1/alerts", headers=h, params={"rule": rule.id}).json()["items"][0]["count"] == 2

    page = signed_in(client.app, "viewer").get("/detection/alerts")  # type: ignore[arg-type]
    shown = figures(page)
    assert (shown["events"], shown["matches"], shown["raised"], shown["deduplicated"]) == ("3", "2", "1", "1")
    assert shown["speed"].endswith(" ms") and "Live detection" in text_of(page)
    chinese = signed_in(client.app, "viewer").get(  # type: ignore[arg-type]
        "/detection/alerts", headers={"Accept-Language": "zh-CN"})
    assert "实时检测" in text_of(chinese) and "已去重" in text_of(chinese)
    assert_problem(client.get("/api/v1/alerts/status"), 401)
    assert_problem(client.get("/api/v1/alerts/status", headers=world.headers("auditor")), 403)


def test_without_a_detection_consumer(world: Any, client: TestClient) -> None:
    assert service.detection_status([object()]).running is False
    siem = client.app.state.siem  # type: ignore[attr-defined]
    siem.consumers = [each for each in siem.consumers if getattr(each, "name", None) != "detection"]
    body = client.get("/api/v1/alerts/status", headers=world.headers("analyst")).json()
    assert body["running"] is False and body["events"] == 0
    page = signed_in(client.app, "analyst").get("/detection/alerts")  # type: ignore[arg-type]
    assert "Live detection is not running in this server." in text_of(page) and figures(page) == {}
