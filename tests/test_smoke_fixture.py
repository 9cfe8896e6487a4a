"""The shared fixtures do what tests/conftest.py promises: the world is the documented organisation,
on both backends, and each test gets a private copy of it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from conftest import PASSWORD, ROLE_USERS
from vigil.accounts import signin
from vigil.core import audit
from vigil.core.db import Scope


def test_the_world_is_the_documented_organisation(world: Any, client: TestClient) -> None:
    units = {u["id"]: u for u in client.get("/api/v1/units", headers=world.headers("sysadmin")).json()["items"]}
    assert {u["name"]: (u["kind"], u["parent_id"]) for u in units.values()} == {
        "Headquarters": ("headquarters", None),
        "Shanghai branch": ("branch", world.hq),
        "Beijing branch": ("branch", world.hq),
        "Payments": ("business_line", world.branch_a),
    }
    assert (units[world.branch_a]["name"], units[world.branch_b]["name"], units[world.line_a]["name"]) == (
        "Shanghai branch", "Beijing branch", "Payments")
    expected = {
        **{name: (world.hq, [(str(role), world.hq)]) for name, role in ROLE_USERS.items()},
        "nobody": (world.hq, []),
        "sysadmin_a": (world.branch_a, [("system_admin", world.branch_a)]),
        "sysadmin_b": (world.branch_b, [("system_admin", world.branch_b)]),
        "auditor_a": (world.branch_a, [("audit_admin", world.branch_a)]),
        "secadmin_a": (world.branch_a, [("security_admin", world.branch_a)]),
        "staff_a": (world.line_a, [("viewer", world.line_a)]),
        "staff_b": (world.branch_b, [("viewer", world.branch_b)]),
    }
    assert set(world.users) == set(expected)
    for username, (unit_id, grants) in expected.items():
        me = client.get("/api/v1/me", headers=world.headers(username)).json()
        assert me["username"] == username and me["id"] == world.users[username]
        assert (me["unit_id"], [(g["role"], g["unit_id"]) for g in me["roles"]]) == (unit_id, grants)
        assert me["must_change_password"] is False
    with world.database.transaction(Scope.system()) as session:
        assert signin.authenticate(session, username="staff_b", password=PASSWORD, source_ip="").user is not None
        assert audit.verify(session).ok


def test_changes_stay_in_their_test_one(world: Any, client: TestClient) -> None:
    assert client.patch(f"/api/v1/users/{world.users['staff_a']}", headers=world.headers("sysadmin"),
                        json={"display_name": "Changed in test one"}).status_code == 200
    world.add_user("extra_one", None, world.hq, token=False)


def test_changes_stay_in_their_test_two(world: Any, client: TestClient) -> None:
    """Runs after test one: its change and its extra user are not here."""
    staff = client.get(f"/api/v1/users/{world.users['staff_a']}", headers=world.headers("sysadmin")).json()
    assert staff["display_name"] == "staff_a"
    assert "extra_one" not in world.users
    names = {u["username"] for u in client.get("/api/v1/users", headers=world.headers("sysadmin"),
                                                params={"limit": 500}).json()["items"]}
    assert names == set(world.users)
