"""Separation of duties (三权分立) between the people who run Vigil, as a system administrator would try
to break it: the system administrator makes accounts but grants no role, and cannot take over the
account of an administrator (its password, its status, its unit); the security administrator grants
roles but makes no account and sets no password. Every refusal is 403, audited, and changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from vigil.accounts import service
from vigil.accounts.models import RoleGrant, User
from vigil.accounts.schemas import UserUpdate
from vigil.core.auth import Role
from vigil.core.db import Scope

from .support import assert_problem, audit_records, row_count, system_context, user_row

PASSWORD = "Correct-Horse-42!"  # conftest.PASSWORD
TAKEN_OVER = "Taken-Over-Pass-12!"


def denials(world: Any, actor: str, method: str, path: str) -> int:
    return len([r for r in audit_records(world.database, action="auth.denied", actor=actor)
                if r.target_id == f"{method} {path}"])


def grant_id(world: Any, username: str) -> int:
    with world.database.transaction(Scope.system()) as session:
        found = session.scalar(select(RoleGrant.id).where(RoleGrant.user_id == world.users[username]))
    assert found is not None
    return found


# --- the system administrator grants no role ---------------------------------------------------------


@pytest.mark.parametrize("role", [str(role) for role in Role])
def test_a_system_administrator_cannot_grant_any_role(world: Any, client: TestClient, role: str) -> None:
    h = world.headers("sysadmin")
    # Whom the system administrator would most like to empower: an account whose password they set.
    created = client.post("/api/v1/users", headers=h, json={
        "username": "puppet", "password": "Stringed-Account-Pass-1!", "unit_id": world.hq})
    assert created.status_code == 201
    puppet = created.json()["id"]
    for target in (puppet, world.users["staff_a"]):
        path = f"/api/v1/users/{target}/grants"
        before = user_row(world.database, target)
        response = client.post(path, headers=h, json={"role": role, "unit_id": world.hq})
        assert assert_problem(response, 403, "permission-denied")["permission"] == "roles:assign"
        assert denials(world, "sysadmin", "POST", path) == 1
        assert user_row(world.database, target) == before
    assert [r for r in audit_records(world.database, action="user.role.grant") if r.actor == "sysadmin"] == []


def test_a_system_administrator_cannot_revoke_a_role(world: Any, client: TestClient) -> None:
    for username in ("auditor", "secadmin", "staff_a"):
        path = f"/api/v1/users/{world.users[username]}/grants/{grant_id(world, username)}"
        before = user_row(world.database, world.users[username])
        assert_problem(client.delete(path, headers=world.headers("sysadmin")), 403, "permission-denied")
        assert denials(world, "sysadmin", "DELETE", path) == 1
        assert user_row(world.database, world.users[username]) == before


def test_an_account_is_created_without_roles_over_the_api(world: Any, client: TestClient) -> None:
    count = row_count(world.database, User)
    for role in ("audit_admin", "viewer"):
        response = client.post("/api/v1/users", headers=world.headers("sysadmin"), json={
            "username": "with-role", "password": "Fresh-Account-Pass-1!", "unit_id": world.hq,
            "grants": [{"role": role, "unit_id": world.hq}]})
        body = assert_problem(response, 422, "bad-input")
        assert "security administrator" in body["detail"] and [e["field"] for e in body["errors"]] == ["grants"]
    assert row_count(world.database, User) == count
    # The security administrator, who may grant, still makes no account.
    response = client.post("/api/v1/users", headers=world.headers("secadmin"), json={
        "username": "with-role", "password": "Fresh-Account-Pass-1!", "unit_id": world.hq,
        "grants": [{"role": "viewer", "unit_id": world.hq}]})
    assert assert_problem(response, 403, "permission-denied")["permission"] == "users:write"
    assert row_count(world.database, User) == count


# --- administrator accounts are out of reach over the API --------------------------------------------


ADMIN_TARGETS = [("sysadmin", "auditor"), ("sysadmin", "secadmin"), ("sysadmin", "sysadmin_a"),
                 ("sysadmin_a", "auditor_a"), ("sysadmin_a", "secadmin_a")]


@pytest.mark.parametrize(("actor", "target"), ADMIN_TARGETS, ids=[f"{a}-{t}" for a, t in ADMIN_TARGETS])
def test_a_system_administrator_cannot_take_over_an_administrator_account(
    world: Any, client: TestClient, actor: str, target: str
) -> None:
    h = world.headers(actor)
    user_id = world.users[target]
    before = user_row(world.database, user_id)
    attempts = [
        ("POST", f"/api/v1/users/{user_id}/password", {"password": TAKEN_OVER},
         f"vigil user reset-password {target}"),
        ("PATCH", f"/api/v1/users/{user_id}", {"disabled": True}, f"vigil user disable {target}"),
        ("PATCH", f"/api/v1/users/{user_id}", {"unit_id": world.line_a}, f"vigil user move {target}"),
    ]
    for method, path, body, command in attempts:
        detail = assert_problem(client.request(method, path, headers=h, json=body), 403, "permission-denied")["detail"]
        assert command in detail and "only on the server" in detail, detail
        assert denials(world, actor, method, path) >= 1
    assert user_row(world.database, user_id) == before
    # The target still signs in with their own password, and their token still works.
    assert client.get("/api/v1/me", headers=world.headers(target)).status_code == 200
    # What does not take the account over stays allowed: their name, and lifting a lockout.
    assert client.patch(f"/api/v1/users/{user_id}", headers=h, json={"display_name": "Renamed"}).status_code == 200
    assert client.post(f"/api/v1/users/{user_id}/unlock", headers=h).status_code == 200


def test_a_system_administrator_still_resets_ordinary_accounts(world: Any, client: TestClient) -> None:
    h = world.headers("sysadmin")
    for username in ("responder", "viewer", "nobody"):
        response = client.post(f"/api/v1/users/{world.users[username]}/password", headers=h,
                                json={"password": "Temporary-Pass-55!"})
        assert response.status_code == 200, (username, response.text)
        assert response.json()["must_change_password"] is True
    staff_a = world.users["staff_a"]
    assert client.patch(f"/api/v1/users/{staff_a}", headers=world.headers("sysadmin_a"),
                        json={"disabled": True, "unit_id": world.branch_a}).status_code == 200
    # Once the security administrator makes an account an administrator, it is out of reach too.
    analyst = world.users["analyst"]
    assert client.post(f"/api/v1/users/{analyst}/grants", headers=world.headers("secadmin"),
                       json={"role": "audit_admin", "unit_id": world.hq}).status_code == 201
    assert_problem(client.post(f"/api/v1/users/{analyst}/password", headers=h, json={"password": TAKEN_OVER}), 403)


def test_the_operator_on_the_server_may_change_an_administrator_account(world: Any) -> None:
    """The services refuse only a signed-in principal: the `vigil` command's operator context may."""
    auditor = world.users["auditor"]
    with world.database.transaction(Scope.system()) as session:
        ctx = system_context(session)
        service.reset_password(ctx, user_id=auditor, password=TAKEN_OVER)
        service.update_user(ctx, user_id=auditor, data=UserUpdate(unit_id=world.branch_a))
    row = user_row(world.database, auditor)
    assert row["unit_id"] == world.branch_a and row["must_change_password"] is True
    [reset] = [r for r in audit_records(world.database, action="user.password.reset")
               if r.target_id == str(auditor)]
    assert reset.actor == "test-setup"


