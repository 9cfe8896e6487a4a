"""Sigma correlation rules: loading them and what they are to the rest of Vigil.

A correlation rule (Sigma specification, "correlation rules") refers to base rules by id or ``name`` and
says what to count per group of events within a timespan: matches (``event_count``), distinct values of
a field (``value_count``), or which of the rules matched, in any order (``temporal``) or in the listed
order (``temporal_ordered``). pySigma parses the YAML and resolves the references (``SigmaCollection``,
UUID first, then name); the result is converted into plain frozen dataclasses so that the engine keeps
no pySigma object at run time (rules pickle into hunt workers and compiled caches).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleNotFoundError
from sigma.rule import SigmaRule

from vigil.detection.sigma import Rule, RuleError

TYPES = ("event_count", "value_count", "temporal", "temporal_ordered")
OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")
# Conditions that more events can only make true: decided as soon as they hold. The others (lt, lte,
# eq, neq) can only be decided when the window has closed.
EARLY_OPERATORS = frozenset({"gt", "gte"})
RULE_SUFFIXES = (".yml", ".yaml")
_ID_NAMESPACE = uuid.UUID("9b0c3a57-3f1e-4d55-8c2a-6a1f0e7d4b13")
_QUOTED = re.compile(r"'([^'\n]{1,200})'")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Source = str | Path | tuple[str, str]  # YAML text or a path; or (path shown in errors, YAML text)


@dataclass(frozen=True)
class Threshold:
    """The correlation's condition: ``op`` (gt, gte, lt, lte, eq, neq) against ``count``."""

    op: str
    count: int

    def holds(self, value: int) -> bool:
        op, count = self.op, self.count
        if op == "gt":
            return value > count
        if op == "gte":
            return value >= count
        if op == "lt":
            return value < count
        if op == "lte":
            return value <= count
        if op == "eq":
            return value == count
        return value != count

    @property
    def early(self) -> bool:
        """True when the condition is decided as soon as it holds (more events cannot undo it)."""
        return self.op in EARLY_OPERATORS

    def __str__(self) -> str:
        return f"{self.op} {self.count}"


@dataclass(frozen=True)
class RuleRef:
    """A rule the correlation refers to: a base rule (its Vigil id) or another correlation rule."""

    id: str
    name: str | None = None
    title: str = ""
    correlation: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.id, self.name) if self.name and self.name != self.id else (self.id,)


@dataclass(frozen=True)
class CorrelationRule:
    id: str
    title: str
    type: str  # one of TYPES
    rules: tuple[RuleRef, ...]  # in the listed order (temporal_ordered needs it)
    timespan: int  # seconds
    timespan_text: str  # as written ("5m")
    threshold: Threshold
    group_by: tuple[str, ...] = ()
    field: str | None = None  # value_count: the field whose distinct values are counted
    # alias -> ((referenced rule id, that rule's field), ...)
    aliases: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    generate: bool = False
    name: str | None = None
    level: str = "medium"
    status: str | None = None
    description: str = ""
    author: str = ""
    references: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()
    path: str = "<inline>"
    pack: str = "local"
    yaml: str = dataclass_field(default="", repr=False)

    def field_for(self, name: str, rule_id: str) -> str:
        """The event field holding ``name`` for matches of ``rule_id`` (an alias maps it per rule)."""
        for alias, mapping in self.aliases:
            if alias == name:
                for referenced, field_name in mapping:
                    if referenced == rule_id:
                        return field_name
        return name

    @property
    def fingerprint(self) -> str:
        """What decides the correlation's state: kept across a restart only while this is unchanged."""
        semantic = [self.type, [ref.id for ref in self.rules], self.timespan, self.threshold.op,
                    self.threshold.count, list(self.group_by), self.field,
                    [[alias, [list(pair) for pair in mapping]] for alias, mapping in self.aliases]]
        return hashlib.sha256(json.dumps(semantic).encode()).hexdigest()[:24]


def silenced_rules(correlations: Iterable[CorrelationRule]) -> frozenset[str]:
    """Ids of rules (and correlations) that should raise no alert of their own: referenced by a
    correlation with ``generate: false`` (the default), as pySigma disables their output."""
    return frozenset(ref.id for rule in correlations if not rule.generate for ref in rule.rules)


