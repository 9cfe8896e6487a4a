"""The embedded event store: one DuckDB file (``var/events.duckdb``), one writer, concurrent readers.

DuckDB lets one process hold the file. Within it, writes go through one connection guarded by a lock
(one transaction per batch, rows appended column-typed in bulk through DuckDB's appender), and each
read uses its own cursor on the same database instance, so readers run alongside the writer and see
only committed batches.

SQL text is assembled only from this module's constants, column names of ``vigil.siem.fields`` and the
caller's ``where_sql`` (built by the search compiler from resolver expressions, never from user text);
every value is a ``?`` parameter. That is why the S608 warnings below are silenced.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from vigil.core.errors import BadInput, VigilError
from vigil.siem.fields import COLUMNS, SOURCE_FIELD, Column, FieldResolver, Kind, check_field, coerce, get_path
from vigil.siem.store import lookup
from vigil.siem.store.base import (
    AppendResult,
    Bucket,
    Event,
    Order,
    SpoolPosition,
    StoredEvent,
    StoredRow,
    TermCount,
)
from vigil.siem.store.lookup import TokenKind, ValueMatch, ValueSet

SCHEMA_VERSION = 1
GIVEN = frozenset({"ts", "ingested", "source", "unit_id"})  # set by the store, not read from the document
EXTRACTED: tuple[Column, ...] = tuple(c for c in COLUMNS if c.name not in GIVEN)


def _structure() -> str:
    """The ``json_transform`` structure reading every extracted field (and the two times) in one JSON parse.

    Every field is read as text (``VARCHAR``: an object or a list keeps its JSON text) and cast in SQL,
    so that a value that does not fit its column leaves it NULL; a list field is read as JSON, to tell
    a list from a single value.
    """
    structure: dict[str, Any] = {}
    for column in (*EXTRACTED, COLUMNS[0], COLUMNS[1]):
        *parents, leaf = column.field.split(".")
        node = structure
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"field {column.field} lies inside another typed field")
        if leaf in node:
            raise ValueError(f"field {column.field} holds other typed fields")
        node[leaf] = "JSON" if column.kind is Kind.LIST else "VARCHAR"
    return json.dumps(structure, separators=(",", ":"))


def _field(column: Column) -> str:
    """The value of one field in ``t``, the struct ``json_transform`` read (names are checked field names)."""
    return "t" + "".join(f"['{part}']" for part in check_field(column.field).split("."))


def _extraction(column: Column) -> str:
    """SQL for one typed column from its field's text (or JSON, for a list) in ``t``."""
    value = _field(column)
    if column.kind in (Kind.NUMBER, Kind.TIMESTAMP):
        return f"TRY_CAST({value} AS {column.sql_type})"
    if column.kind is Kind.LIST:
        return (f"CASE WHEN {value} IS NULL OR json_type({value}) = 'NULL' THEN NULL "
                f"WHEN json_type({value}) = 'ARRAY' THEN list_filter(json_extract_string({value}, '$[*]'), "
                "lambda item: item IS NOT NULL) "
                f"ELSE [json_extract_string({value}, '$')] END")
    return value


# Documents are staged as text (DuckDB's appender), then moved into ``events`` by one statement that
# parses each document once (``json_transform``) for every typed column. A document that is not JSON
# makes the parse fail, one that is not an object fails the ``error()`` below: either way the whole
# statement, and so the batch, fails; ``append_json`` then counts the bad ones for its message.
STAGING = "CREATE TEMP TABLE IF NOT EXISTS staging_events (ts TIMESTAMPTZ, ingested TIMESTAMPTZ, doc VARCHAR)"
STAGING_JSON = "CREATE TEMP TABLE IF NOT EXISTS staging_json (doc VARCHAR)"
_STRUCTURE = _structure()
_TARGET = f"INSERT INTO events (ts, ingested, source, unit_id, {', '.join(c.name for c in EXTRACTED)}, doc) "
_TYPED = ", ".join(_extraction(c) for c in EXTRACTED)
_JSON_WHITESPACE = "' ' || chr(9) || chr(10) || chr(13)"
_OBJECT = (f"CASE WHEN starts_with(ltrim(doc, {_JSON_WHITESPACE}), '{{') THEN doc "
           "ELSE error('a document is not a JSON object') END")
