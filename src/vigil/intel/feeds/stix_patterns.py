"""STIX 2.1 patterns: which ones are plain lists of indicators, and how to evaluate the others on one event.

``compile_pattern`` validates the text with stix2-patterns (its grammar, its hash and qualifier checks)
and returns either

- a ``SimplePattern``: comparisons with ``=`` or ``IN`` on an indexable path (``ipv4-addr:value``,
  ``domain-name:value``, ``file:hashes.'SHA-256'``, …) joined by ``OR``, without qualifiers. It is only a
  list of values, each one becomes an indicator of its own (``indicators``; the values that are not what
  their path says are in ``rejected`` with the reason);
- a ``ComplexPattern`` for everything else.

Both evaluate on one flat (or nested ECS) event with ``matches``: ``stix_fields.FIELDS`` maps each STIX object path
to the event fields that carry it (ECS, Windows/Sysmon, Zeek, Suricata names). FOLLOWEDBY and the
qualifiers WITHIN, REPEATS and START/STOP need a sequence of events: such a pattern is not ``live``
(``reason`` says why) and ``matches`` evaluates its comparisons only, FOLLOWEDBY as AND.

Comparisons are case-sensitive except on hashes and domain names, as the STIX specification says; a
property the event does not carry makes its comparison false, negated or not (except ``NOT EXISTS``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from stix2patterns.exceptions import ParseException
from stix2patterns.v20 import object_validator as validator20
from stix2patterns.v20 import pattern as pattern20
from stix2patterns.v20.grammars.STIXPatternParser import STIXPatternParser as Parser20
from stix2patterns.v21 import object_validator as validator21
from stix2patterns.v21 import pattern as pattern21
from stix2patterns.v21 import validator as qualifiers21
from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser as Parser21

from vigil.intel.feeds.stix_fields import FIELDS
from vigil.intel.indicators import IndicatorType, InvalidValue, normalise

# version → (pattern class, token names, object validator, qualifier validator; 2.0 has none)
_GRAMMARS: dict[str, tuple[Any, list[str], Any, Any]] = {
    "2.1": (pattern21.Pattern, Parser21.symbolicNames, validator21, qualifiers21.ValidationListener),
    "2.0": (pattern20.Pattern, Parser20.symbolicNames, validator20, None),
}


class PatternError(ValueError):
    """The text is not a valid STIX pattern; the message says why."""


# --- the pattern as a tree ------------------------------------------------------------------------------

Step = str | int | None  # a key, a list index, or None for [*]
Literal = str | int | float | bool | bytes | datetime


@dataclass(frozen=True)
class ObjectPath:
    object_type: str
    steps: tuple[Step, ...]

    @property
    def key(self) -> str:
        """``file:hashes.SHA256``, ``network-traffic:protocols[*]``: the spelling ``FIELDS`` is keyed by
        (hash names without '-', any index as ``[*]``)."""
        text = self.object_type + ":"
        after_hashes = False
        for position, step in enumerate(self.steps):
            if isinstance(step, str):
                name = step.upper().replace("-", "").replace("_", "") if after_hashes else step
                text += ("." if position else "") + name
                after_hashes = step == "hashes"
            else:
                text += "[*]"
        return text


@dataclass(frozen=True)
class Comparison:
    path: ObjectPath
    operator: str  # = != < > <= >= IN LIKE MATCHES ISSUBSET ISSUPERSET EXISTS
    value: Literal | tuple[Literal, ...] | None
    negated: bool = False
    regex: re.Pattern[str] | None = field(default=None, compare=False)  # LIKE and MATCHES, compiled once


@dataclass(frozen=True)
class Junction:
    operator: str  # AND | OR (between comparisons) or AND | OR | FOLLOWEDBY (between observations)
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Observation:
    expression: Comparison | Junction


@dataclass(frozen=True)
class Qualified:
    observation: Node
    qualifier: str  # "WITHIN 300 SECONDS", "REPEATS 5 TIMES", "START t'…' STOP t'…'"


Node = Comparison | Junction | Observation | Qualified


@dataclass(frozen=True)
class SimplePattern:
    text: str
    indicators: tuple[tuple[IndicatorType, str], ...]
    rejected: tuple[tuple[str, str], ...] = ()  # (value as written, why it is not an indicator)
    version: str = "2.1"

    @cached_property
    def root(self) -> Node:
        return _parse(self.text, self.version)  # only when asked: the matcher indexes the values instead

    def matches(self, event: Mapping[str, Any]) -> bool:
        try:
            return _evaluate(self.root, event)
        except Exception:
            return False


@dataclass(frozen=True)
class ComplexPattern:
    text: str
    root: Node = field(repr=False)
    live: bool = True
    reason: str = ""  # why it cannot be decided on one event, when not live
    paths: tuple[str, ...] = ()  # the object paths it compares
    unmapped: tuple[str, ...] = ()  # paths no event field carries: their comparisons are always false

    def matches(self, event: Mapping[str, Any]) -> bool:
        try:
            return _evaluate(self.root, event)
        except Exception:  # an event of unexpected shape never stops live matching
            return False


# By far the most common pattern: one '=' on an indexable path, a value without quotes or backslashes
# ("[ipv4-addr:value = '198.51.100.7']"). The grammar accepts every text this matches, so the parse by
# stix2-patterns (nine tenths of the cost) is skipped for it; any other text takes the full route.
_WS = r"[ \t\r\n]*"
_ONE_VALUE = re.compile(rf"{_WS}\[{_WS}(?P<type>[a-z0-9-]+):(?P<path>[a-z_]+(?:\.(?:[a-z_]+|'[A-Za-z0-9-]+'))*)"
                        rf"{_WS}={_WS}'(?P<value>[^'\\]*)'{_WS}\]{_WS}")
_HASH_DIGITS = {"MD5": 32, "SHA1": 40, "SHA256": 64}


def compile_pattern(text: str, *, version: str = "2.1", shortcut: bool = True) -> SimplePattern | ComplexPattern:
    """Validate ``text`` and return what it is; ``PatternError`` says why it is not a STIX pattern.

    ``shortcut=False`` parses even the one-value patterns with stix2-patterns (the result is the same)."""
    if version not in _GRAMMARS:
        raise PatternError(f"STIX version {version!r} has no pattern grammar here (2.0 or 2.1)")
    if not isinstance(text, str) or not text.strip():
        raise PatternError("the pattern is empty")
    one = _ONE_VALUE.fullmatch(text) if shortcut else None
    if one is not None:
        path = ObjectPath(one["type"], tuple(_key_text(step) for step in one["path"].split(".")))
        digits = _HASH_DIGITS.get(path.key.rpartition(".")[2]) if ":hashes." in path.key else None
        value = one["value"]
        if path.key in INDEXABLE and (digits is None or re.fullmatch(f"[0-9a-fA-F]{{{digits}}}", value)):
            return _simple(text, version, [(path.key, value)])
    root = _parse(text, version)
    values: list[tuple[str, str]] = []  # (path key, value as written)
    if _collect_simple(root, values):
        return _simple(text, version, values)
    paths = tuple(dict.fromkeys(comparison.path.key for comparison in _comparisons(root)))
    reason = _not_live_reason(root)
    return ComplexPattern(text=text, root=root, live=not reason, reason=reason, paths=paths,
                          unmapped=tuple(path for path in paths if path not in FIELDS))


def _parse(text: str, version: str) -> Node:
    """The pattern's tree, once stix2-patterns has parsed and validated it."""
    pattern_class, names, object_validator, qualifiers = _GRAMMARS[version]
    try:
        pattern = pattern_class(text)
    except ParseException as exc:
        raise PatternError(f"not a valid STIX {version} pattern: {exc}") from None
    if "hashes" in text:  # the only thing stix2-patterns' object validator checks
        problems = object_validator.verify_object(pattern.inspect())
        if problems:
            raise PatternError("; ".join(problem.removeprefix("FAIL: ") for problem in problems))
    if qualifiers is not None and any(word in text for word in ("WITHIN", "REPEATS", "START")):
        try:
            pattern.walk(qualifiers())
        except Exception as exc:  # DuplicateQualifierTypeError
            raise PatternError(str(exc)) from None
    return _Builder(names).observations(pattern.visit(_TreeOf()))


