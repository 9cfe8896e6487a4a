"""What every command shares: settings, the records store, the operator's identity, errors and output.

The CLI acts as the local operator: it sees every unit (``Scope.system()``) and the audit trail names
it ``cli:<OS login name>`` on the root unit. Failures map to the exit codes documented in
``vigil.cli.main``: 1 for a refused or failed operation, 2 for a usage or settings error or a store
that was never initialised.
"""

from __future__ import annotations

import getpass
import os
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import orjson
import typer
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from vigil.accounts import service
from vigil.accounts.bootstrap import alembic_config
from vigil.core import audit
from vigil.core.config import ConfigError, Settings, load_settings, mask_url_password
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.core.errors import VigilError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 the operation was refused or failed (the reason on stderr); "
    "2 usage or settings error, or the records store was never initialised."
)


# --- messages --------------------------------------------------------------------------------------


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``message`` on stderr and leave with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    """Information for the person at the terminal, on stderr so stdout stays clean for scripts."""
    typer.echo(message, err=True)


def print_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell, counting CJK characters as two columns."""
    widths = [_width(header) for header in headers]
    for row in rows:
        widths = [max(width, _width(cell)) for width, cell in zip(widths, row, strict=True)]
    for row in [list(headers), *rows]:
        cells = [cell + " " * (width - _width(cell)) for cell, width in zip(row, widths, strict=True)]
        typer.echo("  ".join(cells).rstrip())


def local_time(settings: Settings, value: datetime | None) -> str:
    """A timestamp in the configured display time zone, to the minute; "-" for none."""
    if value is None:
        return "-"
    return value.astimezone(ZoneInfo(settings.timezone)).strftime("%Y-%m-%d %H:%M")


def read_password(*, from_stdin: bool, prompt: str = "Password") -> str:
    """A password from one line of stdin, or prompted twice without echo: never from the command line."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            fail("--password-stdin given but stdin held no password")
        return password
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return value


# --- settings and the records store ----------------------------------------------------------------


def settings(**overrides: Any) -> Settings:
    """The effective settings (read afresh: tests and long shells change the environment)."""
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_USAGE) from exc


def store_label(settings: Settings) -> str:
    return mask_url_password(settings.effective_database_url)


def head_revision(database: Database) -> str:
    head = ScriptDirectory.from_config(alembic_config(database.url)).get_current_head()
    if head is None:
        raise RuntimeError("the package ships no migrations")
    return head


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return None


def current_revision(database: Database) -> str | None:
    """The schema revision the store is at; None when it was never initialised."""
    path = sqlite_path(database.url)
    if path is not None and not path.exists():
        return None  # do not create an empty file just by looking
    with database.engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    return revision


@contextmanager
def store_errors(settings: Settings) -> Iterator[None]:
    """Turn an unreachable store into a message and exit code 1 instead of a traceback."""
    try:
        yield
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        fail(f"cannot reach the records store at {store_label(settings)}: {reason}")


def open_store(settings: Settings) -> Database:
    """The records store, refusing (exit 2) one that was never initialised or needs migrating."""
    database = Database(settings.effective_database_url)
    try:
        with store_errors(settings):
            current = current_revision(database)
        head = head_revision(database)
    except BaseException:
        database.dispose()
        raise
    if current == head:
        return database
    database.dispose()
    if current is None:
        fail(f"the records store at {store_label(settings)} was never initialised; run `vigil init` first",
             EXIT_USAGE)
    fail(f"the records store at {store_label(settings)} is at schema revision {current}, this version of "
         f"Vigil needs {head}; run `vigil init` to migrate it (or upgrade Vigil if it is newer)", EXIT_USAGE)


def login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment and no passwd entry
        return f"uid{os.getuid()}"


def operator_context(session: Session) -> Context:
    """The local operator: every unit in scope, audited as ``cli:<login>`` on the root unit."""
    actor = audit.Actor(None, f"cli:{login_name()}", service.root_unit_id(session))
    return Context(session=session, actor=actor)


def describe_invalid(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "value"
        parts.append(f"{field}: {error['msg']}")
    return "invalid input: " + "; ".join(parts)


@dataclass
class Operation:
    """One command's unit of work: settings, the store, and a transaction acting as the operator."""

    settings: Settings
    database: Database

    @contextmanager
    def transaction(self) -> Iterator[Context]:
        """Commits when the block ends; a refusal (VigilError) rolls back and exits 1."""
        try:
            with store_errors(self.settings), self.database.transaction(Scope.system()) as session:
                yield operator_context(session)
        except VigilError as exc:
            fail(exc.detail)
        except ValidationError as exc:
            fail(describe_invalid(exc))
        except SQLAlchemyError as exc:
            fail(f"the records store refused the change: {str(exc).splitlines()[0]}")


@contextmanager
def operation(**overrides: Any) -> Iterator[Operation]:
    """Settings (exit 2 when wrong) and the initialised store (exit 2 when not), closed at the end."""
    current = settings(**overrides)
    database = open_store(current)
    try:
        yield Operation(current, database)
    finally:
        database.dispose()
