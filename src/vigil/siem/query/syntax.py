"""Tokenizer, recursive-descent parser and canonical renderer of the search language.

Grammar (KQL precedence: NOT binds tighter than AND, AND tighter than OR; adjacent terms are ANDed)::

    query    := or_expr?
    or_expr  := and_expr (("OR" | "||") and_expr)*
    and_expr := unary (("AND" | "&&")? unary)*
    unary    := ("NOT" | "!" | "-") unary | "+" unary | primary
    primary  := "(" or_expr ")" | FIELD ":" value | value
    value    := "(" or_expr ")" | "[" bound "TO" bound "]" | "{" bound "TO" bound "}"
              | (">" | ">=" | "<" | "<=") WORD | PHRASE | WORD

A backslash makes the next character literal. Keywords are case-insensitive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vigil.core.errors import BadInput
from vigil.siem.query.ast import FIELD_NAME, And, Exists, MatchAll, Node, Not, Or, Range, Term, Wildcard

MAX_LENGTH = 8192
MAX_DEPTH = 40
MAX_TERMS = 500

# Characters that end a word unless escaped.
_STOP = frozenset(' \t\r\n()[]{}":')
# Characters the renderer escapes anywhere in a word, and those it escapes only as a word's first character
# (where they would read as NOT, a comparison, an operator or a colon).
_ALWAYS = frozenset('\\(){}[]"*?^~')
_FIRST = frozenset("-!+<>=&|:")
_FIRST_GLUED = frozenset("<>=&|:")  # after 'field:', a comparison or in a range, '-', '!', '+' are plain

Kind = Literal["(", ")", "[", "]", "{", "}", ":", "and", "or", "not", "plus", "cmp", "word", "phrase", "end"]


class QuerySyntaxError(BadInput):
    """The query does not parse; ``line`` and ``column`` (1-based) say where, ``expected`` says what would fit."""

    code = "query-syntax"
    title = "Query syntax error"

    def __init__(self, query: str, offset: int, expected: str) -> None:
        line = query.count("\n", 0, offset) + 1
        column = offset - (query.rfind("\n", 0, offset) + 1) + 1
        detail = f"line {line}, column {column}: {expected}"
        super().__init__(detail, errors=[{"field": "query", "message": detail, "line": str(line),
                                          "column": str(column), "offset": str(offset)}])
        self.line = line
        self.column = column
        self.expected = expected


@dataclass(frozen=True)
class Token:
    kind: Kind
    offset: int
    text: str = ""  # the literal text (escapes removed)
    pattern: str = ""  # words: wildcards kept, literal * ? \ escaped
    wild: bool = False  # words: has an unescaped * or ?
    escaped: bool = False  # words: had a backslash (so never a keyword)


def tokenize(query: str) -> list[Token]:
    if len(query) > MAX_LENGTH:
        raise QuerySyntaxError(query, MAX_LENGTH, f"the query is longer than {MAX_LENGTH} characters")
    tokens: list[Token] = []
    i, n = 0, len(query)
    in_range = False
    while i < n:
        c = query[i]
        if c in " \t\r\n":
            i += 1
            continue
        after_colon = bool(tokens) and tokens[-1].kind == ":" and tokens[-1].offset == i - 1
        # Right after 'field:' or a comparison, '-' and '!' belong to the value (x:>-1).
        glued = after_colon or (bool(tokens) and tokens[-1].kind == "cmp")
        if c in "()[]{}" or (c == ":" and not in_range):
            tokens.append(Token(c, i))  # type: ignore[arg-type]
            in_range = (c in "[{") or (in_range and c not in "]}")
            i += 1
        elif c == '"':
            start = i
            i, text = _phrase(query, i)
            tokens.append(Token("phrase", start, text))
        elif query.startswith("&&", i):
            tokens.append(Token("and", i))
            i += 2
        elif query.startswith("||", i):
            tokens.append(Token("or", i))
            i += 2
        elif c in "<>" and after_colon:
            op = c + "=" if query.startswith("=", i + 1) else c
            tokens.append(Token("cmp", i, op))
            i += len(op)
        elif c in "!-+" and not glued and not in_range and i + 1 < n and query[i + 1] not in " \t\r\n":
            tokens.append(Token("plus" if c == "+" else "not", i))
            i += 1
        elif c == "!" and not glued and not in_range:
            tokens.append(Token("not", i))
            i += 1
        else:
            # A value may hold ':' (times, IPv6, MAC addresses); only a word before its value is a field.
            colon_ok = in_range or glued
            i = _word(query, i, tokens, colon_ok)
    tokens.append(Token("end", n))
    return tokens


def _phrase(query: str, start: int) -> tuple[int, str]:
    out: list[str] = []
    i = start + 1
    while i < len(query):
        c = query[i]
        if c == "\\":
            if i + 1 >= len(query):
                raise QuerySyntaxError(query, i, "expected a character after '\\'")
            out.append(query[i + 1])
            i += 2
        elif c == '"':
            return i + 1, "".join(out)
        else:
            out.append(c)
            i += 1
    raise QuerySyntaxError(query, start, "expected a closing '\"' for this phrase")


def _word(query: str, start: int, tokens: list[Token], colon_ok: bool) -> int:
    text: list[str] = []
    pattern: list[str] = []
    wild = escaped = False
    i = start
    while i < len(query) and (query[i] not in _STOP or (colon_ok and query[i] == ":")):
        c = query[i]
        if c == "\\":
            if i + 1 >= len(query):
                raise QuerySyntaxError(query, i, "expected a character after '\\'")
            c = query[i + 1]
            text.append(c)
            pattern.append("\\" + c if c in "*?\\" else c)
            escaped = True
            i += 2
            continue
        if c in "*?":
            wild = True
        text.append(c)
        pattern.append(c)
        i += 1
    word = "".join(text)
    if not escaped and not wild and word.upper() in ("AND", "OR", "NOT"):
        tokens.append(Token(word.lower(), start))  # type: ignore[arg-type]
    else:
        tokens.append(Token("word", start, word, "".join(pattern), wild, escaped))
    return i


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.at = 0
        self.depth = 0
        self.terms = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.at]

    def fail(self, expected: str, token: Token | None = None) -> QuerySyntaxError:
        return QuerySyntaxError(self.query, (token or self.tok).offset, expected)

    def take(self) -> Token:
        token = self.tok
        self.at += 1
        return token

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"the query nests deeper than {MAX_DEPTH} levels")

    def leaf(self, node: Node) -> Node:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self.fail(f"the query has more than {MAX_TERMS} terms")
        return node

    def parse(self) -> Node:
        if self.tok.kind == "end":
            return MatchAll()
        node = self.or_expr(None)
        if self.tokens[self.at].kind != "end":
            raise self.fail(f"unexpected {self.describe_token()}; expected an operator or the end of the query")
        return node

    def describe_token(self) -> str:
        token = self.tok
        if token.kind in ("word", "phrase"):
            return f"'{token.text}'"
        if token.kind in ("and", "or", "not"):
            return token.kind.upper()
        return "end of query" if token.kind == "end" else f"'{token.text or token.kind}'"

    def or_expr(self, field: str | None) -> Node:
        items = [self.and_expr(field)]
        while self.tok.kind == "or":
            self.take()
            items.append(self.and_expr(field))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self, field: str | None) -> Node:
        items = [self.unary(field)]
        while True:
            if self.tok.kind == "and":
                self.take()
            elif self.tok.kind not in ("not", "plus", "(", "word", "phrase"):
                break
            items.append(self.unary(field))
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self, field: str | None) -> Node:
        if self.tok.kind == "not":
            self.take()
            self.nest()
            node: Node = Not(self.unary(field))
            self.depth -= 1
            return node
        if self.tok.kind == "plus":
            self.take()
            return self.unary(field)
        return self.primary(field)

    def group(self, field: str | None) -> Node:
        opening = self.take()
        self.nest()
        if self.tok.kind == ")":
            raise self.fail("expected a query inside the parentheses")
        node = self.or_expr(field)
        if self.tokens[self.at].kind != ")":
            raise self.fail(f"expected ')' to close the '(' at column {opening.offset + 1}")
        self.take()
        self.depth -= 1
        return node

    def primary(self, field: str | None) -> Node:
        token = self.tok
        if token.kind == "(":
            return self.group(field)
        if token.kind == "word" and self.tokens[self.at + 1].kind == ":":
            after = self.tokens[self.at + 2]
            if token.pattern == "*" and after.kind == "word" and after.pattern == "*":
                self.at += 3
                return self.leaf(MatchAll())
            self.take()
            self.take()
            name = token.text
            if token.wild or not FIELD_NAME.fullmatch(name):
                raise self.fail(f"'{name}' is not a valid field name", token)
            return self.fielded(name)
        if token.kind in ("word", "phrase"):
            return self.value(field)
        expected = "a search term, a phrase or '('"
        if field is not None:
            expected = f"a value for '{field}'"
        raise self.fail(f"expected {expected}, found {self.describe_token()}")

    def fielded(self, name: str) -> Node:
        token = self.tok
        if name == "_exists_":
            if token.kind != "word" or token.wild or not FIELD_NAME.fullmatch(token.text):
                raise self.fail("expected a field name after '_exists_:'")
            self.take()
            return self.leaf(Exists(token.text))
        if token.kind == "(":
            return self.group(name)
        if token.kind in ("[", "{"):
            return self.range(name)
        if token.kind == "cmp":
            self.take()
            bound = self.tok
            if bound.kind not in ("word", "phrase") or bound.offset != token.offset + len(token.text):
                raise self.fail(f"expected a value after '{name}:{token.text}'")
            self.take()
            value = bound.text
            if token.text.startswith(">"):
                return self.leaf(Range(name, value, None, token.text == ">=", False))
            return self.leaf(Range(name, None, value, False, token.text == "<="))
        if token.kind in ("word", "phrase"):
            return self.value(name)
        raise self.fail(f"expected a value after '{name}:'")

    def value(self, field: str | None) -> Node:
        token = self.take()
        if token.kind == "phrase":
            return self.leaf(Term(field, token.text))
        if token.wild:
            if token.pattern == "*":
                return self.leaf(MatchAll() if field is None else Exists(field))
            return self.leaf(Wildcard(field, token.pattern))
        return self.leaf(Term(field, token.text))

    def range(self, name: str) -> Node:
        opening = self.take()
        low = self.bound(name)
        to = self.tok
        if to.kind != "word" or to.escaped or to.text.upper() != "TO":
            raise self.fail(f"expected 'TO' in the range for '{name}'")
        self.take()
        high = self.bound(name)
        closing = self.tok
        if closing.kind not in ("]", "}"):
            raise self.fail(f"expected ']' or '}}' to close the range for '{name}'")
        self.take()
        return self.leaf(Range(name, low, high, low is not None and opening.kind == "[",
                               high is not None and closing.kind == "]"))

    def bound(self, name: str) -> str | None:
        token = self.tok
        if token.kind not in ("word", "phrase"):
            raise self.fail(f"expected a bound in the range for '{name}'")
        self.take()
        if token.kind == "word" and token.wild:
            if token.pattern == "*":
                return None
            raise self.fail("a range bound cannot hold a wildcard; write '*' alone for an open end", token)
        return token.text


def parse(query: str) -> Node:
    """Parse a query string into its tree; raises ``QuerySyntaxError`` (a ``BadInput``) naming where and why."""
    return _Parser(query).parse()


def _escape(c: str, first: bool, glued: bool) -> str:
    if c in _ALWAYS or c.isspace() or (first and c in (_FIRST_GLUED if glued else _FIRST)) or (
            c == ":" and not glued):
        return "\\" + c
    return c


def _word_text(value: str, glued: bool = True) -> str:
    """A literal value as a word (a phrase when it holds spaces or is a keyword). ``glued``: it follows
    ``field:``, a comparison or sits in a range, where ':' needs no escape (times, IPv6)."""
    if value == "" or value.upper() in ("AND", "OR", "NOT", "TO") or any(c.isspace() for c in value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "".join(_escape(c, i == 0, glued) for i, c in enumerate(value))


def _pattern_text(pattern: str, glued: bool) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append("\\" + pattern[i + 1])
            i += 2
            continue
        out.append(c if c in "*?" else _escape(c, i == 0, glued))
        i += 1
    return "".join(out)


def _prefix(field: str | None) -> str:
    return "" if field is None else field + ":"


def describe(node: Node) -> str:
    """Render a tree as its canonical query string; ``parse(describe(t)) == t`` for every parsed ``t``."""
    match node:
        case MatchAll():
            return "*"
        case Term(field, value):
            return _prefix(field) + _word_text(value, field is not None)
        case Wildcard(field, pattern):
            return _prefix(field) + _pattern_text(pattern, field is not None)
        case Exists(field):
            return f"_exists_:{field}"
        case Range(field, low, high, include_low, include_high):
            if low is not None and high is not None:
                return (f"{field}:{'[' if include_low else '{'}{_word_text(low)} TO "
                        f"{_word_text(high)}{']' if include_high else '}'}")
            if low is not None:
                return f"{field}:{'>=' if include_low else '>'}{_word_text(low)}"
            if high is not None:
                return f"{field}:{'<=' if include_high else '<'}{_word_text(high)}"
            return f"{field}:[* TO *]"
        case Not(item):
            inner = describe(item)
            return f"NOT ({inner})" if isinstance(item, And | Or) else f"NOT {inner}"
        case And(items):
            return " AND ".join(f"({describe(i)})" if isinstance(i, And | Or) else describe(i) for i in items)
        case Or(items):
            return " OR ".join(f"({describe(i)})" if isinstance(i, Or) else describe(i) for i in items)
    raise TypeError(f"not a query node: {node!r}")
