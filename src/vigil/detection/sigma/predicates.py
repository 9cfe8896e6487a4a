"""The engine's form of a Sigma detection: atomic predicates (one field, one value) under and/or/not.

Compiled once from pySigma's condition tree (``compile.py``), free of pySigma objects so that a compiled
rule set pickles small and loads fast (the compiled cache, hunt workers). Identical predicates of
different rules are equal and hashable: the engine evaluates each one once per event.

Matching follows pySigma: strings compare case-insensitively unless ``cased`` (by Unicode case folding,
so that a Greek final sigma or a German sharp s finds its other forms); ``*`` and ``?`` are
wildcards; a list value in the event matches when any element does; numbers and booleans compare by
their text (``EventID: 4688`` matches 4688 and "4688").
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import regex

# A regular expression gets this long per value before it counts as not matching: a rule whose
# pattern backtracks catastrophically must not stall the pipeline (issue: bounded evaluation).
REGEX_TIMEOUT_SECONDS = 0.05
# Nor must an event crafted with many such values: every regular expression evaluated for one event
# shares this much time (``open_regex_budget``, which the engine calls per event); past it, the remaining
# ones count as not matching, and ``REGEX_BUDGET_SPENT`` says how often that happened.
REGEX_EVENT_SECONDS = 0.25
REGEX_BUDGET_SPENT = [0]  # evaluations given up because their event's budget was spent
_budget = threading.local()
# Values longer than this are matched on their first part only: ample for any real log field.
MAX_VALUE_CHARS = 1 << 20

STRING_KINDS = frozenset({"exact", "prefix", "suffix", "contains", "glob"})


@dataclass(frozen=True, slots=True)
class Predicate:
    """One field compared with one value.

    ``kind``: exact, prefix, suffix, contains, glob (``value`` a regex source), regex, cidr, compare
    (``op`` lt/lte/gt/gte, ``value`` a number), null, exists (``value`` True/False), fieldref (``value``
    the other field; ``op`` "", "startswith" or "endswith"). ``field`` None: a keyword, matched
    against every value of the event. ``needle``: a lower-case literal the value must contain for the
    predicate to hold ("" when there is none); the engine's multi-pattern prefilter looks for it.
    """

    field: str | None
    kind: str
    value: Any
    cased: bool = False
    flags: int = 0
    op: str = ""
    needle: str = ""


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition


Condition = And | Or | Not | Predicate

MISSING = object()  # a field the event does not have (unlike one that is null)
_MISSING = MISSING


def field_value(event: Mapping[str, Any], name: str) -> Any:
    """The event's value for a Sigma field name: the top-level key, else a dotted path; ``_MISSING``.

    A Windows field named like an ECS object (OpenSSH's ``process``) is kept as ``EventData_<name>``
    beside that object: a rule's plain ``process`` means it."""
    value = event.get(name, _MISSING)
    if value is not _MISSING:
        if (value.__class__ is dict or isinstance(value, Mapping)) and "." not in name:
            return event.get(f"EventData_{name}", value)
        return value
    if "." not in name:
        return _MISSING
    node: Any = event
    for part in name.split("."):
        if node.__class__ is not dict and not isinstance(node, Mapping):  # the class test first: it is cheap
            return _MISSING
        node = node.get(part, _MISSING)
        if node is _MISSING:
            return _MISSING
    return node


def is_missing(value: Any) -> bool:
    return value is _MISSING


def as_text(value: Any) -> str | None:
    """A scalar's text as Sigma compares it; None for what no string value can match (objects, null)."""
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # beyond Python's 4,300-digit limit: no string value is that number
            return None
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e18 else repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return None


def scalars(value: Any) -> list[Any]:
    """The value itself, or each element of a list (nested lists flattened, however deep)."""
    if not isinstance(value, list | tuple):
        return [value]
    flat: list[Any] = []
    pending: list[Any] = [iter(value)]
    while pending:
        for item in pending[-1]:
            if isinstance(item, list | tuple):
                pending.append(iter(item))
                break
            flat.append(item)
        else:
            pending.pop()
    return flat


def every_value(event: Mapping[str, Any]) -> list[Any]:
    """Every scalar anywhere in the event (keywords search them all)."""
    found: list[Any] = []
    pending: list[Any] = [event]
    while pending:
        node = pending.pop()
        for value in node.values():
            if value.__class__ is str:
                found.append(value)
            elif isinstance(value, Mapping):
                pending.append(value)
            elif isinstance(value, list | tuple):
                for item in scalars(value):
                    if isinstance(item, Mapping):
                        pending.append(item)
                    else:
                        found.append(item)
            else:
                found.append(value)
    return found


def every_text(event: Mapping[str, Any]) -> list[str]:
    """The text of every scalar anywhere in the event (what keywords search), the common types first;
    not ``event.original``, the raw record (its JSON keys are no values)."""
    texts: list[str] = []
    meta = event.get("event")
    if isinstance(meta, Mapping) and "original" in meta:
        event = {**event, "event": {key: value for key, value in meta.items() if key != "original"}}
    pending: list[Any] = [event]
    while pending:
        node = pending.pop()
        for value in node.values():
            kind = value.__class__
            if kind is str:
                texts.append(value)
            elif kind is int:
                if (text := as_text(value)) is not None:
                    texts.append(text)
            elif kind is dict:
                pending.append(value)
            elif value is not None:
                for item in every_value({"": value}) if kind is not list else scalars(value):
                    if isinstance(item, Mapping):
                        pending.append(item)
                    elif (text := as_text(item)) is not None:
                        texts.append(text)
    return texts


@lru_cache(maxsize=16384)
def compiled(pattern: str, flags: int) -> regex.Pattern[str]:
    return regex.compile(pattern, flags)


@lru_cache(maxsize=4096)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


def open_regex_budget(seconds: float = REGEX_EVENT_SECONDS) -> None:
    """From now on the regular expressions this thread evaluates share ``seconds`` (one event's worth),
    until ``close_regex_budget``. (Two plain calls, not a context manager: this runs for every event.)"""
    _budget.deadline = time.monotonic() + seconds


def close_regex_budget() -> None:
    _budget.deadline = None


def _regex_timeout() -> float:
    """How long the next regular expression may run: its own limit, or what is left of its event's budget
    (raises ``TimeoutError`` when nothing is: the evaluation is given up as not matching)."""
    deadline: float | None = getattr(_budget, "deadline", None)
    if deadline is None:
        return REGEX_TIMEOUT_SECONDS
    left = deadline - time.monotonic()
    if left <= 0:
        REGEX_BUDGET_SPENT[0] += 1
        raise TimeoutError("the event's time for regular expressions is spent")
    return min(left, REGEX_TIMEOUT_SECONDS)


def text_matches(predicate: Predicate, text: str) -> bool:
    """Whether one text value satisfies a string, regex, cidr or compare predicate (``TimeoutError`` when a
    regular expression ran out of time)."""
    kind = predicate.kind
    if kind in STRING_KINDS:
        if kind == "glob":
            return compiled(predicate.value, predicate.flags).fullmatch(text, timeout=_regex_timeout()) \
                is not None
        subject = text if predicate.cased else text.casefold()
        value: str = predicate.value
        if kind == "exact":
            return subject == value
        if kind == "prefix":
            return subject.startswith(value)
        if kind == "suffix":
            return subject.endswith(value)
        return value in subject
    if kind == "regex":
        try:
            return compiled(predicate.value, predicate.flags).search(text, timeout=_regex_timeout()) is not None
        except TimeoutError:
            return False
    if kind == "cidr":
        try:
            return ipaddress.ip_address(text.strip()) in _network(predicate.value)
        except ValueError:
            return False
    if kind == "compare":
        return _compare(text, predicate.op, predicate.value)
    if kind == "timepart":
        return _time_part(text, predicate.op) == int(predicate.value)
    return False


def _compare(text: str, op: str, number: float) -> bool:
    value: float
    try:
        value = int(text.strip())  # exact: 2**53 + 1 is no float
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return False
    return not math.isnan(value) and _ordered(value, op, number)


def _time_part(text: str, part: str) -> int | None:
    """A part of a timestamp written as ISO 8601 or ``2026-01-02 03:04:05.678`` (Sysmon's UtcTime)."""
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return _part_of(stamp, part)


def _part_of(stamp: datetime, part: str) -> int:
    if part == "week":
        return stamp.isocalendar().week
    return int(getattr(stamp, part, -1))


def _ordered(value: float, op: str, number: float) -> bool:
    if op == "neq":
        return value != number
    if op == "lt":
        return value < number
    if op == "lte":
        return value <= number
    if op == "gt":
        return value > number
    return value >= number


def value_matches(predicate: Predicate, value: Any) -> bool:
    """Whether a field's value (a scalar or a list) satisfies a value predicate."""
    for item in scalars(value):
        if predicate.kind == "compare" and isinstance(item, int | float) and not isinstance(item, bool):
            if not (isinstance(item, float) and math.isnan(item)) and _ordered(item, predicate.op, predicate.value):
                return True
            continue
        if predicate.kind == "timepart" and isinstance(item, datetime):
            if _part_of(item, predicate.op) == predicate.value:
                return True
            continue
        text = as_text(item)
        if text is not None:
            try:
                if text_matches(predicate, text):
                    return True
            except TimeoutError:
                continue
    return False


def holds(predicate: Predicate, event: Mapping[str, Any]) -> bool:
    """Whether the predicate holds for the event (the slow path: no index, no prefilter)."""
    kind = predicate.kind
    if predicate.field is None:
        return any(_keyword(predicate, text) for text in every_text(event))
    value = field_value(event, predicate.field)
    if kind == "null":
        return value is _MISSING or value is None
    if kind == "exists":  # presence only, "be it empty or null" (Sigma specification)
        return (value is not _MISSING) is bool(predicate.value)
    if value is _MISSING or value is None:
        return False
    if kind == "fieldref":
        return _fieldref(predicate, value, field_value(event, predicate.value))
    return value_matches(predicate, value)


def _keyword(predicate: Predicate, text: str) -> bool:
    try:
        return text_matches(predicate, text)
    except TimeoutError:
        return False


def _fieldref(predicate: Predicate, value: Any, other: Any) -> bool:
    if other is _MISSING or other is None:
        return False
    references = [text.casefold() for item in scalars(other) if (text := as_text(item)) is not None]
    for item in scalars(value):
        text = as_text(item)
        if text is None:
            continue
        subject = text.casefold()
        for reference in references:
            if predicate.op == "contains" and reference in subject:
                return True
            if predicate.op == "startswith" and subject.startswith(reference):
                return True
            if predicate.op == "endswith" and subject.endswith(reference):
                return True
            if not predicate.op and subject == reference:
                return True
    return False


def predicates_of(condition: Condition) -> Iterator[Predicate]:
    if isinstance(condition, Predicate):
        yield condition
    elif isinstance(condition, Not):
        yield from predicates_of(condition.item)
    else:
        for item in condition.items:
            yield from predicates_of(item)
