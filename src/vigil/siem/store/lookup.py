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

# "address": the column holds the value exactly as listed (IP addresses, written one way), so events are
# joined on it directly; the others compare a function of the value, over the column's distinct values.
Comparison = Literal["address", "exact", "domain", "cidr4", "basename", "url"]
MAX_LABELS = 6  # a listed domain of more labels matches nothing (the "domain" comparison below)


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
    document: str  # the first matching event (JSON text)


def _column(field: str) -> str:
    column = BY_FIELD.get(field)
    if column is None or column.kind is not Kind.TEXT:
        raise ValueError(f"{field} is not a typed text field of the event store")
    return column.name


# How a distinct observed value ``o`` of a column meets the listed values ``v`` (value, tag).
_MATCH = {
    "exact": "SELECT o.observed, v.tag FROM names o JOIN {values} v ON lower(o.observed) = v.value",
    "url": "SELECT o.observed, v.tag FROM names o JOIN {values} v ON split_part(o.observed, '?', 1) = v.value",
    "basename": ("SELECT o.observed, v.tag FROM names o "
                 "JOIN {values} v ON lower(regexp_extract(o.observed, '[^/\\\\]+$')) = v.value"),
    # The name and each parent domain of it (the last 1 to MAX_LABELS labels) against the listed domains.
    "domain": ("SELECT o.observed, v.tag FROM (SELECT observed, unnest(list_transform(generate_series(1, least("
               "6, len(string_split(lower(observed), '.')))), lambda n: array_to_string("
               "string_split(lower(observed), '.')[-n:], '.'))) AS candidate FROM names) o "
               "JOIN {values} v ON o.candidate = v.value"),
    "cidr4": ("SELECT o.observed, v.tag FROM (SELECT observed, TRY_CAST(split_part(observed, '.', 1) AS UBIGINT) "
              "* 16777216 + TRY_CAST(split_part(observed, '.', 2) AS UBIGINT) * 65536 "
              "+ TRY_CAST(split_part(observed, '.', 3) AS UBIGINT) * 256 "
              "+ TRY_CAST(split_part(observed, '.', 4) AS UBIGINT) AS address FROM names) o "
              "JOIN (SELECT tag, TRY_CAST(split_part(value, '-', 1) AS UBIGINT) AS low, "
              "TRY_CAST(split_part(value, '-', 2) AS UBIGINT) AS high FROM {values}) v "
              "ON o.address BETWEEN v.low AND v.high"),
}


def build(sets: Sequence[ValueSet]) -> tuple[str, dict[str, object]]:
    """The SQL and its parameters, but for ``since`` and ``until``, which the caller binds. The text joins
    only constants, checked typed column names and field names; every value is bound (hence the S608s).

    Per column, in two steps, so that neither the documents nor a function of every row are read: the
    column's distinct values in the window are compared with the listed ones (few, whatever the number
    of events), then the events holding a matching value are found by an exact join on the column. The
    first matching event of each group is named by its id (``documents`` fetches it)."""
    parts: list[str] = []
    params: dict[str, object] = {}
    for number, value_set in enumerate(sets):
        values = f"v{number}"
        params[f"{values}_values"], params[f"{values}_tags"] = list(value_set.values), list(value_set.tags)
        table = f"(SELECT unnest(${values}_values) AS value, unnest(${values}_tags) AS tag)"
        for field in value_set.fields:
            column = _column(field)
            if value_set.comparison == "address":
                parts.append(
                    f"SELECT m.tag, e.id, e.unit_id, e.source, '{field}' AS field, e.{column} AS observed, e.ts "  # noqa: S608
                    f"FROM events e JOIN {table} m ON e.{column} = m.value WHERE e.ts >= $since AND e.ts < $until")
                continue
            matched = _MATCH[value_set.comparison].format(values=table)
            parts.append(
                f"SELECT m.tag, e.id, e.unit_id, e.source, '{field}' AS field, e.{column} AS observed, e.ts "  # noqa: S608
                f"FROM events e JOIN (WITH names AS (SELECT DISTINCT {column} AS observed FROM events "
                f"WHERE {column} IS NOT NULL AND ts >= $since AND ts < $until) {matched}) m "
                f"ON e.{column} = m.observed WHERE e.ts >= $since AND e.ts < $until")
    if not parts:
        return "", params
    union = " UNION ALL ".join(parts)
    sql = ("SELECT tag, unit_id, source, field, observed, min(ts), max(ts), count(*), arg_min(id, ts) "  # noqa: S608
           f"FROM ({union}) GROUP BY tag, unit_id, source, field, observed")
    return sql, params


DOCUMENTS = "SELECT id, doc FROM events WHERE id IN (SELECT unnest($ids))"

# Values no typed column holds, looked for as tokens of the stored documents: a hash is a run of 32, 40 or 64
# hex digits between non-word characters; an e-mail address is text around an "@" up to a space, a quote,
# a bracket or a separator. Tokens compare in lower case and without trailing dots, as indicators are
# written; the caller reads each document found, since a token says "somewhere in the document".
TokenKind = Literal["hash", "email"]
TOKEN_PATTERNS: dict[TokenKind, str] = {
    "hash": r"\b[0-9A-Fa-f]{32}(?:[0-9A-Fa-f]{8}(?:[0-9A-Fa-f]{24})?)?\b",
    "email": r"[^\s\"<>@,;:\\()\[\]{}]+@[^\s\"<>@,;:\\()\[\]{}]+",
}
assert all("'" not in pattern for pattern in TOKEN_PATTERNS.values())  # they are SQL string literals below


def token_query(kinds: Sequence[TokenKind]) -> str:
    """The ids of the events between ``$since`` and ``$until`` whose documents hold a listed token, oldest
    first: ``$<kind>`` is the list of values of each kind. One pass of each kind's expression over the
    documents."""
    parts = [
        f"SELECT t.id, t.ts FROM (SELECT id, ts, unnest(regexp_extract_all(doc, '{TOKEN_PATTERNS[kind]}')) "  # noqa: S608
        f"AS token FROM events WHERE ts >= $since AND ts < $until) t JOIN (SELECT unnest(${kind}) AS value) v "
        "ON rtrim(lower(t.token), '.') = v.value"
        for kind in kinds]
    return f"SELECT id FROM ({' UNION '.join(parts)}) ORDER BY ts, id"  # noqa: S608


EVENTS_BY_ID = "SELECT id, unit_id, source, ts, doc FROM events WHERE id IN (SELECT unnest($ids)) ORDER BY ts, id"


def cidr4_range(network: str) -> str | None:
    """``10.0.0.0/8`` as ``low-high`` integers, the form the ``cidr4`` comparison takes; None for IPv6."""
    parsed = ipaddress.ip_network(network, strict=False)
    if parsed.version != 4:
        return None
    return f"{int(parsed.network_address)}-{int(parsed.broadcast_address)}"