# ``append``: the times were read in Python (they may be datetime objects there); the document is ours.
MOVE = (
    _TARGET + f"SELECT ts, ingested, $1, $2, {_TYPED}, doc "  # noqa: S608
    f"FROM (SELECT ts, ingested, doc, json_transform(doc, '{_STRUCTURE}') AS t FROM staging_events)"
)
# ``append_json``: no Python object per event; the times come from the document (else the ingest time).
_INGESTED = f"coalesce(TRY_CAST({_field(COLUMNS[1])} AS TIMESTAMPTZ), $3::TIMESTAMPTZ)"
MOVE_JSON = (
    _TARGET + f"SELECT coalesce(TRY_CAST({_field(COLUMNS[0])} AS TIMESTAMPTZ), ingested), ingested, $1, $2, "  # noqa: S608
    f"{_TYPED}, {_OBJECT} "
    f"FROM (SELECT doc, t, {_INGESTED} AS ingested "
    f"FROM (SELECT doc, json_transform(doc, '{_STRUCTURE}') AS t FROM staging_json))"
)
# Only after a failed move: how many documents of the batch are not JSON objects.
CHECK_JSON = ("SELECT count(*) FROM staging_json "
              "WHERE NOT coalesce(CASE WHEN json_valid(doc) THEN json_type(doc) = 'OBJECT' END, false)")
MAX_LIMIT = 10_000
# DuckDB keeps the table's blocks cached up to its memory limit, by default 80% of the machine's memory:
# without a cap the process grows with the store (about 35 MiB per million events ingested). Measured
# over 10 million events (benchmarks/bench_siem_memory.py): 256MB keeps the process flat (about 400 MiB)
# but ingests 6% slower; 512MB ingests as fast as 1GB, its cache levelling off at the cap after about
# 15 million events (the process then near 800 MiB). Searches and month-long aggregations took the same
# time with 256MB as with 1GB (bigger sorts and aggregations spill to disk).
DEFAULT_MEMORY_LIMIT = "512MB"
MEMORY_SIZE = re.compile(r"[1-9]\d{0,5}(?:\.\d{1,3})?\s?(?:[KMGT]i?B)")


class StoreClosed(VigilError):
    status = 503
    code = "store-closed"
    title = "Event store closed"


