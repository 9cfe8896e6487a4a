"""Sigma rules over the events the store holds for a time window: the SQL half of a hunt.

The rules' variants are grouped by the Channel and EventID their log-source mapping requires (their
"gate", as the engine indexes them). Each group becomes one query (a few, for a big group): the window,
the caller's units, the gate (on the typed ``win_channel`` / ``win_event_id`` columns, so DuckDB reads
only those rows' documents) and an optional search-language filter narrow the rows; each row's document
is parsed once for every field the group's rules read, and every variant's condition (``sigma_sql``) is
one boolean column. Only rows where some variant holds come back. Variants SQL cannot decide exactly
(keywords, regular expressions beyond RE2, IPv6 networks, lists) return their candidate rows' documents,
and the engine itself (``Engine.match``, over only the rules concerned) decides those rows, in batches.
A hunt's queries run side by side, each on its own cursor.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from vigil.detection.sigma import Engine, Rule
from vigil.detection.sigma.gates import Gate, variant_gate, without_gate
from vigil.detection.sigma.predicates import And, Condition, Predicate
from vigil.detection.sigma_sql import Compiled, ConditionCompiler, Fields, prefilter
from vigil.siem.fields import Kind, column_for
from vigil.siem.store.duckdb import DuckDBEventStore

# Variants compiled into one query: bigger means fewer passes over the group's rows, but a longer SQL
# text for DuckDB to plan (measured on rules/windows: see docs/detection.md, "Hunting over stored events").
VARIANTS_PER_QUERY = 400
QUERY_THREADS = min(4, os.cpu_count() or 1)  # queries of one hunt run side by side
FETCH_ROWS = 2_000  # rows read from a result at a time (the documents of candidates among them)
_INT32 = 2**31

ColumnGate = tuple[str, str]  # (ECS field with a typed text column, the value it must equal, lower-cased)
# Fields whose typed column narrows a variant without a Windows gate (most selective first).
COLUMN_GATE_FIELDS = ("event.dataset", "event.module", "event.action", "process.name")


@dataclass(frozen=True)
class Window:
    """Where a hunt looks: a time window, the units whose events it may read (None: all), an extra filter."""

    start: datetime
    end: datetime
    units: Sequence[int] | None = None
    where_sql: str = ""  # the search compiler's SQL for an extra query, or ""
    params: Sequence[Any] = ()


@dataclass
class StoreHuntResult:
    hits: dict[str, list[int]]  # rule id -> ids of the matching events, ascending
    events_scanned: int
    queries: int = 0
    verified: int = 0  # candidate rows checked in Python
    seconds: float = 0.0
    rules_checked_in_python: list[str] = field(default_factory=list)


def column_gate(condition: Condition) -> ColumnGate | None:
    """An equality on one of ``COLUMN_GATE_FIELDS`` the variant requires (top-level, uncased, a word that is not
    a number or a boolean, whose text a typed column holds exactly as the engine compares it)."""
    items = condition.items if isinstance(condition, And) else (condition,)
    found: dict[str, str] = {}
    for item in items:
        if (isinstance(item, Predicate) and item.kind == "exact" and not item.cased and item.field in COLUMN_GATE_FIELDS
                and isinstance(item.value, str) and item.value and item.value not in ("true", "false")
                and not _is_number(item.value)):
            found.setdefault(item.field, item.value)
    return next(((name, found[name]) for name in COLUMN_GATE_FIELDS if name in found), None)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _gate_filter(gate: Gate, column: ColumnGate | None = None) -> tuple[list[str], list[Any]]:
    """The gate on the typed columns (DuckDB reads only the rows that pass): a superset of the rows the
    engine would look at for it, made exact in the query by the same test on the document's own text.

    A column gate lets through rows whose column is empty (the field absent, or only a top-level key with a
    dot in its name) or holds a list's JSON text: the condition itself decides those."""
    clauses: list[str] = []
    params: list[Any] = []
    if column is not None:
        name = column_for(column[0])
        assert name is not None and name.kind is Kind.TEXT
        clauses.append(f"({name.name} IS NULL OR starts_with({name.name}, '[') OR lower({name.name}) = ?)")
        params.append(column[1])
    channel, event_id = gate
    if channel is not None:
        clauses.append("lower(win_channel) = ?")
        params.append(channel)
    if event_id is not None and event_id.lstrip("-").isdigit() and -_INT32 <= int(event_id) < _INT32:
        clauses.append("win_event_id = ?")
        params.append(int(event_id))
    return clauses, params


