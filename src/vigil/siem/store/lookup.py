"""Which stored events carry any of a list of values: one join inside DuckDB, not a query per value.

Threat intelligence's retro-hunt asks it for thousands of indicators at once. A ``ValueSet`` names the
typed columns to look in, how to compare (exact, the name or any parent domain of it, an IPv4 network,
the last part of a path, a URL without its query) and the values, each with a tag the caller gets back
(an indicator id). Matches come back grouped by tag, unit, source, column and observed value, with the
first and last time, the count and the first event's document.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from vigil.siem.fields import BY_FIELD, Kind

Comparison = Literal["exact", "domain", "cidr4", "basename", "url"]
MAX_LABELS = 6  # a domain value of more labels matches only exactly


@dataclass(frozen=True)
class ValueSet:
    fields: tuple[str, ...]  # typed fields (vigil.siem.fields.COLUMNS) to look in
    comparison: Comparison
    values: tuple[str, ...]
    tags: tuple[int, ...]  # one per value


@dataclass(frozen=True)
class ValueMatch:
    tag: int
    unit_id: int
    source: str
    field: str
    observed: str
    first_seen: datetime
    last_seen: datetime
    count: int
    document: str  # the first matching event


def _column(field: str) -> str:
    column = BY_FIELD.get(field)
    if column is None or column.kind is not Kind.TEXT:
        raise ValueError(f"{field} is not a typed text field of the event store")
    return column.name


def _observed(column: str, comparison: Comparison) -> str:
    """The event's value as the comparison needs it (column names come from ``vigil.siem.fields``)."""
    if comparison == "basename":
        return f"lower(regexp_extract(e.{column}, '[^/\\\\]+$'))"
    if comparison == "url":
        return f"split_part(e.{column}, '?', 1)"
    return f"lower(e.{column})"


def build(sets: Sequence[ValueSet]) -> tuple[str, dict[str, object]]:
    """The SQL and its parameters, but for ``since`` and ``until``, which the caller binds. The text joins
    only constants, checked typed column names and field names; every value is bound (hence the S608s)."""
    parts: list[str] = []
    params: dict[str, object] = {}
    for number, value_set in enumerate(sets):
        values = f"v{number}"
        params[f"{values}_values"], params[f"{values}_tags"] = list(value_set.values), list(value_set.tags)
        table = f"(SELECT unnest(${values}_values) AS value, unnest(${values}_tags) AS tag)"
        for field in value_set.fields:
            column = _column(field)
            observed = _observed(column, value_set.comparison)
            label = f"'{field}'"
            if value_set.comparison == "domain":
                # The name and each parent domain of it, matched against the listed domains.
                parts.append(
                    f"SELECT {values}.tag, e.unit_id, e.source, {label} AS field, "  # noqa: S608
                    f"e.{column} AS observed, e.ts, e.doc "
                    f"FROM (SELECT *, unnest(list_transform(generate_series(1, least({MAX_LABELS}, "
                    f"len(string_split(lower(e0.{column}), '.')))), lambda n: array_to_string("
                    f"string_split(lower(e0.{column}), '.')[-n:], '.'))) AS candidate "
                    f"FROM events e0 WHERE e0.{column} IS NOT NULL AND e0.ts >= $since AND e0.ts < $until) e "
                    f"JOIN {table} {values} ON e.candidate = {values}.value")
            elif value_set.comparison == "cidr4":
                parts.append(
                    f"SELECT {values}.tag, e.unit_id, e.source, {label} AS field, "  # noqa: S608
                    f"e.{column} AS observed, e.ts, e.doc "
                    f"FROM (SELECT *, TRY_CAST(split_part({column}, '.', 1) AS UBIGINT) * 16777216 "
                    f"+ TRY_CAST(split_part({column}, '.', 2) AS UBIGINT) * 65536 "
                    f"+ TRY_CAST(split_part({column}, '.', 3) AS UBIGINT) * 256 "
                    f"+ TRY_CAST(split_part({column}, '.', 4) AS UBIGINT) AS address "
                    f"FROM events WHERE {column} IS NOT NULL AND ts >= $since AND ts < $until) e "
                    f"JOIN (SELECT tag, TRY_CAST(split_part(value, '-', 1) AS UBIGINT) AS low, "
                    f"TRY_CAST(split_part(value, '-', 2) AS UBIGINT) AS high FROM {table}) {values} "
                    f"ON e.address BETWEEN {values}.low AND {values}.high")
            else:
                parts.append(
                    f"SELECT {values}.tag, e.unit_id, e.source, {label} AS field, "  # noqa: S608
                    f"e.{column} AS observed, e.ts, e.doc "
                    f"FROM events e JOIN {table} {values} ON {observed} = {values}.value "
                    f"WHERE e.{column} IS NOT NULL AND e.ts >= $since AND e.ts < $until")
    if not parts:
        return "", params
    union = " UNION ALL ".join(parts)
    sql = ("SELECT tag, unit_id, source, field, observed, min(ts), max(ts), count(*), arg_min(doc, ts) "  # noqa: S608
           f"FROM ({union}) GROUP BY tag, unit_id, source, field, observed")
    return sql, params


def cidr4_range(network: str) -> str | None:
    """``10.0.0.0/8`` as ``low-high`` integers, the form the ``cidr4`` comparison takes; None for IPv6."""
    parsed = ipaddress.ip_network(network, strict=False)
    if parsed.version != 4:
        return None
    return f"{int(parsed.network_address)}-{int(parsed.broadcast_address)}"
