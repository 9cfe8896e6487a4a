"""Per-field indexes of the engine's literal predicates ("needles") and the scan of one value against them.

An event's value is case-folded once, looked up among the field's exact needles and run through the
field's Aho-Corasick automaton; the result (predicates that hold, and those that may hold and are
verified by the predicate itself) is remembered per value in a bounded memo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ahocorasick

from vigil.detection.sigma.predicates import Predicate

# The pseudo-field under which keyword (field-less) predicates are indexed: every value of the event.
KEYWORDS = "\0keywords"
# Scanned values remembered per field before the memo starts again (bounded memory).
MEMO_ENTRIES = 50_000
# Values longer than this are not remembered (a 32 KiB script block seldom repeats, and 50,000 of them
# would hold 1.6 GB): the memo stays within about MEMO_ENTRIES x MEMO_VALUE_CHARS.
MEMO_VALUE_CHARS = 2048
SURE, VERIFY = 0, 1
FIXED_KINDS = {"exact": 0, "prefix": 1, "suffix": 2, "contains": 3}
# Kinds whose needle is only somewhere inside a match: found, the predicate itself still decides.
VERIFIED_KINDS = frozenset({"glob", "regex"})

Scan = tuple[frozenset[int], frozenset[int]]  # predicates that hold for a value, and those to verify
NO_HITS: Scan = (frozenset(), frozenset())


@dataclass
class FieldIndex:
    exact: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # value -> (pid, sure/verify)
    automaton: Any = None  # ahocorasick.Automaton over the other needles
    memo: dict[str, Scan] = field(default_factory=dict)

    def scan(self, text: str) -> Scan:
        """Scan one value (and remember it: the memo is keyed by the value as written)."""
        lowered = text.casefold()
        sure: set[int] = set()
        verify: set[int] = set()
        for pid, check in self.exact.get(lowered, ()):
            (verify if check else sure).add(pid)
        if self.automaton is not None:
            last = len(lowered) - 1
            for end, (length, entries) in self.automaton.iter(lowered):
                start = end - length + 1
                for pid, kind, check in entries:
                    if kind == 3 or (kind == 1 and start == 0) or (kind == 2 and end == last):
                        (verify if check else sure).add(pid)
        found = (frozenset(sure), frozenset(verify)) if sure or verify else NO_HITS
        if len(text) <= MEMO_VALUE_CHARS:
            if len(self.memo) >= MEMO_ENTRIES:
                self.memo.clear()
            self.memo[text] = found
        return found


def is_indexed(predicate: Predicate) -> bool:
    return bool(predicate.needle) and (predicate.kind in FIXED_KINDS or predicate.kind in VERIFIED_KINDS)


def field_key(predicate: Predicate) -> str:
    return KEYWORDS if predicate.field is None else predicate.field


def build_field_indexes(predicates: Sequence[Predicate], indexed: Sequence[bool]) -> dict[str, FieldIndex]:
    """The field indexes of the indexed predicates (by number): exact values in a dict, the other
    needles in one Aho-Corasick automaton per field."""
    fields: dict[str, FieldIndex] = {}
    words: dict[str, dict[str, list[tuple[int, int, int]]]] = {}
    for pid, predicate in enumerate(predicates):
        if not indexed[pid]:
            continue
        name = field_key(predicate)
        index = fields.setdefault(name, FieldIndex())
        verify = VERIFY if predicate.cased or predicate.kind in VERIFIED_KINDS else SURE
        if predicate.kind == "exact":
            index.exact.setdefault(predicate.needle, []).append((pid, verify))
        else:
            kind = FIXED_KINDS.get(predicate.kind, 3)  # a glob's or a regex's needle may be anywhere
            words.setdefault(name, {}).setdefault(predicate.needle, []).append((pid, kind, verify))
    for name, needles in words.items():
        automaton = ahocorasick.Automaton()
        for needle, entries in needles.items():
            automaton.add_word(needle, (len(needle), tuple(entries)))
        automaton.make_automaton()
        fields[name].automaton = automaton
    return fields
