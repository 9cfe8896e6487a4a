"""The reference side of the differential test: pySigma's SQLite backend, run in SQLite.

Every Windows rule is converted by pySigma 1.5.1's SQLite backend (``pysigma-backend-sqlite``) with the
same pySigma pipelines Vigil's engine maps log sources with, and every query runs against one in-memory
table holding every event. What comes out is the set of (rule id, file, EventRecordID) pairs that Vigil's
engine must reproduce.

Pipelines. ``sysmon_pipeline() + windows_audit_pipeline() + windows_logsource_pipeline()`` cannot be used
as one: the Sysmon and the audit pipeline both add their EventID condition to a ``process_creation`` rule,
giving ``EventID=4688 AND EventID=1`` on Channel ``Security``, which nothing matches. So each rule is
converted with Sysmon + log source; a rule whose category the audit pipeline maps (``process_creation``,
``registry_event``, ``registry_set``, ``registry_add``) is converted a second time with audit + log
source (Security 4688 / 4657 with their field names), and its matches are the union of both queries. An
audit variant that pySigma refuses (4657 has no ``EventType``, ``NewName`` or ``User``) is left out and
noted; the rule still counts through its Sysmon variant.

The table, as Zircolite builds it: one column per native field name (Vigil's flattening, ECS fields left
out), declared ``COLLATE NOCASE`` because the backend emits plain ``=`` for Sigma's case-insensitive
equality. The columns have no type, so values stay as the event holds them: numbers as numbers, strings
as text, a missing field as NULL. A list (``Data`` when ``<Data>`` elements are unnamed) is stored as
its elements joined by a newline, so ``contains`` finds a needle in any element, as Vigil's
any-element rule does. JSON booleans are the text ``true``/``false`` (as Zircolite stores them; the
backend compares booleans with both forms); integers beyond 64 bits are their decimal text.
``REGEXP`` is Python's ``re.search`` (the backend writes flags as ``(?i)``).
"""

from __future__ import annotations

import copy
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.pipelines.sysmon import sysmon_pipeline
from sigma.pipelines.windows import windows_audit_pipeline, windows_logsource_pipeline
from sigma.pipelines.windows.windows import generic_logsource_to_windows_audit_event_mapping
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from vigil.siem.parsers.windows_ecs import RESERVED

Event = Mapping[str, Any]
# (rule id, file path relative to its folder, EventRecordID)
Pair = tuple[str, str, int]

TABLE = "logs"
LIST_SEPARATOR = "\n"
AUDIT_CATEGORIES = frozenset(generic_logsource_to_windows_audit_event_mapping)
_QUERY_PREFIX = f"SELECT * FROM {TABLE} WHERE "
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class ConvertedRule:
    id: str
    title: str
    path: str
    # One WHERE expression per variant (Sysmon, and audit when it applies); a row matching any matches.
    conditions: tuple[str, ...]


@dataclass(frozen=True)
class Refusal:
    """A rule (or one variant of it) pySigma would not convert, and why."""

    path: str
    rule_id: str
    variant: str
    reason: str


@dataclass
class Conversion:
    rules: list[ConvertedRule] = field(default_factory=list)
    # Rules with no query at all: they cannot take part in the comparison.
    failures: list[Refusal] = field(default_factory=list)
    # Audit variants refused while the Sysmon variant converted.
    dropped_variants: list[Refusal] = field(default_factory=list)


def sysmon_variant() -> ProcessingPipeline:
    return sysmon_pipeline() + windows_logsource_pipeline()


def audit_variant() -> ProcessingPipeline:
    return windows_audit_pipeline() + windows_logsource_pipeline()


def _where(query: str) -> str:
    if not query.startswith(_QUERY_PREFIX):
        raise ValueError(f"unexpected query shape from the SQLite backend: {query[:80]!r}")
    return query[len(_QUERY_PREFIX) :]


def _convert(backend: sqliteBackend, rule: SigmaRule) -> list[str]:
    """The rule's WHERE expressions; the backend's pipeline rewrites ``rule`` in place."""
    return [_where(str(query)) for query in backend.convert_rule(rule)]


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def convert_rules(folder: Path) -> Conversion:
    """Every rule under ``folder`` as SQLite WHERE expressions, or the reason it has none."""
    sysmon = sqliteBackend(sysmon_variant())
    audit = sqliteBackend(audit_variant())
    result = Conversion()
    for path in sorted(folder.rglob("*.yml")):
        shown = str(path)
        try:
            # pySigma's from_yaml with libyaml's parser: the same documents, in half the time.
            documents = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader))
            collection = SigmaCollection.from_dicts(documents)
        except Exception as exc:  # a rule pySigma cannot even parse: recorded like any refusal
            result.failures.append(Refusal(shown, "", "parse", _reason(exc)))
            continue
        for rule in collection.rules:
            if not isinstance(rule, SigmaRule):
                continue
            rule_id = str(rule.id)
            audited = rule.logsource.product == "windows" and rule.logsource.category in AUDIT_CATEGORIES
            try:
                conditions = _convert(sysmon, copy.deepcopy(rule) if audited else rule)
            except Exception as exc:  # pySigma's refusals are SigmaError, its backend bugs anything
                result.failures.append(Refusal(shown, rule_id, "sysmon", _reason(exc)))
                continue
            if audited:
                try:
                    conditions += [c for c in _convert(audit, rule) if c not in conditions]
                except Exception as exc:
                    result.dropped_variants.append(Refusal(shown, rule_id, "audit", _reason(exc)))
            result.rules.append(ConvertedRule(rule_id, rule.title, shown, tuple(conditions)))
    return result