def _scope(window: Window) -> tuple[list[str], list[Any]]:
    clauses = ["ts >= ?", "ts < ?"]
    params: list[Any] = [window.start, window.end]
    if window.units is not None:
        units = [int(unit) for unit in window.units]
        clauses.append(f"unit_id IN ({', '.join('?' for _ in units)})" if units else "FALSE")
        params.extend(units)
    if window.where_sql.strip():
        clauses.append(f"({window.where_sql})")
        params.extend(window.params)
    return clauses, params


@dataclass(frozen=True)
class _Query:
    sql: str
    params: list[Any]
    variants: list[tuple[int, Condition]]  # rule index, the whole variant (for Python's check)
    inexact: set[int]  # rules with a variant SQL cannot decide alone


def build_query(variants: Sequence[tuple[int, Condition]], gate: Gate, window: Window,
                column: ColumnGate | None = None) -> _Query:
    """One query evaluating ``variants`` (all of ``gate``) over the window's rows.

    A row comes back when some variant holds or may hold; with its document when Python must decide
    (a variant unsure of it, or a list among the fields read: then every variant is checked in Python)."""
    fields = Fields()
    compiler = ConditionCompiler(fields)
    gate_checks: list[str] = []
    gate_params: list[Any] = []
    if gate[0] is not None:
        gate_checks.append(f"lower(x{fields.slot('Channel')}) = ?")
        gate_params.append(gate[0])
    if gate[1] is not None:
        gate_checks.append(f"x{fields.slot('EventID')} = ?")
        gate_params.append(gate[1])
    compiled = []
    rests = [without_gate(condition, gate) for _, condition in variants]
    for rest in rests:
        compiled.append(compiler.compile(rest) if rest is not None else Compiled("TRUE", [], "TRUE", [], True))
    # Lists among the fields: the row goes to Python, so the prefilter must let it through.
    needle_test, needle_params = prefilter(fields, rests)
    if not fields.lookups:  # keywords only: one field still makes the projections well-formed
        fields.slot("Channel")
    values, kinds, texts, lowered = fields.levels()
    scope, scope_params = _scope(window)
    typed_gate, typed_params = _gate_filter(gate, column)
    # m{n}: the variant surely holds; c{n}: it may (only for variants SQL cannot decide alone).
    columns = [f"coalesce({c.sure}, FALSE) AS m{n}" for n, c in enumerate(compiled)]
    columns += [f"coalesce({c.maybe}, FALSE) AS c{n}" for n, c in enumerate(compiled) if not c.exact]
    params: list[Any] = []
    params += [p for c in compiled for p in c.sure_params]
    params += [p for c in compiled if not c.exact for p in c.maybe_params]
    flags = [f"m{n}" if c.exact else f"(m{n} OR c{n})" for n, c in enumerate(compiled)]
    unsure = ["arr", *(f"(c{n} AND NOT m{n})" for n, c in enumerate(compiled) if not c.exact)]
    where = " AND ".join([*scope, *typed_gate])
    # Materialized: DuckDB would otherwise compute every condition twice (in the filter and the projection).
    sql = (
        f"WITH r AS MATERIALIZED (SELECT id, doc, arr, {', '.join(columns)} FROM ("  # noqa: S608
        f"SELECT id, doc, {lowered} FROM (SELECT id, doc, {texts} FROM (SELECT id, doc, {kinds} FROM ("
        f"SELECT id, doc, {values} FROM ("
        f"SELECT id, doc, json_extract(doc, ?::VARCHAR[]) AS j FROM events WHERE {where})))) "
        f"WHERE {' AND '.join(gate_checks) or 'TRUE'}) WHERE arr OR {needle_test}) "
        f"SELECT id, arr, CASE WHEN {' OR '.join(unsure)} THEN doc END, {', '.join(flags)} FROM r "
        f"WHERE arr OR {' OR '.join(flags)}"
    )
    params += [fields.paths, *scope_params, *typed_params, *gate_params, *needle_params]
    inexact = {index for (index, _), c in zip(variants, compiled, strict=True) if not c.exact}
    return _Query(sql, params, list(variants), inexact)


def plan(rules: Sequence[Rule]) -> dict[tuple[Gate, ColumnGate | None], list[tuple[int, Condition]]]:
    """The rules' variants grouped by gate, and those without a Windows gate by column gate (rule index,
    condition)."""
    groups: dict[tuple[Gate, ColumnGate | None], list[tuple[int, Condition]]] = defaultdict(list)
    for index, rule in enumerate(rules):
        for variant in rule.variants:
            gate = variant_gate(variant)
            column = column_gate(variant) if gate == (None, None) else None
            groups[(gate, column)].append((index, variant))
    return groups