class _TreeOf:
    """``Pattern.visit`` hands its parse tree to a visitor; this one just returns it."""

    def visit(self, tree: Any) -> Any:
        return tree


class _Builder:
    """The ANTLR parse tree of stix2-patterns → the frozen tree above (dispatch on context class names,
    which are the grammar's rule labels and the same in 2.0 and 2.1)."""

    def __init__(self, token_names: list[str]) -> None:
        self.names = token_names

    def observations(self, ctx: Any) -> Node:
        kind = type(ctx).__name__
        children = list(ctx.getChildren())
        if kind == "PatternContext":
            return self.observations(children[0])
        if kind in ("ObservationExpressionsContext", "ObservationExpressionOrContext",
                    "ObservationExpressionAndContext"):
            if len(children) == 1:
                return self.observations(children[0])
            return _join(children[1].getText().upper(), self.observations(children[0]),
                         self.observations(children[2]))
        if kind == "ObservationExpressionSimpleContext":
            return Observation(self.comparisons(children[1]))
        if kind == "ObservationExpressionCompoundContext":
            return self.observations(children[1])
        # WITHIN, REPEATS, START/STOP: the observation, then the qualifier's words
        return Qualified(self.observations(children[0]), " ".join(_texts(children[1])))

    def comparisons(self, ctx: Any) -> Comparison | Junction:
        kind = type(ctx).__name__
        children = list(ctx.getChildren())
        if kind in ("ComparisonExpressionContext", "ComparisonExpressionAndContext"):
            if len(children) == 1:
                return self.comparisons(children[0])
            return _join(children[1].getText().upper(), self.comparisons(children[0]), self.comparisons(children[2]))
        if kind == "PropTestParenContext":
            return self.comparisons(children[1])
        negated = any(_is_token(child, self.names, "NOT") for child in children)
        if kind == "PropTestExistsContext":
            return Comparison(self.path(children[-1]), "EXISTS", None, negated)
        path = self.path(children[0])
        operator = children[-2].getText().upper()
        if kind == "PropTestSetContext":
            value: Literal | tuple[Literal, ...] = tuple(
                self.literal(child) for child in children[-1].getChildren() if not _is_terminal(child))
        else:
            value = self.literal(children[-1])
        regex = _regex(operator, value, folded=_folded(path.key)) if operator in ("LIKE", "MATCHES") else None
        return Comparison(path, operator, value, negated, regex)

    def path(self, ctx: Any) -> ObjectPath:
        children = list(ctx.getChildren())
        steps: list[Step] = [_key_text(children[2].getText())]
        words = [word for child in children[3:] for word in _texts(child)]
        position = 0
        while position < len(words):
            if words[position] == ".":
                steps.append(_key_text(words[position + 1]))
                position += 2
            else:  # "[", an index or "*", "]"
                index = words[position + 1]
                steps.append(None if index == "*" else int(index))
                position += 3
        return ObjectPath(children[0].getText(), tuple(steps))

    def literal(self, ctx: Any) -> Literal:
        while not _is_terminal(ctx):
            ctx = ctx.getChild(0)
        kind = self.names[ctx.symbol.type]
        text: str = ctx.getText()
        if kind == "StringLiteral":
            return _unquote(text)
        if kind in ("IntPosLiteral", "IntNegLiteral", "FloatPosLiteral", "FloatNegLiteral"):
            return int(text) if kind.startswith("Int") else float(text)
        if kind == "BoolLiteral":
            return text.lower() == "true"
        try:
            if kind == "HexLiteral":
                return bytes.fromhex(text[2:-1])
            if kind == "BinaryLiteral":
                return base64.b64decode(text[2:-1], validate=True)
        except (ValueError, binascii.Error):
            raise PatternError(f"{text} is not {kind.removesuffix('Literal').lower()}") from None
        if kind == "TimestampLiteral":
            stamp = _timestamp(text[2:-1])
            if stamp is not None:
                return stamp
        raise PatternError(f"{text} is not a {kind.removesuffix('Literal').lower()}")


