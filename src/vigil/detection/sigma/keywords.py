"""Keyword needles (Sigma values without a field) searched in every value of an event.

Most of an event's values are those of other events (the same images, users, hosts): values known to
hold no needle are remembered, from one event to the next, and passed over by a set's membership test run
in C over the event's values; the others are scanned one by one, each scan remembered by the field index.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import filterfalse
from typing import Any

from vigil.detection.sigma.field_index import MEMO_ENTRIES, MEMO_VALUE_CHARS, NO_HITS, FieldIndex, Scan
from vigil.detection.sigma.predicates import as_text, every_text

_INTEGER_CHARACTERS = frozenset("-0123456789")
# Every character of the texts of numbers and booleans (as_text: "-12", "1.5e+20", "inf", "nan", "true", "false").
_SCALAR_TEXT_CHARACTERS = frozenset("-+.0123456789einfatruls")
_INERT_SCALARS = frozenset({int, bool, float})


class KeywordSearch:
    """The keyword index of an engine, and what it remembers of the values it has seen."""

    def __init__(self, index: FieldIndex) -> None:
        self.index = index
        needles = [*index.exact, *(index.automaton.keys() if index.automaton is not None else ())]
        self.shortest = min(map(len, needles), default=0)
        self.numeric = any(set(needle) <= _INTEGER_CHARACTERS for needle in needles)
        # Whether no needle can be in the text of a number or a boolean (every needle has a character none
        # of those texts has): then such values never need a look.
        self.scalars_inert = not any(set(needle) <= _SCALAR_TEXT_CHARACTERS for needle in needles)
        self.clean: set[Any] = set()  # values (of any event) known to hold no needle

    def scan(self, event: Mapping[str, Any]) -> Scan:
        """The keyword predicates that hold (or may hold) for some value of the event.

        Values known to hold no needle are passed over in C; of the others, texts are scanned here, and
        anything but texts, numbers and booleans (lists, objects) sends the whole event through ``texts``."""
        clean = self.clean
        try:
            unknown = list(filterfalse(clean.__contains__, event.values()))
        except TypeError:  # a list or an object among the values
            return self._scan_texts(self.texts(event))
        if not unknown:
            return NO_HITS
        if len(clean) >= MEMO_ENTRIES:
            clean.clear()
        sure: frozenset[int] = frozenset()
        verify: frozenset[int] = frozenset()
        index = self.index
        memo = index.memo
        shortest, inert = self.shortest, self.scalars_inert
        for value in unknown:
            kind = value.__class__
            if kind is str:
                if len(value) < shortest and value.isascii():  # an ASCII text folds to one as long
                    clean.add(value)
                    continue
                found = memo.get(value) or index.scan(value)
                if found is NO_HITS:
                    if len(value) <= MEMO_VALUE_CHARS:
                        clean.add(value)
                    continue
            elif value is None or (inert and kind in _INERT_SCALARS):
                clean.add(value)
                continue
            else:  # a number a needle may be in, bytes, a tuple, ...: as every value of the event
                return self._scan_texts(self.texts(event))
            sure |= found[0]
            verify |= found[1]
        return (sure, verify) if sure or verify else NO_HITS

    def _scan_texts(self, texts: list[str]) -> Scan:
        sure: frozenset[int] = frozenset()
        verify: frozenset[int] = frozenset()
        index = self.index
        memo = index.memo
        for text in texts:
            found = memo.get(text) or index.scan(text)
            if found is not NO_HITS:
                sure |= found[0]
                verify |= found[1]
        return (sure, verify) if sure or verify else NO_HITS

    def texts(self, event: Mapping[str, Any]) -> list[str]:
        """The values a needle may be in: ``every_text``, read cheaply from a flat event of texts and integers
        (a Windows event as hunts read it), without what no needle fits in: ASCII texts shorter than the
        shortest needle (an ASCII text folds to one as long), integers when no needle is digits."""
        shortest, numeric = self.shortest, self.numeric
        texts: list[str] = []
        for value in event.values():
            kind = value.__class__
            if kind is str:
                if len(value) >= shortest or not value.isascii():
                    texts.append(value)
            elif kind is int:
                if numeric and (text := as_text(value)) is not None:
                    texts.append(text)
            elif value is not None:  # objects, lists, other scalars: every_text knows them all
                return every_text(event)
        return texts
