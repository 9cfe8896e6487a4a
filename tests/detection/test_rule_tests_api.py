"""/api/v1/rules/{id}/tests through the app with real tokens: the starter rules' cases with their results,
trying events (stored nowhere), adding and deleting cases (audited), input refused with a clear 4xx, and
who may do what (rules:read to read and try, rules:write at headquarters to change)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.api.support import assert_problem, audit_records
from tests.detection.test_rule_tests import HOSTNAME, WHOAMI, new_rule, stored
from tests.detection.test_rules_service import rows

from vigil.detection.rules_import import install_starter_pack


@pytest.fixture
def starter(world: Any) -> dict[str, Any]:
    install_starter_pack(world.database)
    return rows(world.database, "vigil-starter")


def whoami_rule(starter: dict[str, Any]) -> Any:
    return next(row for row in starter.values() if row.path.endswith("proc_creation_win_whoami_discovery.yml"))


def test_an_analyst_reads_a_starter_rules_results(client: TestClient, world: Any, starter: dict[str, Any]) -> None:
    row = whoami_rule(starter)
    answer = client.get(f"/api/v1/rules/{row.id}/tests", headers=world.headers("analyst"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["rule_id"], body["rule_uid"], body["error"]) == (row.id, row.rule_uid, None)
    assert body["total"] == body["passed"] == len(body["results"]) >= 2 and body["failed"] == 0
    first = body["results"][0]
    assert (first["index"], first["name"], first["expect"], first["got"], first["passed"], first["source"]) == \
        (0, "trigger 1", "match", "match", True, "pack")
    assert {result["expect"] for result in body["results"]} == {"match", "no_match"}
    assert_problem(client.get("/api/v1/rules/999999/tests", headers=world.headers("analyst")), 404, "not-found")


def test_trying_events_answers_per_event_and_stores_nothing(client: TestClient, world: Any) -> None:
    rule_id = new_rule(world.database)
    answer = client.post(f"/api/v1/rules/{rule_id}/tests/run", headers=world.headers("analyst"), json={"events": [
        {"record": WHOAMI}, {"format": "windows_json", "record": HOSTNAME, "expect": "no_match"},
        {"format": "web_access", "record": "not an access log line", "expect": "match"}]})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [(r["got"], r["format"], r["passed"]) for r in results] == [
        ("match", "windows_json", None), ("no_match", "windows_json", True), ("unreadable", "web_access", False)]
    assert "the web_access parser refused the record" in results[2]["error"]
    assert stored(world.database, rule_id) == []
    assert audit_records(world.database, action="detection.rule.test.add") == []


def test_a_security_administrator_adds_and_deletes_cases_audited(client: TestClient, world: Any) -> None:
    rule_id = new_rule(world.database)
    h = world.headers("secadmin")
    added = client.post(f"/api/v1/rules/{rule_id}/tests", headers=h, json={
        "name": "whoami on a workstation", "expect": "match", "format": "windows_json", "record": WHOAMI})
    assert added.status_code == 201, added.text
    client.post(f"/api/v1/rules/{rule_id}/tests", headers=h, json={
        "expect": "match", "format": "windows_json", "record": HOSTNAME})
    body = client.get(f"/api/v1/rules/{rule_id}/tests", headers=h).json()
    assert [(r["name"], r["passed"]) for r in body["results"]] == [("whoami on a workstation", True),
                                                                   ("must fire 2", False)]
    assert (body["passed"], body["failed"]) == (1, 1)
    deleted = client.delete(f"/api/v1/rules/{rule_id}/tests/1", headers=h)
    assert deleted.status_code == 200 and deleted.json()["failed"] == 0 and deleted.json()["total"] == 1
    assert_problem(client.delete(f"/api/v1/rules/{rule_id}/tests/1", headers=h), 404, "not-found")
    records = audit_records(world.database, target_id=str(rule_id))
    assert [(r.action, r.actor, r.details["name"]) for r in records if r.action.startswith("detection.rule.test")] \
        == [("detection.rule.test.add", "secadmin", "whoami on a workstation"),
            ("detection.rule.test.add", "secadmin", "must fire 2"),
            ("detection.rule.test.delete", "secadmin", "must fire 2")]


def test_bad_input_is_refused_with_a_clear_message(client: TestClient, world: Any) -> None:
    rule_id = new_rule(world.database)
    h = world.headers("secadmin")
    url = f"/api/v1/rules/{rule_id}/tests"
    big = '{"a": "' + "x" * 70_000 + '"}'
    too_big = client.post(url, headers=h, json={"expect": "match", "format": "json", "record": big})
    assert_problem(too_big, 422)
    assert "at most 65,536 (64 KiB)" in too_big.text
    unknown = client.post(url, headers=h, json={"expect": "match", "format": "evtx_json", "record": WHOAMI})
    assert_problem(unknown, 422, "bad-input")
    assert "unknown log format 'evtx_json'; known formats:" in unknown.json()["detail"]
    unreadable = client.post(url, headers=h, json={"expect": "match", "format": "syslog", "record": "  "})
    assert_problem(unreadable, 422)
    assert_problem(client.post(url, headers=h, json={"expect": "yes", "format": "json", "record": "{}"}), 422)
    assert_problem(client.post(url, headers=h, json={"expect": "match", "format": "json", "record": "{}",
                                                     "source": "pack"}), 422)
    too_many = client.post(f"{url}/run", headers=h, json={"events": [{"record": WHOAMI}] * 51})
    assert_problem(too_many, 422)
    assert_problem(client.post(f"{url}/run", headers=h, json={"events": []}), 422)
    big_try = client.post(f"{url}/run", headers=h, json={"events": [{"record": big}]})
    assert_problem(big_try, 422)
    assert "64 KiB" in big_try.text
    unknown_try = client.post(f"{url}/run", headers=h, json={"events": [{"format": "nope", "record": WHOAMI}]})
    assert_problem(unknown_try, 422, "bad-input")
    for _ in range(50):
        assert client.post(url, headers=h, json={"expect": "no_match", "format": "windows_json",
                                                 "record": HOSTNAME}).status_code == 201
    full = client.post(url, headers=h, json={"expect": "match", "format": "windows_json", "record": WHOAMI})
    assert_problem(full, 422, "bad-input")
    assert "already holds 50 test cases" in full.json()["detail"]
    assert len(stored(world.database, rule_id)) == 50


def test_who_may_read_try_and_change_cases(client: TestClient, world: Any) -> None:
    rule_id = new_rule(world.database)
    case = {"expect": "match", "format": "windows_json", "record": WHOAMI}
    run = {"events": [{"record": WHOAMI}]}
    # Rules are platform-wide: a branch's security administrator reads and tries them, but changes none.
    for user in ("analyst", "secadmin", "secadmin_a"):
        assert client.get(f"/api/v1/rules/{rule_id}/tests", headers=world.headers(user)).status_code == 200
        assert client.post(f"/api/v1/rules/{rule_id}/tests/run", headers=world.headers(user),
                           json=run).status_code == 200
    for user in ("viewer", "responder", "sysadmin", "auditor"):
        assert_problem(client.get(f"/api/v1/rules/{rule_id}/tests", headers=world.headers(user)), 403,
                       "permission-denied")
        assert_problem(client.post(f"/api/v1/rules/{rule_id}/tests/run", headers=world.headers(user), json=run),
                       403, "permission-denied")
    client.post(f"/api/v1/rules/{rule_id}/tests", headers=world.headers("secadmin"), json=case)
    for user in ("analyst", "secadmin_a", "viewer", "sysadmin_a"):
        assert_problem(client.post(f"/api/v1/rules/{rule_id}/tests", headers=world.headers(user), json=case), 403,
                       "permission-denied")
        assert_problem(client.delete(f"/api/v1/rules/{rule_id}/tests/0", headers=world.headers(user)), 403,
                       "permission-denied")
    assert len(stored(world.database, rule_id)) == 1
    assert_problem(client.get(f"/api/v1/rules/{rule_id}/tests"), 401, "not-authenticated")
    denied = audit_records(world.database, action="auth.denied", actor="secadmin_a")
    assert any(r.target_id == f"POST /api/v1/rules/{rule_id}/tests" for r in denied)
