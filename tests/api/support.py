"""Helpers shared by the API tests: reading the store behind the app's back, web sessions, problem bodies."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from vigil.accounts import service, signin
from vigil.accounts.models import ApiToken, RoleGrant, User
from vigil.accounts.schemas import TokenCreate
from vigil.core import audit
from vigil.core.audit import AuditRecord
from vigil.core.context import Context
from vigil.core.db import Database, Scope

PROBLEM_JSON = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "instance"}


def system_context(session: Any) -> Context:
    return Context(session=session, actor=audit.Actor(None, "test-setup", service.root_unit_id(session)))


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with the given status (and code); returns its body."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON, response.headers["content-type"]
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
        assert body["type"].endswith("/" + code)
    return body


def audit_records(database: Database, **where: Any) -> list[AuditRecord]:
    """Audit records matching column=value filters, oldest first (read with the system scope)."""
    with database.transaction(Scope.system()) as session:
        statement = select(AuditRecord).order_by(AuditRecord.seq)
        for column, value in where.items():
            statement = statement.where(getattr(AuditRecord, column) == value)
        return list(session.scalars(statement))


def audit_count(database: Database) -> int:
    with database.transaction(Scope.system()) as session:
        return session.scalar(select(func.count()).select_from(AuditRecord)) or 0


def audit_state(database: Database, username: str, method: str, path: str) -> tuple[int, int]:
    """All audit records, and the auth.denied ones naming this user and request: one read."""
    with database.transaction(Scope.system()) as session:
        total = session.scalar(select(func.count()).select_from(AuditRecord)) or 0
        denied = session.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.action == "auth.denied", AuditRecord.actor == username,
            AuditRecord.target_id == f"{method} {path}")) or 0
        return total, denied


def web_session(database: Database, username: str) -> tuple[str, str]:
    """Sign ``username`` in as a browser would: the session cookie's value and the session's CSRF token."""
    with database.transaction(Scope.system()) as session:
        user = service.find_user(session, username)
        secret, row = signin.start_session(session, user=user, source_ip="127.0.0.1", user_agent="tests",
                                           max_hours=8)
        return secret, row.csrf_token


def new_token(database: Database, username: str, *, roles: list[Any] | None = None) -> tuple[str, int]:
    """A fresh API token of ``username``: its secret and id."""
    with database.transaction(Scope.system()) as session:
        user = service.find_user(session, username)
        secret, token = signin.create_token(system_context(session), user=user,
                                            data=TokenCreate(name="extra", roles=roles))
        return secret, token.id


def user_row(database: Database, user_id: int) -> dict[str, Any]:
    """A user's stored fields and grants, to compare before and after a refused request."""
    with database.transaction(Scope.system()) as session:
        user = session.get(User, user_id)
        assert user is not None
        fields = {column.key: getattr(user, column.key) for column in User.__table__.columns}
        grants = session.execute(
            select(RoleGrant.role, RoleGrant.unit_id).where(RoleGrant.user_id == user_id).order_by(RoleGrant.id)
        ).all()
        tokens = session.execute(
            select(ApiToken.id, ApiToken.revoked_at).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
        ).all()
        return {**fields, "grants": [tuple(g) for g in grants], "tokens": [tuple(t) for t in tokens]}


def row_count(database: Database, model: type[Any]) -> int:
    with database.transaction(Scope.system()) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0