def load_correlations(sources: Sequence[Source], base_rules: Sequence[Rule], *,
                      pack: str = "local") -> tuple[list[CorrelationRule], list[RuleError]]:
    """The correlation rules in ``sources``, resolved against ``base_rules``; one ``RuleError`` per
    correlation that cannot be used (the others load).

    A source is YAML text, a file or folder (``Path``, or a one-line ``str``: a path), or a pair
    (path shown in errors, YAML text). Documents without ``correlation`` are base rules: they serve to
    resolve references (as in SigmaHQ's multi-document files) but are loaded by ``load_rules``, so a
    correlation is usable only when the rule it refers to is among ``base_rules``.
    """
    errors: list[RuleError] = []
    parsed: list[_Parsed] = []
    in_file_rules: list[SigmaRule] = []
    for path, text in _texts(sources, errors):
        _parse_text(text, path, parsed, in_file_rules, errors)
    if not parsed:
        return [], errors
    base = _BaseIndex(base_rules)
    known_ids = {str(rule.id) for rule in in_file_rules if rule.id} | {str(p.rule.id) for p in parsed if p.rule.id}
    stubs = [_stub(rule) for rule in base.referenced(_references(parsed)) if rule.id not in known_ids]
    collection = SigmaCollection(init_rules=[*in_file_rules, *stubs, *(p.rule for p in parsed)],
                                 resolve_references=False)
    ids = {id(p.rule): p.id for p in parsed}
    correlations: list[CorrelationRule] = []
    first_path: dict[str, str] = {}
    for item in parsed:
        if item.id in first_path:  # their saved windows would be confused
            errors.append(RuleError(f"another correlation rule has the id '{item.id}' ({first_path[item.id]})",
                                    path=item.path, line=item.line, rule_id=item.id))
            continue
        first_path[item.id] = item.path
        try:
            item.rule.resolve_rule_references(collection)
            item.rule.aliases.resolve_rule_references(collection)
            correlations.append(_convert(item, ids, base, pack))
        except SigmaRuleNotFoundError as exc:
            reference = _QUOTED.findall(str(exc))
            line = _line_of(item.text, reference[0], item.line) if reference else item.line
            where = f"rule '{reference[0]}'" if reference else "a rule"
            errors.append(RuleError(f"correlation '{item.rule.title}' refers to {where}, which is not defined "
                                    "(no rule has that id or name)", path=item.path, line=line, rule_id=item.id))
        except RuleError as exc:
            errors.append(exc)
    return _without_broken_inner(correlations, errors), errors


def _without_broken_inner(correlations: list[CorrelationRule], errors: list[RuleError]) -> list[CorrelationRule]:
    """Correlations of a correlation that did not load could never fire: errors too."""
    while True:
        loaded = {rule.id for rule in correlations}
        broken = [(rule, ref) for rule in correlations for ref in rule.rules
                  if ref.correlation and ref.id not in loaded]
        if not broken:
            return correlations
        for rule, ref in broken:
            errors.append(RuleError(f"correlation '{rule.title}' refers to correlation '{ref.name or ref.id}', "
                                    "which did not load", path=rule.path,
                                    line=_line_of(rule.yaml, ref.name or ref.id), rule_id=rule.id))
        dropped = {rule.id for rule, _ in broken}
        correlations = [rule for rule in correlations if rule.id not in dropped]


@dataclass
class _Parsed:
    rule: SigmaCorrelationRule
    id: str
    path: str
    text: str
    line: int | None  # where its document starts


