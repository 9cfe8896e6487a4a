"""/api/v1/coverage and /api/v1/coverage/navigator: counts as a caller of a unit sees them, the layer file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from tests.api.support import assert_problem

from vigil.core.auth import Role

from .test_coverage import add_alert, add_rule, assert_valid_layer


def technique(body: dict[str, Any], technique_id: str, tactic: str) -> dict[str, Any]:
    column = next(t for t in body["tactics"] if t["shortname"] == tactic)
    return next(t for t in column["techniques"] if t["id"] == technique_id)


def recent() -> datetime:
    return datetime.now(UTC) - timedelta(hours=2)


def test_an_analyst_reads_rules_and_the_alerts_of_their_units(world: Any, client: TestClient) -> None:
    world.add_user("analyst_b", Role.ANALYST, world.branch_b)
    add_rule(world.database, "Encoded PowerShell", ["attack.execution", "attack.t1059.001"])
    add_rule(world.database, "Disabled PowerShell", ["attack.t1059.001"], enabled=False)
    add_alert(world.database, world.branch_a, ["T1059.001"], last_seen=recent(), count=3)
    add_alert(world.database, world.branch_b, ["T1059.001"], last_seen=recent())
    add_alert(world.database, world.branch_b, ["T1059.001"], last_seen=recent() - timedelta(days=10))

    response = client.get("/api/v1/coverage", params={"days": 30}, headers=world.headers("analyst_b"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["days"] == 30 and body["domain"] == "enterprise-attack" and body["attack_version"] == "18.1"
    cell = technique(body, "T1059", "execution")
    assert cell["name"] == "Command and Scripting Interpreter"
    assert [rule["title"] for rule in cell["rules"]] == ["Encoded PowerShell"]  # the disabled rule does not count
    assert cell["alerts"] == 2  # branch_b's two alerts; branch_a's alert is not theirs to see
    assert cell["subtechniques"][0]["id"] == "T1059.001" and cell["subtechniques"][0]["name"] == "PowerShell"
    assert body["alerts"] == 2

    week = client.get("/api/v1/coverage", params={"days": 7}, headers=world.headers("analyst_b")).json()
    assert technique(week, "T1059", "execution")["alerts"] == 1

    everything = client.get("/api/v1/coverage", headers=world.headers("analyst")).json()  # headquarters: all units
    assert technique(everything, "T1059", "execution")["alerts"] == 3
    assert everything["days"] == 30


def test_a_security_administrator_sees_rules_without_alerts(world: Any, client: TestClient) -> None:
    add_rule(world.database, "Mimikatz", ["attack.t1003.001"])
    add_alert(world.database, world.hq, ["T1003.001"], last_seen=recent())
    body = client.get("/api/v1/coverage", headers=world.headers("secadmin")).json()
    cell = technique(body, "T1003", "credential-access")
    assert len(cell["rules"]) == 1 and cell["alerts"] == 0 and body["alerts"] == 0


def test_bad_windows_and_platforms_are_refused(world: Any, client: TestClient) -> None:
    headers = world.headers("analyst")
    assert_problem(client.get("/api/v1/coverage", params={"days": 0}, headers=headers), 422)
    assert_problem(client.get("/api/v1/coverage", params={"days": 366}, headers=headers), 422)
    assert_problem(client.get("/api/v1/coverage/navigator", params={"platform": "Amiga"}, headers=headers), 422)
    assert client.get("/api/v1/coverage", params={"platform": "Linux"}, headers=headers).json()["platform"] == "Linux"
    assert_problem(client.get("/api/v1/coverage", headers=world.headers("viewer")), 403, "permission-denied")


def test_the_navigator_layer_is_a_file_to_download(world: Any, client: TestClient) -> None:
    add_rule(world.database, "Encoded PowerShell", ["attack.t1059.001"])
    add_rule(world.database, "Scheduled task", ["attack.t1053.005"])
    add_rule(world.database, "Old id", ["attack.t1086"])
    add_alert(world.database, world.hq, ["T1053.005"], last_seen=recent())

    response = client.get("/api/v1/coverage/navigator", params={"days": 7, "platform": "Windows"},
                          headers=world.headers("analyst"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-disposition"] == 'attachment; filename="vigil-attack-coverage-7d-windows.json"'
    layer = response.json()
    assert_valid_layer(layer)
    assert layer["filters"] == {"platforms": ["Windows"]}
    entries = {(e["techniqueID"], e["tactic"]): e for e in layer["techniques"]}
    for tactic in ("execution", "persistence", "privilege-escalation"):
        assert entries[("T1053", tactic)]["score"] == 1
        assert "alerts in the last 7 days: 1" in entries[("T1053", tactic)]["comment"]
    assert entries[("T1059.001", "execution")]["score"] == 1
    assert {e["techniqueID"] for e in layer["techniques"]} == {"T1053", "T1053.005", "T1059", "T1059.001"}