# --- the security administrator grants, and only within their units -----------------------------------


def test_the_security_administrator_grants_but_makes_no_account_and_sets_no_password(
    world: Any, client: TestClient
) -> None:
    h = world.headers("secadmin_a")
    staff_a = world.users["staff_a"]
    granted = client.post(f"/api/v1/users/{staff_a}/grants", headers=h,
                          json={"role": "analyst", "unit_id": world.line_a})
    assert granted.status_code == 201 and granted.json()["granted_by"] == "secadmin_a"
    me = client.get("/api/v1/me", headers=world.headers("staff_a")).json()
    assert sorted(g["role"] for g in me["roles"]) == ["analyst", "viewer"]
    [record] = [r for r in audit_records(world.database, action="user.role.grant") if r.actor == "secadmin_a"]
    assert record.details == {"username": "staff_a", "role": "analyst", "unit_id": world.line_a}
    before = user_row(world.database, staff_a)
    for method, path, body in [
        ("POST", "/api/v1/users", {"username": "by-secadmin", "password": "Fresh-Account-Pass-1!",
                                   "unit_id": world.branch_a}),
        ("POST", f"/api/v1/users/{staff_a}/password", {"password": TAKEN_OVER}),
        ("PATCH", f"/api/v1/users/{staff_a}", {"disabled": True}),
        ("POST", f"/api/v1/users/{staff_a}/unlock", None),
    ]:
        assert assert_problem(client.request(method, path, headers=h, json=body), 403)["permission"] == "users:write"
    assert user_row(world.database, staff_a) == before
    assert client.delete(f"/api/v1/users/{staff_a}/grants/{granted.json()['id']}", headers=h).status_code == 204