def _schema() -> list[str]:
    typed = ",\n  ".join(
        f"{c.name} {c.sql_type}" + (" NOT NULL" if c.name in {"ts", "ingested", "source", "unit_id"} else "")
        for c in COLUMNS
    )
    return [
        "CREATE SEQUENCE IF NOT EXISTS event_ids",
        f"CREATE TABLE IF NOT EXISTS events (\n  id BIGINT NOT NULL DEFAULT nextval('event_ids'),\n  {typed},\n"
        # The document's JSON text. VARCHAR, not JSON: the move's json_transform has just parsed (and so
        # checked) it, and a JSON column would parse it once more (measured: 5-10% of the ingest time).
        # zstd: documents compress to about a third, and faster than with the default (FSST) analysis.
        "  doc VARCHAR NOT NULL USING COMPRESSION zstd\n)",
        "CREATE TABLE IF NOT EXISTS spool_positions (stream VARCHAR PRIMARY KEY, segment BIGINT NOT NULL, "
        "byte_offset BIGINT NOT NULL, updated TIMESTAMPTZ NOT NULL)",
        "CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    ]


def _default(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def dumps_event(value: Any) -> str:
    """An event as the JSON text the store keeps (``append`` writes this; ``append_json`` takes it)."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")
    except TypeError:
        # orjson refuses integers beyond 64 bits (and keys it cannot stringify); the standard library does not.
        return json.dumps(value, default=_default, ensure_ascii=False, allow_nan=False, skipkeys=False)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise BadInput("Timestamps given to the event store must carry a time zone")
    return value.astimezone(UTC)


def open_if_free(path: Path, *, memory_limit: str | None = DEFAULT_MEMORY_LIMIT) -> DuckDBEventStore | None:
    """The event store at ``path`` for a command run beside the server: None when there is none yet or a
    running `vigil serve` holds it (DuckDB lets one process hold the file)."""
    if not path.exists():
        return None
    try:
        return DuckDBEventStore(path, memory_limit=memory_limit)
    except duckdb.IOException:
        return None


class DuckDBEventStore:
    """``EventStore`` on a DuckDB file (or ``":memory:"``)."""

    def __init__(self, path: str | Path, *, memory_limit: str | None = DEFAULT_MEMORY_LIMIT) -> None:
        """``memory_limit``: DuckDB's cap on its memory (bigger sorts and aggregations spill to disk); None
        leaves DuckDB's own default, 80% of the machine's memory."""
        if memory_limit is not None and not MEMORY_SIZE.fullmatch(memory_limit):
            raise BadInput(f"Invalid memory limit {memory_limit!r}: write a size such as 512MB or 2GB")
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = duckdb.connect(self.path)
        self._db.execute("SET TimeZone = 'UTC'")
        if memory_limit is not None:
            self._db.execute(f"SET memory_limit = '{memory_limit}'")  # checked against MEMORY_SIZE above
        self._write_lock = threading.Lock()
        self._cursor_lock = threading.Lock()
        self._closed = False
        self.resolver = FieldResolver()
        for statement in [*_schema(), STAGING, STAGING_JSON]:
            self._db.execute(statement)
        self._db.execute("INSERT INTO store_meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
                         [str(SCHEMA_VERSION)]).fetchall()

    # -- writing ---------------------------------------------------------------------------------

    @staticmethod
    def _row(event: Event, *, now: datetime) -> tuple[datetime, datetime, str]:
        """(ts, ingested, document as JSON) of one event; no @timestamp means the ingest time."""
        ingested = coerce(COLUMNS[1], get_path(event, "event.ingested")) or now
        ts = coerce(COLUMNS[0], event.get("@timestamp")) or ingested
        return ts, ingested, dumps_event(event)

    def append(self, events: Sequence[Event], *, unit_id: int, source: str,
               spool_position: SpoolPosition | None = None, stream: str = "spool") -> AppendResult:
        now = datetime.now(UTC)
        rows = [self._row(event, now=now) for event in events]

        def move(db: duckdb.DuckDBPyConnection) -> None:
            self._stage(db, "staging_events", rows)
            db.execute(MOVE, [source, unit_id]).fetchall()
            db.execute("DELETE FROM staging_events").fetchall()

        return self._append(len(rows), move, spool_position, stream, now)

    def append_json(self, documents: Sequence[str | bytes], *, unit_id: int, source: str,
                    spool_position: SpoolPosition | None = None, stream: str = "spool") -> AppendResult:
        """Like ``append``, for events already serialised as JSON objects (one per item, e.g. NDJSON lines).

        No Python object is built per event. A batch holding anything but JSON objects is refused
        whole (``BadInput``) and nothing of it is stored.
        """
        now = datetime.now(UTC)
        rows = [(doc.decode("utf-8", errors="replace") if isinstance(doc, bytes) else doc,) for doc in documents]

        def move(db: duckdb.DuckDBPyConnection) -> None:
            self._stage(db, "staging_json", rows)
            db.execute(MOVE_JSON, [source, unit_id, now]).fetchall()
            db.execute("DELETE FROM staging_json").fetchall()

        try:
            return self._append(len(rows), move, spool_position, stream, now)
        except duckdb.InvalidInputException:
            # The move failed on a document (rolled back whole): say how many are not JSON objects.
            bad = self._not_objects(rows)
            if bad:
                raise BadInput(f"{bad} of {len(rows)} documents are not JSON objects; the batch was not stored"
                               ) from None
            raise

    def _not_objects(self, rows: Sequence[tuple[str]]) -> int:
        with self._write_lock:
            db = self._writer()
            db.begin()
            try:
                self._stage(db, "staging_json", rows)
                return int(db.execute(CHECK_JSON).fetchall()[0][0])
            finally:
                db.rollback()

    @staticmethod
    def _stage(db: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Sequence[Any]]) -> None:
        appender = db.appender(table)
        try:
            appender.append_rows(rows)
            appender.flush()
        except BaseException:
            appender.clear()
            raise

    def _append(self, size: int, move: Callable[[duckdb.DuckDBPyConnection], None],
                spool_position: SpoolPosition | None, stream: str, now: datetime) -> AppendResult:
        """One transaction: skip a batch already stored, else move it in and record its position."""
        with self._write_lock:
            db = self._writer()
            db.begin()
            try:
                if spool_position is not None:
                    stored = self._position(db, stream)
                    if stored is not None and tuple(spool_position) <= stored:
                        db.rollback()
                        return AppendResult(stored=0, skipped=True)
                if size:
                    move(db)
                if spool_position is not None:
                    segment, offset = spool_position
                    db.execute(
                        "INSERT INTO spool_positions VALUES (?, ?, ?, ?) ON CONFLICT (stream) DO UPDATE SET "
                        "segment = excluded.segment, byte_offset = excluded.byte_offset, updated = excluded.updated",
                        [stream, int(segment), int(offset), now]).fetchall()
                db.commit()
            except BaseException:
                db.rollback()
                raise
        return AppendResult(stored=size, skipped=False)

    def prune(self, older_than: datetime, *, source: str | None = None) -> int:
        sql = "DELETE FROM events WHERE ts < ?"
        params: list[Any] = [_utc(older_than)]
        if source is not None:
            sql += " AND source = ?"
            params.append(source)
        with self._write_lock:
            rows = self._writer().execute(sql, params).fetchall()
        return int(rows[0][0]) if rows else 0

    def _writer(self) -> duckdb.DuckDBPyConnection:
        if self._closed:
            raise StoreClosed("The event store is closed")
        return self._db

    @staticmethod
    def _position(db: duckdb.DuckDBPyConnection, stream: str) -> SpoolPosition | None:
        rows = db.execute("SELECT segment, byte_offset FROM spool_positions WHERE stream = ?", [stream]).fetchall()
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    # -- reading ---------------------------------------------------------------------------------

    def _reader(self) -> duckdb.DuckDBPyConnection:
        with self._cursor_lock:
            if self._closed:
                raise StoreClosed("The event store is closed")
            cursor = self._db.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        cursor = self._reader()
        try:
            return cursor.execute(sql, list(params)).fetchall()
        finally:
            cursor.close()

    @staticmethod
    def _where(where_sql: str, params: Sequence[Any], unit_ids: Sequence[int] | None,
               start: datetime | None, end: datetime | None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        values: list[Any] = []
        if where_sql.strip():
            clauses.append(f"({where_sql})")
            values.extend(params)
        if unit_ids is not None:
            units = [int(unit) for unit in unit_ids]
            clauses.append(f"unit_id IN ({', '.join('?' for _ in units)})" if units else "FALSE")
            values.extend(units)
        if start is not None:
            clauses.append("ts >= ?")
            values.append(_utc(start))
        if end is not None:
            clauses.append("ts < ?")
            values.append(_utc(end))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), values

    def last_position(self, stream: str = "spool") -> SpoolPosition | None:
        cursor = self._reader()
        try:
            return self._position(cursor, stream)
        finally:
            cursor.close()

    def count(self, where_sql: str = "", params: Sequence[Any] = (), *, unit_ids: Sequence[int] | None = None,
              start: datetime | None = None, end: datetime | None = None, at_most: int | None = None) -> int:
        where, values = self._where(where_sql, params, unit_ids, start, end)
        if at_most is None:
            return int(self._query(f"SELECT count(*) FROM events{where}", values)[0][0])  # noqa: S608
        if at_most < 0:
            raise BadInput("at_most must be at least 0")
        # The scan stops once that many matched: a frequent word over months costs a fraction of a full count.
        sql = f"SELECT count(*) FROM (SELECT 1 FROM events{where} LIMIT ?)"  # noqa: S608
        return int(self._query(sql, [*values, int(at_most)])[0][0])

    def search(self, where_sql: str = "", params: Sequence[Any] = (), *, unit_ids: Sequence[int] | None = None,
               start: datetime | None = None, end: datetime | None = None, limit: int = 100, offset: int = 0,
               order: Order = "desc") -> list[StoredEvent]:
        if order not in ("asc", "desc"):
            raise BadInput(f"Invalid sort order {order!r}: use 'asc' or 'desc'")
        if not 0 <= limit <= MAX_LIMIT or offset < 0:
            raise BadInput(f"limit must be 0 to {MAX_LIMIT} and offset at least 0")
        where, values = self._where(where_sql, params, unit_ids, start, end)
        direction = "ASC" if order == "asc" else "DESC"
        ordering = f" ORDER BY ts {direction}, id {direction}"
        # Two steps in one snapshot: the page's row ids from the narrow columns the query needs, then the
        # documents of those rows only. In one statement DuckDB reads (and decompresses) the document of
        # every matching row whenever the filter cannot be pushed into the scan (an OR across columns).
        cursor = self._reader()
        try:
            cursor.begin()
            page = cursor.execute(f"SELECT rowid FROM events{where}{ordering} LIMIT ? OFFSET ?",  # noqa: S608
                                  [*values, int(limit), int(offset)]).fetchall()
            rows = cursor.execute(
                f"SELECT id, ts, source, unit_id, ingested, doc FROM events WHERE rowid = ANY(?){ordering}",  # noqa: S608
                [[row[0] for row in page]]).fetchall() if page else []
            cursor.commit()
        finally:
            cursor.close()
        return [self._stored(*row) for row in rows]

    @staticmethod
    def _stored(id_: int, ts: datetime, source: str, unit_id: int, ingested: datetime, text: str) -> StoredEvent:
        """A stored event, its document completed with what the store holds beside it."""
        ts, ingested = ts.astimezone(UTC), ingested.astimezone(UTC)
        doc = orjson.loads(text)
        vigil = doc.get("vigil")
        doc["vigil"] = {**(vigil if isinstance(vigil, dict) else {}), "source": source, "unit_id": unit_id}
        if doc.get("@timestamp") is None:
            doc["@timestamp"] = ts.isoformat()
        event = doc.get("event")
        if event is None or (isinstance(event, dict) and event.get("ingested") is None):
            doc["event"] = {**(event or {}), "ingested": ingested.isoformat()}
        return StoredEvent(id=int(id_), ts=ts, source=source, unit_id=int(unit_id), doc=doc)

    def histogram(self, where_sql: str = "", params: Sequence[Any] = (), *, interval_seconds: int,
                  unit_ids: Sequence[int] | None = None, start: datetime | None = None,
                  end: datetime | None = None) -> list[Bucket]:
        if interval_seconds < 1:
            raise BadInput("The histogram interval must be at least one second")
        where, values = self._where(where_sql, params, unit_ids, start, end)
        bucket = "time_bucket(to_seconds(?::BIGINT), ts, TIMESTAMPTZ '1970-01-01 00:00:00+00')"
        sql = f"SELECT {bucket} AS b, count(*) FROM events{where} GROUP BY b ORDER BY b"  # noqa: S608
        rows = self._query(sql, [int(interval_seconds), *values])
        return [Bucket(start=r[0].astimezone(UTC), count=int(r[1])) for r in rows]

    def top_values(self, field: str, where_sql: str = "", params: Sequence[Any] = (), *, limit: int = 10,
                   unit_ids: Sequence[int] | None = None, start: datetime | None = None,
                   end: datetime | None = None) -> list[TermCount]:
        resolved = self.resolver.resolve_typed(field)
        if not 1 <= limit <= MAX_LIMIT:
            raise BadInput(f"limit must be 1 to {MAX_LIMIT}")
        where, values = self._where(where_sql, params, unit_ids, start, end)
        if resolved.kind is Kind.LIST:
            inner = f"SELECT unnest({resolved.sql}) AS value FROM events{where}"  # noqa: S608
        else:
            inner = f"SELECT {resolved.sql} AS value FROM events{where}"  # noqa: S608
        rows = self._query(
            f"SELECT value, count(*) AS n FROM ({inner}) WHERE value IS NOT NULL GROUP BY value "  # noqa: S608
            "ORDER BY n DESC, value LIMIT ?", [*values, int(limit)])
        return [TermCount(value=r[0], count=int(r[1])) for r in rows]

    def match_values(self, sets: Sequence[ValueSet], *, start: datetime, end: datetime) -> list[ValueMatch]:
        """The events between ``start`` and ``end`` that carry any of the values, grouped (``lookup``)."""
        sql, params = lookup.build(sets)
        if not sql:
            return []
        cursor = self._reader()
        try:
            rows = cursor.execute(sql, {**params, "since": _utc(start), "until": _utc(end)}).fetchall()
            ids = sorted({int(r[8]) for r in rows})
            documents = dict(cursor.execute(lookup.DOCUMENTS, {"ids": ids}).fetchall()) if ids else {}
        finally:
            cursor.close()
        return [ValueMatch(tag=int(r[0]), unit_id=int(r[1]), source=r[2], field=r[3], observed=r[4],
                           first_seen=r[5], last_seen=r[6], count=int(r[7]), document=documents.get(int(r[8]), "{}"))
                for r in rows]

    def documents_with_tokens(self, tokens: Mapping[TokenKind, Sequence[str]], *, start: datetime, end: datetime,
                              chunk: int = 5_000) -> Iterator[list[StoredRow]]:
        kinds = [kind for kind, values in tokens.items() if values]
        if not kinds:
            return
        cursor = self._reader()
        try:
            params: dict[str, object] = {"since": _utc(start), "until": _utc(end)}
            params.update({kind: list(tokens[kind]) for kind in kinds})
            ids = [int(row[0]) for row in cursor.execute(lookup.token_query(kinds), params).fetchall()]
            for first in range(0, len(ids), chunk):
                yield cursor.execute(lookup.EVENTS_BY_ID, {"ids": ids[first:first + chunk]}).fetchall()
        finally:
            cursor.close()

    def oldest(self, source: str | None = None) -> datetime | None:
        if source is None:
            rows = self._query("SELECT min(ts) FROM events", [])
        else:
            rows = self._query("SELECT min(ts) FROM events WHERE source = ?", [source])
        value = rows[0][0]
        return value.astimezone(UTC) if value is not None else None

    def memory_bytes(self) -> int:
        """Memory DuckDB holds for this database now (buffers, caches, sorts): for status pages and benchmarks."""
        return int(self._query("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()", [])[0][0])

    def close(self) -> None:
        with self._write_lock, self._cursor_lock:
            if not self._closed:
                self._closed = True
                self._db.close()


__all__ = ["SOURCE_FIELD", "DuckDBEventStore", "StoreClosed"]
