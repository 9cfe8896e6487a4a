"""The Sigma engine: which rules match an event, without trying every rule on every event.

Three steps per event, each cheap:

1. Bucket: rules are indexed by the Channel and EventID their log-source mapping requires, so a Sysmon
   process creation meets the ~1,000 process-creation rules, not all 2,400 Windows rules.
2. Prefilter: for each rule the compiler finds a set of literal predicates at least one of which must
   hold for the rule to match (its "needles": ``Image|endswith: \\cmd.exe`` gives ``\\cmd.exe``). The
   event's values are scanned once per field with one Aho-Corasick automaton (and a dict for exact
   values); only rules with a needle found, or without needles at all, are candidates.
3. Evaluate: each candidate's condition runs as compiled Python (``t(12) and not t(40)``), every
   predicate computed at most once per event; literal ones are read off the scan.

Scans are memoised per field value (logs repeat values: the same Image, the same ParentImage), in a
bounded cache. The field indexes and the scan of a value are in ``field_index``, the compiled conditions
in ``conditions``; an ``EngineImage`` keeps a built engine for ``vigil hunt``'s cache.
"""

from __future__ import annotations

import dataclasses
import marshal
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from pathlib import Path
from typing import Any

from vigil.detection.sigma.conditions import cached_code, condition_functions, condition_source
from vigil.detection.sigma.field_index import (
    KEYWORDS,
    MEMO_ENTRIES,
    MEMO_VALUE_CHARS,
    NO_HITS,
    FieldIndex,
    Scan,
    build_field_indexes,
    field_key,
    is_indexed,
)
from vigil.detection.sigma.gates import variant_gate, without_gate
from vigil.detection.sigma.keywords import KeywordSearch
from vigil.detection.sigma.predicates import (
    MISSING,
    And,
    Condition,
    Not,
    Or,
    Predicate,
    as_text,
    close_regex_budget,
    field_value,
    holds,
    is_missing,
    open_regex_budget,
    predicates_of,
    scalars,
)
from vigil.detection.sigma.rules import Rule

GATE_FIELDS = ("Channel", "EventID")
MEMO_TRIAL, MEMO_PAUSE = 2_000, 50_000  # lookups judged at a time; events evaluated without the memo
_RAW_KEYS = frozenset({str, int, type(None)})
# In an event's scans: its time for regular expressions is running (see _tester). No field has this name.
_BUDGET = "\0regex budget"


@dataclass
class _Group:
    """Variants evaluated together, and how to find which of them are candidates for an event."""

    variants: list[int]
    always: list[int]  # variants without needles: candidates for every event
    members: frozenset[int]  # ``variants`` as a set: a needle's variants in other buckets are left out
    plain_fields: frozenset[str]  # needle fields read as one top-level key
    other_fields: list[str]  # dotted paths and keywords
    # The candidates a field's scan gives (scans are remembered per value: the same ones come again).
    by_scan: dict[Scan, tuple[int, ...]] = field(default_factory=dict)
    keywords_only: bool = False  # every variant has needles, all of them keywords


@dataclass
class _Bucket:
    """The variants that apply to events of one (Channel, EventID).

    ``fielded`` variants read named fields only: their result is remembered by the values of those
    fields (``read_fields``); ``keyword`` variants search every value and are evaluated each time."""

    fielded: _Group
    keyword: _Group
    read_plain: tuple[str, ...]  # top-level keys
    read_dotted: tuple[str, ...]
    # The values of ``read_plain`` and ``read_dotted`` -> their types and the fielded variants that matched.
    results: dict[tuple[Any, ...], tuple[tuple[type, ...], tuple[int, ...]]] = field(default_factory=dict)
    # The memo pays only where events repeat: a bucket whose lookups seldom hit stops remembering for a
    # while (a stream of unique syslog lines would otherwise build a signature per event for nothing).
    lookups: int = 0
    hits: int = 0
    memo_paused: int = 0  # events left to evaluate without the memo


