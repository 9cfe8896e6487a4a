"""Parsing the search language into its tree, the errors a user sees, the abuse limits, and the canonical form."""

from __future__ import annotations

import pytest

from vigil.core.errors import BadInput
from vigil.siem.query import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_TERMS,
    And,
    Exists,
    MatchAll,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Range,
    Term,
    Wildcard,
    describe,
    parse,
)


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("", MatchAll()),
        ("   ", MatchAll()),
        ("*", MatchAll()),
        ("user.name:root", Term("user.name", "root")),
        ('message:"failed password"', Term("message", "failed password")),
        ("user.name:adm*", Wildcard("user.name", "adm*")),
        ("user.name:adm?n", Wildcard("user.name", "adm?n")),
        (r"user.name:adm\*", Term("user.name", "adm*")),
        (r"user.name:a\*b*", Wildcard("user.name", r"a\*b*")),
        ('"adm*"', Term(None, "adm*")),
        ("sshd", Term(None, "sshd")),
        ("x:[1 TO 5]", Range("x", "1", "5", True, True)),
        ("x:{1 TO 5}", Range("x", "1", "5", False, False)),
        ("x:[1 to 5}", Range("x", "1", "5", True, False)),
        ("x:[* TO 5]", Range("x", None, "5", False, True)),
        ("x:[1 TO *]", Range("x", "1", None, True, False)),
        ("x:>10", Range("x", "10", None, False, False)),
        ("x:>=10", Range("x", "10", None, True, False)),
        ("x:<10", Range("x", None, "10", False, False)),
        ("x:<=10", Range("x", None, "10", False, True)),
        ("x:[-5 TO -1]", Range("x", "-5", "-1", True, True)),
        ("x:-5", Term("x", "-5")),
        ("_exists_:user.name", Exists("user.name")),
        ("user.name:*", Exists("user.name")),
        ("@timestamp:2026-11-28T01:00:00Z", Term("@timestamp", "2026-11-28T01:00:00Z")),
        ("source.ip:fe80::1", Term("source.ip", "fe80::1")),
        ("a b", And((Term(None, "a"), Term(None, "b")))),
        ("a and b", And((Term(None, "a"), Term(None, "b")))),
        ("a && b", And((Term(None, "a"), Term(None, "b")))),
        ("a Or b", Or((Term(None, "a"), Term(None, "b")))),
        ("a || b", Or((Term(None, "a"), Term(None, "b")))),
        ("NOT a", Not(Term(None, "a"))),
        ("!a", Not(Term(None, "a"))),
        ("-a", Not(Term(None, "a"))),
        ("+a", Term(None, "a")),
        ("a OR b c", Or((Term(None, "a"), And((Term(None, "b"), Term(None, "c")))))),
        ("(a OR b) c", And((Or((Term(None, "a"), Term(None, "b"))), Term(None, "c")))),
        ("NOT a AND b", And((Not(Term(None, "a")), Term(None, "b")))),
        ("f:(a OR b*)", Or((Term("f", "a"), Wildcard("f", "b*")))),
        ('f:(a "b c" -d)', And((Term("f", "a"), Term("f", "b c"), Not(Term("f", "d"))))),
        (r"a\ b\:c\(d\)", Term(None, "a b:c(d)")),
        (r'"say \"hi\" \\ there"', Term(None, 'say "hi" \\ there')),
        (r"\AND", Term(None, "AND")),
        ('"AND"', Term(None, "AND")),
        ("a - b", And((Term(None, "a"), Term(None, "-"), Term(None, "b")))),
        ("user.name:\n  root", Term("user.name", "root")),
    ],
)
def test_parse_builds_the_tree(query: str, tree: Node) -> None:
    assert parse(query) == tree
    assert parse(describe(tree)) == tree


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("user.name:adm* and not  source.ip:10.0.0.1", "user.name:adm* AND NOT source.ip:10.0.0.1"),
        ('message:"failed password"', 'message:"failed password"'),
        ("x:[1 TO *]", "x:>=1"),
        ("x:{* TO 5]", "x:<=5"),
        ("f:(a OR b)", "f:a OR f:b"),
        ("(a b) c", "(a AND b) AND c"),
        ("a (b OR c)", "a AND (b OR c)"),
        ("-(a OR b)", "NOT (a OR b)"),
        (r"path:C\:\\Windows\\*", r"path:C:\\Windows\\*"),
        ("", "*"),
        ("user.name:*", "_exists_:user.name"),
        ("@timestamp:>=2026-11-28T01:00:00Z", "@timestamp:>=2026-11-28T01:00:00Z"),
        ("@timestamp:[now-1h TO now]", "@timestamp:[now-1h TO now]"),
        ("source.ip:fe80::1", "source.ip:fe80::1"),
        ("url.path:/wp-login.php", "url.path:/wp-login.php"),
        ("x:[-5 TO -1]", "x:[-5 TO -1]"),
        ("x:>-5", "x:>-5"),
        ('x:">5"', r"x:\>5"),
        ('x:>"=5"', r"x:>\=5"),
        ('"-a"', r"\-a"),
        ('"a:b"', r"a\:b"),
        ('f:":b"', r"f:\:b"),
    ],
)
def test_describe_renders_the_canonical_query(query: str, canonical: str) -> None:
    assert describe(parse(query)) == canonical
    assert parse(canonical) == parse(query)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("user.name:", "line 1, column 11: expected a value after 'user.name:'"),
        ("event.outcome:failure AND user.name:", "line 1, column 37: expected a value after 'user.name:'"),
        ("a AND\nuser.name:", "line 2, column 11: expected a value after 'user.name:'"),
        ("(a OR b", "line 1, column 8: expected ')' to close the '(' at column 1"),
        ("a OR b)", "line 1, column 7: unexpected ')'; expected an operator or the end of the query"),
        ('message:"failed', "line 1, column 9: expected a closing '\"' for this phrase"),
        ("a AND", "line 1, column 6: expected a search term, a phrase or '(', found end of query"),
        ("OR a", "line 1, column 1: expected a search term, a phrase or '(', found OR"),
        ("x:[1 5]", "line 1, column 6: expected 'TO' in the range for 'x'"),
        ("x:[1 TO 5", "line 1, column 10: expected ']' or '}' to close the range for 'x'"),
        ("x:[1* TO 5]", "line 1, column 4: a range bound cannot hold a wildcard"),
        ("x:>", "line 1, column 4: expected a value after 'x:>'"),
        ("()", "line 1, column 2: expected a query inside the parentheses"),
        ("a\\", "line 1, column 2: expected a character after '\\'"),
        ("us*r:x", "line 1, column 1: 'us*r' is not a valid field name"),
        ("1=1;x:y", "line 1, column 1: '1=1;x' is not a valid field name"),
        ("_exists_:", "line 1, column 10: expected a field name after '_exists_:'"),
        ("f:(a OR)", "line 1, column 8: expected a value for 'f', found ')'"),
    ],
)
def test_syntax_errors_name_the_place_and_what_was_expected(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query)
    assert caught.value.detail.startswith(message)
    assert isinstance(caught.value, BadInput)
    assert caught.value.status == 422
    error = caught.value
    assert error.extra["errors"] == [{"field": "query", "message": error.detail, "line": str(error.line),
                                      "column": str(error.column), "offset": error.extra["errors"][0]["offset"]}]
    lines = query.split("\n")
    offset = int(error.extra["errors"][0]["offset"])
    assert offset == sum(len(line) + 1 for line in lines[: error.line - 1]) + error.column - 1


def test_limits_against_abuse_are_clear_errors() -> None:
    with pytest.raises(QuerySyntaxError, match=f"longer than {MAX_LENGTH} characters"):
        parse("a" * (MAX_LENGTH + 1))
    parse("a" * MAX_LENGTH)
    with pytest.raises(QuerySyntaxError, match=f"nests deeper than {MAX_DEPTH} levels"):
        parse("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    parse("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH)
    with pytest.raises(QuerySyntaxError, match=f"nests deeper than {MAX_DEPTH} levels"):
        parse("NOT " * (MAX_DEPTH + 1) + "a")
    with pytest.raises(QuerySyntaxError, match=f"more than {MAX_TERMS} terms"):
        parse(" ".join(["a"] * (MAX_TERMS + 1)))
    parse(" ".join(["a"] * MAX_TERMS))
