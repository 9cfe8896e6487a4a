"""Sigma conditions (``vigil.detection.sigma.predicates``) as DuckDB SQL over the event store's documents.

A hunt runs many rules over the events of a window in the store itself (ARCHITECTURE.md §3). Each query
reads every field its rules name from ``doc`` with one JSON parse per row (``json_extract`` with a list of
paths, the paths a parameter), then evaluates the rules' conditions on those values:

- a field is looked up as the engine does: the top-level key first (Windows native fields, ``Threat Name``),
  else the dotted path (``coalesce`` of the two: a key present with a null value stops the lookup, as in
  ``field_value``);
- a value is compared by its text as ``as_text`` writes it (numbers as digits, booleans ``true``/``false``,
  a whole float without its ``.0``), case-insensitively (``lower``) unless ``cased``;
- wildcards become ``LIKE``, regular expressions ``regexp_matches`` (RE2) with the rule's i/m/s flags,
  ``cidr`` over IPv4 a numeric range of the parsed address, comparisons ``TRY_CAST(... AS DOUBLE)``; literal
  ORs on one field become one test (``list_contains``, one RE2 alternation).

What SQL cannot decide exactly is left to the engine on the rows concerned: each condition is compiled
twice, ``sure`` (an unknown predicate reads as false where it counts for a match) and ``maybe`` (as true),
so rows where they differ are exactly those to check. Unknown are keywords (field-less values; SQL only
rules out documents without the JSON-escaped needle), regular expressions RE2 cannot run (lookarounds,
backreferences) or could run differently (non-ASCII text with ``\\d \\w \\s \\b`` or case folding, a
final newline with ``$``), IPv6 networks; and a row where a field holds a list (column ``arr``) is the
engine's for every rule of its query.

No rule text becomes SQL: values, patterns and JSON paths are all ``?`` parameters.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import duckdb
import regex

from vigil.detection.sigma.predicates import And, Condition, Not, Or, Predicate

# json_type() names of values compared by their text.
_SCALAR_TYPES = ("VARCHAR", "BIGINT", "UBIGINT", "BOOLEAN")
_RE2_CHECK = duckdb.connect(":memory:")  # compiles patterns once, to learn whether RE2 accepts them
_OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "neq": "<>"}


def scalar_text(value: str, kind: str) -> str:
    """SQL for the text ``as_text`` gives a JSON value ``value`` of json_type ``kind`` (NULL: no text)."""
    return (f"CASE WHEN {kind} IN {_SCALAR_TYPES} THEN {value}->>'$' "
            f"WHEN {kind} = 'DOUBLE' THEN CASE WHEN TRY_CAST({value} AS DOUBLE) = trunc(TRY_CAST({value} AS DOUBLE)) "
            f"AND abs(TRY_CAST({value} AS DOUBLE)) < 1e18 THEN CAST(CAST(TRY_CAST({value} AS DOUBLE) AS BIGINT) "
            f"AS VARCHAR) ELSE {value}->>'$' END END")


def json_path(part_names: list[str]) -> str:
    return "$." + ".".join(f'"{name}"' for name in part_names)


def path_supported(name: str) -> bool:
    """Whether a field name can be written as a DuckDB JSON path (a double quote or backslash cannot)."""
    return bool(name) and '"' not in name and "\\" not in name and all(part for part in name.split("."))


_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"


def ipv4(text: str) -> str:
    """SQL for the number of the IPv4 address ``text`` writes (surrounding blanks ignored, as ``ip_address(
    text.strip())``; leading zeros refused, as Python does); NULL when it writes none."""
    trimmed = f"regexp_replace({text}, '^\\s+|\\s+$', '', 'g')"
    number = " + ".join(f"CAST(split_part({trimmed}, '.', {i + 1}) AS BIGINT) * {256 ** (3 - i)}" for i in range(4))
    return f"CASE WHEN regexp_full_match({trimmed}, '{_DOTTED}') THEN {number} END"


@lru_cache(maxsize=4096)
def re2_accepts(pattern: str) -> bool:
    """Whether DuckDB's RE2 compiles ``pattern`` (Python's ``regex`` knows lookarounds and more)."""
    try:
        _RE2_CHECK.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
    except duckdb.Error:
        return False
    return True


_GLOB_TOKEN = re.compile(r"\\(.)|(\.\*)|(\.)|(.)", re.DOTALL)


def glob_like(pattern: str) -> str | None:
    """A glob predicate's regex (``regex.escape`` literals, ``.*``, ``.``) as a LIKE pattern; None if not one."""
    out: list[str] = []
    for match in _GLOB_TOKEN.finditer(pattern):
        literal, many, one, plain = match.groups()
        char = literal if literal is not None else plain
        if many:
            out.append("%")
        elif one:
            out.append("_")
        elif char is not None:
            if char in "[](){}*+?|^$" and literal is None:
                return None  # regex syntax the compiler does not write for wildcards
            out.append("\\" + char if char in "%_\\" else char)
    return "".join(out)


