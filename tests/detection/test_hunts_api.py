"""/api/v1/hunts over real HTTP and a real event store: start a hunt (at once or in the background), list
and read hunts with their hits per rule, and unit scoping (a hunt reads only its author's units' events,
another unit's hunt answers 404, sample events of units the reader cannot see are left out)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.api.support import assert_problem, audit_records

from vigil.core.auth import Role
from vigil.core.db import Database, Scope
from vigil.detection.hunts_service import fail_interrupted
from vigil.detection.models import Hunt
from vigil.detection.rules_import import install_starter_pack

WHOAMI = "26599989-4bee-4b9f-871d-b4ed0ac6cb99"  # starter pack: Whoami Listing Privileges Or Groups
START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
WINDOW = {"start": START.isoformat(), "end": (START + timedelta(hours=1)).isoformat()}


def whoami(computer: str, minutes: int, flags: str = "/all") -> dict[str, Any]:
    return {"@timestamp": (START + timedelta(minutes=minutes)).isoformat(),
            "Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Computer": computer,
            "Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": f"whoami {flags}",
            "host": {"name": computer}}


@pytest.fixture
def loaded(client: TestClient, world: Any) -> Any:
    install_starter_pack(world.database)
    store = client.app.state.siem.store  # type: ignore[attr-defined]
    store.append([whoami("HQ-WS01", 5), whoami("HQ-WS02", 10), whoami("HQ-WS01", 20, flags="/user"),
                  whoami("HQ-WS01", 90)], unit_id=world.hq, source="sysmon-hq")
    store.append([whoami("BR-WS01", 15)], unit_id=world.branch_a, source="sysmon-a")
    world.add_user("analyst_a", Role.ANALYST, world.branch_a)
    return world


def start(client: TestClient, world: Any, user: str = "analyst", **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/hunts", headers=world.headers(user), json={**WINDOW, **body})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def test_a_hunt_finds_each_rules_events_in_the_window_and_is_recorded(client: TestClient, loaded: Any) -> None:
    body = start(client, loaded, rule_uids=[WHOAMI], name="whoami sweep")
    assert body["status"] == "done" and body["error"] is None
    assert body["events_scanned"] == 4  # hq and branch, inside the hour (the one at 11:30 is outside)
    assert body["hits"] == 3 and body["rule_uids"] == [WHOAMI] and body["rules_hunted"] == 1
    assert body["created_by"] == "analyst" and body["unit_id"] == loaded.hq and body["name"] == "whoami sweep"
    [rule] = body["rules"]
    assert (rule["uid"], rule["count"], rule["level"]) == (WHOAMI, 3, "medium")
    assert rule["title"] == "Whoami Listing Privileges Or Groups"
    assert {event["unit_id"] for event in rule["events"]} == {loaded.hq, loaded.branch_a}
    first = rule["events"][0]
    assert first["url"] == f"/siem/events/{first['id']}"
    assert client.get(first["url"].replace("/siem/events", "/api/v1/events"),
                      headers=loaded.headers("analyst")).json()["document"]["CommandLine"] == "whoami /all"
    assert rule["search_url"].startswith("/siem/search?") and "2026-11-20T10%3A00%3A00Z" in rule["search_url"]
    again = client.get(f"/api/v1/hunts/{body['id']}", headers=loaded.headers("analyst")).json()
    assert again["rules"] == body["rules"] and again["status"] == "done"
    [record] = audit_records(loaded.database, action="hunt.start")
    assert record.target_id == str(body["id"]) and record.details["rules"] == 1


def test_every_enabled_rule_and_an_extra_query(client: TestClient, loaded: Any) -> None:
    body = start(client, loaded, query="host.name:HQ-WS01")
    assert body["rule_uids"] == [] and body["rules_hunted"] is None and body["query"] == "host.name:HQ-WS01"
    assert body["events_scanned"] == 2
    assert {rule["uid"]: rule["count"] for rule in body["rules"]} == {WHOAMI: 1}


def test_a_branch_analyst_hunts_only_their_units_events(client: TestClient, loaded: Any) -> None:
    branch = start(client, loaded, "analyst_a", rule_uids=[WHOAMI])
    assert branch["events_scanned"] == 1 and branch["hits"] == 1 and branch["unit_id"] == loaded.branch_a
    assert [e["unit_id"] for e in branch["rules"][0]["events"]] == [loaded.branch_a]
    hq = start(client, loaded, rule_uids=[WHOAMI])
    # The branch analyst sees only their hunt; headquarters' answers 404 like one that does not exist.
    listed = client.get("/api/v1/hunts", headers=loaded.headers("analyst_a")).json()
    assert [item["id"] for item in listed["items"]] == [branch["id"]] and listed["total"] == 1
    assert_problem(client.get(f"/api/v1/hunts/{hq['id']}", headers=loaded.headers("analyst_a")), 404, "not-found")
    # Headquarters sees both hunts, newest first.
    both = client.get("/api/v1/hunts", headers=loaded.headers("analyst")).json()
    assert [item["id"] for item in both["items"]] == [hq["id"], branch["id"]]


def test_sample_events_of_units_the_reader_cannot_see_are_left_out(client: TestClient, loaded: Any) -> None:
    hq = start(client, loaded, rule_uids=[WHOAMI])
    # An analyst of headquarters moved to the branch later still reads the hunt only with the branch's events.
    loaded.add_user("roaming", Role.ANALYST, loaded.branch_a)
    with loaded.database.transaction(Scope.system()) as session:
        recorded = session.get(Hunt, hq["id"])
        assert recorded is not None
        recorded.unit_id = loaded.branch_a
    read = client.get(f"/api/v1/hunts/{hq['id']}", headers=loaded.headers("roaming")).json()
    assert read["rules"][0]["count"] == 3
    assert [e["unit_id"] for e in read["rules"][0]["events"]] == [loaded.branch_a]


def test_a_background_hunt_runs_to_done(client: TestClient, loaded: Any) -> None:
    body = start(client, loaded, rule_uids=[WHOAMI], background=True)
    assert body["status"] in ("running", "done")
    for _ in range(200):
        body = client.get(f"/api/v1/hunts/{body['id']}", headers=loaded.headers("analyst")).json()
        if body["status"] != "running":
            break
        time.sleep(0.05)
    assert body["status"] == "done" and body["hits"] == 3 and body["finished_at"] is not None


def test_bad_hunts_are_refused_with_a_reason(client: TestClient, loaded: Any) -> None:
    h = loaded.headers("analyst")
    assert_problem(client.post("/api/v1/hunts", headers=h, json={**WINDOW, "query": "host.name:(a"}), 422)
    refused = assert_problem(client.post("/api/v1/hunts", headers=h, json={**WINDOW, "rule_uids": ["nope"]}), 422)
    assert "nope" in refused["detail"]
    assert_problem(client.post("/api/v1/hunts", headers=h, json={"start": WINDOW["end"], "end": WINDOW["start"]}),
                   422)
    assert_problem(client.post("/api/v1/hunts", headers=h, json={"range": "forever"}), 422)
    assert_problem(client.post("/api/v1/hunts", headers=h, json={"surprise": 1}), 422)
    assert_problem(client.post("/api/v1/hunts", headers=loaded.headers("viewer"), json=WINDOW), 403)
    assert client.get("/api/v1/hunts", headers=h).json()["total"] == 0  # nothing refused was recorded


# --- for the role matrix (tests/api/test_role_matrix.py) ------------------------------------------------------


def fresh_hunt_id(world: Any, unit_id: int | None = None) -> int:
    """A finished hunt of ``unit_id`` (default line_a, below branch_a), stored directly."""
    with world.database.transaction(Scope.system()) as session:
        row = Hunt(unit_id=unit_id or world.line_a, created_by="tests", window_start=START,
                   window_end=START + timedelta(hours=1), status="done")
        session.add(row)
        session.flush()
        return row.id


def hunt_rule_uid(world: Any) -> str:
    """The Sigma id of a fresh enabled rule, to hunt with."""
    from sqlalchemy import select
    from tests.detection.test_rules_api import matrix_rule_id

    from vigil.detection.models import DetectionRule

    rule_id = matrix_rule_id(world.database)
    with world.database.transaction(Scope.system()) as session:
        return str(session.scalar(select(DetectionRule.rule_uid).where(DetectionRule.id == rule_id)))


def test_hunts_a_stopped_server_left_running_are_failed_at_start(database: Database) -> None:
    with database.transaction(Scope.system()) as session:
        session.add(Hunt(unit_id=1, created_by="alice", window_start=datetime(2026, 11, 1, tzinfo=UTC),
                         window_end=datetime(2026, 11, 2, tzinfo=UTC), status="running"))
    assert fail_interrupted(database) == 1
    with database.transaction(Scope.system()) as session:
        hunt = session.scalars(select(Hunt)).one()
    assert hunt.status == "failed" and "stopped" in (hunt.error or "") and hunt.finished_at is not None
    assert fail_interrupted(database) == 0
