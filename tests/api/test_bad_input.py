"""Bad input of every kind gets a clear 4xx, is audited where it matters, and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from vigil.accounts import service, signin
from vigil.accounts.models import ApiToken, RoleGrant, User
from vigil.accounts.schemas import GrantCreate, UserCreate
from vigil.core.auth import Role
from vigil.core.config import load_settings
from vigil.core.db import Scope, utcnow
from vigil.core.errors import Conflict
from vigil.web.app import create_app
from vigil.web.deps import SESSION_COOKIE

from .support import (
    assert_problem,
    audit_count,
    audit_records,
    new_token,
    row_count,
    system_context,
    user_row,
    web_session,
)

PASSWORD = "Correct-Horse-42!"  # conftest.PASSWORD


def sign_in(world: Any, username: str, password: str) -> signin.SignInResult:
    with world.database.transaction(Scope.system()) as session:
        result = signin.authenticate(session, username=username, password=password, source_ip="203.0.113.7")
        return signin.SignInResult(None, result.reason) if result.user is None else result


def set_policy(client: TestClient, world: Any, **changes: int) -> None:
    policy = {"password_min_length": 12, "password_min_classes": 3, "password_max_age_days": 90,
              "max_failed_logins": 5, "lockout_minutes": 15, "token_max_days": 365, **changes}
    assert client.put("/api/v1/security/policy", headers=world.headers("secadmin"), json=policy).status_code == 200


# --- wrong passwords and lockout --------------------------------------------------------------------


def test_wrong_password_is_a_generic_refusal_counted_and_audited(world: Any) -> None:
    viewer = world.users["viewer"]
    wrong = sign_in(world, "viewer", "Not-The-Password-1!")
    unknown = sign_in(world, "no-such-user", "Not-The-Password-1!")
    assert wrong.user is None and unknown.user is None
    assert signin.GENERIC_REFUSAL == "Invalid user name or password."
    assert user_row(world.database, viewer)["failed_logins"] == 1
    failures = audit_records(world.database, action="auth.login", outcome="failure")
    assert [(r.actor, r.source_ip, r.details["reason"]) for r in failures] == [
        ("viewer", "203.0.113.7", "wrong password"), ("no-such-user", "203.0.113.7", "unknown user")]
    assert sign_in(world, "viewer", PASSWORD).user is not None
    assert user_row(world.database, viewer)["failed_logins"] == 0


def test_repeated_failures_lock_the_account_until_an_administrator_unlocks_it(world: Any, client: TestClient) -> None:
    set_policy(client, world, max_failed_logins=3, lockout_minutes=30)
    analyst = world.users["analyst"]
    for _ in range(3):
        assert sign_in(world, "analyst", "Not-The-Password-1!").user is None
    row = user_row(world.database, analyst)
    assert row["locked_until"] is not None and row["locked_until"] > utcnow() + timedelta(minutes=29)
    assert [r.target_id for r in audit_records(world.database, action="user.lock")] == [str(analyst)]
    # Locked: even the right password is refused, and further tries do not extend anything.
    refused = sign_in(world, "analyst", PASSWORD)
    assert refused.user is None and refused.reason == "account locked"
    assert client.get(f"/api/v1/users/{analyst}", headers=world.headers("sysadmin")).json()["locked"] is True
    unlocked = client.post(f"/api/v1/users/{analyst}/unlock", headers=world.headers("sysadmin"))
    assert unlocked.status_code == 200 and unlocked.json()["locked"] is False
    assert sign_in(world, "analyst", PASSWORD).user is not None
    assert [r.outcome for r in audit_records(world.database, action="user.unlock")] == ["success"]


# --- tokens -----------------------------------------------------------------------------------------


def test_expired_and_revoked_tokens_are_refused_with_401(world: Any, client: TestClient) -> None:
    expired, expired_id = new_token(world.database, "viewer")
    revoked, revoked_id = new_token(world.database, "viewer")
    with world.database.transaction(Scope.system()) as session:
        past = utcnow() - timedelta(seconds=1)
        session.execute(update(ApiToken).where(ApiToken.id == expired_id).values(expires_at=past))
    assert client.delete(f"/api/v1/me/tokens/{revoked_id}", headers=world.headers("viewer")).status_code == 200
    before = audit_count(world.database)
    for secret in (expired, revoked, "vgl_never-issued", ""):
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
        body = assert_problem(response, 401, "not-authenticated")
        assert response.headers["www-authenticate"] == "Bearer"
        assert "credential" not in body
    assert_problem(client.get("/api/v1/me", headers={"Authorization": "Basic dmlld2VyOng="}), 401)
    # Each refused credential is on the trail; nothing else happened.
    assert audit_count(world.database) == before + 5
    assert {r.outcome for r in audit_records(world.database, action="auth.token")} == {"denied"}


def test_a_token_limited_to_viewer_cannot_do_what_its_admin_owner_can(world: Any, client: TestClient) -> None:
    with world.database.transaction(Scope.system()) as session:
        service.grant_role(system_context(session), user=service.find_user(session, "sysadmin"),
                           grant=GrantCreate(role=Role.VIEWER, unit_id=world.hq))
    full, _ = new_token(world.database, "sysadmin")  # carries both roles the owner now holds
    limited = client.post("/api/v1/me/tokens", headers={"Authorization": f"Bearer {full}"},
                          json={"name": "dashboards only", "roles": ["viewer"]})
    assert limited.status_code == 201 and limited.json()["roles"] == ["viewer"]
    h = {"Authorization": f"Bearer {limited.json()['token']}"}
    count = row_count(world.database, User)
    assert client.get("/api/v1/users", headers=world.headers("sysadmin")).status_code == 200
    assert_problem(client.get("/api/v1/users", headers=h), 403, "permission-denied")
    assert_problem(client.post("/api/v1/users", headers=h, json={
        "username": "by-token", "password": "Fresh-Account-Pass-1!", "unit_id": world.hq}), 403)
    assert client.get("/api/v1/units", headers=h).status_code == 200  # viewer may read units
    # Nor can it mint itself a wider token.
    wider = client.post("/api/v1/me/tokens", headers=h, json={"name": "escalate", "roles": ["system_admin"]})
    assert_problem(wider, 422, "bad-input")
    assert [e["field"] for e in wider.json()["errors"]] == ["roles"]
    default = client.post("/api/v1/me/tokens", headers=h, json={"name": "same again"})
    assert default.status_code == 201 and default.json()["roles"] == ["viewer"]
    assert row_count(world.database, User) == count


def test_a_token_cannot_carry_roles_its_owner_lacks(world: Any, client: TestClient) -> None:
    tokens = row_count(world.database, ApiToken)
    secret, csrf = web_session(world.database, "viewer")
    response = client.post("/api/v1/me/tokens", headers={"Cookie": f"{SESSION_COOKIE}={secret}", "X-CSRF-Token": csrf},
                           json={"name": "escalate", "roles": ["viewer", "system_admin"]})
    body = assert_problem(response, 422, "bad-input")
    assert body["errors"] == [{"field": "roles", "message": "not held: system_admin"}]
    by_token = client.post("/api/v1/me/tokens", headers=world.headers("viewer"),
                           json={"name": "escalate", "roles": ["security_admin"]})
    assert [e["field"] for e in assert_problem(by_token, 422, "bad-input")["errors"]] == ["roles"]
    assert row_count(world.database, ApiToken) == tokens


def test_missing_permission_is_403_and_changes_nothing(world: Any, client: TestClient) -> None:
    staff = world.users["staff_a"]
    before = user_row(world.database, staff)
    response = client.patch(f"/api/v1/users/{staff}", headers=world.headers("analyst"), json={"disabled": True})
    assert assert_problem(response, 403, "permission-denied")["permission"] == "users:write"
    assert user_row(world.database, staff) == before


# --- malformed requests -----------------------------------------------------------------------------


def test_malformed_json_is_422(world: Any, client: TestClient) -> None:
    count = row_count(world.database, User)
    response = client.post("/api/v1/users", headers={**world.headers("sysadmin"), "Content-Type": "application/json"},
                           content=b'{"username": "half", "password": ')
    body = assert_problem(response, 422, "bad-input")
    assert body["errors"] and body["errors"][0]["message"] == "JSON decode error"
    assert row_count(world.database, User) == count


def test_bad_fields_are_422_listing_each_one(world: Any, client: TestClient) -> None:
    count = row_count(world.database, User)
    response = client.post("/api/v1/users", headers=world.headers("sysadmin"), json={
        "username": "!no", "password": "", "unit_id": "headquarters", "email": "not an address",
        "grants": [{"role": "king", "unit_id": world.hq}], "shoe_size": 44})
    body = assert_problem(response, 422, "bad-input")
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"username", "password", "unit_id", "email", "grants.0.role", "shoe_size"}
    for field in fields:
        assert field in body["detail"]
    assert row_count(world.database, User) == count
    # Business rules answer the same way: the password policy names the field.
    weak = client.post("/api/v1/users", headers=world.headers("sysadmin"), json={
        "username": "weakling", "password": "password", "unit_id": world.hq})
    assert {e["field"] for e in assert_problem(weak, 422, "bad-input")["errors"]} == {"password"}
    assert row_count(world.database, User) == count


def test_null_for_a_field_that_cannot_be_empty_is_422(world: Any, client: TestClient) -> None:
    staff = world.users["staff_a"]
    before = user_row(world.database, staff)
    for field in ("display_name", "unit_id", "disabled"):
        response = client.patch(f"/api/v1/users/{staff}", headers=world.headers("sysadmin"), json={field: None})
        assert [e["field"] for e in assert_problem(response, 422, "bad-input")["errors"]] == [field]
    response = client.patch("/api/v1/me", headers=world.headers("staff_a"), json={"display_name": None})
    assert [e["field"] for e in assert_problem(response, 422, "bad-input")["errors"]] == ["display_name"]
    assert user_row(world.database, staff) == before
    # Null clears what may be empty.
    cleared = client.patch(f"/api/v1/users/{staff}", headers=world.headers("sysadmin"),
                           json={"email": None, "language": None})
    assert cleared.status_code == 200 and (cleared.json()["email"], cleared.json()["language"]) == ("", None)


def test_bad_query_and_path_parameters_are_422(world: Any, client: TestClient) -> None:
    h = world.headers("sysadmin")
    body = assert_problem(client.get("/api/v1/users/not-a-number", headers=h), 422, "bad-input")
    assert body["errors"][0]["field"] == "user_id" and body["errors"][0]["in"] == "path"
    body = assert_problem(client.get("/api/v1/users", headers=h, params={"limit": "many"}), 422)
    assert body["errors"][0] == {"field": "limit", "in": "query", "message": body["errors"][0]["message"]}


@pytest.mark.parametrize("method, path, body, field", [
    ("PATCH", "/api/v1/me", {"display_name": "nul\u0000byte"}, "display_name"),
    ("POST", "/api/v1/units", {"name": "nul\u0000", "kind": "branch", "parent_id": 1}, "name"),
    ("POST", "/api/v1/units", {"name": "huge", "kind": "branch", "parent_id": 2**40}, "parent_id"),
    ("PATCH", "/api/v1/users/1", {"unit_id": 2**31}, "unit_id"),
    ("POST", "/api/v1/users/1/grants", {"role": "viewer", "unit_id": 0}, "unit_id"),
    ("GET", f"/api/v1/users/{2**31}", None, "user_id"),
    ("GET", f"/api/v1/users/{2**70}", None, "user_id"),
    ("GET", "/api/v1/users?unit_id=99999999999", None, "unit_id"),
    ("GET", "/api/v1/users?q=nul%00byte", None, "q"),
    ("GET", "/api/v1/audit?actor=nul%00byte", None, "actor"),
    ("GET", f"/admin/users/{2**62}", None, None),
])
def test_values_the_store_cannot_hold_are_422_not_500(world: Any, client: TestClient, method: str, path: str,
                                                      body: Any, field: str | None) -> None:
    """Numbers beyond the id range and NUL characters (which PostgreSQL cannot store) are bad input."""
    who = "auditor" if "/audit" in path else "secadmin" if "/grants" in path else "sysadmin"
    records = audit_count(world.database)
    before = user_row(world.database, world.users["sysadmin"])
    if path.startswith("/admin/"):
        secret, _ = web_session(world.database, who)
        # Pages answer as pages; the point is that nothing breaks (PostgreSQL refuses such an id).
        assert client.get(path, headers={"Cookie": f"{SESSION_COOKIE}={secret}"}).status_code in (404, 422)
        return
    response = client.request(method, path, json=body, headers=world.headers(who))
    problem = assert_problem(response, 422, "bad-input")
    if field is not None:
        assert [e["field"] for e in problem["errors"]] == [field]
    assert user_row(world.database, world.users["sysadmin"]) == before
    assert audit_count(world.database) == records


def test_audit_search_times_need_an_offset(world: Any, client: TestClient) -> None:
    h = world.headers("auditor")
    for value in ("2026-01-01T00:00:00", "2026-01-01", "yesterday"):
        body = assert_problem(client.get("/api/v1/audit", headers=h, params={"since": value}), 422, "bad-input")
        assert [(e["field"], e["in"]) for e in body["errors"]] == [("since", "query")]
    everything = client.get("/api/v1/audit", headers=h).json()["total"]
    since = client.get("/api/v1/audit", headers=h, params={"since": "2000-01-01T00:00:00Z"}).json()
    assert since["total"] == everything
    assert client.get("/api/v1/audit", headers=h, params={"until": "2000-01-01T08:00:00+08:00"}).json()["total"] == 0
    body = assert_problem(client.get("/api/v1/audit", headers=h, params={"q": "x" * 201}), 422, "bad-input")
    assert body["errors"][0]["field"] == "q"


# --- CSRF -------------------------------------------------------------------------------------------


@pytest.fixture
def browser(world: Any, client: TestClient) -> Iterator[str]:
    """The client signed in as the viewer with a session cookie, as a browser is; yields the CSRF token."""
    secret, csrf = web_session(world.database, "viewer")
    client.cookies.set(SESSION_COOKIE, secret)
    yield csrf
    client.cookies.clear()


def test_cookie_requests_that_change_state_need_the_csrf_header(world: Any, client: TestClient, browser: str) -> None:
    viewer = world.users["viewer"]
    _, token_id = new_token(world.database, "viewer")
    before = user_row(world.database, viewer)
    tokens = row_count(world.database, ApiToken)
    attempts = [
        ("PATCH", "/api/v1/me", {"display_name": "forged"}),
        ("POST", "/api/v1/me/tokens", {"name": "forged"}),
        ("DELETE", f"/api/v1/me/tokens/{token_id}", None),
    ]
    assert client.get("/api/v1/me").status_code == 200  # reading needs no token
    for method, path, body in attempts:
        for headers in ({}, {"X-CSRF-Token": "guessed"}, {"X-CSRF-Token": ""}):
            response = client.request(method, path, json=body, headers=headers)
            assert_problem(response, 403, "csrf-failed")
    assert user_row(world.database, viewer) == before
    assert row_count(world.database, ApiToken) == tokens
    assert len(audit_records(world.database, action="auth.denied", actor="viewer")) == 9
    # With the session's token the same requests go through.
    ok = {"X-CSRF-Token": browser}
    assert client.patch("/api/v1/me", json={"display_name": "Vivian"}, headers=ok).json()["display_name"] == "Vivian"
    assert client.post("/api/v1/me/tokens", json={"name": "mine"}, headers=ok).status_code == 201
    assert client.delete(f"/api/v1/me/tokens/{token_id}", headers=ok).json()["revoked_at"] is not None


def test_bearer_requests_need_no_csrf_token(world: Any, client: TestClient) -> None:
    response = client.patch("/api/v1/me", headers=world.headers("viewer"), json={"display_name": "Vee"})
    assert response.status_code == 200


# --- oversized bodies -------------------------------------------------------------------------------


@pytest.fixture
def small_client(world: Any, settings: Any) -> Iterator[TestClient]:
    """The app with a 2 KiB body limit."""
    small = load_settings(data_dir=settings.data_dir, database_url=settings.database_url, max_body_bytes=2048)
    with TestClient(create_app(small, world.database), base_url="https://testserver") as test_client:
        yield test_client


def test_oversized_bodies_are_413_whether_announced_or_streamed(world: Any, small_client: TestClient) -> None:
    count = row_count(world.database, User)
    records = audit_count(world.database)
    payload = b'{"username": "bulky", "password": "Bulky-Account-Pass-1!", "unit_id": 1, "display_name": "' + (
        b"x" * 4000) + b'"}'
    headers = {**world.headers("sysadmin"), "Content-Type": "application/json"}
    announced = small_client.post("/api/v1/users", content=payload, headers=headers)
    body = assert_problem(announced, 413, "payload-too-large")
    assert body["instance"] == "/api/v1/users" and "2048" in body["detail"]
    assert announced.headers["x-content-type-options"] == "nosniff"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 500):
            yield payload[start:start + 500]

    streamed = small_client.post("/api/v1/users", content=chunks(), headers=headers)
    assert "content-length" not in streamed.request.headers
    assert streamed.request.headers["transfer-encoding"] == "chunked"
    body = assert_problem(streamed, 413, "payload-too-large")
    assert body["instance"] == "/api/v1/users"
    assert row_count(world.database, User) == count
    assert audit_count(world.database) == records
    # A body within the limit still works.
    fine = small_client.post("/api/v1/users", headers=world.headers("sysadmin"), json={
        "username": "small", "password": "Compact-Account-Pass-1!", "unit_id": world.hq})
    assert fine.status_code == 201


def test_oversized_forms_are_413_too(world: Any, small_client: TestClient) -> None:
    secret, csrf = web_session(world.database, "sysadmin")
    count = row_count(world.database, User)
    form = f"csrf_token={csrf}&username=bulky&password=Bulky-Account-Pass-1!&unit_id=1&display_name=".encode()
    form += b"x" * 4000
    headers = {"Cookie": f"{SESSION_COOKIE}={secret}", "Content-Type": "application/x-www-form-urlencoded"}
    announced = small_client.post("/admin/users", content=form, headers=headers, follow_redirects=False)
    assert announced.status_code == 413
    streamed = small_client.post("/admin/users", content=iter([form[:2000], form[2000:]]), headers=headers,
                                 follow_redirects=False)
    assert streamed.status_code == 413
    assert row_count(world.database, User) == count


# --- separation of duties and self-protection -------------------------------------------------------


def test_one_account_cannot_hold_two_administrator_powers(world: Any, client: TestClient) -> None:
    h = world.headers("secadmin")
    count = row_count(world.database, User)
    with pytest.raises(Conflict, match="separation of duties"), world.database.transaction(Scope.system()) as session:
        service.create_user(system_context(session), data=UserCreate(
            username="overlord", password="Overseer-Account-1!", unit_id=world.hq,
            grants=[GrantCreate(role=Role.SYSTEM_ADMIN, unit_id=world.hq),
                    GrantCreate(role=Role.AUDIT_ADMIN, unit_id=world.branch_a)]))
    assert row_count(world.database, User) == count
    for username, role in [("sysadmin", "audit_admin"), ("auditor", "system_admin"), ("auditor_a", "security_admin")]:
        before = user_row(world.database, world.users[username])
        granted = client.post(f"/api/v1/users/{world.users[username]}/grants", headers=h,
                              json={"role": role, "unit_id": world.line_a})
        assert_problem(granted, 409, "conflict")
        assert user_row(world.database, world.users[username]) == before
    # Other roles combine freely with one of the three.
    assert client.post(f"/api/v1/users/{world.users['auditor']}/grants", headers=h,
                       json={"role": "viewer", "unit_id": world.hq}).status_code == 201


def test_separation_counts_grants_the_granting_administrator_cannot_see(world: Any, client: TestClient) -> None:
    """A user of branch_a who is system administrator at headquarters stays one: branch_a's security
    administrator cannot add the audit role, although the headquarters grant is outside their view."""
    dual = world.add_user("dual", Role.SYSTEM_ADMIN, world.hq, token=False)
    with world.database.transaction(Scope.system()) as session:
        session.execute(update(User).where(User.id == dual).values(unit_id=world.branch_a))
    before = user_row(world.database, dual)
    response = client.post(f"/api/v1/users/{dual}/grants", headers=world.headers("secadmin_a"),
                           json={"role": "audit_admin", "unit_id": world.branch_a})
    assert response.status_code in (403, 409), response.text
    assert user_row(world.database, dual) == before
    # Headquarters sees both sides and gets the separation answer.
    response = client.post(f"/api/v1/users/{dual}/grants", headers=world.headers("secadmin"),
                           json={"role": "audit_admin", "unit_id": world.branch_a})
    assert_problem(response, 409, "conflict")


def test_nobody_changes_their_own_roles(world: Any, client: TestClient) -> None:
    me = world.users["secadmin"]  # who grants and revokes roles, but not their own
    before = user_row(world.database, me)
    granted = client.post(f"/api/v1/users/{me}/grants", headers=world.headers("secadmin"),
                          json={"role": "viewer", "unit_id": world.hq})
    assert "your own roles" in assert_problem(granted, 403, "permission-denied")["detail"]
    with world.database.transaction(Scope.system()) as session:
        own_grant = session.scalar(select(RoleGrant.id).where(RoleGrant.user_id == me))
    revoked = client.delete(f"/api/v1/users/{me}/grants/{own_grant}", headers=world.headers("secadmin"))
    assert "your own roles" in assert_problem(revoked, 403, "permission-denied")["detail"]
    assert user_row(world.database, me) == before


def test_a_user_cannot_disable_themselves(world: Any, client: TestClient) -> None:
    me = world.users["sysadmin"]
    before = user_row(world.database, me)
    response = client.patch(f"/api/v1/users/{me}", headers=world.headers("sysadmin"), json={"disabled": True})
    assert "your own account" in assert_problem(response, 409, "conflict")["detail"]
    assert user_row(world.database, me) == before
    assert client.get("/api/v1/me", headers=world.headers("sysadmin")).status_code == 200


def test_a_disabled_user_is_signed_out_everywhere(world: Any, client: TestClient) -> None:
    staff = world.users["staff_a"]
    secret, _ = web_session(world.database, "staff_a")
    assert client.patch(f"/api/v1/users/{staff}", headers=world.headers("sysadmin"),
                        json={"disabled": True}).status_code == 200
    assert_problem(client.get("/api/v1/me", headers=world.headers("staff_a")), 401)
    assert_problem(client.get("/api/v1/me", headers={"Cookie": f"{SESSION_COOKIE}={secret}"}), 401)
    assert sign_in(world, "staff_a", PASSWORD).user is None
