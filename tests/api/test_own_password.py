"""Changing one's own password: a wrong current password counts towards lockout exactly like a failed
sign-in (same policy, audited, kept although the request is refused), and a locked account's session
cannot change the password at all. Whoever holds a stolen session or token cannot guess without limit.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from vigil.accounts import signin
from vigil.core.db import Scope
from vigil.web.deps import SESSION_COOKIE

from .support import assert_problem, audit_records, user_row, web_session

PASSWORD = "Correct-Horse-42!"  # conftest.PASSWORD
WRONG = "Not-The-Password-1!"
NEW = "Quite-Different-Secret-17!"


def set_policy(client: TestClient, world: Any, **changes: int) -> None:
    policy = {"password_min_length": 12, "password_min_classes": 3, "password_max_age_days": 90,
              "max_failed_logins": 5, "lockout_minutes": 15, "token_max_days": 365, **changes}
    assert client.put("/api/v1/security/policy", headers=world.headers("secadmin"), json=policy).status_code == 200


def change(client: TestClient, headers: dict[str, str], current: str, new: str = NEW) -> Any:
    return client.post("/api/v1/me/password", headers=headers, json={"current_password": current,
                                                                     "new_password": new})


def sign_in(world: Any, username: str, password: str) -> str:
    with world.database.transaction(Scope.system()) as session:
        return signin.authenticate(session, username=username, password=password, source_ip="127.0.0.1").reason


def test_a_wrong_current_password_is_counted_and_audited(world: Any, client: TestClient) -> None:
    analyst = world.users["analyst"]
    before = user_row(world.database, analyst)
    refused = change(client, world.headers("analyst"), WRONG)
    assert assert_problem(refused, 403, "permission-denied")["detail"] == "the current password is wrong"
    after = user_row(world.database, analyst)
    assert after["failed_logins"] == 1  # kept, although the request was refused
    assert after["password_hash"] == before["password_hash"]
    [failure] = audit_records(world.database, action="user.password.change", outcome="failure")
    assert (failure.actor, failure.target_id, failure.details) == ("analyst", str(analyst),
                                                                    {"reason": "wrong password"})
    assert [r.target_id for r in audit_records(world.database, action="auth.denied", actor="analyst")] == [
        "POST /api/v1/me/password"]
    # The right password resets the count, like a successful sign-in.
    assert change(client, world.headers("analyst"), PASSWORD).status_code == 204
    assert user_row(world.database, analyst)["failed_logins"] == 0


def test_wrong_current_passwords_lock_the_account_like_failed_sign_ins(world: Any, client: TestClient) -> None:
    set_policy(client, world, max_failed_logins=3, lockout_minutes=30)
    viewer = world.users["viewer"]
    before = user_row(world.database, viewer)
    # One failed sign-in and two wrong current passwords: three failures of the same count.
    assert sign_in(world, "viewer", WRONG) == "wrong password"
    for _ in range(2):
        assert_problem(change(client, world.headers("viewer"), WRONG), 403)
    row = user_row(world.database, viewer)
    assert row["locked_until"] is not None and row["failed_logins"] == 0
    [lock] = audit_records(world.database, action="user.lock")
    assert (lock.actor, lock.target_id, lock.details) == ("viewer", str(viewer),
                                                          {"minutes": 30, "after_failures": 3})
    # Locked: the right current password no longer changes anything, and signing in is refused.
    locked = change(client, world.headers("viewer"), PASSWORD)
    assert "locked" in assert_problem(locked, 403, "permission-denied")["detail"]
    assert user_row(world.database, viewer)["password_hash"] == before["password_hash"]
    assert sign_in(world, "viewer", PASSWORD) == "account locked"
    reasons = [r.details["reason"] for r in audit_records(world.database, action="user.password.change",
                                                          outcome="failure")]
    assert reasons == ["wrong password", "wrong password", "account locked"]
    # An administrator's unlock lets the user change the password again.
    assert client.post(f"/api/v1/users/{viewer}/unlock", headers=world.headers("sysadmin")).status_code == 200
    assert change(client, world.headers("viewer"), PASSWORD).status_code == 204
    assert sign_in(world, "viewer", NEW) == "ok"


def test_a_browser_session_is_counted_too(world: Any, client: TestClient) -> None:
    set_policy(client, world, max_failed_logins=2, lockout_minutes=5)
    secret, csrf = web_session(world.database, "responder")
    headers = {"Cookie": f"{SESSION_COOKIE}={secret}", "X-CSRF-Token": csrf}
    for _ in range(2):
        assert_problem(change(client, headers, WRONG), 403)
    assert user_row(world.database, world.users["responder"])["locked_until"] is not None
    assert "locked" in assert_problem(change(client, headers, PASSWORD), 403)["detail"]
    # A refused CSRF check is no password guess: it counts nothing.
    other = world.users["analyst"]
    secret, _ = web_session(world.database, "analyst")
    assert_problem(change(client, {"Cookie": f"{SESSION_COOKIE}={secret}", "X-CSRF-Token": "forged"}, WRONG), 403,
                   "csrf-failed")
    assert user_row(world.database, other)["failed_logins"] == 0


def test_a_refused_new_password_counts_nothing(world: Any, client: TestClient) -> None:
    analyst = world.users["analyst"]
    weak = change(client, world.headers("analyst"), PASSWORD, new="short")
    assert "password policy" in assert_problem(weak, 422, "bad-input")["detail"]
    assert user_row(world.database, analyst)["failed_logins"] == 0
    assert audit_records(world.database, action="user.password.change") == []
