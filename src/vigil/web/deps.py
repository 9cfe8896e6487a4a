"""Request dependencies: the records session, the signed-in principal, CSRF, and permission guards.

``require(permission)`` is the one guard of every endpoint and page: it refuses with 403 when the
principal lacks the permission, and otherwise narrows the session's scope to the units where the
principal holds it, so every query the endpoint runs sees only those units.

Endpoints and dependencies that use the records session are plain functions, never ``async def``:
FastAPI runs plain functions in worker threads, while a coroutine would hold the event loop for as
long as the database makes it wait (a test walks every route to keep it so).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from vigil.accounts import service, signin
from vigil.accounts.models import User
from vigil.core.auth import Permission, Principal
from vigil.core.config import Settings
from vigil.core.context import Context
from vigil.core.db import Database, Scope, set_scope
from vigil.core.errors import CsrfFailed, NotAuthenticated, PermissionDenied

SESSION_COOKIE = "vigil_session"
LOGIN_CSRF_COOKIE = "vigil_login_csrf"
LANGUAGE_COOKIE = "vigil_lang"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def database_of(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def db_session(request: Request) -> Iterator[Session]:
    """One transaction per request; committed when the endpoint succeeds, rolled back otherwise.

    Always depend on it through ``SessionDep``: its ``scope="function"`` makes FastAPI commit *before*
    the response is sent, so a failing commit (a unique-constraint race, a lost connection) reaches
    the client as an error instead of a 2xx for data that was never saved. A plain
    ``Depends(db_session)`` would commit after the response; a test walks every route to refuse that.
    """
    # An empty scope sees no unit's records until a permission guard widens it: fail closed.
    session = database_of(request).session(Scope(frozenset()))
    request.state.session = session
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(db_session, scope="function")]


async def supplied_csrf_token(request: Request) -> str:
    """The CSRF token a state-changing request carries: the X-CSRF-Token header, else the form field."""
    if request.method in SAFE_METHODS:
        return ""
    supplied = request.headers.get(CSRF_HEADER, "")
    if not supplied and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        supplied = value if isinstance(value, str) else ""
    return supplied


def _check_csrf(supplied: str, expected: str) -> None:
    if not supplied or not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise CsrfFailed("this form was sent without a valid CSRF token; reload the page and try again")


def resolve_principal(request: Request, session: Session, csrf_token: str) -> Principal:
    """The caller, from a Bearer token or the session cookie; 401 when neither is valid."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    settings = settings_of(request)
    tree = service.load_unit_tree(session)
    authorization = request.headers.get("authorization", "")
    principal: Principal
    if authorization:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthenticated("use the header Authorization: Bearer <token>", credential="bearer")
        resolved = signin.resolve_token(session, secret=secret.strip())
        if resolved is None:
            raise NotAuthenticated("the API token is invalid, expired or revoked", credential="bearer")
        token, user = resolved
        principal = signin.principal_for(user, tree=tree, token_roles=token.roles_set())
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise NotAuthenticated("sign in first")
        web_session = signin.resolve_session(session, secret=cookie, idle_minutes=settings.session_idle_minutes)
        user_or_none = signin.active_user(session, web_session.user_id) if web_session else None
        if web_session is None or user_or_none is None:
            raise NotAuthenticated("your session has ended; sign in again", credential="session")
        principal = signin.principal_for(user_or_none, tree=tree, web_session=web_session)
        # Not yet the request's principal (a later call would skip the check), but the audit record of
        # a refused CSRF check names the session's user.
        request.state.claimed_principal = principal
        if request.method not in SAFE_METHODS:
            _check_csrf(csrf_token, web_session.csrf_token)
    request.state.principal = principal
    return principal


def current_principal(
    request: Request, session: SessionDep, csrf_token: Annotated[str, Depends(supplied_csrf_token)]
) -> Principal:
    """The principal dependency. A plain function on purpose: FastAPI runs it in a worker thread, so
    its database work never blocks the event loop (on SQLite a blocked loop would stall the request
    that holds the write lock, and with it every other request). Outside dependency injection, call
    ``resolve_principal`` from a plain (not ``async``) endpoint."""
    return resolve_principal(request, session, csrf_token)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(permission: Permission, *, everywhere: bool = False) -> Callable[..., Principal]:
    """A guard: the principal must hold ``permission`` (on a root unit when ``everywhere``)."""

    def guard(principal: PrincipalDep, session: SessionDep) -> Principal:
        units = principal.units_for(permission)
        if not units or (everywhere and not principal.has_everywhere(permission)):
            raise PermissionDenied(f"this needs the permission {permission}", permission=str(permission))
        set_scope(session, Scope(units))
        return principal

    guard.__name__ = f"require_{permission.value.replace(':', '_')}"
    return guard


def own_records(principal: PrincipalDep, session: SessionDep) -> Principal:
    """Any signed-in user, for self-service: the scope is the user's own unit (their own records)."""
    set_scope(session, Scope(frozenset({principal.unit_id})))
    return principal


SelfDep = Annotated[Principal, Depends(own_records)]


def context(request: Request, session: Session, principal: Principal) -> Context:
    return Context.of(session, principal, client_ip(request))


def current_user(session: Session, principal: Principal) -> User:
    user = signin.active_user(session, principal.user_id)
    if user is None:
        raise NotAuthenticated("your account is disabled")
    return user
