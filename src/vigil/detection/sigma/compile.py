"""pySigma's rule model to the engine's predicates: one condition tree per log-source variant.

pySigma parses the YAML, applies the modifiers (contains, base64offset, windash, cidr, ...) and the
log-source pipelines (``logsources.py``); its post-processed condition tree has one leaf per field and
value. Each leaf becomes a ``Predicate``; and/or/not stay as they are.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from typing import Any

import regex
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import ValueListPlaceholderTransformation
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
)

from vigil.detection.sigma import compat
from vigil.detection.sigma.logsources import variant_pipelines
from vigil.detection.sigma.placeholders import Placeholders, for_text, missing_message
from vigil.detection.sigma.predicates import And, Condition, Not, Or, Predicate, as_text
from vigil.detection.sigma.regex_needles import regex_needle
from vigil.detection.sigma.rules import Rule, RuleError

_REGEX_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: regex.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: regex.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: regex.DOTALL,
}
_COMPARE = {CompareOperators.LT: "lt", CompareOperators.LTE: "lte", CompareOperators.GT: "gt",
            CompareOperators.GTE: "gte", CompareOperators.NEQ: "neq"}
_ID_NAMESPACE = uuid.UUID("6f9d8a4e-2b7c-4f1e-9a3d-5c8b7e6f4a21")
compat.apply()  # pySigma 1.5.1 corrected to the specification (compat.py)


class Unsupported(Exception):
    """A construct the engine cannot evaluate (the rule is refused with this reason)."""


def string_predicate(field: str | None, value: SigmaString) -> Predicate:
    """A Sigma string (wildcards already placed by the modifiers) as the cheapest predicate that means it."""
    cased = isinstance(value, SigmaCasedString)
    parts = list(value.s)
    if any(not isinstance(part, str | SpecialChars) for part in parts):
        raise Unsupported(missing_message([part.name for part in parts if isinstance(part, Placeholder)]))
    lead = bool(parts) and parts[0] is SpecialChars.WILDCARD_MULTI
    trail = len(parts) > int(lead) and parts[-1] is SpecialChars.WILDCARD_MULTI
    middle = parts[int(lead): len(parts) - int(trail)]
    if all(isinstance(part, str) for part in middle):
        text = "".join(str(part) for part in middle)
        kind = {(False, False): "exact", (False, True): "prefix", (True, False): "suffix",
                (True, True): "contains"}[(lead, trail)]
        if text or kind == "exact":
            return Predicate(field, kind, text if cased else text.casefold(), cased=cased, needle=text.casefold())
    pattern = "".join(regex.escape(part) if isinstance(part, str)
                      else ".*" if part is SpecialChars.WILDCARD_MULTI else "." for part in parts)
    literals = [part for part in parts if isinstance(part, str)]
    needle = max(literals, key=len).casefold() if literals else ""
    flags = regex.DOTALL | (0 if cased else regex.IGNORECASE | regex.FULLCASE)
    return Predicate(field, "glob", pattern, cased=cased, flags=flags, needle=needle)


def value_predicate(field: str | None, value: SigmaType) -> Condition:
    if isinstance(value, SigmaString):
        if field is None:  # a keyword is searched for inside the values (full-text), as Chainsaw and Hayabusa do
            value = _anywhere(value)
        return string_predicate(field, value)
    if isinstance(value, SigmaExpansion):
        return _either([value_predicate(field, item) for item in value.values])
    if isinstance(value, SigmaTimestampPart):
        if field is None:
            raise Unsupported("a timestamp part needs a field")
        return Predicate(field, "timepart", int(value.number), op=value.timestamp_part.name.lower())
    if isinstance(value, SigmaBool | SigmaNumber):
        text = ("true" if value.boolean else "false") if isinstance(value, SigmaBool) \
            else as_text(value.number) or str(value.number)
        # A keyword is searched for inside the values; a field's value must be this one.
        return Predicate(field, "contains" if field is None else "exact", text, needle=text)
    if isinstance(value, SigmaRegularExpression):
        if value.regexp.contains_placeholder():  # one without values (those with values are expanded)
            names = [part.name for part in value.regexp.s if isinstance(part, Placeholder)]
            raise Unsupported(f"in the regular expression {str(value.regexp)!r}: {missing_message(names)}")
        flags = 0
        for flag in value.flags:
            flags |= _REGEX_FLAGS[flag]
        pattern = str(value.regexp)
        return Predicate(field, "regex", pattern, flags=flags, needle=regex_needle(pattern, flags))
    if field is None:
        raise Unsupported(f"{type(value).__name__} needs a field")
    if isinstance(value, SigmaNull):
        return Predicate(field, "null", None)
    if isinstance(value, SigmaExists):
        return Predicate(field, "exists", bool(value.exists))
    if isinstance(value, SigmaCIDRExpression):
        return Predicate(field, "cidr", str(value.network))
    if isinstance(value, SigmaCompareExpression):
        return Predicate(field, "compare", value.number.number, op=_COMPARE[value.op])  # an int stays exact
    if isinstance(value, SigmaFieldReference):
        op = {(True, True): "contains", (True, False): "startswith", (False, True): "endswith",
              (False, False): ""}[(value.starts_with, value.ends_with)]
        return Predicate(field, "fieldref", value.field, op=op)
    raise Unsupported(f"value type {type(value).__name__} is not supported")


def _anywhere(value: SigmaString) -> SigmaString:
    """``value`` with a ``*`` at each end (where it has none)."""
    parts = list(value.s)
    if not parts or parts[0] is not SpecialChars.WILDCARD_MULTI:
        parts.insert(0, SpecialChars.WILDCARD_MULTI)
    if parts[-1] is not SpecialChars.WILDCARD_MULTI or len(parts) == 1:
        parts.append(SpecialChars.WILDCARD_MULTI)
    widened = copy.copy(value)
    widened.s = parts
    return widened


def _either(items: Sequence[Condition]) -> Condition:
    return items[0] if len(items) == 1 else Or(tuple(items))


def condition_tree(node: Any) -> Condition:
    """pySigma's post-processed condition tree as the engine's (nested and/or of one kind flattened)."""
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return value_predicate(node.field, node.value)
    if isinstance(node, ConditionValueExpression):
        return value_predicate(None, node.value)
    if isinstance(node, ConditionNOT):
        return Not(condition_tree(node.args[0]))
    if isinstance(node, ConditionAND | ConditionOR):
        kind = And if isinstance(node, ConditionAND) else Or
        items: list[Condition] = []
        for arg in node.args:
            item = condition_tree(arg)
            items.extend(item.items if isinstance(item, kind) else [item])
        if not items:
            raise Unsupported("a condition with nothing to match")
        return items[0] if len(items) == 1 else kind(tuple(items))
    if isinstance(node, ConditionItem):
        raise Unsupported(f"condition element {type(node).__name__} is not supported")
    raise Unsupported(f"unexpected condition element {node!r}")


def variants(rule: SigmaRule, placeholders: Placeholders | None = None) -> tuple[Condition, ...]:
    """The rule's condition under each log-source pipeline that applies to it; ``placeholders``: values
    for the rule's ``%name%`` placeholders (each becomes the OR of its values; one not given refuses it)."""
    if placeholders:
        rule = _expanded(rule, placeholders)
    found: list[Condition] = []
    for pipeline in variant_pipelines(rule.logsource.product, rule.logsource.category, rule.logsource.service):
        mapped = _processed(rule, pipeline)
        if mapped is None:
            continue
        trees = [condition_tree(condition.parsed) for condition in mapped.detection.parsed_condition]
        found.append(_either(trees))
    if not found:
        raise Unsupported("no log-source variant of this rule can be evaluated")
    return tuple(dict.fromkeys(found))


