"""Shared helpers of the benchmark scripts: temporary records stores and one way to report a figure.

A figure is printed as one line, ``name: figure unit  [conditions]``. When ``run_all.py`` runs a
script it sets ``VIGIL_BENCH_RESULTS`` to a file, and each figure is also appended there as JSON.
Benchmarks measure; they never assert a timing.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from vigil.accounts import service
from vigil.accounts.bootstrap import migrate
from vigil.core import audit
from vigil.core.context import Context
from vigil.core.db import Database

RESULTS_ENV = "VIGIL_BENCH_RESULTS"
POSTGRES_ENV = "VIGIL_BENCH_POSTGRES_URL"
MACHINE_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {platform.python_version()}"


def report(name: str, figure: float, unit: str, conditions: str) -> None:
    shown = f"{figure:,.0f}" if figure >= 100 else f"{figure:,.2f}"
    print(f"{name}: {shown} {unit}  [{conditions}]", flush=True)
    results = os.environ.get(RESULTS_ENV)
    if results:
        row = {"name": name, "figure": figure, "unit": unit, "conditions": conditions}
        with Path(results).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


def skip(name: str, reason: str) -> None:
    """Say that a figure was not measured here, and why."""
    print(f"{name}: skipped ({reason})", flush=True)
    results = os.environ.get(RESULTS_ENV)
    if results:
        row = {"name": name, "figure": None, "unit": "", "conditions": f"skipped: {reason}"}
        with Path(results).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


def system_context(session: Session, name: str = "benchmark") -> Context:
    """Act as the local operator (like the CLI): no user, the root unit."""
    return Context(session=session, actor=audit.Actor(None, name, service.root_unit_id(session)))


@contextmanager
def sqlite_database() -> Iterator[Database]:
    """A freshly migrated SQLite store (WAL mode, as the embedded default) in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as folder:
        database = Database(f"sqlite:///{Path(folder) / 'vigil.db'}")
        migrate(database)
        try:
            yield database
        finally:
            database.dispose()


def postgres_admin_url() -> tuple[str | None, str]:
    """The server to create throw-away databases on, or None and the reason there is none."""
    url = os.environ.get(POSTGRES_ENV) or MACHINE_POSTGRES
    url = url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError:
        where = POSTGRES_ENV if os.environ.get(POSTGRES_ENV) else "127.0.0.1:5432"
        return None, f"no PostgreSQL answers at {where}; set {POSTGRES_ENV}"
    finally:
        engine.dispose()
    return url, ""


@contextmanager
def postgres_database(admin_url: str) -> Iterator[Database]:
    """A freshly migrated throw-away PostgreSQL database, dropped afterwards."""
    name = f"vigil_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(make_url(admin_url).set(database=name).render_as_string(hide_password=False))
    try:
        migrate(database)
        yield database
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def each_backend() -> Iterator[list[tuple[str, Database | None, str]]]:
    """SQLite always; PostgreSQL when one answers. Yields (label, database or None, reason if None)."""
    admin_url, reason = postgres_admin_url()
    with sqlite_database() as sqlite:
        if admin_url is None:
            yield [("SQLite", sqlite, ""), ("PostgreSQL", None, reason)]
            return
        with postgres_database(admin_url) as postgres:
            yield [("SQLite", sqlite, ""), ("PostgreSQL", postgres, "")]
