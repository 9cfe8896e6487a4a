"""The intel lookup names the incidents whose observables hold a value (API, page, CLI), within the reader's
units; `vigil escalation paging` sets, lists and removes the paging of new incidents. Both stores."""

from __future__ import annotations

from pathlib import Path

import orjson
from fastapi.testclient import TestClient
from tests.conftest import World
from tests.response.test_oncall_cli import Vigil

from vigil.core.auth import Role


def incident_with_observable(client: TestClient, world: World, raw: str, unit_id: int | None = None) -> str:
    body: dict[str, object] = {"title": "C2 beacon", "type": "malware", "severity": "P2"}
    if unit_id is not None:
        body["unit_id"] = unit_id
    incident = client.post("/api/v1/incidents", headers=world.headers("analyst"), json=body).json()
    added = client.post(f"/api/v1/incidents/{incident['id']}/observables", headers=world.headers("analyst"),
                        json={"value": raw})
    assert added.status_code == 201, added.text
    return str(incident["ref"])


def test_the_lookup_names_the_incidents_holding_the_value(client: TestClient, world: World) -> None:
    ours = incident_with_observable(client, world, "EVIL[.]Example.COM")
    theirs = incident_with_observable(client, world, "evil.example.com", unit_id=world.branch_b)
    looked = client.get("/api/v1/intel/lookup", params={"value": "evil.example.com"},
                        headers=world.headers("analyst")).json()
    assert sorted(i["ref"] for i in looked["incidents"]) == sorted([ours, theirs])  # headquarters sees both
    # An analyst of the Beijing branch sees its own incident only.
    world.add_user("analyst_b", Role.ANALYST, world.branch_b)
    staff = client.get("/api/v1/intel/lookup", params={"value": "evil[.]example.com"},
                       headers=world.headers("analyst_b")).json()
    assert [i["ref"] for i in staff["incidents"]] == [theirs]
    nothing = client.get("/api/v1/intel/lookup", params={"value": "good.example.com"},
                         headers=world.headers("analyst")).json()
    assert nothing["incidents"] == []
    page = client.get("/intel/lookup", params={"value": "evil.example.com"}, headers=world.headers("analyst")).text
    assert 'id="lookup-incidents"' in page and ours in page


def test_the_cli_lookup_and_paging(client: TestClient, world: World, database_url: str, tmp_path: Path) -> None:
    ref = incident_with_observable(client, world, "203.0.113.9")
    vigil = Vigil({"VIGIL_DATABASE_URL": database_url, "VIGIL_DATA_DIR": str(tmp_path / "var")})
    assert f"incident {ref} [P2, identify] C2 beacon" in vigil.ok("intel", "lookup", "203.0.113.9").output
    policy = client.post("/api/v1/escalation-policies", headers=world.headers("responder"), json={
        "name": "Night desk", "levels": [{"timeout_minutes": 5,
                                          "targets": [{"kind": "user", "id": world.users["responder"]}]}]})
    assert policy.status_code == 201
    assert "P1 in unit" in vigil.ok("escalation", "paging", "set", "P1", "--policy", "Night desk").output
    rows = orjson.loads(vigil.ok("escalation", "paging", "list", "--json").output)
    assert [(r["severity"], r["policy_id"], r["channel_ids"]) for r in rows] == [("P1", policy.json()["id"], [])]
    assert "Night desk" in vigil.ok("escalation", "paging", "list").output
    missing = vigil("escalation", "paging", "set", "P2", "--channel", "no such channel")
    assert missing.exit_code != 0
    vigil.ok("escalation", "paging", "remove", "P1")
    assert orjson.loads(vigil.ok("escalation", "paging", "list", "--json").output) == []