def _expanded(rule: SigmaRule, placeholders: Placeholders) -> SigmaRule:
    """The rule with the placeholders given replaced by their values (pySigma's
    ValueListPlaceholderTransformation reading the pipeline's ``vars``); the others are left for
    ``string_predicate`` to refuse."""
    pipeline = ProcessingPipeline(
        name="Vigil placeholders", vars={name: list(values) for name, values in placeholders.items()},
        items=[ProcessingItem(ValueListPlaceholderTransformation(include=list(placeholders)),
                              identifier="vigil_placeholders")])
    copied = copy.deepcopy(rule)
    pipeline.apply(copied)
    return copied


def _processed(rule: SigmaRule, pipeline: ProcessingPipeline) -> SigmaRule | None:
    """The rule after the pipeline; None when the pipeline refuses it (e.g. a field 4688 lacks)."""
    copied = copy.deepcopy(rule)
    try:
        pipeline.apply(copied)
    except SigmaError:
        return None
    return copied


def to_rule(rule: SigmaRule, *, path: str, pack: str, yaml_text: str,
            placeholders: Placeholders | None = None) -> Rule:
    """The engine's rule: metadata and compiled variants; ``RuleError`` when it cannot be evaluated.
    ``placeholders``: values for placeholders (only those the rule's YAML names are used)."""
    rule_id = str(rule.id) if rule.id else str(uuid.uuid5(_ID_NAMESPACE, f"{path}\0{rule.title}"))
    try:
        compiled = variants(rule, for_text(placeholders, yaml_text))
    except (Unsupported, SigmaError) as exc:
        raise RuleError(str(exc), path=path, rule_id=rule_id) from None
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:  # pySigma on odd shapes
        raise RuleError(f"invalid rule: {type(exc).__name__}: {exc}", path=path, rule_id=rule_id) from None
    logsource = rule.logsource
    return Rule(
        id=rule_id,
        title=rule.title or rule_id,
        level=rule.level.name.lower() if rule.level else "medium",
        status=rule.status.name.lower() if rule.status else None,
        description=rule.description or "",
        author=rule.author or "",
        references=tuple(rule.references or ()),
        tags=tuple(str(tag) for tag in rule.tags or ()),
        product=logsource.product,
        category=logsource.category,
        service=logsource.service,
        falsepositives=tuple(str(item) for item in rule.falsepositives or ()),
        date=rule.date.isoformat() if rule.date else None,
        modified=rule.modified.isoformat() if rule.modified else None,
        path=path,
        pack=pack,
        yaml=yaml_text,
        variants=compiled,
    )
