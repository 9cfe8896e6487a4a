"""Shared fixtures: a migrated records store on SQLite and, when CI gives one, on PostgreSQL; an app;
and a small organisation (headquarters, two branches, a business line) with one user per role.

PostgreSQL: set VIGIL_TEST_POSTGRES_URL (``.ci/run`` does) to a database the tests may use to
create and drop throw-away databases of their own; without it those tests skip, saying why.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from vigil.accounts import service, signin
from vigil.accounts.bootstrap import migrate
from vigil.accounts.models import UnitKind, User
from vigil.accounts.schemas import GrantCreate, TokenCreate, UserCreate
from vigil.core import audit
from vigil.core.auth import Role
from vigil.core.config import Settings, load_settings
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.web.app import attach, build_app

# Tests parse in the pipeline's thread (no worker processes to spawn for every app); the worker path
# has tests of its own that turn it on (tests/siem/test_parse_workers.py).
os.environ.setdefault("VIGIL_PIPELINE_WORKERS", "0")

PASSWORD = "Correct-Horse-42!"
POSTGRES_URL = os.environ.get("VIGIL_TEST_POSTGRES_URL", "")
NO_POSTGRES = "no PostgreSQL for tests: set VIGIL_TEST_POSTGRES_URL (.ci/run does)"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

_counter = itertools.count()


def _postgres_admin_url() -> str:
    url = make_url(POSTGRES_URL)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


class PostgresDatabases:
    """Creates throw-away databases on the CI server and drops them afterwards."""

    def __init__(self) -> None:
        self.admin = create_engine(_postgres_admin_url(), isolation_level="AUTOCOMMIT")
        self.template: str | None = None
        self.world: tuple[str, World] | None = None

    def _url(self, name: str) -> str:
        return make_url(_postgres_admin_url()).set(database=name).render_as_string(hide_password=False)

    def create(self, *, migrated: bool = True, template: str | None = None) -> str:
        """A new database: empty, migrated (the default), or a copy of ``template`` (a database name)."""
        name = f"vigil_t_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
        source = template or (self._template() if migrated else None)
        with self.admin.connect() as connection:
            if source:
                connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
            else:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        return self._url(name)

    def world_template(self) -> tuple[str, World]:
        """A database holding the test organisation, built once and copied for every test that uses it."""
        if self.world is None:
            url = self.create()
            database = Database(url)
            world = build_world(database)
            database.dispose()
            self.world = (str(make_url(url).database), world)
        return self.world

    def _template(self) -> str:
        if self.template is None:
            name = f"vigil_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            with self.admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            database = Database(self._url(name))
            migrate(database)
            database.dispose()
            self.template = name
        return self.template

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        if self.world:
            self.drop(self._url(self.world[0]))
        if self.template:
            self.drop(self._url(self.template))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    databases = PostgresDatabases()
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "vigil.db"
    database = Database(f"sqlite:///{path}")
    migrate(database)
    database.dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def sqlite_world_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World]:
    """The test organisation on SQLite, built once (argon2 hashing is slow) and copied for each test."""
    path = tmp_path_factory.mktemp("world") / "vigil.db"
    shutil.copyfile(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    world = build_world(database)
    database.dispose()
    return path, world


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A freshly migrated records store on the backend under test: empty, or, for a test that uses
    ``world``, a private copy of the test organisation."""
    with_world = "world" in request.fixturenames
    if backend == "sqlite":
        if with_world:
            template, _ = request.getfixturevalue("sqlite_world_template")
        else:
            template = request.getfixturevalue("sqlite_template")
        target = tmp_path / "var" / "vigil.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = databases.create(template=databases.world_template()[0] if with_world else None)
    yield url
    databases.drop(url)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(data_dir=tmp_path / "var", database_url=database_url)


def cli_context(session: object) -> Context:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    return Context(session=session, actor=audit.Actor(None, "test-setup", service.root_unit_id(session)))


