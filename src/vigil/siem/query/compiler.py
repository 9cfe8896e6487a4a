"""Compile a query tree to a parameterised DuckDB ``WHERE`` clause.

Values are never written into the SQL: each becomes a ``?`` parameter. Field names reach the SQL only through
the store's ``Resolver``, after they match ``FIELD_NAME``. Semantics:

- text: equality and wildcards are case-insensitive (``ILIKE`` with ``*``→``%``, ``?``→``_``; a literal ``%``,
  ``_`` or ``\\`` is escaped). On a ``fulltext`` field (``message``) and for bare words, a value matches when the
  field *contains* it. Ranges compare strings.
- number: values must be numbers; ``bytes:abc`` is a ``BadInput`` naming the field (not silently empty).
- timestamp: ISO 8601 (``2026-11-28T10:00:00+08:00``; no zone means UTC), a bare date (``2026-11-28`` as a term
  is that whole UTC day), or ``now``, ``now-15m``, ``now-1h``, ``now+2d`` (units s m h d w). Parameters are aware
  UTC ``datetime`` values.
- list: matches when any element matches.
- json (a field read from the stored document as text): like text, but a range whose bounds are numbers compares
  numerically (``TRY_CAST(… AS DOUBLE)``), so ``winlog.event_data.LogonType:>=10`` means what it says.
- a missing field never matches a term, and ``NOT x:y`` matches events without ``x`` (as Kibana does). A leaf on a
  missing field is SQL NULL; AND and OR are monotone, so NULL acts as false in a ``WHERE`` or ``FILTER`` clause,
  and ``NOT`` wraps its operand in ``COALESCE(…, FALSE)``. Leaves stay bare so DuckDB can push filters down.
  The result is meant for ``WHERE``/``FILTER``; wrap it in ``COALESCE(…, FALSE)`` to select it as a value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from vigil.core.errors import BadInput
from vigil.siem.query.ast import FIELD_NAME, And, Exists, MatchAll, Node, Not, Or, Range, Term, Wildcard

FieldKind = Literal["text", "number", "timestamp", "list", "json"]

# Bare words and phrases are searched over these fields.
FREE_TEXT_FIELDS = ("message", "event.original")


@dataclass(frozen=True)
class FieldRef:
    """How the store reads one field: a SQL expression (with its own ``?`` parameters, if any) and its kind.
    ``fulltext`` marks a field searched by containment (``message``) rather than whole-value equality."""

    sql: str
    kind: FieldKind
    params: tuple[object, ...] = ()
    fulltext: bool = False


class Resolver(Protocol):
    def resolve(self, field: str) -> FieldRef:
        """The column or JSON extraction for ``field``; raise ``BadInput`` for a field the store refuses."""
        ...


_RELATIVE = re.compile(r"now(?:([+-])(\d{1,6})([smhdw]))?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def like_escape(text: str) -> str:
    """``text`` as a literal ``LIKE`` pattern with ``\\`` as the escape character."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_pattern(pattern: str) -> str:
    """A query wildcard pattern (``*``, ``?``, backslash-escaped literals) as a ``LIKE`` pattern."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(like_escape(pattern[i + 1]))
            i += 2
            continue
        out.append("%" if c == "*" else "_" if c == "?" else like_escape(c))
        i += 1
    return "".join(out)


def parse_time(value: str, now: datetime) -> datetime:
    """An ISO 8601 stamp or ``now[+-]N<unit>`` as an aware UTC datetime; ``BadInput`` otherwise."""
    text = value.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        sign, amount, unit = relative.groups()
        if sign is None:
            return now
        try:
            delta = timedelta(**{_UNITS[unit]: int(amount)})
            return now + delta if sign == "+" else now - delta
        except OverflowError:
            raise BadInput(f"'{value}' is outside the range of times") from None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"'{value}' is not a time: write ISO 8601 (2026-11-28T10:00:00Z) or now-1h") from None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _number(value: str, field: str) -> float | int:
    try:
        number = int(value)
    except ValueError:
        try:
            number_f = float(value)
        except ValueError:
            raise BadInput(f"'{value}' is not a number, and '{field}' holds numbers") from None
        if not math.isfinite(number_f):
            raise BadInput(f"'{value}' is not a finite number") from None
        return number_f
    # Beyond 64 bits DuckDB cannot bind an integer; as a float it still compares correctly enough.
    return number if -(2**63) <= number < 2**63 else float(number)


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


class _Compiler:
    def __init__(self, resolver: Resolver, now: datetime, free_text: Sequence[str]) -> None:
        self.resolver = resolver
        self.now = now
        self.free_text = free_text
        self.params: list[object] = []

    def node(self, node: Node) -> str:
        match node:
            case MatchAll():
                return "TRUE"
            case And(items):
                return "(" + " AND ".join(self.node(i) for i in items) + ")"
            case Or(items):
                return "(" + " OR ".join(self.node(i) for i in items) + ")"
            case Not(item):
                # A leaf on a missing field is NULL; under NOT it counts as false, so NOT x:y matches without x.
                return f"(NOT COALESCE({self.node(item)}, FALSE))"
            case Term(None, _) | Wildcard(None, _):
                parts = [self.leaf(self.resolve(name), node, contains=True) for name in self.free_text]
                return "(" + " OR ".join(parts) + ")" if parts else "FALSE"
            case Term(str(field), _) | Wildcard(str(field), _) | Range(field) | Exists(field):
                ref = self.resolve(field)
                return self.leaf(ref, node, contains=ref.fulltext)
        raise TypeError(f"not a query node: {node!r}")

    def resolve(self, field: str) -> FieldRef:
        if not FIELD_NAME.fullmatch(field):
            raise BadInput(f"'{field}' is not a valid field name")
        return self.resolver.resolve(field)

    def use(self, ref: FieldRef) -> str:
        self.params.extend(ref.params)
        return ref.sql

    def bind(self, value: object) -> str:
        self.params.append(value)
        return "?"

    def leaf(self, ref: FieldRef, node: Node, *, contains: bool) -> str:
        if isinstance(node, Exists):
            column = self.use(ref)
            if ref.kind == "list":
                return f"(len({column}) > 0)"
            return f"({column} IS NOT NULL)"
        if ref.kind == "list":
            column = self.use(ref)
            inner = self.predicate(FieldRef("_v", "text"), node, contains=False)
            return f"(len(list_filter({column}, lambda _v: {inner})) > 0)"
        return self.predicate(ref, node, contains=contains)

    def predicate(self, ref: FieldRef, node: Node, *, contains: bool) -> str:
        name = getattr(node, "field", None) or "message"
        if ref.kind == "number":
            return self.number(ref, node, name)
        if ref.kind == "timestamp":
            return self.timestamp(ref, node, name)
        if isinstance(node, Term | Wildcard):
            pattern = like_escape(node.value) if isinstance(node, Term) else like_pattern(node.pattern)
            if contains:
                pattern = f"%{pattern}%"
            return self.ilike(self.use(ref), pattern)
        assert isinstance(node, Range)
        if ref.kind == "json" and all(_is_number(b) for b in (node.low, node.high) if b is not None):
            numeric = FieldRef(f"TRY_CAST({ref.sql} AS DOUBLE)", "number", ref.params)
            return self.number(numeric, node, name)
        return self.range(ref, node, node.low, node.high)

    def ilike(self, column: str, pattern: str) -> str:
        # DuckDB's LIKE has no escape character unless told; an ESCAPE clause costs about 2.5x, so only a
        # pattern that escapes something (it then holds a backslash) carries one.
        escape = " ESCAPE '\\'" if "\\" in pattern else ""
        return f"({column} ILIKE {self.bind(pattern)}{escape})"

    def range(self, ref: FieldRef, node: Range, low: object, high: object) -> str:
        parts: list[str] = []
        if low is not None:
            parts.append(f"{self.use(ref)} {'>=' if node.include_low else '>'} {self.bind(low)}")
        if high is not None:
            parts.append(f"{self.use(ref)} {'<=' if node.include_high else '<'} {self.bind(high)}")
        if not parts:
            parts.append(f"{self.use(ref)} IS NOT NULL")
        return "(" + " AND ".join(parts) + ")"

    def number(self, ref: FieldRef, node: Node, name: str) -> str:
        if isinstance(node, Term):
            return f"({self.use(ref)} = {self.bind(_number(node.value, name))})"
        if isinstance(node, Wildcard):
            return self.ilike(f"CAST({self.use(ref)} AS VARCHAR)", like_pattern(node.pattern))
        assert isinstance(node, Range)
        low = None if node.low is None else _number(node.low, name)
        high = None if node.high is None else _number(node.high, name)
        return self.range(ref, node, low, high)

    def timestamp(self, ref: FieldRef, node: Node, name: str) -> str:
        if isinstance(node, Wildcard):
            raise BadInput(f"'{name}' holds times; use a range such as {name}:[now-1h TO now], not a wildcard")
        if isinstance(node, Term):
            stamp = parse_time(node.value, self.now)
            if _DATE.fullmatch(node.value.strip()):
                start = f"{self.use(ref)} >= {self.bind(stamp)}"
                return f"({start} AND {self.use(ref)} < {self.bind(stamp + timedelta(days=1))})"
            return f"({self.use(ref)} = {self.bind(stamp)})"
        assert isinstance(node, Range)
        low = None if node.low is None else parse_time(node.low, self.now)
        high = None if node.high is None else parse_time(node.high, self.now)
        return self.range(ref, node, low, high)


def compile_query(
    node: Node, resolver: Resolver, *, now: datetime | None = None, free_text: Sequence[str] = FREE_TEXT_FIELDS,
) -> tuple[str, list[object]]:
    """``(sql, params)``: a boolean SQL expression for a ``WHERE`` clause and its positional parameters.
    ``now`` anchors relative times (default: the current UTC time)."""
    compiler = _Compiler(resolver, now or datetime.now(UTC), free_text)
    sql = compiler.node(node)
    return sql, compiler.params
