"""Helpers of the web UI tests: a browser-like client per user, signing in through the form, CSRF tokens."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from vigil.accounts.models import User
from vigil.core.audit import AuditRecord
from vigil.core.db import Database, Scope

PASSWORD = "Correct-Horse-42!"  # conftest.PASSWORD: every world user's password
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def browser(app: FastAPI, **headers: str) -> TestClient:
    """A client that keeps cookies like a browser, on https so Secure cookies travel back."""
    return TestClient(app, base_url="https://testserver", headers=headers)


def csrf_of(page: httpx.Response) -> str:
    found = CSRF_FIELD.search(page.text)
    assert found, f"no CSRF field on {page.url}"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, *, next_url: str = "") -> httpx.Response:
    """Fill in the sign-in form as a browser would; returns the answer to the POST (not followed)."""
    form = client.get("/login")
    assert form.status_code == 200
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_of(form),
                                       "next": next_url}, follow_redirects=False)


def signed_in(app: FastAPI, username: str, **headers: str) -> TestClient:
    client = browser(app, **headers)
    answer = sign_in(client, username)
    assert answer.status_code == 303, answer.text[:300]
    return client


def post_form(client: TestClient, path: str, data: dict[str, Any] | None = None, *,
              page: str | None = None) -> httpx.Response:
    """POST a form with the CSRF token of the page it sits on (``page``, default ``path``)."""
    token = csrf_of(client.get(page or path))
    return client.post(path, data={"csrf_token": token, **(data or {})}, follow_redirects=False)


def stored_user(database: Database, username: str) -> User | None:
    with database.transaction(Scope.system()) as session:
        return session.scalar(select(User).where(User.username == username))


def audit_actions(database: Database, **where: Any) -> list[AuditRecord]:
    with database.transaction(Scope.system()) as session:
        statement = select(AuditRecord).order_by(AuditRecord.seq)
        for column, value in where.items():
            statement = statement.where(getattr(AuditRecord, column) == value)
        return list(session.scalars(statement))


def text_of(page: httpx.Response) -> str:
    """The page's visible text, roughly: tags removed and white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", page.text).split())