def _join(operator: str, left: Node, right: Node) -> Junction:
    """One n-ary junction for a chain of the same operator (a OR b OR c), not nested pairs."""
    operands: list[Node] = []
    for side in (left, right):
        if isinstance(side, Junction) and side.operator == operator:
            operands.extend(side.operands)
        else:
            operands.append(side)
    return Junction(operator, tuple(operands))


def _is_terminal(ctx: Any) -> bool:
    return hasattr(ctx, "symbol")


def _is_token(ctx: Any, names: list[str], name: str) -> bool:
    return _is_terminal(ctx) and names[ctx.symbol.type] == name


def _texts(ctx: Any) -> list[str]:
    if _is_terminal(ctx):
        return [ctx.getText()]
    return [text for child in ctx.getChildren() for text in _texts(child)]


def _unquote(text: str) -> str:
    """A StringLiteral's value: quotes removed, ``\\'`` and ``\\\\`` (its only escapes) undone."""
    return re.sub(r"\\([\\'])", r"\1", text[1:-1])


def _key_text(text: str) -> str:
    return _unquote(text) if text.startswith("'") else text


def _timestamp(text: str) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text))  # at most microseconds
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _regex(operator: str, value: object, *, folded: bool) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise PatternError(f"{operator} needs a string")
    flags = re.IGNORECASE if folded else 0
    if operator == "LIKE":  # SQL LIKE: % any run of characters, _ one character, the whole value
        text = "".join(".*" if char == "%" else "." if char == "_" else re.escape(char) for char in value)
        return re.compile(text, flags | re.DOTALL)
    try:
        return re.compile(value, flags)
    except re.error as exc:
        raise PatternError(f"MATCHES {value!r} is not a regular expression: {exc}") from None


