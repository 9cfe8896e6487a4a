"""/api/v1/alerts and /api/v1/suppressions over real HTTP: the queue with filters and pages, an alert with its
rule's attribution, the workflow (409 with the reason when refused), bulk steps, assignment, suppressions
from a draft to a silenced event, statistics, and unit scoping (another unit's records answer 404)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from tests.api.support import assert_problem

from .test_alerts_service import (
    NET,
    NET_YAML,
    alert_ids,
    audit_of,
    install_rule,
    process_event,
    raise_alerts,
    rule_row,
    stored_alert,
    with_branch_analysts,
)


def test_the_queue_lists_filters_and_pages(world: Any, client: TestClient) -> None:
    whoami, net = install_rule(world.database), install_rule(world.database, NET_YAML)
    raise_alerts(world.database, [whoami, net], world.hq, process_event(host="WS01"), process_event(host="WS02"),
                 process_event(NET, host="DC01", command_line="net user /domain"))
    h = world.headers("viewer")  # reading needs alerts:read only
    body = client.get("/api/v1/alerts", headers=h).json()
    assert body["total"] == 3 and body["limit"] == 50 and body["offset"] == 0
    assert {item["host"] for item in body["items"]} == {"WS01", "WS02", "DC01"}
    assert "event" not in body["items"][0]  # the queue leaves the events to the alert's own page
    high = client.get("/api/v1/alerts", headers=h, params={"level": ["high", "critical"]}).json()
    assert [item["title"] for item in high["items"]] == ["Net user enumeration"]
    assert high["items"][0]["techniques"] == ["T1087.002"]
    paged = client.get("/api/v1/alerts", headers=h, params={"rule": whoami.id, "limit": 1, "offset": 1}).json()
    assert paged["total"] == 2 and len(paged["items"]) == 1
    assert client.get("/api/v1/alerts", headers=h, params={"host": "dc01", "status": "new"}).json()["total"] == 1
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert client.get("/api/v1/alerts", headers=h, params={"since": future}).json()["total"] == 0
    assert_problem(client.get("/api/v1/alerts", headers=h, params={"status": "archived"}), 422)
    assert_problem(client.get("/api/v1/alerts", headers=h, params={"since": "2026-01-01T00:00:00"}), 422)  # no zone


def test_an_alert_carries_its_event_and_its_rules_attribution(world: Any, client: TestClient) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.hq, process_event(host="WS01", user=r"CORP\alice"))
    alert_id = alert_ids(world.database)[0]
    body = client.get(f"/api/v1/alerts/{alert_id}", headers=world.headers("viewer")).json()
    assert body["event"]["Computer"] == "WS01" and body["event"]["EventID"] == 1
    assert (body["host"], body["user_name"], body["status"], body["count"]) == ("WS01", r"CORP\alice", "new", 1)
    assert body["rule"]["author"] == "Jane Doe, John Roe"
    assert body["rule"]["references"] == ["https://attack.mitre.org/techniques/T1033/"]
    assert body["rule"]["description"].startswith("whoami.exe run")
    assert body["actions"] == ["acknowledge", "escalate", "close"]
    assert_problem(client.get("/api/v1/alerts/999999", headers=world.headers("viewer")), 404, "not-found")


def test_the_workflow_over_http(world: Any, client: TestClient) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.hq, process_event())
    alert_id = alert_ids(world.database)[0]
    h = world.headers("analyst")
    url = f"/api/v1/alerts/{alert_id}/transition"
    acknowledged = client.post(url, headers=h, json={"action": "acknowledge"})
    assert acknowledged.status_code == 200 and acknowledged.json()["status"] == "acknowledged"
    assert acknowledged.json()["actions"] == ["escalate", "close"]
    assert_problem(client.post(url, headers=h, json={"action": "close"}), 422, "bad-input")
    closed = client.post(url, headers=h, json={"action": "close", "resolution": "false_positive",
                                                "comment": "backup job"}).json()
    assert (closed["status"], closed["resolution"], closed["closed_by"]) == ("closed", "false_positive", "analyst")
    assert rule_row(world.database, rule.id).false_positives == 1
    refused = assert_problem(client.post(url, headers=h, json={"action": "escalate"}), 409, "invalid-transition")
    assert "closed cannot be escalated" in refused["detail"] and "reopen" in refused["detail"]
    assert (refused["alert_status"], refused["alert_action"]) == ("closed", "escalate")
    assert client.post(url, headers=h, json={"action": "reopen"}).json()["status"] == "acknowledged"
    assert [r.details["to"] for r in audit_of(world.database, "alert.reopen")] == ["acknowledged"]
    assert_problem(client.post(url, headers=world.headers("viewer"), json={"action": "escalate"}), 403)
    assert_problem(client.post(url, headers=h, json={"action": "delete"}), 422)


def test_bulk_steps_and_assignment(world: Any, client: TestClient) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.hq, *(process_event(host=f"WS0{n}") for n in range(1, 4)))
    ids = alert_ids(world.database)
    h = world.headers("analyst")
    done = client.post("/api/v1/alerts/bulk", headers=h, json={"ids": ids[:2], "action": "acknowledge"})
    assert done.status_code == 200 and done.json() == {"changed": ids[:2], "unchanged": []}
    refused = assert_problem(client.post("/api/v1/alerts/bulk", headers=h, json={
        "ids": ids, "action": "close", "resolution": "maybe"}), 422)
    assert refused["status"] == 422
    assert_problem(client.post("/api/v1/alerts/bulk", headers=h, json={"ids": [], "action": "acknowledge"}), 422)
    missing = assert_problem(client.post("/api/v1/alerts/bulk", headers=h, json={
        "ids": [ids[2], 999_999], "action": "acknowledge"}), 404)
    assert "999999" in missing["detail"]
    assert stored_alert(world.database, ids[2]).status == "new"
    assigned = client.post(f"/api/v1/alerts/{ids[0]}/assign", headers=h,
                           json={"assignee_id": world.users["analyst"]})
    assert assigned.json()["assignee_id"] == world.users["analyst"]
    mine = client.get("/api/v1/alerts", headers=h, params={"assignee_id": world.users["analyst"]}).json()
    assert [item["id"] for item in mine["items"]] == [ids[0]]
    assert_problem(client.post(f"/api/v1/alerts/{ids[0]}/assign", headers=h,
                               json={"assignee_id": world.users["auditor"]}), 422)


def test_the_tuning_loop_over_http(world: Any, client: TestClient) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.line_a, process_event(host="PAY01", user=r"CORP\svc_inv"))
    alert_id = alert_ids(world.database)[0]
    h = world.headers("analyst")
    draft = client.get(f"/api/v1/alerts/{alert_id}/suppression", headers=h,
                       params={"field": ["Computer", "User"]}).json()
    assert draft == {"rule_uid": rule.id, "unit_id": world.line_a, "reason": "", "conditions": [
        {"field": "Computer", "op": "equals", "value": "PAY01"},
        {"field": "User", "op": "equals", "value": r"CORP\svc_inv"}]}
    created = client.post("/api/v1/suppressions", headers=h, json={**draft, "reason": "nightly inventory"})
    assert created.status_code == 201, created.text
    suppression = created.json()
    assert suppression["author"] == "analyst" and suppression["active"] is True and suppression["hits"] == 0

    later = datetime.now(UTC) + timedelta(hours=2)
    result = raise_alerts(world.database, [rule], world.line_a,
                          process_event(host="PAY01", user=r"CORP\svc_inv", at=later))
    assert result.suppressed == 1 and result.raised == 0
    read = client.get(f"/api/v1/suppressions/{suppression['id']}", headers=world.headers("viewer")).json()
    assert read["hits"] == 1 and read["last_hit_at"] is not None

    sid = suppression["id"]
    off = client.patch(f"/api/v1/suppressions/{sid}", headers=h, json={"enabled": False}).json()
    assert off["enabled"] is False and off["active"] is False
    listed = client.get("/api/v1/suppressions", headers=h, params={"rule": rule.id}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == sid
    assert_problem(client.patch(f"/api/v1/suppressions/{sid}", headers=h, json={"reason": None}), 422)
    assert_problem(client.post("/api/v1/suppressions", headers=h, json={
        "conditions": [{"field": "Computer", "op": "regex", "value": ".*"}], "reason": "x"}), 422)
    assert_problem(client.post("/api/v1/suppressions", headers=world.headers("viewer"), json={
        "conditions": [{"field": "Computer", "value": "x"}], "reason": "x"}), 403)
    assert client.delete(f"/api/v1/suppressions/{sid}", headers=h).status_code == 204
    assert_problem(client.get(f"/api/v1/suppressions/{sid}", headers=h), 404)
    assert [r.action for r in audit_of(world.database, "suppression.delete")] == ["suppression.delete"]


def test_another_units_alerts_and_suppressions_answer_404(world: Any, client: TestClient) -> None:
    with_branch_analysts(world)
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.branch_b, process_event(host="BJ01"))
    alert_id = alert_ids(world.database)[0]
    h_b = world.headers("analyst_b")
    sid = client.post("/api/v1/suppressions", headers=h_b, json={
        "rule_uid": rule.id, "conditions": [{"field": "Computer", "value": "BJ02"}], "reason": "lab"}).json()["id"]
    h_a = world.headers("analyst_a")
    assert client.get("/api/v1/alerts", headers=h_a).json()["total"] == 0
    assert_problem(client.get(f"/api/v1/alerts/{alert_id}", headers=h_a), 404, "not-found")
    assert_problem(client.post(f"/api/v1/alerts/{alert_id}/transition", headers=h_a, json={
        "action": "close", "resolution": "false_positive"}), 404, "not-found")
    assert_problem(client.get(f"/api/v1/alerts/{alert_id}/suppression", headers=h_a), 404)
    assert_problem(client.post("/api/v1/alerts/bulk", headers=h_a, json={"ids": [alert_id],
                                                                         "action": "acknowledge"}), 404)
    assert_problem(client.get(f"/api/v1/suppressions/{sid}", headers=h_a), 404)
    assert_problem(client.delete(f"/api/v1/suppressions/{sid}", headers=h_a), 404)
    assert client.get("/api/v1/alerts/stats/rules", headers=h_a).json()["total"] == 0
    assert stored_alert(world.database, alert_id).status == "new"
    assert client.get(f"/api/v1/alerts/{alert_id}", headers=h_b).status_code == 200


def test_rule_statistics_and_noisiest_rules(world: Any, client: TestClient) -> None:
    whoami, net = install_rule(world.database), install_rule(world.database, NET_YAML)
    now = datetime.now(UTC)
    raise_alerts(world.database, [whoami, net], world.hq,
                 *(process_event(host=f"WS0{n}", at=now - timedelta(hours=n)) for n in range(1, 4)),
                 process_event(NET, host="DC01", command_line="net user", at=now - timedelta(days=10)))
    ids = alert_ids(world.database, rule_uid=whoami.id)
    h = world.headers("analyst")
    client.post("/api/v1/alerts/bulk", headers=h, json={"ids": ids[:2], "action": "close",
                                                         "resolution": "false_positive"})
    client.post(f"/api/v1/alerts/{ids[2]}/transition", headers=h,
                json={"action": "close", "resolution": "true_positive"})
    stats = client.get("/api/v1/alerts/stats/rules", headers=world.headers("viewer")).json()["items"]
    assert [(s["rule_uid"], s["alerts"], s["false_positives"]) for s in stats] == [(whoami.id, 3, 2), (net.id, 1, 0)]
    assert abs(stats[0]["false_positive_rate"] - 2 / 3) < 0.001 and stats[0]["hits"] == 3
    assert stats[0]["last_hit_at"] is not None
    noisy = client.get("/api/v1/alerts/stats/noisiest", headers=h, params={"days": 7}).json()
    assert [(n["rule_uid"], n["alerts"], n["days"]) for n in noisy["items"]] == [(whoami.id, 3, 7)]
    month = client.get("/api/v1/alerts/stats/noisiest", headers=h, params={"days": 30, "limit": 1}).json()
    assert month["total"] == 2 and [n["rule_uid"] for n in month["items"]] == [whoami.id]
    one = client.get("/api/v1/alerts/stats/rules", headers=h, params={"rule": net.id}).json()
    assert [s["rule_uid"] for s in one["items"]] == [net.id]
    assert_problem(client.get("/api/v1/alerts/stats/noisiest", headers=h, params={"days": 0}), 422)