@dataclass(frozen=True)
class EngineImage:
    """An engine's tables in a form that pickles small and loads in a fraction of the time building them
    takes (``vigil hunt`` keeps one on disk per rule set): the rules without their YAML and detection
    (which the tables hold), predicates as tuples, the conditions as marshalled code, the automata."""

    python: str  # sys.version of the Python that compiled the conditions
    rules: tuple[Rule, ...]
    predicates: tuple[tuple[Any, ...], ...]  # the numbered ones (``numbered``) first, then the gates'
    numbered: int
    variant_rule: tuple[int, ...]
    variant_gate: tuple[tuple[str | None, str | None], ...]
    variant_windows: tuple[bool, ...]
    variant_needles: tuple[frozenset[int] | None, ...]
    variant_predicates: tuple[tuple[int, ...], ...]
    conditions: bytes
    fields: tuple[tuple[str, dict[str, list[tuple[int, int]]], Any], ...]


class Engine:
    """Compiled rules, ready to match events (``match``, ``match_many``)."""

    def __init__(self, rules: Sequence[Rule], *, code_cache: Path | None = None) -> None:
        """``code_cache``: a folder where the compiled conditions are kept (compiling 2,400 rules' conditions
        takes 0.3 s; a hunt that starts again with the same rules loads them instead)."""
        self.rules = list(rules)
        self._predicates: list[Predicate] = []
        self._pid: dict[Predicate, int] = {}
        self._variant_rule: list[int] = []
        self._variant_gate: list[tuple[str | None, str | None]] = []
        self._variant_windows: list[bool] = []
        self._variant_needles: list[frozenset[int] | None] = []
        self._variant_predicates: list[tuple[Predicate, ...]] = []
        sources: list[str] = []
        for rule_index, rule in enumerate(self.rules):
            for variant in rule.variants:
                gate = variant_gate(variant)
                # The bucket an event is looked up in already guarantees the gate: not tested again.
                remaining = without_gate(variant, gate)
                sources.append("True" if remaining is None else self._expression(remaining))
                self._variant_rule.append(rule_index)
                self._variant_gate.append(gate)
                # A Windows rule looks at Windows events only (they have a Channel), whatever else it asks.
                self._variant_windows.append(rule.product == "windows")
                self._variant_needles.append(self._needles(variant))
                self._variant_predicates.append(tuple(dict.fromkeys(predicates_of(variant))))
        self._code = cached_code(condition_source(sources), code_cache)
        self._conditions = condition_functions(self._code, len(sources))
        self._index_predicates()
        self._fields = build_field_indexes(self._predicates, self._indexed)
        self._start_matching()

    def _index_predicates(self) -> None:
        self._indexed = [is_indexed(p) for p in self._predicates]
        # The field scan an indexed predicate is read from; None: evaluated on its own.
        self._scan_keys = [field_key(p) if indexed else None for p, indexed in zip(self._predicates, self._indexed,
                                                                                        strict=True)]

    def _start_matching(self) -> None:
        self._keywords = KeywordSearch(self._fields.get(KEYWORDS) or FieldIndex())
        # Fields read as one top-level key (no dotted path to walk).
        self._plain_fields = frozenset(name for name in self._fields if "." not in name and name != KEYWORDS)
        self._buckets: dict[tuple[str | None, str | None], _Bucket] = {}
        # The bucket of an event's (Channel, EventID) as they are written, when both are texts, integers or
        # null (not booleans nor floats: True == 1 == 1.0, but their texts differ): no text to make.
        self._raw_buckets: dict[tuple[Any, Any], _Bucket] = {}
        self._shared: dict[tuple[int, ...], _Bucket] = {}
        self._by_gate: dict[tuple[str | None, str | None], list[int]] | None = None
        self._needles_by_pid: tuple[dict[int, list[int]], list[dict[str, None] | None]] | None = None

    # --- images (the engine kept on disk between hunts) ----------------------------------------------

    def image(self) -> EngineImage:
        """This engine as an ``EngineImage`` (before it has matched anything: the memos are not kept)."""
        # Every distinct predicate: those with a number first, in its order, then the gates' (read by buckets).
        table = dict.fromkeys(self._predicates)
        for found in self._variant_predicates:
            table.update(dict.fromkeys(found))
        number = {predicate: index for index, predicate in enumerate(table)}
        return EngineImage(
            python=sys.version,
            rules=tuple(dataclasses.replace(rule, yaml="", variants=()) for rule in self.rules),
            predicates=tuple(_predicate_fields(p) for p in table), numbered=len(self._predicates),
            variant_rule=tuple(self._variant_rule), variant_gate=tuple(self._variant_gate),
            variant_windows=tuple(self._variant_windows), variant_needles=tuple(self._variant_needles),
            variant_predicates=tuple(tuple(number[p] for p in found) for found in self._variant_predicates),
            conditions=marshal.dumps(self._code),
            fields=tuple((name, index.exact, index.automaton) for name, index in self._fields.items()),
        )

    @classmethod
    def from_image(cls, image: EngineImage) -> Engine:
        """The engine an image was taken of (``ValueError`` for an image of another Python's making: its
        compiled conditions are Python's own format)."""
        if image.python != sys.version:
            raise ValueError("an engine image made by another Python")
        engine = cls.__new__(cls)
        engine.rules = list(image.rules)
        every = [Predicate(*fields) for fields in image.predicates]
        engine._predicates = every[:image.numbered]
        engine._pid = {}  # only for compiling
        engine._variant_rule = list(image.variant_rule)
        engine._variant_gate = list(image.variant_gate)
        engine._variant_windows = list(image.variant_windows)
        engine._variant_needles = list(image.variant_needles)
        engine._variant_predicates = [tuple(every[index] for index in found) for found in image.variant_predicates]
        engine._code = marshal.loads(image.conditions)  # noqa: S302 - our own image, made by this engine
        engine._conditions = condition_functions(engine._code, len(engine._variant_rule))
        engine._index_predicates()
        engine._fields = {name: FieldIndex(exact, automaton) for name, exact, automaton in image.fields}
        engine._start_matching()
        return engine

    # --- compiling ----------------------------------------------------------------------------

    def _id(self, predicate: Predicate) -> int:
        pid = self._pid.get(predicate)
        if pid is None:
            pid = self._pid[predicate] = len(self._predicates)
            self._predicates.append(predicate)
        return pid

    def _expression(self, condition: Condition) -> str:
        if isinstance(condition, Predicate):
            return f"t({self._id(condition)})"
        if isinstance(condition, Not):
            return f"(not {self._expression(condition.item)})"
        joiner = " and " if isinstance(condition, And) else " or "
        return "(" + joiner.join(self._expression(item) for item in condition.items) + ")"

    def _needles(self, condition: Condition) -> frozenset[int] | None:
        """Predicates at least one of which holds whenever the condition does; None if none such is known."""
        if isinstance(condition, Predicate):
            return frozenset({self._id(condition)}) if is_indexed(condition) else None
        if isinstance(condition, Not):
            return None
        found = [self._needles(item) for item in condition.items]
        if isinstance(condition, Or):
            if any(needles is None for needles in found):
                return None
            return frozenset().union(*(n for n in found if n is not None))
        options = [n for n in found if n is not None]
        useful = [n for n in options if not self._all_gates(n)]
        if not useful:
            return None
        return min(useful, key=lambda n: (len(n), -min(len(self._predicates[p].needle) for p in n)))

    def _all_gates(self, needles: frozenset[int]) -> bool:
        return all(self._predicates[p].field in GATE_FIELDS and self._predicates[p].kind == "exact" for p in needles)

    # --- buckets --------------------------------------------------------------------------------

    def _bucket(self, channel: str | None, event_id: str | None) -> _Bucket:
        key = (channel, event_id)
        bucket = self._buckets.get(key)
        if bucket is None:
            gates = self._gates()
            found = {*gates.get((None, None), ()), *gates.get((channel, None), ()),
                     *gates.get((None, event_id), ()), *gates.get((channel, event_id), ())}
            variants = tuple(sorted(v for v in found if channel is not None or not self._variant_windows[v]))
            # Most (Channel, EventID) pairs meet the same rules as others of their channel: one bucket
            # (groups, memo and all) serves them all.
            bucket = self._shared.get(variants)
            if bucket is None:
                bucket = self._shared[variants] = self._new_bucket(variants)
            self._buckets[key] = bucket
        return bucket

    def _gates(self) -> dict[tuple[str | None, str | None], list[int]]:
        """Variants by the (Channel, EventID) their gate asks for (None: any), made on first use."""
        if self._by_gate is None:
            self._by_gate = {}
            for variant, gate in enumerate(self._variant_gate):
                self._by_gate.setdefault(gate, []).append(variant)
        return self._by_gate

    def _new_bucket(self, variants: Sequence[int]) -> _Bucket:
        keyword = [v for v in variants if any(p.field is None for p in self._variant_predicates[v])]
        keyword_set = frozenset(keyword)
        fielded = [v for v in variants if v not in keyword_set]
        read: dict[str, None] = {}
        for variant in fielded:
            for predicate in self._variant_predicates[variant]:
                read[str(predicate.field)] = None
                if predicate.kind == "fieldref":
                    read[str(predicate.value)] = None
        return _Bucket(self._group(fielded), self._group(keyword),
                       tuple(name for name in read if "." not in name), tuple(name for name in read if "." in name))

    def _group(self, variants: list[int]) -> _Group:
        always: list[int] = []
        fields: dict[str, None] = {}
        needle_fields = self._needle_index()[1]
        for variant in variants:
            found = needle_fields[variant]
            if found is None:
                always.append(variant)
            else:
                fields.update(found)
        plain = frozenset(name for name in fields if name in self._plain_fields)
        other = [name for name in fields if name not in plain]
        return _Group(variants, always, frozenset(variants), plain, other,
                      keywords_only=not always and not plain and other == [KEYWORDS])

    def _needle_index(self) -> tuple[dict[int, list[int]], list[dict[str, None] | None]]:
        """The variants of each needle, and the fields of each variant's needles (None: it has none), made
        once for every bucket (made per bucket, they cost a sixth of a hunt's first look at its events)."""
        if self._needles_by_pid is None:
            variants: dict[int, list[int]] = {}
            fields: list[dict[str, None] | None] = []
            for variant, needles in enumerate(self._variant_needles):
                if needles is None:
                    fields.append(None)
                    continue
                for pid in needles:
                    variants.setdefault(pid, []).append(variant)
                fields.append(dict.fromkeys(field_key(self._predicates[pid]) for pid in needles))
            self._needles_by_pid = (variants, fields)
        return self._needles_by_pid

    # --- matching -------------------------------------------------------------------------------

    def match(self, event: Mapping[str, Any]) -> list[Rule]:
        """The rules whose detection matches the event, in the order they were given."""
        scans: dict[str, Scan] = {}
        try:
            return self._match(event, scans)
        finally:
            if _BUDGET in scans:  # opened by the first rule evaluated (most events remembered need none)
                close_regex_budget()

    def _match(self, event: Mapping[str, Any], scans: dict[str, Scan]) -> list[Rule]:
        channel = event.get("Channel")
        event_id = event.get("EventID")
        raw = (channel, event_id) if channel.__class__ in _RAW_KEYS and event_id.__class__ in _RAW_KEYS else None
        bucket = self._raw_buckets.get(raw) if raw is not None else None
        if bucket is None:
            if isinstance(channel, list | tuple | dict) or isinstance(event_id, list | tuple | dict):
                return self._match_unbucketed(event, scans)
            channel_text = as_text(channel)
            event_id_text = as_text(event_id)
            bucket = self._bucket(channel_text.casefold() if channel_text is not None else None,
                                  event_id_text.casefold() if event_id_text is not None else None)
            if raw is not None:
                if len(self._raw_buckets) >= MEMO_ENTRIES:  # a stream of made-up channels: bounded
                    self._raw_buckets.clear()
                self._raw_buckets[raw] = bucket
        matched: Sequence[int] = self._fielded(event, bucket, scans)
        keyword = bucket.keyword
        # Keyword variants whose only needles are keywords (SigmaHQ's) are no candidates when no keyword is
        # in the event, as is most often the case: then no need to go through _evaluate.
        if keyword.variants and (not keyword.keywords_only or self._scan(event, KEYWORDS, scans) is not NO_HITS):
            found = self._evaluate(event, keyword, scans)
            if found:
                matched = sorted({*matched, *found})
        return [self.rules[index] for index in matched]

    def _fielded(self, event: Mapping[str, Any], bucket: _Bucket, scans: dict[str, Scan]) -> tuple[int, ...]:
        """The fielded rules that match; remembered by the values of the fields they read.

        Logs repeat themselves (the same process, the same logon): an event whose every field these rules
        read equals an earlier one's has the earlier result. (True == 1 in Python: the values' types are
        kept with the result, and a hit needs the same types. Only the values are hashed: the types, the
        same for most events, are compared on a hit.)"""
        if not bucket.fielded.variants:
            return ()
        if bucket.memo_paused:
            bucket.memo_paused -= 1
            return tuple(self._evaluate(event, bucket.fielded, scans))
        values = tuple(map(event.get, bucket.read_plain, repeat(MISSING)))  # absent differs from null
        if bucket.read_dotted:
            values += tuple(field_value(event, name) for name in bucket.read_dotted)
        signature: tuple[Any, ...] | None = values
        results = bucket.results
        try:
            known = results.get(values)
        except TypeError:  # a list (EventData's unnamed Data) or an object: made hashable, or not remembered
            signature = _hashable(values)
            known = results.get(signature) if signature is not None else None
        # With the values' types: True == 1 in Python, but the boolean true is not the number 1 in Sigma.
        kinds = tuple(map(type, values))
        bucket.lookups += 1
        if known is not None and known[0] == kinds:
            bucket.hits += 1
            return known[1]
        if bucket.lookups >= MEMO_TRIAL:
            if bucket.hits * 20 < bucket.lookups:  # under 5 % hits: not worth it for the next while
                bucket.memo_paused = MEMO_PAUSE
                results.clear()
            bucket.lookups = bucket.hits = 0
        matched = tuple(self._evaluate(event, bucket.fielded, scans))
        if signature is not None and sum(len(v) for v in values if v.__class__ is str) <= 4 * MEMO_VALUE_CHARS:
            if len(results) >= MEMO_ENTRIES:
                results.clear()
            results[signature] = (kinds, matched)
        return matched

    def _evaluate(self, event: Mapping[str, Any], group: _Group, scans: dict[str, Scan]) -> list[int]:
        """Indexes of the group's rules that match: the prefilter's candidates, then their conditions."""
        candidates: set[int] = set(group.always)
        by_scan = group.by_scan
        # Only the fields the event has (a set intersection in C), then the dotted and keyword ones.
        for name in [*(event.keys() & group.plain_fields), *group.other_fields]:
            found = self._scan(event, name, scans)
            if found is not NO_HITS:
                from_scan = by_scan.get(found)
                candidates.update(from_scan if from_scan is not None else self._candidates(group, found))
        if not candidates:
            return []
        test = self._tester(event, scans)
        matched: dict[int, None] = {}
        for variant in sorted(candidates):
            rule = self._variant_rule[variant]
            if rule not in matched and self._conditions[variant](test):
                matched[rule] = None
        return sorted(matched)

    def _candidates(self, group: _Group, found: Scan) -> tuple[int, ...]:
        """The group's variants one of whose needles a field's scan found; remembered for that scan."""
        by_needle, members = self._needle_index()[0], group.members
        candidates: set[int] = set()
        # Most predicates a value holds are no variant's needle: looked up, nothing more.
        for variants in filter(None, map(by_needle.get, chain(*found))):
            candidates.update(members.intersection(variants))
        if len(group.by_scan) >= MEMO_ENTRIES:
            group.by_scan.clear()
        remembered = group.by_scan[found] = tuple(candidates)
        return remembered

    def _match_unbucketed(self, event: Mapping[str, Any], scans: dict[str, Scan]) -> list[Rule]:
        """An event whose Channel or EventID is a list (or an object): no bucket fits, so every variant
        whose gate one of its values meets is evaluated (rare: real events have one of each)."""
        channels = {text.casefold() for item in scalars(event.get("Channel")) if (text := as_text(item)) is not None}
        event_ids = {text.casefold() for item in scalars(event.get("EventID")) if (text := as_text(item)) is not None}
        variants = [v for v, (channel, event_id) in enumerate(self._variant_gate)
                    if (channel is None or channel in channels) and (event_id is None or event_id in event_ids)]
        test = self._tester(event, scans)
        matched = sorted({self._variant_rule[v] for v in variants if self._conditions[v](test)})
        return [self.rules[index] for index in matched]

    def match_many(self, events: Iterable[Mapping[str, Any]]) -> list[list[Rule]]:
        return [self.match(event) for event in events]

    def _scan(self, event: Mapping[str, Any], name: str, scans: dict[str, Scan]) -> Scan:
        """The indexed predicates of one field that hold (or may hold) for the event's value."""
        found = scans.get(name)
        if found is not None:
            return found
        if name == KEYWORDS:
            found = scans[name] = self._keywords.scan(event)
            return found
        index = self._fields[name]
        value = event.get(name) if name in self._plain_fields else field_value(event, name)
        if value.__class__ is dict:  # OpenSSH's "process" beside the ECS object: see field_value
            value = field_value(event, name)
        if value.__class__ is str:  # the common case first: one string, most often seen before
            found = index.memo.get(value)
            if found is None:
                found = index.scan(value)
        elif value is None or is_missing(value):
            found = NO_HITS
        elif isinstance(value, list):
            sure: set[int] = set()
            verify: set[int] = set()
            for item in scalars(value):
                text = as_text(item)
                if text is not None:
                    item_sure, item_verify = index.memo.get(text) or index.scan(text)
                    sure |= item_sure
                    verify |= item_verify
            found = (frozenset(sure), frozenset(verify))
        else:
            text = as_text(value)
            found = NO_HITS if text is None else (index.memo.get(text) or index.scan(text))
        scans[name] = found
        return found

    def _tester(self, event: Mapping[str, Any], scans: dict[str, Scan]) -> Callable[[int], bool]:
        """``t(pid)`` for one event: each predicate computed once, literal ones read off the field scans.

        The event's time for regular expressions starts with the first of its rules evaluated."""
        if _BUDGET not in scans:
            open_regex_budget()
            scans[_BUDGET] = NO_HITS
        known: dict[int, bool] = {}
        predicates = self._predicates
        scan_keys = self._scan_keys
        scan = self._scan

        def test(pid: int) -> bool:
            result = known.get(pid)
            if result is None:
                key = scan_keys[pid]
                if key is None:
                    result = holds(predicates[pid], event)
                else:
                    found = scans.get(key) or scan(event, key, scans)
                    result = pid in found[0] or (pid in found[1] and holds(predicates[pid], event))
                known[pid] = result
            return result

        return test

def _predicate_fields(predicate: Predicate) -> tuple[Any, ...]:
    return (predicate.field, predicate.kind, predicate.value, predicate.cased, predicate.flags, predicate.op,
            predicate.needle)


def _hashable(values: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The values with lists as tuples (of their elements and types); None when they hold an object."""
    items: list[Any] = []
    for value in values:
        if isinstance(value, list):
            flat = scalars(value)
            if any(isinstance(item, Mapping) for item in flat):
                return None
            items.append((tuple(flat), tuple(map(type, flat))))
        elif isinstance(value, Mapping):
            return None
        else:
            items.append(value)
    return tuple(items)