def _comparisons(node: Node) -> Iterable[Comparison]:
    if isinstance(node, Comparison):
        yield node
    elif isinstance(node, Junction):
        for operand in node.operands:
            yield from _comparisons(operand)
    elif isinstance(node, Observation):
        yield from _comparisons(node.expression)
    else:
        yield from _comparisons(node.observation)


def _not_live_reason(node: Node) -> str:
    if isinstance(node, Qualified):
        word = node.qualifier.split()[0]
        return f"the qualifier {word} needs a series of events; on one event only its comparisons are evaluated"
    if isinstance(node, Junction):
        if node.operator == "FOLLOWEDBY":
            return "FOLLOWEDBY needs a sequence of events; on one event both sides must match it"
        return next((reason for reason in map(_not_live_reason, node.operands) if reason), "")
    return ""


# --- simple patterns: lists of values ---------------------------------------------------------------------

# Paths whose '=' values the matcher indexes, and the indicator type of a value there (None: an address, a
# network or, since a network-traffic reference may be a domain-name object, a domain, as the value says).
INDEXABLE: dict[str, IndicatorType | None] = {
    "ipv4-addr:value": IndicatorType.IPV4, "ipv6-addr:value": IndicatorType.IPV6,
    "domain-name:value": IndicatorType.DOMAIN, "url:value": IndicatorType.URL,
    "file:hashes.MD5": IndicatorType.MD5, "file:hashes.SHA1": IndicatorType.SHA1,
    "file:hashes.SHA256": IndicatorType.SHA256, "file:name": IndicatorType.FILENAME,
    "email-addr:value": IndicatorType.EMAIL, "email-message:from_ref.value": IndicatorType.EMAIL,
    "network-traffic:dst_ref.value": None, "network-traffic:src_ref.value": None,
}


def _indicator_type(key: str, value: str) -> IndicatorType:
    kind = INDEXABLE[key]
    if kind in (IndicatorType.IPV4, IndicatorType.IPV6, None) and "/" in value:
        return IndicatorType.CIDR
    if kind is not None:
        return kind
    try:
        address = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return IndicatorType.DOMAIN
    return IndicatorType.IPV4 if address.version == 4 else IndicatorType.IPV6


def _simple(text: str, version: str, values: list[tuple[str, str]]) -> SimplePattern:
    indicators: dict[tuple[IndicatorType, str], None] = {}
    rejected: list[tuple[str, str]] = []
    for key, raw in values:
        kind = _indicator_type(key, raw)
        try:
            indicators[kind, normalise(kind, raw)] = None
        except InvalidValue as exc:
            rejected.append((raw, f"{key}: {exc}"))
    return SimplePattern(text=text, indicators=tuple(indicators), rejected=tuple(rejected), version=version)


def _collect_simple(node: Node, values: list[tuple[str, str]]) -> bool:
    if isinstance(node, Junction):
        return node.operator == "OR" and all(_collect_simple(operand, values) for operand in node.operands)
    if isinstance(node, Observation):
        return _collect_simple(node.expression, values)
    if not isinstance(node, Comparison) or node.negated or node.path.key not in INDEXABLE:
        return False  # a qualifier, NOT, or a path the matcher does not index
    if node.operator == "=" and isinstance(node.value, str):
        values.append((node.path.key, node.value))
        return True
    if node.operator == "IN" and isinstance(node.value, tuple) and all(isinstance(v, str) for v in node.value):
        values.extend((node.path.key, str(value)) for value in node.value)
        return True
    return False


# --- evaluation on one event --------------------------------------------------------------------------------

_IP_PATHS = frozenset({"ipv4-addr:value", "ipv6-addr:value", "network-traffic:src_ref.value",
                       "network-traffic:dst_ref.value"})


def _folded(key: str) -> bool:
    """Hashes and domain names compare without regard to case; everything else with it."""
    return key == "domain-name:value" or ".hashes." in key or ":hashes." in key


def _part(value: Any, how: str) -> Any:
    if not isinstance(value, str):
        return None
    if how == "basename":
        return re.split(r"[\\/]", value)[-1]
    if how == "dirname":
        head = re.split(r"[\\/](?=[^\\/]*$)", value)
        return head[0] if len(head) == 2 else None
    algorithm = how.removeprefix("hash=")  # Sysmon: "SHA1=…,MD5=…,SHA256=…,IMPHASH=…"
    for item in value.split(","):
        name, _, digest = item.partition("=")
        if name.strip().upper().replace("-", "") == algorithm:
            return digest.strip()
    return None