class _BaseIndex:
    """The loaded base rules by id and by Sigma ``name`` (read from their YAML only when needed)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = rules
        self.by_id = {rule.id.lower(): rule for rule in rules}
        self._by_name: dict[str, Rule] | None = None

    @property
    def by_name(self) -> dict[str, Rule]:
        if self._by_name is None:
            self._by_name = {}
            for rule in self.rules:
                name = _name_of(rule)
                if name is not None:
                    self._by_name.setdefault(name, rule)
        return self._by_name

    def find(self, reference: str) -> Rule | None:
        return self.by_id.get(reference.lower()) or self.by_name.get(reference)

    def referenced(self, references: set[str]) -> list[Rule]:
        found = {rule.id: rule for ref in references if (rule := self.find(ref)) is not None}
        return list(found.values())


def _name_of(rule: Rule) -> str | None:
    """A base rule's Sigma ``name``: an attribute when ``Rule`` has one, else from its YAML document."""
    name = getattr(rule, "name", None)
    if isinstance(name, str):
        return name
    if not re.search(r"^name\s*:", rule.yaml, re.MULTILINE):
        return None
    try:
        documents = list(yaml.load_all(rule.yaml, Loader=_Loader))
    except yaml.YAMLError:
        return None
    mappings = [doc for doc in documents if isinstance(doc, dict) and "correlation" not in doc]
    for doc in mappings:
        same_id = str(doc.get("id", "")).lower() == rule.id.lower()
        if same_id or len(mappings) == 1 or ("id" not in doc and doc.get("title") == rule.title):
            value = doc.get("name")
            return str(value) if value is not None else None
    return None


def _stub(rule: Rule) -> SigmaRule:
    """A stand-in for a loaded base rule, only for pySigma to resolve references to it."""
    document: dict[str, Any] = {"title": rule.title, "id": rule.id, "logsource": {"product": "vigil"},
                                "detection": {"selection": {"vigil": 1}, "condition": "selection"}}
    name = _name_of(rule)
    if name is not None:
        document["name"] = name
    return SigmaRule.from_dict(document)


def _references(parsed: list[_Parsed]) -> set[str]:
    found: set[str] = set()
    for item in parsed:
        found.update(ref.reference for ref in item.rule.rules or ())
        for alias in item.rule.aliases:
            found.update(ref.reference for ref in alias.mapping)
    return found


def _texts(sources: Sequence[Source], errors: list[RuleError]) -> Iterator[tuple[str, str]]:
    for number, source in enumerate(sources, 1):
        if isinstance(source, tuple):
            yield source
        elif isinstance(source, Path) or ("\n" not in source and not source.lstrip().startswith("{")):
            yield from _files(Path(source), errors)  # one line that is no YAML mapping: a path
        else:
            yield (f"<inline {number}>" if len(sources) > 1 else "<inline>"), source


def _files(path: Path, errors: list[RuleError]) -> Iterator[tuple[str, str]]:
    if not path.exists():
        errors.append(RuleError("no such file or folder", path=str(path)))
        return
    files = sorted(p for p in path.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file()) \
        if path.is_dir() else [path]
    for file in files:
        try:
            text = file.read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            errors.append(RuleError(f"cannot read: {exc.strerror or exc}", path=str(file)))
            continue
        if "correlation" in text:  # most rule files have none: skip parsing them
            yield str(file), text