@dataclass
class World:
    """A small organisation with one user per role at headquarters and administrators in the branches."""

    database: Database
    hq: int = 0
    branch_a: int = 0
    branch_b: int = 0
    line_a: int = 0
    users: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def add_user(self, username: str, role: Role | None, unit_id: int, *, password: str = PASSWORD,
                 token: bool = True) -> int:
        with self.database.transaction(Scope.system()) as session:
            ctx = cli_context(session)
            grants = [GrantCreate(role=role, unit_id=unit_id)] if role else []
            user = service.create_user(ctx, data=UserCreate(username=username, password=password, unit_id=unit_id,
                                                            grants=grants))
            user.must_change_password = False
            if token:
                secret, _ = signin.create_token(ctx, user=user, data=TokenCreate(name="tests"))
                self.tokens[username] = secret
            self.users[username] = user.id
            return user.id

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def user(self, username: str) -> User:
        with self.database.transaction(Scope.system()) as session:
            return service.find_user(session, username)


ROLE_USERS = {
    "sysadmin": Role.SYSTEM_ADMIN,
    "secadmin": Role.SECURITY_ADMIN,
    "auditor": Role.AUDIT_ADMIN,
    "analyst": Role.ANALYST,
    "responder": Role.RESPONDER,
    "viewer": Role.VIEWER,
}


def build_world(database: Database) -> World:
    """Create the test organisation in an empty migrated store."""
    world = World(database)
    with database.transaction(Scope.system()) as session:
        ctx = cli_context(session)
        world.hq = service.root_unit_id(session)
        world.branch_a = service.create_unit(ctx, name="Shanghai branch", kind=UnitKind.BRANCH, parent_id=world.hq).id
        world.branch_b = service.create_unit(ctx, name="Beijing branch", kind=UnitKind.BRANCH, parent_id=world.hq).id
        world.line_a = service.create_unit(ctx, name="Payments", kind=UnitKind.BUSINESS_LINE,
                                           parent_id=world.branch_a).id
    for username, role in ROLE_USERS.items():
        world.add_user(username, role, world.hq)
    world.add_user("nobody", None, world.hq)
    world.add_user("sysadmin_a", Role.SYSTEM_ADMIN, world.branch_a)
    world.add_user("sysadmin_b", Role.SYSTEM_ADMIN, world.branch_b)
    world.add_user("auditor_a", Role.AUDIT_ADMIN, world.branch_a)
    world.add_user("secadmin_a", Role.SECURITY_ADMIN, world.branch_a)
    world.add_user("staff_a", Role.VIEWER, world.line_a)
    world.add_user("staff_b", Role.VIEWER, world.branch_b)
    return world


@pytest.fixture
def world(database: Database, backend: str, request: pytest.FixtureRequest) -> World:
    """The test organisation, in this test's own copy of the store (``database_url`` made the copy)."""
    if backend == "sqlite":
        _, built = request.getfixturevalue("sqlite_world_template")
    else:
        _, built = request.getfixturevalue("postgres_databases").world_template()
    return World(database, hq=built.hq, branch_a=built.branch_a, branch_b=built.branch_b, line_a=built.line_a,
                 users=dict(built.users), tokens=dict(built.tokens))


@pytest.fixture(scope="session")
def built_app() -> FastAPI:
    """The routes and pages, built once: a new app spends about half a second on its first request."""
    return build_app()


@pytest.fixture
def app(built_app: FastAPI, settings: Settings, database: Database) -> FastAPI:
    """The app with this test's settings and store (and nothing of the test before: fresh state, no
    overrides). A test that adds routes builds an app of its own (``create_app``)."""
    built_app.dependency_overrides.clear()
    return attach(built_app, settings, database)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # https, so the Secure session cookie travels back as it would in a browser.
    with TestClient(app, base_url="https://testserver") as test_client:
        yield test_client