def json_escaped(text: str) -> str:
    """``text`` as it appears inside a JSON string written by the store (orjson / json: escapes only these)."""
    out: list[str] = []
    for char in text:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char in "\n\r\t\b\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


@dataclass
class Fields:
    """The fields one query reads: their JSON paths (the first level's parameter) and their column names.

    Slot ``k`` of a field gives columns ``j{k}`` (its JSON value, SQL NULL when absent), ``t{k}`` (its
    json_type), ``x{k}`` (its text as ``as_text`` writes it; NULL for null, objects and lists) and ``l{k}``
    (that text lower-cased). ``arr`` is true when any of them holds a list: such rows are left to Python."""

    paths: list[str] = field(default_factory=list)
    slots: dict[str, int] = field(default_factory=dict)
    addresses: set[int] = field(default_factory=set)  # slots read as IPv4 addresses (column ``ip{k}``)
    keywords: bool = False  # keywords read the whole document: ``ldoc`` (lower-cased) and ``esc`` (escapes)
    lookups: list[str] = field(default_factory=list)  # SQL for each slot's JSON value, over ``j``

    def slot(self, name: str) -> int:
        found = self.slots.get(name)
        if found is not None:
            return found
        parts = name.split(".")
        first = self._path(json_path([name]))
        lookup = f"j[{first}]"
        if len(parts) > 1:
            lookup = f"coalesce(j[{first}], j[{self._path(json_path(parts))}])"
        slot = self.slots[name] = len(self.lookups)
        self.lookups.append(lookup)
        return slot

    def _path(self, path: str) -> int:
        self.paths.append(path)
        return len(self.paths)  # DuckDB lists count from 1

    def levels(self) -> tuple[str, str, str, str]:
        """The projections from the raw JSON values to the columns conditions read (each over the one before)."""
        slots = range(len(self.lookups))
        values = ", ".join(f"{lookup} AS j{k}" for k, lookup in enumerate(self.lookups))
        kinds = ", ".join(f"j{k}, json_type(j{k}) AS t{k}" for k in slots)
        texts = ", ".join(f"j{k}, t{k}, {scalar_text(f'j{k}', f't{k}')} AS x{k}" for k in slots)
        arrays = " OR ".join(f"coalesce(t{k} = 'ARRAY', FALSE)" for k in slots) or "FALSE"
        lowered = ", ".join(f"j{k}, t{k}, x{k}, lower(x{k}) AS l{k}" + (f", {ipv4(f'x{k}')} AS ip{k}"
                                                                         if k in self.addresses else "")
                            for k in slots) + f", ({arrays}) AS arr"
        if self.keywords:
            lowered += ", lower(doc) AS ldoc, (contains(doc, '\\u') OR contains(doc, '\\/')) AS esc"
        return values, kinds, texts, lowered