def _lookup(event: Mapping[str, Any], name: str) -> Any:
    if name in event:
        return event[name]
    node: Any = event
    for part in name.split("."):  # the same field in a nested (ECS) event
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _values(event: Mapping[str, Any], key: str) -> list[Any]:
    found: list[Any] = []
    for spec in FIELDS.get(key, ()):
        name, _, how = spec.partition("|")
        raw = _lookup(event, name)
        for value in raw if isinstance(raw, list | tuple) else (raw,):
            if how and value is not None:
                value = _part(value, how)
            if value is not None and not isinstance(value, Mapping):
                found.append(value)
    return found


def _evaluate(node: Node, event: Mapping[str, Any]) -> bool:
    if isinstance(node, Comparison):
        return _compare(node, event)
    if isinstance(node, Junction):
        if node.operator == "OR":
            return any(_evaluate(operand, event) for operand in node.operands)
        return all(_evaluate(operand, event) for operand in node.operands)  # AND, and FOLLOWEDBY on one event
    if isinstance(node, Observation):
        return _evaluate(node.expression, event)
    return _evaluate(node.observation, event)


def _compare(comparison: Comparison, event: Mapping[str, Any]) -> bool:
    key = comparison.path.key
    values = _values(event, key)
    if comparison.operator == "EXISTS":
        return bool(values) != comparison.negated
    if not values:
        return False
    folded, is_ip = _folded(key), key in _IP_PATHS
    return any(_test(comparison, value, folded, is_ip) for value in values) != comparison.negated


_ORDER: dict[str, Callable[[Any, Any], bool]] = {"<": operator.lt, ">": operator.gt, "<=": operator.le,
                                                 ">=": operator.ge}


def _test(comparison: Comparison, value: Any, folded: bool, is_ip: bool) -> bool:
    """One value of the event against the comparison (without its NOT)."""
    verb, constant = comparison.operator, comparison.value
    if verb in ("LIKE", "MATCHES"):
        text = _text(value)
        if text is None or comparison.regex is None:
            return False
        return (comparison.regex.fullmatch(text) if verb == "LIKE" else comparison.regex.search(text)) is not None
    if verb in ("ISSUBSET", "ISSUPERSET"):
        inner, outer = _network(_text(value)), _network(constant)
        if verb == "ISSUPERSET":
            inner, outer = outer, inner
        return inner is not None and outer is not None and inner.version == outer.version and \
            inner.subnet_of(outer)  # type: ignore[arg-type]  # same version, checked
    if verb in _ORDER:
        pair = _sides(value, constant, folded)
        return pair is not None and _ORDER[verb](*pair)
    constants = constant if verb == "IN" and isinstance(constant, tuple) else (constant,)
    return any(_equal(value, one, folded, is_ip) for one in constants) != (verb == "!=")


def _equal(value: Any, constant: Any, folded: bool, is_ip: bool) -> bool:
    if is_ip and isinstance(constant, str):  # 2001:db8::1 is 2001:0db8::0001; a network holds its addresses,
        address, network = _network(_text(value)), _network(constant)  # as the cidr indicator made of it does
        if address is not None and network is not None:
            return address == network or (address.version == network.version and
                                          address.subnet_of(network))  # type: ignore[arg-type]
    pair = _sides(value, constant, folded)
    return pair is not None and bool(pair[0] == pair[1])


def _sides(value: Any, constant: Any, folded: bool) -> tuple[Any, Any] | None:
    """The event's value and the constant as values of one type, or None when they cannot be compared."""
    if isinstance(constant, bool):
        flag = value if isinstance(value, bool) else {"true": True, "false": False}.get(str(value).lower())
        return None if flag is None else (flag, constant)
    if isinstance(value, bool):
        return None
    if isinstance(constant, int | float):
        number = _number(value)
        return None if number is None else (number, constant)
    if isinstance(constant, datetime):
        stamp = value if isinstance(value, datetime) else _timestamp(value) if isinstance(value, str) else None
        return None if stamp is None else (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC), constant)
    if isinstance(constant, bytes):
        return (value, constant) if isinstance(value, bytes) else (str(value).lower(), constant.hex())
    text = _text(value)
    if text is None:
        return None
    return (text.casefold(), str(constant).casefold()) if folded else (text, str(constant))


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    return value if isinstance(value, str) else str(value) if isinstance(value, int | float) else None


def _number(value: Any) -> float | None:
    try:
        number = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_network(value.strip("[]"), strict=False)
    except ValueError:
        return None
