"""Signing in and out through the pages: CSRF on the sign-in form, lockout, no open redirects."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from vigil.web.deps import LOGIN_CSRF_COOKIE, SESSION_COOKIE

from .support import PASSWORD, audit_actions, browser, csrf_of, post_form, sign_in, signed_in, stored_user, text_of

WRONG = "Wrong-Password-1!"
REFUSAL = "Invalid user name or password."


def cookie_attributes(response: httpx.Response, name: str) -> set[str]:
    headers = response.headers.get_list("set-cookie")
    line = next(h for h in headers if h.startswith(f"{name}="))
    return {part.strip().lower() for part in line.split(";")[1:]}


def test_sign_in_starts_a_secure_session_and_goes_where_asked(app: FastAPI, world: Any) -> None:
    client = browser(app)
    answer = sign_in(client, "analyst", next_url="/account")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account"
    assert {"httponly", "secure", "path=/", "samesite=lax"} <= cookie_attributes(answer, SESSION_COOKIE)
    assert client.get("/account").status_code == 200
    assert SESSION_COOKIE in client.cookies and LOGIN_CSRF_COOKIE not in client.cookies


def test_wrong_password_gets_the_generic_refusal_and_counts_towards_lockout(app: FastAPI, world: Any) -> None:
    database = world.database
    client = browser(app)
    wrong = sign_in(client, "analyst", WRONG)
    unknown = sign_in(client, "no-such-user", WRONG)
    for answer in (wrong, unknown):
        assert answer.status_code == 200
        assert REFUSAL in text_of(answer)
    assert SESSION_COOKIE not in client.cookies
    user = stored_user(database, "analyst")
    assert user is not None and user.failed_logins == 1
    failures = audit_actions(database, action="auth.login", outcome="failure")
    assert [(r.actor, r.details["reason"]) for r in failures][-2:] == [("analyst", "wrong password"),
                                                                       ("no-such-user", "unknown user")]


def test_repeated_wrong_passwords_lock_the_account(app: FastAPI, world: Any) -> None:
    database = world.database
    client = browser(app)
    for _ in range(5):  # the default policy locks after 5 failures
        assert REFUSAL in text_of(sign_in(client, "viewer", WRONG))
    user = stored_user(database, "viewer")
    assert user is not None and user.locked
    right = sign_in(client, "viewer", PASSWORD)
    assert right.status_code == 200 and REFUSAL in text_of(right)  # same words: no hint that it is locked
    assert SESSION_COOKIE not in client.cookies
    assert len(audit_actions(database, action="user.lock", target_id=str(user.id))) == 1


def test_sign_in_form_without_its_csrf_token_is_refused_and_changes_nothing(app: FastAPI, world: Any) -> None:
    database = world.database
    client = browser(app)
    client.get("/login")  # the CSRF cookie is set, but the form below does not carry the field
    attempts_before = len(audit_actions(database, action="auth.login"))
    for password in (WRONG, PASSWORD):
        answer = client.post("/login", data={"username": "analyst", "password": password}, follow_redirects=False)
        assert answer.status_code == 403
        assert answer.headers["content-type"].startswith("text/html")
        assert "The form has expired" in text_of(answer)
        assert SESSION_COOKIE not in client.cookies
    # A form posted from another site carries a token of its own, but not the cookie.
    forged = browser(app).post("/login", data={"username": "analyst", "password": PASSWORD, "csrf_token": "forged"},
                               follow_redirects=False)
    assert forged.status_code == 403 and SESSION_COOKIE not in forged.cookies
    user = stored_user(database, "analyst")
    assert user is not None and user.failed_logins == 0 and user.last_login_at is None
    assert len(audit_actions(database, action="auth.login")) == attempts_before


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/path", "/\\evil.example", "http:/evil.example", "javascript:alert(1)",
    "evil.example", "/logout", "/login",
])
def test_next_is_followed_only_to_a_local_page(app: FastAPI, world: Any, target: str) -> None:
    client = browser(app)
    assert 'name="next" value=""' in client.get("/login", params={"next": target}).text
    answer = sign_in(client, "analyst", next_url=target)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


def test_a_page_sends_the_visitor_to_sign_in_and_back(app: FastAPI, world: Any) -> None:
    client = browser(app)
    first = client.get("/admin/users?q=staff", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=/admin/users%3Fq%3Dstaff"
    form = client.get(first.headers["location"])
    assert 'name="next" value="/admin/users?q=staff"' in form.text
    answer = client.post("/login", data={"username": "sysadmin", "password": PASSWORD, "csrf_token": csrf_of(form),
                                         "next": "/admin/users?q=staff"}, follow_redirects=False)
    assert answer.headers["location"] == "/admin/users?q=staff"
    assert "staff_a" in client.get(answer.headers["location"]).text


def test_sign_out_ends_the_session(app: FastAPI, world: Any) -> None:
    database = world.database
    client = signed_in(app, "analyst")
    old_cookie = client.cookies[SESSION_COOKIE]
    answer = post_form(client, "/logout", page="/")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert "max-age=0" in cookie_attributes(answer, SESSION_COOKIE)
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=/"
    replay = browser(app)
    replay.cookies.set(SESSION_COOKIE, old_cookie, domain="testserver")
    assert replay.get("/", follow_redirects=False).status_code == 303  # the session ended on the server too
    assert audit_actions(database, action="auth.logout", actor="analyst")


def test_sign_out_without_the_csrf_token_is_refused(app: FastAPI, world: Any) -> None:
    client = signed_in(app, "analyst")
    refused = client.post("/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/").status_code == 200


def test_a_user_must_change_a_reset_password_before_anything_else(app: FastAPI, world: Any) -> None:
    users = world.users
    admin = signed_in(app, "sysadmin")
    detail = f"/admin/users/{users['analyst']}"
    reset = post_form(admin, f"{detail}/password", {"password": "Temporary-Pass-55!"}, page=detail)
    assert reset.status_code == 303 and "notice=password-reset" in reset.headers["location"]

    analyst = browser(app)
    answer = sign_in(analyst, "analyst", "Temporary-Pass-55!", next_url="/account")
    assert answer.headers["location"] == "/account/password?next=/account"
    for page in ("/", "/admin/units", "/account"):
        detour = analyst.get(page, follow_redirects=False)
        assert detour.status_code == 303 and detour.headers["location"].startswith("/account/password?next=")
    form = analyst.get("/account/password?next=/account")
    assert "You must choose a new password before you continue." in text_of(form)

    def change(current: str, new: str, again: str) -> httpx.Response:
        return analyst.post("/account/password", data={
            "csrf_token": csrf_of(form), "current_password": current, "new_password": new,
            "confirm_password": again, "next": "/account"}, follow_redirects=False)

    assert "The two new passwords differ." in text_of(change("Temporary-Pass-55!", "Brand-New-Pass-66!", "x"))
    assert "The current password is wrong." in text_of(change(WRONG, "Brand-New-Pass-66!", "Brand-New-Pass-66!"))
    weak = change("Temporary-Pass-55!", "short", "short")
    assert weak.status_code == 422 and "password policy" in text_of(weak)
    done = change("Temporary-Pass-55!", "Brand-New-Pass-66!", "Brand-New-Pass-66!")
    assert done.headers["location"] == "/account"
    assert analyst.get("/").status_code == 200
    assert sign_in(browser(app), "analyst", "Brand-New-Pass-66!").headers["location"] == "/"


def test_wrong_current_passwords_on_the_password_form_lock_the_account(app: FastAPI, world: Any) -> None:
    database = world.database
    analyst = signed_in(app, "analyst")
    form = analyst.get("/account/password")

    def change(current: str) -> httpx.Response:
        return analyst.post("/account/password", data={
            "csrf_token": csrf_of(form), "current_password": current, "new_password": "Brand-New-Pass-66!",
            "confirm_password": "Brand-New-Pass-66!", "next": ""}, follow_redirects=False)

    for count in range(1, 5):  # the default policy locks after 5 failures
        wrong = change(WRONG)
        assert wrong.status_code == 422 and "The current password is wrong." in text_of(wrong)
        user = stored_user(database, "analyst")
        assert user is not None and user.failed_logins == count and not user.locked
    assert "The current password is wrong." in text_of(change(WRONG))
    user = stored_user(database, "analyst")
    assert user is not None and user.locked
    assert audit_actions(database, action="user.lock", target_id=str(user.id))
    locked = change(PASSWORD)
    assert locked.status_code == 422 and "Your account is locked" in text_of(locked)
    assert REFUSAL in text_of(sign_in(browser(app), "analyst", PASSWORD))
    assert REFUSAL in text_of(sign_in(browser(app), "analyst", "Brand-New-Pass-66!"))  # nothing changed
    failures = audit_actions(database, action="user.password.change", outcome="failure")
    assert [r.details["reason"] for r in failures] == ["wrong password"] * 5 + ["account locked"]
