"""One transaction per request, committed before the response is sent: a change that cannot be saved
never reaches the client as a success, and a refused request leaves nothing half done."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from vigil.accounts.models import User
from vigil.core.auth import Permission, Principal
from vigil.core.config import Settings
from vigil.core.db import Database, Scope
from vigil.web.app import create_app
from vigil.web.deps import SessionDep, db_session, require

from .support import assert_problem, audit_records, row_count, user_row

UsersWrite = Annotated[Principal, Depends(require(Permission.USERS_WRITE))]


def session_dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        if sub.call is db_session:
            yield sub
        yield from session_dependencies(sub)


def late_commits(app: FastAPI) -> list[str]:
    """Routes whose records session would commit after the response is sent."""
    late: set[str] = set()
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        for sub in session_dependencies(dependant):
            if sub.scope != "function":
                late.add(f"{sorted(route.methods or [])} {route.path}")
    return sorted(late)


def test_every_route_commits_before_it_responds(app: FastAPI) -> None:
    assert not late_commits(app), (
        "these routes depend on db_session without scope=\"function\", so their commit runs after the "
        "response is sent and a failed commit looks like success; use vigil.web.deps.SessionDep: "
        + ", ".join(late_commits(app))
    )


@pytest.fixture
def own_app(settings: Settings, database: Database) -> FastAPI:
    """An app of its own, for the tests that add routes (the shared one must stay as built)."""
    return create_app(settings, database)


def test_the_check_above_catches_a_late_commit(own_app: FastAPI) -> None:
    app = own_app

    @app.get("/api/v1/test/late")
    def late(session: Annotated[Session, Depends(db_session)]) -> dict[str, str]:
        return {}

    assert late_commits(app) == ["['GET'] /api/v1/test/late"]


def coroutines_using_the_store(app: FastAPI) -> list[str]:
    """Endpoints and dependencies written as ``async def`` that take the records session."""

    def walk(dependant: Dependant, route: str) -> Iterator[str]:
        uses_store = any(sub.call is db_session for sub in dependant.dependencies)
        if uses_store and dependant.call is not None and inspect.iscoroutinefunction(dependant.call):
            yield f"{route}: {dependant.call.__name__}"
        for sub in dependant.dependencies:
            yield from walk(sub, route)

    found: set[str] = set()
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is not None:
            found.update(walk(dependant, f"{sorted(route.methods or [])} {route.path}"))
    return sorted(found)


def test_no_coroutine_waits_for_the_store_on_the_event_loop(app: FastAPI) -> None:
    assert not coroutines_using_the_store(app), (
        "make these plain functions (def, not async def): they use the records session, and a coroutine "
        "would block every other request while the database makes it wait: "
        + ", ".join(coroutines_using_the_store(app))
    )


def test_the_check_above_catches_a_coroutine(own_app: FastAPI) -> None:
    app = own_app

    @app.get("/api/v1/test/blocking")
    async def blocking(session: SessionDep) -> dict[str, str]:
        return {}

    assert coroutines_using_the_store(app) == ["['GET'] /api/v1/test/blocking: blocking"]


@pytest.fixture
def staging_client(own_app: FastAPI, world: Any) -> Iterator[TestClient]:
    """The app plus an endpoint whose change fails only when the request's transaction commits: it
    stages a second account named "viewer" and returns 201 without flushing."""
    app = own_app

    @app.post("/api/v1/test/stage-duplicate", status_code=201)
    def stage_duplicate(principal: UsersWrite, session: SessionDep) -> dict[str, bool]:
        session.add(User(username="viewer", password_hash="x", unit_id=principal.unit_id))
        return {"saved": True}

    with TestClient(app, base_url="https://testserver") as client:
        yield client


def test_a_failing_commit_is_an_error_not_a_success(world: Any, staging_client: TestClient) -> None:
    users = row_count(world.database, User)
    response = staging_client.post("/api/v1/test/stage-duplicate", headers=world.headers("sysadmin"))
    assert_problem(response, 409, "conflict")
    assert "nothing was saved" in response.json()["detail"]
    assert row_count(world.database, User) == users
    # The app is fine afterwards: the failed session was rolled back and closed.
    assert staging_client.get("/api/v1/users", headers=world.headers("sysadmin")).json()["total"] == users


def wait_until_blocked(backend: str, database: Any) -> None:
    """Give the request time to reach the lock the test holds (on PostgreSQL: until it waits on it)."""
    if backend == "sqlite":
        time.sleep(0.3)  # SQLite cannot tell; the outcome asserted below is the same either way
        return
    for _ in range(200):
        with database.engine.connect() as connection:
            waiting = connection.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar_one()
        if waiting:
            return
        time.sleep(0.02)


def test_two_creates_of_one_user_name_give_one_account_and_one_409(backend: str, world: Any,
                                                                     client: TestClient) -> None:
    """A transaction of its own inserts "racer" and holds it uncommitted while the API creates "racer":
    the API's check cannot see the row yet, so the database's unique constraint decides."""
    outcome: list[Any] = []
    with world.database.transaction(Scope.system()) as session:
        session.add(User(username="racer", password_hash="x", unit_id=world.hq))
        session.flush()

        def create() -> None:
            outcome.append(client.post("/api/v1/users", headers=world.headers("sysadmin"), json={
                "username": "racer", "password": "Racing-Account-Pass-1!", "unit_id": world.hq}))

        thread = threading.Thread(target=create)
        thread.start()
        wait_until_blocked(backend, world.database)
    thread.join()
    assert_problem(outcome[0], 409, "conflict")
    with world.database.transaction(Scope.system()) as session:
        assert session.scalar(select(func.count()).where(User.username == "racer")) == 1
    assert [r.target_id for r in audit_records(world.database, action="user.create")
            if r.details.get("username") == "racer"] == []


def test_concurrent_creates_through_the_api_save_exactly_one(world: Any, client: TestClient) -> None:
    results: list[int] = []
    barrier = threading.Barrier(4)

    def create() -> None:
        barrier.wait()
        response = client.post("/api/v1/users", headers=world.headers("sysadmin"), json={
            "username": "gemini", "password": "Twin-Account-Pass-12!", "unit_id": world.hq})
        results.append(response.status_code)

    threads: list[threading.Thread] = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201, 409, 409, 409]
    with world.database.transaction(Scope.system()) as session:
        assert session.scalar(select(func.count()).where(User.username == "gemini")) == 1
    created = audit_records(world.database, action="user.create")
    assert len([r for r in created if r.details["username"] == "gemini"]) == 1


def test_a_refusal_half_way_leaves_nothing_behind(world: Any, client: TestClient) -> None:
    """The new display name is written to the store before the move of an administrator account is
    refused: the whole request rolls back."""
    auditor_a = world.users["auditor_a"]
    before = user_row(world.database, auditor_a)
    records = len(audit_records(world.database))
    response = client.patch(f"/api/v1/users/{auditor_a}", headers=world.headers("sysadmin_a"), json={
        "display_name": "Half done", "unit_id": world.line_a})
    assert "vigil user move auditor_a" in assert_problem(response, 403, "permission-denied")["detail"]
    assert user_row(world.database, auditor_a) == before
    # Only the refusal itself is on the trail.
    assert [r.action for r in audit_records(world.database)[records:]] == ["auth.denied"]


def test_concurrent_requests_do_not_stall_each_other(world: Any, client: TestClient) -> None:
    """Reads and writes from several threads at once all succeed: no request waits for a lock held by
    a request that cannot finish (on SQLite, a principal looked up on the event loop once caused that)."""
    results: list[int] = []
    calls: list[Callable[[], Any]] = [
        lambda: client.get("/api/v1/me", headers=world.headers("viewer")),
        lambda: client.get("/api/v1/users", headers=world.headers("sysadmin")),
        lambda: client.get("/api/v1/users", headers=world.headers("viewer")),  # denied: audited on the side
        lambda: client.patch("/api/v1/me", headers=world.headers("analyst"), json={"display_name": "A"}),
    ] * 4
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> None:
        barrier.wait()
        results.append(call().status_code)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted([200, 200, 403, 200] * 4)
