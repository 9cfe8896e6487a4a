"""Alembic migrations on SQLite and PostgreSQL: up from nothing, the schema equals the models, down to
nothing, up again; and ``vigil init``'s migrate() is idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text

from vigil.accounts.bootstrap import alembic_config, migrate
from vigil.core.audit import AuditHead
from vigil.core.db import Database, Scope
from vigil.models import metadata


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with no tables at all."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    databases = request.getfixturevalue("postgres_databases")
    url = databases.create(migrated=False)
    yield url
    databases.drop(url)


def differences(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_matches_models_downgrade_empties_upgrade_again(empty_url: str) -> None:
    config = alembic_config(empty_url)
    head = ScriptDirectory.from_config(config).get_current_head()
    assert tables(empty_url) == set()
    command.upgrade(config, "head")
    assert tables(empty_url) == set(metadata.tables) | {"alembic_version"}
    assert differences(empty_url) == []
    command.downgrade(config, "base")
    assert tables(empty_url) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert differences(empty_url) == []
    engine = create_engine(empty_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
    engine.dispose()


def snapshot(database: Database) -> dict[str, Any]:
    """Every row of every table (enough to see whether anything changed)."""
    rows: dict[str, Any] = {}
    with database.engine.connect() as connection:
        for name in sorted([*metadata.tables, "alembic_version"]):
            rows[name] = sorted(tuple(map(str, row)) for row in connection.execute(text(f'SELECT * FROM "{name}"')))
    return rows


def test_migrate_is_idempotent(empty_url: str) -> None:
    database = Database(empty_url)
    try:
        migrate(database)
        first = snapshot(database)
        assert len(first["org_units"]) == 1 and len(first["security_policy"]) == 1
        with database.transaction(Scope.system()) as session:
            head = session.scalar(select(AuditHead))
            assert head is not None and head.seq == 0
        migrate(database)
        assert snapshot(database) == first
        assert differences(empty_url) == []
    finally:
        database.dispose()


def test_migration_files_are_clean() -> None:
    """Migrations are code too: no autogenerate leftovers such as an unused import or a stray TODO."""
    versions = Path(__file__).resolve().parents[1] / "src" / "vigil" / "migrations" / "versions"
    for path in versions.glob("*.py"):
        source = path.read_text()
        assert "please adjust" not in source, f"{path.name}: remove Alembic's autogenerate comments"
        assert "TODO" not in source, path.name