@dataclass
class Compiled:
    """One condition as SQL over scalar values (rows with lists are left to Python). ``sure`` holds only
    where the condition does; ``maybe`` wherever it could (the same text when SQL decides every predicate:
    ``exact``). Rows where ``maybe`` holds and ``sure`` does not are checked in Python. Either may be NULL
    where the condition does not hold."""

    sure: str
    sure_params: list[Any]
    maybe: str
    maybe_params: list[Any]
    exact: bool


@dataclass(frozen=True)
class _Leaf:
    sql: str
    params: list[Any]
    exact: bool  # True: TRUE where the predicate holds, FALSE or NULL where not; False: NULL means "unknown"


_MERGEABLE = frozenset({"exact", "prefix", "suffix", "contains"})


def re2_literal(text: str) -> str:
    """``text`` as an RE2 pattern matching exactly it (ASCII punctuation and controls as ``\\xHH``)."""
    return "".join(char if char.isalnum() or ord(char) > 127 else f"\\x{ord(char):02x}" for char in text)


class ConditionCompiler:
    """Compiles conditions for one query (they share its ``Fields``)."""

    def __init__(self, fields: Fields) -> None:
        self.fields = fields
        self._leaves: dict[Predicate | tuple[Predicate, ...], _Leaf] = {}

    def compile(self, condition: Condition) -> Compiled:
        sure_params: list[Any] = []
        exact = [True]
        sure = self._node(condition, True, sure_params, exact)
        if exact[0]:
            return Compiled(sure, sure_params, sure, sure_params, True)
        maybe_params: list[Any] = []
        maybe = self._node(condition, False, maybe_params, exact)
        return Compiled(sure, sure_params, maybe, maybe_params, False)

    def _node(self, node: Condition, under: bool, params: list[Any], exact: list[bool]) -> str:
        """SQL for ``node``: an under-approximation (unknown leaves false) or an over-approximation (true).

        A leaf on a missing field is NULL; AND and OR are monotone, so NULL counts as false at the end, and
        a ``not`` reads its operand's NULL as false. Under a ``not`` the approximation's direction turns."""
        if isinstance(node, Not):
            return f"(NOT coalesce({self._node(node.item, not under, params, exact)}, FALSE))"
        if isinstance(node, And | Or):
            parts = [self._leaf_sql(group, under, params, exact) if isinstance(group, tuple)
                     else self._node(group, under, params, exact)
                     for group in (_merged(node.items) if isinstance(node, Or) else node.items)]
            joiner = " AND " if isinstance(node, And) else " OR "
            return parts[0] if len(parts) == 1 else "(" + joiner.join(parts) + ")"
        return self._leaf_sql(node, under, params, exact)

    def _leaf_sql(self, key: Predicate | tuple[Predicate, ...], under: bool, params: list[Any],
                  exact: list[bool]) -> str:
        leaf = self._leaves.get(key)
        if leaf is None:
            leaf = self._leaves[key] = self._merged_leaf(key) if isinstance(key, tuple) else self.leaf(key)
        params.extend(leaf.params)
        if leaf.exact:
            return leaf.sql
        exact[0] = False
        return f"coalesce({leaf.sql}, {'FALSE' if under else 'TRUE'})"

    def _merged_leaf(self, group: tuple[Predicate, ...]) -> _Leaf:
        """Several equalities, prefixes, suffixes or substrings of one field, any of which holds: one test."""
        first = group[0]
        column = f"{'x' if first.cased else 'l'}{self.fields.slot(str(first.field))}"
        values = [str(p.value) for p in group]
        if first.kind == "exact":
            return _Leaf(f"list_contains(?::VARCHAR[], {column})", [values], True)
        alternatives = "|".join(re2_literal(value) for value in values)
        pattern = {"prefix": f"^(?:{alternatives})", "suffix": f"(?:{alternatives})$",
                   "contains": f"(?:{alternatives})"}[first.kind]
        return _Leaf(f"regexp_matches({column}, ?)", [pattern], True)

    def leaf(self, p: Predicate) -> _Leaf:
        found = self.predicate(p)
        if found is not None:
            return found
        if p.field is None and p.needle and p.needle.isascii():
            # A keyword: only a document holding its JSON-escaped text can match, unless the document spells
            # characters as \u or \/ escapes (JSON a source sent is stored as it came).
            self.fields.keywords = True
            return _Leaf("CASE WHEN esc OR contains(ldoc, ?) THEN NULL ELSE FALSE END", [json_escaped(p.needle)],
                         False)
        return _Leaf("NULL", [], False)

    # --- one predicate ---------------------------------------------------------------------------

    def predicate(self, p: Predicate) -> _Leaf | None:
        """SQL deciding ``holds(p, event)`` for a row without lists (NULL: unknown, when not ``exact``), or None."""
        if p.field is None or not path_supported(p.field):
            return None
        if p.kind == "fieldref":
            if not isinstance(p.value, str) or not path_supported(p.value):
                return None
            a, b = self.fields.slot(p.field), self.fields.slot(p.value)
            compare = {"contains": f"contains(l{a}, l{b})", "startswith": f"starts_with(l{a}, l{b})",
                       "endswith": f"ends_with(l{a}, l{b})", "": f"(l{a} = l{b})"}[p.op]
            return _Leaf(compare, [], True)
        k = self.fields.slot(p.field)
        if p.kind == "null":
            return _Leaf(f"(j{k} IS NULL OR t{k} = 'NULL')", [], True)
        if p.kind == "exists":
            return _Leaf(f"(j{k} IS {'NOT ' if p.value else ''}NULL)", [], True)
        test = self._text_test(p, k)
        if test is None:
            return None
        sql, parameters, guard = test
        if guard is None:
            return _Leaf(sql, parameters, True)
        # Decided where the guard says SQL and Python agree; elsewhere unknown (NULL).
        return _Leaf(f"(CASE WHEN x{k} IS NULL THEN FALSE WHEN {guard} THEN {sql} END)", parameters, False)

    def _text_test(self, p: Predicate, k: int) -> tuple[str, list[Any], str | None] | None:
        """The test of slot ``k``'s text, its parameters, and (when SQL is right only for some values) the
        guard saying for which."""
        kind = p.kind
        column = f"x{k}" if p.cased else f"l{k}"
        if kind == "exact":
            return f"({column} = ?)", [p.value], None
        if kind == "prefix":
            return f"starts_with({column}, ?)", [p.value], None
        if kind == "suffix":
            return f"ends_with({column}, ?)", [p.value], None
        if kind == "contains":
            return f"contains({column}, ?)", [p.value], None
        if kind == "glob":
            like = glob_like(p.value)
            if like is None:
                return self._regex(p.value, p.flags, k)
            if p.flags & regex.IGNORECASE:
                return f"(l{k} LIKE ? ESCAPE '\\')", [like.lower()], None
            return f"(x{k} LIKE ? ESCAPE '\\')", [like], None
        if kind == "regex":
            return self._regex(p.value, p.flags, k)
        if kind == "cidr":
            return self._cidr(self.fields, str(p.value), k)
        if kind == "compare" and p.op in _OPS:
            number = f"TRY_CAST(x{k} AS DOUBLE)"
            return f"(NOT isnan({number}) AND {number} {_OPS[p.op]} ?)", [float(p.value)], None
        return None

    @staticmethod
    def _regex(pattern: str, flags: int, k: int) -> tuple[str, list[Any], str | None]:
        inline = "".join(letter for flag, letter in ((regex.IGNORECASE, "i"), (regex.MULTILINE, "m"),
                                                     (regex.DOTALL, "s")) if flags & flag)
        full = (f"(?{inline})" if inline else "") + pattern
        if flags & ~(regex.IGNORECASE | regex.MULTILINE | regex.DOTALL) or not re2_accepts(full):
            return "NULL", [], "FALSE"  # Python decides every present value
        guards: list[str] = []
        # Python's \d, \w, \s, \b and case folding know all of Unicode, RE2's only ASCII: alike on ASCII text.
        if regex.search(r"\\[dDwWsSbB]|\(\?[a-zA-Z]*i", pattern) or flags & regex.IGNORECASE:
            guards.append(f"strlen(x{k}) = length(x{k})")
        # Python's ``$`` also matches before a final newline; RE2's only at the end.
        if "$" in pattern:
            guards.append(f"NOT ends_with(x{k}, chr(10))")
        return f"regexp_matches(x{k}, ?)", [full], " AND ".join(guards) or None

    @staticmethod
    def _cidr(fields: Fields, network_text: str, k: int) -> tuple[str, list[Any], str | None] | None:
        try:
            network = ipaddress.ip_network(network_text, strict=False)
        except ValueError:
            return None
        if not isinstance(network, ipaddress.IPv4Network):
            # No IPv6 address is written without a colon: those values are decided (false) in SQL.
            return "FALSE", [], f"NOT contains(x{k}, ':')"
        fields.addresses.add(k)
        return f"(ip{k} BETWEEN ? AND ?)", [int(network.network_address), int(network.broadcast_address)], None


