"""Creating or migrating the records store, and the first rows every installation needs."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from vigil.accounts import service
from vigil.core.audit import ensure_head
from vigil.core.db import Database, Scope

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(database: Database) -> None:
    """Bring the schema to the newest revision, then make sure the first rows exist. Idempotent."""
    if database.url.startswith("sqlite:///"):
        Path(database.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    config = alembic_config(database.url)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with database.transaction(Scope.system()) as session:
        service.ensure_root_unit(session)
        ensure_head(session)
        service.get_policy(session)
