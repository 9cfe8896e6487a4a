"""The indicator store: every indicator once, with the provenance of each source that states it.

Indicators are bulk data (a single feed may hold millions), so they live in their own DuckDB file
(``<data_dir>/intel/indicators.duckdb``) beside the event store, held by one process like it: batches are
merged with set operations inside DuckDB, not row by row. ``indicators`` holds one row per (type, value);
``sources`` one row per (indicator, source) with what that source says: confidence, TLP, validity, and
the decay policy its feed gives that type, from which the score is computed when asked (MISP's model:
``base × (1 − (age / lifetime)^(1 / speed))``; below the threshold the source no longer vouches for it).
An indicator is active when a source still vouches for it, it is not past its ``valid_until``, and it is
neither allow-listed nor (unless asked) on a warninglist.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from vigil.intel.indicators import IndicatorType, ParsedIndicator
from vigil.intel.staging import STAGE_CSV, DecayPolicy, NativeRows, Stager

__all__ = ["DecayPolicy", "IntelStore", "MergeResult", "StoredIndicator"]

STAGE_CHUNK = 500_000  # indicators staged per DuckDB merge: bounded memory for huge feeds
_SCHEMA = [
    "CREATE SEQUENCE IF NOT EXISTS indicator_ids START 1",
    """CREATE TABLE IF NOT EXISTS indicators (
        id BIGINT NOT NULL, type VARCHAR NOT NULL, value VARCHAR NOT NULL,
        first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL,
        tags VARCHAR[] NOT NULL, kill_chain VARCHAR[] NOT NULL, related VARCHAR[] NOT NULL,
        description VARCHAR NOT NULL, pattern VARCHAR NOT NULL,
        warninglists VARCHAR[] NOT NULL, allowlisted BOOLEAN NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS sources (
        indicator_id BIGINT NOT NULL, source VARCHAR NOT NULL, version VARCHAR NOT NULL, external_id VARCHAR NOT NULL,
        confidence INTEGER, tlp VARCHAR, valid_from TIMESTAMPTZ, valid_until TIMESTAMPTZ,
        first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ, imported_at TIMESTAMPTZ NOT NULL,
        base_score DOUBLE NOT NULL, lifetime_days DOUBLE NOT NULL, decay_speed DOUBLE NOT NULL,
        threshold DOUBLE NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR NOT NULL, value VARCHAR NOT NULL)",
]
# The score of a source row now (MISP decay); ``$now`` is bound by the caller.
SCORE_SQL = ("greatest(0.0, s.base_score * (1 - pow(least(1.0, greatest(0.0, epoch($now - coalesce(s.last_seen, "
             "s.imported_at)) / 86400.0) / s.lifetime_days), 1.0 / s.decay_speed)))")
_VALID = "(s.valid_until IS NULL OR s.valid_until > $now)"
# Every indicator column, its score now (the best of its sources) and whether a source still vouches for it.
_SCORED = (  # constant fragments only; values are bound
    "SELECT i.*, coalesce((SELECT max(" + SCORE_SQL + ") FROM sources s "  # noqa: S608
    "WHERE s.indicator_id = i.id AND " + _VALID + "), 0.0) AS score, "
    "coalesce((SELECT bool_or(" + SCORE_SQL + " >= s.threshold) FROM sources s "
    "WHERE s.indicator_id = i.id AND " + _VALID + "), false) AS vouched FROM indicators i WHERE ")
_ACTIVE = (  # constant fragments only; values are bound
    "SELECT i.id, i.type, i.value FROM indicators i "  # noqa: S608
    "WHERE NOT i.allowlisted AND ($warn OR len(i.warninglists) = 0) "
    "AND EXISTS (SELECT 1 FROM sources s WHERE s.indicator_id = i.id AND " + _VALID + " AND " + SCORE_SQL
    + " >= s.threshold)")