_NEEDLE_KINDS = frozenset({"exact", "prefix", "suffix", "contains", "glob"})


def needles(condition: Condition) -> list[Predicate] | None:
    """Predicates at least one of which holds whenever ``condition`` does, each with a literal its value must
    contain (``needle``); None when no such set is known (the engine's prefilter, in SQL)."""
    if isinstance(condition, Predicate):
        if (condition.kind in _NEEDLE_KINDS and condition.needle and condition.field is not None
                and path_supported(condition.field)):
            return [condition]
        return None
    if isinstance(condition, Not):
        return None
    found = [needles(item) for item in condition.items]
    if isinstance(condition, Or):
        if any(option is None for option in found):
            return None
        return [p for option in found if option is not None for p in option]
    options = [option for option in found if option is not None]
    if not options:
        return None
    return min(options, key=lambda option: (len(option), -min(len(p.needle) for p in option)))


def prefilter(fields: Fields, conditions: list[Condition | None]) -> tuple[str, list[Any]]:
    """SQL over the raw values that holds for every row where one of ``conditions`` may hold: some field
    holds one of its needles (one RE2 alternation per field, over the lower-cased text)."""
    by_slot: dict[int, set[str]] = {}
    for condition in conditions:
        found = needles(condition) if condition is not None else None
        if found is None:
            return "TRUE", []
        for predicate in found:
            by_slot.setdefault(fields.slot(str(predicate.field)), set()).add(predicate.needle)
    if not by_slot:
        return "FALSE", []
    tests = [f"regexp_matches(l{k}, ?)" for k in by_slot]
    patterns = ["(?:" + "|".join(re2_literal(n) for n in sorted(words)) + ")" for words in by_slot.values()]
    return "(" + " OR ".join(tests) + ")", patterns


def _merged(items: tuple[Condition, ...]) -> list[Condition | tuple[Predicate, ...]]:
    """An OR's items with its literal predicates on the same field (same kind and casing) taken together."""
    groups: dict[tuple[str, str, bool], list[Predicate]] = {}
    others: list[Condition | tuple[Predicate, ...]] = []
    for item in items:
        if (isinstance(item, Predicate) and item.kind in _MERGEABLE and item.field is not None
                and path_supported(item.field) and isinstance(item.value, str)):
            groups.setdefault((item.field, item.kind, item.cased), []).append(item)
        else:
            others.append(item)
    merged: list[Condition | tuple[Predicate, ...]] = [group[0] if len(group) == 1 else tuple(group)
                                                        for group in groups.values()]
    return merged + others