def test_a_branch_security_administrator_cannot_grant_on_another_branch(world: Any, client: TestClient) -> None:
    h = world.headers("secadmin_a")
    staff_a, staff_b = world.users["staff_a"], world.users["staff_b"]
    before = {name: user_row(world.database, world.users[name]) for name in ("staff_a", "staff_b")}
    for target, unit in [(staff_a, world.branch_b), (staff_a, world.hq), (staff_b, world.branch_b),
                         (staff_b, world.branch_a)]:
        response = client.post(f"/api/v1/users/{target}/grants", headers=h, json={"role": "analyst", "unit_id": unit})
        assert_problem(response, 404, "not-found")  # as if it did not exist
    revoke = client.delete(f"/api/v1/users/{staff_b}/grants/{grant_id(world, 'staff_b')}", headers=h)
    assert_problem(revoke, 404, "not-found")
    assert {name: user_row(world.database, world.users[name]) for name in ("staff_a", "staff_b")} == before
    # Headquarters' security administrator reaches every branch.
    assert client.post(f"/api/v1/users/{staff_b}/grants", headers=world.headers("secadmin"),
                       json={"role": "analyst", "unit_id": world.branch_b}).status_code == 201


def test_an_administrator_role_waits_until_the_account_has_its_own_password(world: Any, client: TestClient) -> None:
    """Otherwise the system administrator, who chose the first password, could sign in as the new auditor."""
    created = client.post("/api/v1/users", headers=world.headers("sysadmin"),
                          json={"username": "new.auditor", "password": "First-Pass-Set-By-1!", "unit_id": world.hq})
    assert created.status_code == 201 and created.json()["must_change_password"] is True
    user_id = created.json()["id"]
    grant = {"role": "audit_admin", "unit_id": world.hq}
    refused = client.post(f"/api/v1/users/{user_id}/grants", headers=world.headers("secadmin"), json=grant)
    assert "chosen their own password" in assert_problem(refused, 409, "conflict")["detail"]
    with world.database.transaction(Scope.system()) as session:
        assert session.scalar(select(RoleGrant.id).where(RoleGrant.user_id == user_id)) is None
    # An ordinary role needs no wait.
    assert client.post(f"/api/v1/users/{user_id}/grants", headers=world.headers("secadmin"),
                       json={"role": "viewer", "unit_id": world.hq}).status_code == 201
    with world.database.transaction(Scope.system()) as session:
        user = session.get(User, user_id)
        assert user is not None
        user.must_change_password = False  # as after the owner's own password change
    granted = client.post(f"/api/v1/users/{user_id}/grants", headers=world.headers("secadmin"), json=grant)
    assert granted.status_code == 201
