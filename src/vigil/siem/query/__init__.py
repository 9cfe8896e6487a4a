"""The search language: a Lucene/KQL subset parsed into a typed tree and compiled to parameterised SQL.

    tree = parse('user.name:adm* AND NOT source.ip:10.0.0.1')
    sql, params = compile_query(tree, store_resolver)
    describe(tree)  # the canonical query string, for saved searches and hunt records
"""

from vigil.siem.query.ast import FIELD_NAME, And, Exists, Leaf, MatchAll, Node, Not, Or, Range, Term, Wildcard
from vigil.siem.query.compiler import (
    FREE_TEXT_FIELDS,
    FieldKind,
    FieldRef,
    Resolver,
    compile_query,
    like_escape,
    like_pattern,
    parse_time,
)
from vigil.siem.query.syntax import MAX_DEPTH, MAX_LENGTH, MAX_TERMS, QuerySyntaxError, describe, parse, tokenize

__all__ = [
    "FIELD_NAME",
    "FREE_TEXT_FIELDS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_TERMS",
    "And",
    "Exists",
    "FieldKind",
    "FieldRef",
    "Leaf",
    "MatchAll",
    "Node",
    "Not",
    "Or",
    "QuerySyntaxError",
    "Range",
    "Resolver",
    "Term",
    "Wildcard",
    "compile_query",
    "describe",
    "like_escape",
    "like_pattern",
    "parse",
    "parse_time",
    "tokenize",
]
