"""The records store: engine, sessions, the declarative base, and the organisation-unit scope.

Scope is the one mechanism that keeps each branch to its own records. Every session carries a
``Scope`` in ``session.info``; an ORM event adds ``unit_id IN (visible units)`` to every SELECT,
UPDATE and DELETE on a ``UnitScoped`` table, and a flush hook refuses to create or move a record
into a unit outside the scope. A session without a scope fails closed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import DateTime, Engine, ForeignKey, Integer, MetaData, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    sessionmaker,
    with_loader_criteria,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeDecorator

from vigil.core.errors import PermissionDenied

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Record ids are 32-bit integers (PostgreSQL ``integer``); an id beyond this can name no record.
MAX_RECORD_ID = 2**31 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the records store; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class UnitScoped:
    """Mixin for every record that belongs to one organisation unit."""

    # Records the system writes on its own (the audit trail) skip the write check.
    __scope_write_checked__: ClassVar[bool] = True

    @declared_attr
    def unit_id(cls) -> Mapped[int]:  # noqa: N805 - declared_attr passes the class
        return mapped_column(Integer, ForeignKey("org_units.id"), index=True, nullable=False)


@dataclass(frozen=True)
class Scope:
    """The organisation units a session may see and change. ``everything`` is for the system itself."""

    unit_ids: frozenset[int]
    everything: bool = False

    @classmethod
    def system(cls) -> Scope:
        return cls(frozenset(), everything=True)

    def allows(self, unit_id: int | None) -> bool:
        return self.everything or (unit_id is not None and unit_id in self.unit_ids)


class ScopeMissing(RuntimeError):
    """A query on scoped records ran in a session that was given no scope: a programming error."""


SCOPE_KEY = "vigil.scope"


def set_scope(session: Session, scope: Scope) -> None:
    session.info[SCOPE_KEY] = scope


def get_scope(session: Session) -> Scope:
    scope = session.info.get(SCOPE_KEY)
    if not isinstance(scope, Scope):
        raise ScopeMissing("this session has no organisation-unit scope; call set_scope() first")
    return scope


# Tables whose rows are units themselves, scoped on their own id rather than on unit_id.
_SELF_SCOPED: list[type[Any]] = []


def self_scoped(cls: type[Any]) -> type[Any]:
    _SELF_SCOPED.append(cls)
    return cls


def _assigned_units(state: ORMExecuteState) -> list[Any]:
    """The unit_id values an ORM INSERT or UPDATE statement would write, from its VALUES or parameters."""
    found: list[Any] = []

    def collect(values: Mapping[Any, Any]) -> None:
        for key, value in values.items():
            if getattr(key, "key", key) == "unit_id":
                found.append(value.value if isinstance(value, BindParameter) else value)

    statement = state.statement
    collect(getattr(statement, "_values", None) or {})
    for many in getattr(statement, "_multi_values", ()):
        for row in many:
            collect(row)
    parameters = state.parameters
    rows: Sequence[Mapping[Any, Any]] = (
        [parameters] if isinstance(parameters, Mapping) else list(parameters) if parameters else []
    )
    for row in rows:
        collect(row)
    return found


def _check_bulk_write(state: ORMExecuteState, scope: Scope) -> None:
    mapper = state.bind_mapper
    cls = mapper.class_ if mapper is not None else None
    if cls is None or not issubclass(cls, UnitScoped) or not cls.__scope_write_checked__:
        return
    for unit_id in _assigned_units(state):
        if not (isinstance(unit_id, int) and scope.allows(unit_id)):
            raise PermissionDenied("this record belongs to an organisation unit outside your scope")


@event.listens_for(Session, "do_orm_execute")
def _apply_scope(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete or state.is_insert):
        return
    if state.execution_options.get("vigil_unscoped", False):
        return
    scope = get_scope(state.session)
    if scope.everything:
        return
    if state.is_insert or state.is_update:
        # A bulk INSERT or UPDATE skips the flush check: refuse one that writes a unit outside the scope.
        _check_bulk_write(state, scope)
    if state.is_insert:
        return
    ids = tuple(sorted(scope.unit_ids))
    options = [with_loader_criteria(UnitScoped, lambda cls: cls.unit_id.in_(ids), include_aliases=True)]
    options += [
        with_loader_criteria(model, lambda cls: cls.id.in_(ids), include_aliases=True) for model in _SELF_SCOPED
    ]
    state.statement = state.statement.options(*options)


@event.listens_for(Session, "before_flush")
def _check_scope_on_write(session: Session, flush_context: Any, instances: Any) -> None:
    changed = [*session.new, *session.dirty, *session.deleted]
    if not any(isinstance(obj, UnitScoped) for obj in changed):
        return
    scope = get_scope(session)
    for obj in changed:
        if isinstance(obj, UnitScoped) and type(obj).__scope_write_checked__ and not scope.allows(obj.unit_id):
            raise PermissionDenied("this record belongs to an organisation unit outside your scope")


def _sqlite_pragmas(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # Let SQLAlchemy, not the driver, decide when transactions start (see _sqlite_begin).
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, so two writers queue instead of one failing
    # with "database is locked" when it tries to upgrade a read transaction.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class Database:
    """An engine and its session factory. One per process (the app and the CLI each make one)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self, scope: Scope) -> Session:
        session = self._sessions()
        set_scope(session, scope)
        return session

    @contextmanager
    def transaction(self, scope: Scope) -> Iterator[Session]:
        """A session that commits when the block ends and rolls back on any error."""
        session = self.session(scope)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
