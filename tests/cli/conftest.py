"""Running `vigil` in-process (typer's CliRunner) against a throw-away records store.

``cli`` points at a migrated store (SQLite, and PostgreSQL when CI gives one); ``blank_cli`` at a store
that `vigil init` never touched. Both run in a temporary working folder, so no ./var or vigil.toml of
the checkout leaks in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from vigil.accounts import service, signin
from vigil.accounts.models import UnitKind, User
from vigil.cli.main import app
from vigil.core import audit
from vigil.core.audit import AuditRecord
from vigil.core.context import Context
from vigil.core.db import Database, Scope


@dataclass
class Cli:
    env: dict[str, str]
    runner: CliRunner = field(default_factory=CliRunner)

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return self.runner.invoke(app, list(args), input=input, env={**self.env, **(env or {})})

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, f"vigil {' '.join(args)} -> {result.exit_code}\n{result.output}"
        return result


def store_env(url: str, tmp_path: Path) -> dict[str, str]:
    return {"VIGIL_DATABASE_URL": url, "VIGIL_DATA_DIR": str(tmp_path / "var")}


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    return Cli(store_env(database_url, tmp_path))


@pytest.fixture
def blank_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A store nobody initialised: a SQLite path whose folder does not exist yet, or an empty database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'vigil.db'}"
        return
    databases = request.getfixturevalue("postgres_databases")
    url: str = databases.create(migrated=False)
    yield url
    databases.drop(url)


@pytest.fixture
def blank_cli(blank_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    return Cli(store_env(blank_url, tmp_path))


@dataclass
class Accounts:
    """Looks at the store the CLI changed, through the accounts services, as the web app would."""

    database: Database

    def sign_in(self, username: str, password: str) -> tuple[bool, str]:
        """A real password sign-in: (accepted, reason)."""
        with self.database.transaction(Scope.system()) as session:
            result = signin.authenticate(session, username=username, password=password, source_ip="127.0.0.1")
            return result.user is not None, result.reason

    def token_works(self, secret: str) -> bool:
        with self.database.transaction(Scope.system()) as session:
            return signin.resolve_token(session, secret=secret) is not None

    def user(self, username: str) -> User | None:
        with self.database.transaction(Scope.system()) as session:
            return session.scalar(select(User).where(User.username == username))

    def audit(self, action: str) -> list[AuditRecord]:
        with self.database.transaction(Scope.system()) as session:
            return list(session.scalars(select(AuditRecord).where(AuditRecord.action == action)
                                        .order_by(AuditRecord.seq)))


@pytest.fixture
def accounts(database: Database) -> Accounts:
    return Accounts(database)


@pytest.fixture
def org(database: Database) -> dict[str, int]:
    """Headquarters with two branches and a business line below the first: name -> unit id."""
    with database.transaction(Scope.system()) as session:
        ctx = Context(session=session, actor=audit.Actor(None, "test-setup", service.root_unit_id(session)))
        root = service.root_unit_id(session)
        shanghai = service.create_unit(ctx, name="Shanghai Branch", kind=UnitKind.BRANCH, parent_id=root).id
        beijing = service.create_unit(ctx, name="Beijing Branch", kind=UnitKind.BRANCH, parent_id=root).id
        payments = service.create_unit(ctx, name="Payments", kind=UnitKind.BUSINESS_LINE, parent_id=shanghai).id
    return {"Headquarters": root, "Shanghai Branch": shanghai, "Beijing Branch": beijing, "Payments": payments}