def count_events(store: DuckDBEventStore, window: Window) -> int:
    clauses, params = _scope(window)
    sql = f"SELECT count(*) FROM events WHERE {' AND '.join(clauses)}"  # noqa: S608
    return int(_execute(store, sql, params)[0][0])


def event_units(store: DuckDBEventStore, ids: Sequence[int]) -> dict[int, int]:
    """The unit of each of these stored events (those that still exist)."""
    if not ids:
        return {}
    rows = _execute(store, "SELECT id, unit_id FROM events WHERE id = ANY(?)", [[int(i) for i in ids]])
    return {int(event_id): int(unit) for event_id, unit in rows}


def _execute(store: DuckDBEventStore, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    cursor = store._reader()  # the store has no public raw-SQL reader yet
    try:
        return cursor.execute(sql, list(params)).fetchall()
    finally:
        cursor.close()


class _Verifier:
    """The engine itself, over some rules, for the rows SQL leaves to Python (built on first use)."""

    def __init__(self, rules: Sequence[Rule], indexes: Sequence[int]) -> None:
        self.rules = rules
        self.indexes = sorted(set(indexes))
        self._engine: Engine | None = None
        self._index: dict[int, int] = {}

    def matching(self, event: Mapping[str, Any]) -> set[int]:
        if self._engine is None:
            self._engine = Engine([self.rules[index] for index in self.indexes])
            self._index = {id(self.rules[index]): index for index in self.indexes}
        return {self._index[id(rule)] for rule in self._engine.match(event)}


def hunt_store(store: DuckDBEventStore, rules: Sequence[Rule], window: Window, *,
               variants_per_query: int = VARIANTS_PER_QUERY, threads: int = QUERY_THREADS) -> StoreHuntResult:
    """Every (rule, stored event) match in the window, decided in the store (and in Python where SQL cannot).

    Queries run ``threads`` at a time, each on its own cursor: DuckDB plans a query on one core and runs a
    small one on few, and releases the GIL meanwhile."""
    started = time.perf_counter()
    result = StoreHuntResult(hits={}, events_scanned=count_events(store, window))
    queries = [build_query(variants[first: first + variants_per_query], gate, window, column)
               for (gate, column), variants in plan(rules).items()
               for first in range(0, len(variants), variants_per_query)]
    # The biggest first, so that no thread is left alone with one at the end.
    queries.sort(key=lambda query: -len(query.variants))

    def run_one(query: _Query) -> tuple[dict[int, set[int]], int]:
        found: dict[int, set[int]] = defaultdict(set)
        return found, _run(store, rules, query, found)

    matched: dict[int, set[int]] = defaultdict(set)
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="vigil-hunt-query") as pool:
        for found, verified in pool.map(run_one, queries):
            for index, ids in found.items():
                matched[index] |= ids
            result.verified += verified
    result.queries = len(queries)
    result.hits = {rules[index].id: sorted(ids) for index, ids in sorted(matched.items()) if ids}
    result.rules_checked_in_python = sorted({rules[index].id for query in queries for index in query.inexact})
    result.seconds = time.perf_counter() - started
    return result


def _run(store: DuckDBEventStore, rules: Sequence[Rule], query: _Query, matched: dict[int, set[int]]) -> int:
    """Run one query, adding its matches; the number of rows checked in Python."""
    verified = 0
    unsure = _Verifier(rules, sorted(query.inexact))
    every = _Verifier(rules, [index for index, _ in query.variants])
    cursor = store._reader()  # see _execute
    try:
        cursor.execute(query.sql, query.params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            for row in rows:
                event_id, has_list, doc, flags = int(row[0]), row[1], row[2], row[3:]
                decided: set[int] = set()
                if doc is not None:
                    # The engine decides the row for the rules SQL was unsure of; for all of the query's rules
                    # when a list among its fields may hide a match SQL did not see.
                    verified += 1
                    verifier = every if has_list else unsure
                    for index in verifier.matching(orjson.loads(doc)):
                        matched[index].add(event_id)
                    decided = set(verifier.indexes)
                for (index, _), flag in zip(query.variants, flags, strict=True):
                    if flag and index not in decided:
                        matched[index].add(event_id)
    finally:
        cursor.close()
    return verified