# The indicators some source still vouches for now (valid, scored at or above its threshold).
_VOUCHED = ("SELECT s.indicator_id FROM sources s WHERE " + _VALID + " AND " + SCORE_SQL  # noqa: S608
            + " >= s.threshold")
_SOURCES = (  # constant fragments only; values are bound
    "SELECT s.*, " + SCORE_SQL + " AS score FROM sources s "  # noqa: S608
    "WHERE s.indicator_id IN (SELECT unnest($ids)) "
    "ORDER BY s.source")


@dataclass(frozen=True)
class MergeResult:
    received: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0  # indicators the source no longer states (a full replacement)
    # Ids new to the store or new from this source: what a retro-hunt looks for.
    fresh: tuple[int, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class StoredIndicator:
    id: int
    type: str
    value: str
    score: float
    active: bool
    first_seen: datetime | None
    last_seen: datetime | None
    created_at: datetime
    updated_at: datetime
    tags: list[str]
    kill_chain: list[str]
    related: list[dict[str, str]]
    description: str
    pattern: str
    warninglists: list[str]
    allowlisted: bool
    sources: list[dict[str, Any]]


def _add(pending: Future[tuple[int, int]] | None, received: int, added: int, updated: int) -> tuple[int, int, int]:
    """The running counts with a chunk's merge, once it is done."""
    if pending is None:
        return received, added, updated
    new, known = pending.result()
    return received + new + known, added + new, updated + known


def _stage(db: duckdb.DuckDBPyConnection, rows: str, parameters: list[Any],
           scores: list[tuple[float, float, float, float]]) -> None:
    """The ``stage`` table: the staged rows of ``rows`` (a relation with ``STAGE_FIELDS``), their fields read
    and their decay policy joined, each with its indicator's id when the store knows it."""
    db.execute("CREATE OR REPLACE TEMP TABLE policies (id INTEGER, base_score DOUBLE, lifetime_days DOUBLE, "
               "decay_speed DOUBLE, threshold DOUBLE)")
    db.executemany("INSERT INTO policies VALUES (?, ?, ?, ?, ?)", [(i, *policy) for i, policy in enumerate(scores)])
    db.execute(f"""CREATE OR REPLACE TEMP TABLE stage AS
        SELECT r.pos, r.type, r.value, r.confidence, r.first_seen, r.last_seen,
               coalesce(string_split(r.tags, chr(31)), []) AS tags,
               p.base_score, p.lifetime_days, p.decay_speed, p.threshold,
               coalesce(r.extra->>'external_id', '') AS external_id, r.extra->>'tlp' AS tlp,
               (r.extra->>'valid_from')::TIMESTAMPTZ AS valid_from,
               (r.extra->>'valid_until')::TIMESTAMPTZ AS valid_until,
               coalesce(from_json(r.extra->'kill_chain', '["VARCHAR"]'), []) AS kill_chain,
               coalesce(from_json(r.extra->'related', '["VARCHAR"]'), []) AS related,
               coalesce(r.extra->>'description', '') AS description, coalesce(r.extra->>'pattern', '') AS pattern,
               i.id AS id, i.id IS NULL AS new
        FROM {rows} r JOIN policies p ON p.id = r.policy LEFT JOIN indicators i USING (type, value)""",  # noqa: S608
               parameters)


def _merge_stage(db: duckdb.DuckDBPyConnection, source: str, version: str, now: datetime) -> tuple[int, int]:
    """Merge the ``stage`` table into the store: (added, already known), counted after de-duplication."""
    repeated = db.execute("SELECT count(*) - count(DISTINCT (type, value)) FROM stage").fetchone()
    if repeated and repeated[0]:  # a value stated twice: its last statement counts
        db.execute("""CREATE OR REPLACE TEMP TABLE stage AS SELECT * FROM stage
                      QUALIFY row_number() OVER (PARTITION BY type, value ORDER BY pos DESC) = 1""")
    added = int(db.execute("SELECT count(*) FROM stage WHERE new").fetchone()[0])  # type: ignore[index]
    db.execute("UPDATE stage SET id = nextval('indicator_ids') WHERE new")  # (in the CREATE above: twice as slow)
    db.execute("""INSERT INTO indicators
        SELECT id, type, value, first_seen, coalesce(last_seen, first_seen), $now, $now, tags, kill_chain,
               related, description, pattern, [], false
        FROM stage WHERE new""", {"now": now})
    db.execute("""UPDATE indicators i SET
            first_seen = CASE WHEN i.first_seen IS NULL OR s.first_seen < i.first_seen
                         THEN coalesce(s.first_seen, i.first_seen) ELSE i.first_seen END,
            last_seen = greatest(i.last_seen, s.last_seen, s.first_seen),
            tags = list_distinct(list_concat(i.tags, s.tags)),
            kill_chain = list_distinct(list_concat(i.kill_chain, s.kill_chain)),
            related = list_distinct(list_concat(i.related, s.related)),
            description = CASE WHEN i.description = '' THEN s.description ELSE i.description END,
            updated_at = $now
        FROM stage s WHERE i.id = s.id AND NOT s.new""", {"now": now})
    db.execute("INSERT INTO fresh SELECT id FROM stage s WHERE new OR NOT EXISTS "
               "(SELECT 1 FROM sources o WHERE o.indicator_id = s.id AND o.source = $source)", {"source": source})
    db.execute("DELETE FROM sources WHERE source = $source AND indicator_id IN "
               "(SELECT id FROM stage WHERE NOT new)", {"source": source})
    db.execute("""INSERT INTO sources SELECT id, $source, $version, external_id, confidence, tlp, valid_from,
               valid_until, first_seen, last_seen, $now, base_score, lifetime_days, decay_speed, threshold
               FROM stage""", {"source": source, "version": version, "now": now})
    db.execute("INSERT INTO seen SELECT id FROM stage")
    return added, int(db.execute("SELECT count(*) FROM stage").fetchone()[0]) - added  # type: ignore[index]


class IntelStore:
    """The DuckDB indicator store. Writes are serialised (one writer); reads use their own cursor."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = duckdb.connect(str(path))
        self._lock = threading.Lock()
        for statement in _SCHEMA:
            self._db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing ----------------------------------------------------------------------------------------

    def merge(self, items: Iterable[ParsedIndicator], *, source: str, version: str = "",
              policies: dict[str, DecayPolicy] | None = None, replace: bool = False,
              now: datetime | None = None) -> MergeResult:
        """Merge a source's indicators. ``replace``: the items are the source's whole list now, so what it
        no longer states loses this source (a CSV blocklist pulled again); otherwise items are added to
        what it stated before (a TAXII or MISP increment)."""
        stager = Stager(policies or {})
        return self.merge_lines(map(stager.line, itertools.count(), items), stager, source=source, version=version,
                                replace=replace, now=now)

    def merge_lines(self, lines: Iterable[str], stager: Stager, *, source: str, version: str = "",
                    replace: bool = False, now: datetime | None = None, native: NativeRows | None = None
                    ) -> MergeResult:
        """``merge`` for indicators already written as staging lines by ``stager`` (or by a reader that
        stages its own rows with it, ``staging.StagingParser``). With ``native``, DuckDB stages the rows
        itself when it can (the lines are then never read)."""
        now = now or datetime.now(UTC)
        with self._lock, tempfile.TemporaryDirectory(prefix="vigil-intel-") as folder:
            db = self._db
            db.execute("BEGIN")
            try:
                db.execute("CREATE OR REPLACE TEMP TABLE seen (id BIGINT)")
                db.execute("CREATE OR REPLACE TEMP TABLE fresh (id BIGINT)")
                relation = native.stage_rows(db, Path(folder)) if native is not None else None
                if native is not None and relation is not None:
                    _stage(db, relation, [], list(stager.scores))
                    native.release(db)
                    added, updated = _merge_stage(db, source, version, now)
                    received = added + updated
                else:
                    received, added, updated = self._merge_chunks(db, lines, stager, Path(folder), source, version,
                                                                  now)
                removed = self._drop_unstated(db, source) if replace else 0
                fresh = self._fresh(db)
                self._bump(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return MergeResult(received=received, added=added, updated=updated, removed=removed, fresh=fresh)

    def _merge_chunks(self, db: duckdb.DuckDBPyConnection, lines: Iterable[str], stager: Stager, folder: Path,
                      source: str, version: str, now: datetime) -> tuple[int, int, int]:
        """Merge staging lines chunk by chunk: (received, added, updated)."""
        received = added = updated = 0
        # DuckDB merges one chunk (without the GIL) while Python reads and stages the next.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-intel-merge") as merger:
            pending: Future[tuple[int, int]] | None = None
            lines = iter(lines)
            chunk = list(itertools.islice(lines, STAGE_CHUNK))
            while len(chunk) == STAGE_CHUNK:
                received, added, updated = _add(pending, received, added, updated)
                pending = merger.submit(self._merge_chunk, db, chunk, list(stager.scores), folder, source, version,
                                        now)
                chunk = list(itertools.islice(lines, STAGE_CHUNK))
            received, added, updated = _add(pending, received, added, updated)
            if chunk:
                merged = self._merge_chunk(db, chunk, list(stager.scores), folder, source, version, now)
                received, added, updated = received + sum(merged), added + merged[0], updated + merged[1]
        return received, added, updated

    def _merge_chunk(self, db: duckdb.DuckDBPyConnection, rows: list[str],
                     scores: list[tuple[float, float, float, float]], folder: Path, source: str, version: str,
                     now: datetime) -> tuple[int, int]:
        """Merge one chunk of staged lines: (added, already known), counted after de-duplication."""
        path = folder / "stage.tsv"
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        _stage(db, f"read_csv(?, {STAGE_CSV})", [str(path)], scores)
        path.unlink()
        return _merge_stage(db, source, version, now)

    @staticmethod
    def _fresh(db: duckdb.DuckDBPyConnection) -> tuple[int, ...]:
        """The fresh ids in order. Read as runs of consecutive ids (new indicators are numbered in a row): handing
        DuckDB's rows to Python one by one costs a quarter of a second per million."""
        runs = db.execute("""SELECT min(id), max(id), count(*) FROM (
                SELECT id, id - row_number() OVER (ORDER BY id) AS run FROM fresh)
            GROUP BY run ORDER BY min(id)""").fetchall()
        previous = None
        for low, high, count in runs:
            if high - low + 1 != count or (previous is not None and low <= previous):
                break  # a repeated id: the runs are not the list (never so today; read it row by row)
            previous = high
        else:
            return tuple(itertools.chain.from_iterable(range(int(low), int(high) + 1) for low, high, _ in runs))
        return tuple(int(r[0]) for r in db.execute("SELECT id FROM fresh ORDER BY id").fetchall())

    @staticmethod
    def _drop_unstated(db: duckdb.DuckDBPyConnection, source: str) -> int:
        found = db.execute("""DELETE FROM sources WHERE source = $source
                              AND indicator_id NOT IN (SELECT id FROM seen)""", {"source": source}).fetchone()
        return int(found[0]) if found else 0

    def drop_source(self, source: str) -> int:
        """Forget what a source stated (a feed deleted); its indicators stay, with their other sources."""
        with self._lock:
            found = self._db.execute("DELETE FROM sources WHERE source = ?", [source]).fetchone()
            self._bump(self._db)
        return int(found[0]) if found else 0

    def set_flags(self, *, warninglists: dict[int, list[str]] | None = None,
                  allowlisted: Iterable[tuple[str, str]] | None = None) -> None:
        """Record warninglist names per indicator id, and (re)mark the allow-listed (type, value) pairs."""
        with self._lock:
            db = self._db
            if warninglists:
                db.execute("""UPDATE indicators SET warninglists = w.names
                              FROM (SELECT unnest($ids) AS id, unnest($names) AS names) w
                              WHERE indicators.id = w.id""",
                           {"ids": list(warninglists), "names": list(warninglists.values())})
            if allowlisted is not None:
                pairs = list(allowlisted)
                db.execute("UPDATE indicators SET allowlisted = false WHERE allowlisted")
                if pairs:
                    db.execute("""UPDATE indicators SET allowlisted = true
                                  FROM (SELECT unnest($types) AS type, unnest($values) AS value) a
                                  WHERE indicators.type = a.type AND indicators.value = a.value""",
                               {"types": [t for t, _ in pairs], "values": [v for _, v in pairs]})
            self._bump(db)

    @staticmethod
    def _bump(db: duckdb.DuckDBPyConnection) -> None:
        db.execute("DELETE FROM meta WHERE key = 'version'")
        db.execute("INSERT INTO meta VALUES ('version', ?)", [os.urandom(8).hex()])

    # --- reading ----------------------------------------------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return self._db.cursor()

    def version(self) -> str:
        found = self._cursor().execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return str(found[0]) if found else "empty"

    def active(self, *, now: datetime | None = None, include_warninglisted: bool = False
               ) -> Iterator[tuple[int, str, str]]:
        """(id, type, value) of every active indicator, for the matcher."""
        cursor = self._cursor()
        cursor.execute(_ACTIVE, {"now": now or datetime.now(UTC), "warn": include_warninglisted})
        while batch := cursor.fetchmany(100_000):
            yield from batch

    def of_source(self, source: str) -> Iterator[tuple[int, str, str]]:
        """(id, type, value) of every indicator a source states."""
        cursor = self._cursor()
        cursor.execute("SELECT i.id, i.type, i.value FROM indicators i JOIN sources s ON s.indicator_id = i.id "
                       "WHERE s.source = ?", [source])
        while batch := cursor.fetchmany(100_000):
            yield from batch

    def triples(self, ids: Sequence[int]) -> Iterator[tuple[int, str, str]]:
        """(id, type, value) of these indicators."""
        cursor = self._cursor()
        cursor.execute("SELECT id, type, value FROM indicators WHERE id IN (SELECT unnest($ids))", {"ids": list(ids)})
        while batch := cursor.fetchmany(100_000):
            yield from batch

    def count(self) -> int:
        found = self._cursor().execute("SELECT count(*) FROM indicators").fetchone()
        return int(found[0]) if found else 0

    def counts_by_source(self) -> dict[str, int]:
        rows = self._cursor().execute("SELECT source, count(*) FROM sources GROUP BY source").fetchall()
        return {str(source): int(n) for source, n in rows}

    def search(self, *, text: str = "", types: Sequence[str] = (), source: str = "", tag: str = "",
               active_only: bool = False, limit: int = 50, offset: int = 0,
               now: datetime | None = None) -> tuple[list[StoredIndicator], int]:
        """A page of indicators, newest first, with the total that matched. Only the page is scored; the
        active-only filter is one set operation over the sources, not a score per indicator."""
        where, params = self._filters(text=text, types=types, source=source, tag=tag)
        if active_only:
            params["now"] = now or datetime.now(UTC)
            where += " AND i.id IN (" + _VOUCHED + ") AND NOT i.allowlisted AND len(i.warninglists) = 0"
        cursor = self._cursor()
        # Only fixed SQL fragments are joined here; every value is bound.
        total = cursor.execute(f"SELECT count(*) FROM indicators i WHERE {where}", params).fetchone()  # noqa: S608
        ids = [int(r[0]) for r in cursor.execute(
            f"SELECT i.id FROM indicators i WHERE {where} ORDER BY i.updated_at DESC, i.id DESC "  # noqa: S608
            f"LIMIT {int(limit)} OFFSET {int(offset)}", params).fetchall()]
        found = {i.id: i for i in self._page_by_ids(ids, now=now)[0]}
        return [found[i] for i in ids if i in found], int(total[0]) if total else 0

    def get(self, indicator_id: int) -> StoredIndicator | None:
        found, _ = self._page_by_ids([indicator_id])
        return found[0] if found else None

    def find(self, kind: str, value: str) -> StoredIndicator | None:
        row = self._cursor().execute("SELECT id FROM indicators WHERE type = ? AND value = ?", [kind, value]).fetchone()
        return self.get(int(row[0])) if row else None

    def by_ids(self, ids: Sequence[int]) -> list[StoredIndicator]:
        return self._page_by_ids(ids)[0]

    def _page_by_ids(self, ids: Sequence[int], *, now: datetime | None = None) -> tuple[list[StoredIndicator], int]:
        if not ids:
            return [], 0
        cursor = self._cursor()
        now = now or datetime.now(UTC)
        rows = cursor.execute(_SCORED + "i.id IN (SELECT unnest($ids)) ORDER BY i.id",
                              {"now": now, "ids": list(ids)}).fetchall()
        names = [d[0] for d in cursor.description or ()]
        found = [dict(zip(names, row, strict=True)) for row in rows]
        return self._with_sources(found, now), len(found)

    def _with_sources(self, rows: list[dict[str, Any]], now: datetime) -> list[StoredIndicator]:
        if not rows:
            return []
        cursor = self._cursor()
        listed = cursor.execute(_SOURCES, {"ids": [r["id"] for r in rows], "now": now}).fetchall()
        names = [d[0] for d in cursor.description or ()]
        by_id: dict[int, list[dict[str, Any]]] = {}
        for row in listed:
            item = dict(zip(names, row, strict=True))
            by_id.setdefault(int(item.pop("indicator_id")), []).append(item)
        return [StoredIndicator(
            id=int(r["id"]), type=r["type"], value=r["value"], score=round(float(r["score"]), 1),
            active=bool(r["vouched"]) and not r["allowlisted"] and not r["warninglists"],
            first_seen=r["first_seen"], last_seen=r["last_seen"], created_at=r["created_at"],
            updated_at=r["updated_at"], tags=list(r["tags"]), kill_chain=list(r["kill_chain"]),
            related=[orjson.loads(x) for x in r["related"]], description=r["description"], pattern=r["pattern"],
            warninglists=list(r["warninglists"]), allowlisted=bool(r["allowlisted"]),
            sources=by_id.get(int(r["id"]), [])) for r in rows]

    @staticmethod
    def _filters(*, text: str, types: Sequence[str], source: str, tag: str) -> tuple[str, dict[str, Any]]:
        clauses = ["true"]
        params: dict[str, Any] = {}
        if text:
            clauses.append("(contains(i.value, $text) OR contains(lower(i.description), lower($text)))")
            params["text"] = text.lower() if not text.isupper() else text
        if types:
            clauses.append("i.type IN (SELECT unnest($types))")
            params["types"] = [IndicatorType(t).value for t in types]
        if source:
            clauses.append("EXISTS (SELECT 1 FROM sources s2 WHERE s2.indicator_id = i.id AND s2.source = $source)")
            params["source"] = source
        if tag:
            clauses.append("list_contains(i.tags, $tag)")
            params["tag"] = tag
        return " AND ".join(clauses), params

    def related_to(self, name: str) -> list[int]:
        """Ids of the indicators related to an entity of this name (its ``related`` items name it)."""
        needle = orjson.dumps(name).decode()
        rows = self._cursor().execute("""SELECT id FROM indicators
            WHERE len(list_filter(related, lambda x: contains(x, $needle))) > 0""", {"needle": needle}).fetchall()
        return [int(r[0]) for r in rows]