def _parse_text(text: str, path: str, parsed: list[_Parsed], in_file_rules: list[SigmaRule],
                errors: list[RuleError]) -> None:
    try:
        starts, documents = _documents(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        errors.append(RuleError(f"broken YAML: {problem}", path=path, line=mark.line + 1 if mark else None))
        return
    base_documents = [doc for doc in documents if isinstance(doc, dict) and "correlation" not in doc]
    if base_documents:
        try:
            collection = SigmaCollection.from_dicts(base_documents, collect_errors=True, resolve_references=False)
            in_file_rules.extend(rule for rule in collection.rules if isinstance(rule, SigmaRule))
        except (SigmaError, TypeError, ValueError, AttributeError, KeyError):
            pass  # broken base rules are reported by load_rules; references to them fail below
    for document, start in zip(documents, starts, strict=True):
        if not isinstance(document, dict) or "correlation" not in document:
            continue
        line = _line_of(text, "correlation:", start)
        try:
            rule = SigmaCorrelationRule.from_dict(document)
        except SigmaError as exc:
            reason = str(exc.args[0]) if exc.args else str(exc)
            quoted = _QUOTED.findall(reason)
            errors.append(RuleError(f"invalid correlation rule: {reason}", path=path,
                                    line=_line_of(text, quoted[0], start) if quoted else line))
            continue
        except (TypeError, ValueError, AttributeError, KeyError, NameError) as exc:  # shapes pySigma did not expect
            errors.append(RuleError(f"invalid correlation rule: {type(exc).__name__}: {exc}", path=path, line=line))
            continue
        rule_id = str(rule.id) if rule.id else rule.name or str(uuid.uuid5(_ID_NAMESPACE, f"{path}\0{rule.title}"))
        problem = _unsupported(rule)
        if problem is not None:
            errors.append(RuleError(problem, path=path, line=line, rule_id=rule_id))
            continue
        parsed.append(_Parsed(rule, rule_id, path, text, start))


def _documents(text: str) -> tuple[list[int], list[Any]]:
    """The YAML documents of a text, with the line each starts on (errors point into the right one)."""
    starts: list[int] = []
    documents: list[Any] = []
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            starts.append(node.start_mark.line + 1)
            documents.append(loader.construct_document(node))
    finally:
        loader.dispose()
    return starts, documents


def _unsupported(rule: SigmaCorrelationRule) -> str | None:
    kind = rule.type.name.lower() if rule.type is not None else None
    if kind not in TYPES:
        return f"correlation type '{kind}' is not supported (Vigil evaluates {', '.join(TYPES)})"
    if not isinstance(rule.condition, SigmaCorrelationCondition):
        return "boolean correlation conditions ('a and not b') are not supported: list the rules instead"
    if not rule.rules:
        return "a correlation rule needs at least one rule in 'rules'"
    if kind == "value_count" and not isinstance(rule.condition.fieldref, str):
        return "a value_count correlation needs one field name in its condition's 'field'"
    return None


def _convert(item: _Parsed, ids: dict[int, str], base: _BaseIndex, pack: str) -> CorrelationRule:
    rule = item.rule
    refs = tuple(_ref(reference.rule, item, ids, base) for reference in rule.referenced_rules)
    aliases = tuple(
        (alias.alias, tuple((_ref(ref.rule, item, ids, base).id, str(name)) for ref, name in alias.mapping.items()))
        for alias in rule.aliases)
    condition = rule.condition
    assert isinstance(condition, SigmaCorrelationCondition)  # checked by _unsupported
    kind = rule.type.name.lower()
    return CorrelationRule(
        id=item.id,
        title=rule.title or item.id,
        type=kind,
        rules=tuple(dict.fromkeys(refs)),
        timespan=rule.timespan.seconds,
        timespan_text=rule.timespan.spec,
        threshold=Threshold(condition.op.name.lower(), condition.count),
        group_by=tuple(rule.group_by or ()),
        field=condition.fieldref if kind == "value_count" and isinstance(condition.fieldref, str) else None,
        aliases=aliases,
        generate=bool(rule.generate),
        name=rule.name,
        level=rule.level.name.lower() if rule.level else "medium",
        status=rule.status.name.lower() if rule.status else None,
        description=rule.description or "",
        author=rule.author or "",
        references=tuple(rule.references or ()),
        tags=tuple(str(tag) for tag in rule.tags or ()),
        falsepositives=tuple(str(item) for item in rule.falsepositives or ()),
        path=item.path,
        pack=pack,
        yaml=item.text,
    )


def _ref(target: SigmaRule | SigmaCorrelationRule, item: _Parsed, ids: dict[int, str], base: _BaseIndex) -> RuleRef:
    if isinstance(target, SigmaCorrelationRule):
        return RuleRef(ids.get(id(target), str(target.id)), target.name, target.title, correlation=True)
    loaded = (base.by_id.get(str(target.id).lower()) if target.id else None) or \
        (base.by_name.get(target.name) if target.name else None)
    if loaded is None:
        shown = target.name or str(target.id)
        raise RuleError(f"correlation '{item.rule.title}' refers to rule '{shown}' ({target.title}), which is not "
                        "among the loaded rules (it failed to load, or its file was not loaded)",
                        path=item.path, line=_line_of(item.text, shown, item.line), rule_id=item.id)
    return RuleRef(loaded.id, _name_of(loaded) or target.name, loaded.title)


def _line_of(text: str, needle: str, start: int | None = None) -> int | None:
    """The first line at or after ``start`` holding ``needle``; else ``start``."""
    for number, line in enumerate(text.splitlines(), 1):
        if (start is None or number >= start) and needle in line:
            return number
    return start
