"""Names of organisation units: siblings never share one, whether a unit is created or renamed."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from .support import assert_problem, audit_records


def names(client: TestClient, world: Any) -> dict[int, str]:
    units = client.get("/api/v1/units", headers=world.headers("sysadmin")).json()["items"]
    return {unit["id"]: unit["name"] for unit in units}


def test_a_unit_cannot_be_renamed_to_a_siblings_name(world: Any, client: TestClient) -> None:
    h = world.headers("sysadmin")
    cards = client.post("/api/v1/units", headers=h, json={"name": "Cards", "kind": "business_line",
                                                          "parent_id": world.branch_a})
    assert cards.status_code == 201
    before = names(client, world)
    clash = client.patch(f"/api/v1/units/{world.line_a}", headers=h, json={"name": "Cards"})
    assert "already named 'Cards'" in assert_problem(clash, 409, "conflict")["detail"]
    # A sibling outside the caller's scope counts too: branch_a's administrator cannot take branch_b's name.
    clash = client.patch(f"/api/v1/units/{world.branch_a}", headers=world.headers("sysadmin_a"),
                         json={"name": "Beijing branch"})
    assert_problem(clash, 409, "conflict")
    assert names(client, world) == before
    assert [r.target_id for r in audit_records(world.database, action="unit.update")] == []
    # The same name below another parent is fine, and so is keeping one's own name.
    assert client.patch(f"/api/v1/units/{world.line_a}", headers=h, json={"name": "Beijing branch"}).status_code == 200
    assert client.patch(f"/api/v1/units/{world.line_a}", headers=h, json={"name": "Beijing branch"}).status_code == 200
    assert client.patch(f"/api/v1/units/{world.hq}", headers=h, json={"name": "Head office"}).status_code == 200
    assert names(client, world)[world.line_a] == "Beijing branch"