def sqlite_value(value: Any) -> Any:
    """How a native field's value is held in a row (see the module docstring)."""
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(item) for item in value if item is not None)
    if isinstance(value, bool):  # JSON true/false: Zircolite's text form, what rules compare against
        return "true" if value else "false"
    if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
        return str(value)  # beyond SQLite's INTEGER (unsigned 64-bit counters): its decimal text
    if value is None or isinstance(value, int | float | str):
        return value
    return str(value)


def native_fields(event: Event) -> dict[str, Any]:
    """The native (SigmaHQ-named) fields of a flattened Windows event: ECS roots and objects left out."""
    return {name: value for name, value in event.items() if name not in RESERVED and not isinstance(value, dict)}


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regexp(pattern: str, value: Any) -> bool | None:
    if value is None:
        return None
    return _compiled(pattern).search(str(value)) is not None


def events_table(events: Sequence[Event]) -> sqlite3.Connection:
    """An in-memory database whose ``logs`` table holds the events; row ``i + 1`` is ``events[i]``."""
    columns: dict[str, str] = {}  # lower-case name -> first spelling seen: SQLite names ignore case
    rows = [native_fields(event) for event in events]
    for row in rows:
        for name in row:
            columns.setdefault(name.lower(), name)
    names = list(columns.values())
    position = {lower: index for index, lower in enumerate(columns)}
    connection = sqlite3.connect(":memory:")
    connection.create_function("regexp", 2, _regexp, deterministic=True)
    quoted = ", ".join(f'"{name}" COLLATE NOCASE' for name in names)
    connection.execute(f"CREATE TABLE {TABLE} ({quoted})")
    holders = ", ".join("?" for _ in names)
    values = []
    for row in rows:
        line: list[Any] = [None] * len(names)
        for name, value in row.items():
            line[position[name.lower()]] = sqlite_value(value)
        values.append(line)
    connection.executemany(f"INSERT INTO {TABLE} VALUES ({holders})", values)
    for indexed in ("Channel", "EventID"):
        if indexed.lower() in columns:
            connection.execute(f'CREATE INDEX {TABLE}_{indexed} ON {TABLE} ("{columns[indexed.lower()]}")')
    return connection


@dataclass
class ReferenceMatches:
    pairs: set[Pair]
    # Rules whose query SQLite refused at run time (rule id -> reason): they count as matching nothing.
    query_errors: dict[str, str]


_NO_SUCH_COLUMN = re.compile(r"no such column: (.+)$")


def _add_column(connection: sqlite3.Connection, error: sqlite3.Error) -> bool:
    """A field no event carries becomes an all-NULL column (as Zircolite does); False if that was not it."""
    missing = _NO_SUCH_COLUMN.search(str(error))
    if missing is None:
        return False
    name = missing.group(1).strip('`"')
    connection.execute(f'ALTER TABLE {TABLE} ADD COLUMN "{name}" COLLATE NOCASE')
    return True


def _matching_rowids(connection: sqlite3.Connection, condition: str) -> list[int]:
    while True:
        try:
            return [rowid for (rowid,) in connection.execute(f"SELECT rowid FROM {TABLE} WHERE {condition}")]
        except sqlite3.OperationalError as exc:
            if not _add_column(connection, exc):
                raise


def run_rules(
    connection: sqlite3.Connection, rules: Iterable[ConvertedRule], keys: Sequence[tuple[str, int]]
) -> ReferenceMatches:
    """Every rule's matching rows, as pairs; ``keys[i]`` is (file, EventRecordID) of row ``i + 1``."""
    result = ReferenceMatches(set(), {})
    for rule in rules:
        for condition in rule.conditions:
            try:
                rowids = _matching_rowids(connection, condition)
            except sqlite3.Error as exc:
                result.query_errors[rule.id] = f"{type(exc).__name__}: {exc}"
                continue
            result.pairs.update((rule.id, *keys[rowid - 1]) for rowid in rowids)
    return result
