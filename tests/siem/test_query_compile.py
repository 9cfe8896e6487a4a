"""Queries run against a small table of sshd, nginx and Windows events: which rows come back."""

from __future__ import annotations

from typing import Any

import pytest

from vigil.core.errors import BadInput
from vigil.siem.query import And, Term, compile_query, parse

from .test_query_events import ALL_IDS, TableResolver, ids, make_table


@pytest.fixture(scope="module")
def table() -> Any:
    return make_table()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # field:value is case-insensitive whole-value equality
        ("user.name:root", {2}),
        ("user.name:ADMINISTRATOR", {3, 7}),
        ("host.name:dc01", {7, 8}),
        # wildcards
        ("user.name:adm*", {1, 3, 7}),
        ("user.name:admin?strator", {3, 7}),
        ("source.ip:203.0.113.*", {1, 2, 3}),
        ("url.path:/wp-*.php", {4}),
        # message is full text: words and phrases are contained, case-insensitively
        ('message:"failed password"', {1, 2}),
        ("message:accepted", {3}),
        ("message:FAIL*", {1, 2, 7}),
        # bare words and phrases search message and the original record
        ("sshd", {1}),
        ('"logged on"', {8}),
        ("password 203.0.113.7", {1, 2, 3}),
        # boolean operators, any case, symbols, implicit AND, precedence NOT > AND > OR
        ("event.outcome:failure and host.name:web01", {1, 2, 4, 6}),
        ("user.name:root OR user.name:admin", {1, 2}),
        ("user.name:root || user.name:admin", {1, 2}),
        ("event.outcome:failure && source.ip:192.0.2.10", {6}),
        ("event.outcome:failure source.ip:192.0.2.10", {6}),
        ("user.name:root OR user.name:admin AND event.outcome:success", {2}),
        ("(user.name:root OR user.name:admin) AND event.outcome:failure", {1, 2}),
        ("host.name:web01 AND NOT event.outcome:failure", {3, 5}),
        ("host.name:web01 -event.outcome:failure", {3, 5}),
        ("host.name:web01 !event.outcome:failure", {3, 5}),
        ("host.name:web01 not event.outcome:failure", {3, 5}),
        # field groups
        ("user.name:(root OR admin)", {1, 2}),
        ("event.code:(4624 4625)", set()),
        ("event.code:(4624 OR 4625)", {7, 8}),
        # numbers compare numerically
        ("http.response.status_code:404", {4}),
        ("http.response.status_code:>=400", {4, 6}),
        ("http.response.status_code:>404", {6}),
        ("http.response.status_code:<404", {5}),
        ("http.response.status_code:<=404", {4, 5}),
        ("http.response.status_code:[200 TO 404]", {4, 5}),
        ("http.response.status_code:{200 TO 404}", set()),
        ("http.response.status_code:{200 TO 500]", {4, 6}),
        ("http.response.status_code:[400 TO *]", {4, 6}),
        ("http.response.bytes:>1000", {5}),
        ("http.response.bytes:>1e3", {5}),
        ("http.response.status_code:5*", {6}),
        ("http.response.status_code:99999999999999999999999999999999999999999", set()),
        ("http.response.bytes:>-99999999999999999999999999999999999999999", {4, 5, 6}),
        ("http.response.bytes:<1e308", {4, 5, 6}),
        # timestamps: ISO 8601, a bare day, relative to now (12:00 UTC on 2026-11-28)
        ("@timestamp:[2026-11-28T01:00:00Z TO 2026-11-28T01:00:05Z]", {1, 2}),
        ("@timestamp:{2026-11-28T01:00:00Z TO 2026-11-28T01:00:05Z]", {2}),
        ("@timestamp:>=2026-11-28T16:00:00+08:00", {7, 8}),
        ("@timestamp:2026-11-27", {9}),
        ("@timestamp:>now-5h", {7, 8}),
        ("@timestamp:[now-3d TO now-1d]", {10}),
        ("@timestamp:<now-12h", {9, 10}),
        ("@timestamp:2026-11-28T01:00:05Z", {2}),
        # lists match when any element does
        ("event.category:session", {3}),
        ("event.category:auth*", {1, 2, 3, 7, 8}),
        ("NOT event.category:authentication", {4, 5, 6, 9, 10}),
        # existence
        ("_exists_:user.name", ALL_IDS - {4, 5, 6, 10}),
        ("user.name:*", ALL_IDS - {4, 5, 6, 10}),
        ("_exists_:event.category", ALL_IDS - {10}),
        ("_exists_:http.response.status_code", {4, 5, 6}),
        ("NOT _exists_:user.name", {4, 5, 6, 10}),
        # NOT of a missing field matches events without the field (as Kibana does)
        ("NOT user.name:root", ALL_IDS - {2}),
        ("NOT http.response.status_code:404", ALL_IDS - {4}),
        ("NOT (user.name:root AND http.response.status_code:404)", ALL_IDS),
        ("NOT (user.name:root OR http.response.status_code:404)", ALL_IDS - {2, 4}),
        ("NOT NOT user.name:root", {2}),
        ("user.name:root OR NOT _exists_:user.name", {2, 4, 5, 6, 10}),
        # fields the store keeps outside typed columns
        ("winlog.event_data.LogonType:10", {7}),
        ("Channel:security", {7, 8}),
        # a document field compares numerically when the bounds are numbers ("10" sorts before "5" as text)
        ("winlog.event_data.LogonType:>=5", {7}),
        ("winlog.event_data.LogonType:[3 TO 9]", {8}),
        ("Channel:[R TO T]", {7, 8}),
        # escapes: a backslash makes the next character literal
        (r"user.name:o\'brien\%\_x", {9}),
        (r"user.name:o'brien%_x", {9}),
        (r"user.name:o'brien\*", set()),
        ("user.name:o'brien*", {9}),
        (r"message:C\:\\Windows\\System32*", {9}),
        (r'"C:\\Windows"', {9}),
        ("message:100%", {9}),
        # % and _ are literal in values, not LIKE wildcards
        ("user.name:_dmin", set()),
        ("user.name:%", set()),
    ],
)
def test_query_returns_the_expected_events(table: Any, query: str, expected: set[int]) -> None:
    assert ids(table, query) == expected


def test_values_are_parameters_and_never_part_of_the_sql() -> None:
    sql, params = compile_query(parse("user.name:\"x' OR 1=1 --\" AND message:evil*"), TableResolver())
    assert "OR 1=1" not in sql
    assert "evil" not in sql
    assert "x' OR 1=1 --" in params
    assert "%evil%%" in params


@pytest.mark.parametrize(
    "query",
    [
        "user.name:\"x' OR 1=1 --\"",
        "user.name:x'\\ OR\\ 1=1\\ --",
        "\"x'); DROP TABLE events; --\"",
        "message:\"'; DELETE FROM events; --\"",
        "user.name:\u2019\u02bc OR \u201c1\u201d=\u201c1\u201d",
        "message:\\\\'\\\\\" OR TRUE",
        "user.name:[\"zz' OR '1'='1\" TO *]",
        "http.response.status_code:[\"1) OR (1=1\" TO *]",
    ],
)
def test_injection_in_values_matches_only_literally(table: Any, query: str) -> None:
    try:
        found = ids(table, query)
    except BadInput:
        found = set()  # a number field refuses a non-number: nothing ran
    assert found <= {10}
    assert table.execute("SELECT count(*) FROM events").fetchone() == (len(ALL_IDS),)


def test_injection_in_a_value_matches_the_event_that_literally_holds_it(table: Any) -> None:
    assert ids(table, "\"x' OR 1=1 --\"") == {10}
    assert ids(table, "user.name:\"x' OR 1=1 --\"") == set()


@pytest.mark.parametrize(
    "field", ["a;DROP TABLE events", "user.name'--", 'x")--', "name\u2019", "a b", "", "1=1 OR x", "a\\b"]
)
def test_a_hostile_field_name_is_refused_before_it_reaches_sql(table: Any, field: str) -> None:
    with pytest.raises(BadInput, match="field name"):
        compile_query(And((Term(field, "x"), Term("user.name", "root"))), TableResolver())
    assert table.execute("SELECT count(*) FROM events").fetchone() == (len(ALL_IDS),)


def test_a_hostile_field_name_in_a_query_string_is_a_syntax_error(table: Any) -> None:
    with pytest.raises(BadInput, match="not a valid field name"):
        parse(r"a;DROP\ TABLE\ events:x")
    # Unescaped, the words are separate terms and the last one is an ordinary (unknown) field.
    assert ids(table, "a;DROP TABLE events:x") == set()
    assert table.execute("SELECT count(*) FROM events").fetchone() == (len(ALL_IDS),)


def test_a_word_against_a_number_field_is_a_clear_error() -> None:
    with pytest.raises(BadInput, match=r"'abc' is not a number, and 'http\.response\.status_code' holds numbers"):
        compile_query(parse("http.response.status_code:abc"), TableResolver())
    with pytest.raises(BadInput, match="not a number"):
        compile_query(parse("http.response.bytes:[1 TO lots]"), TableResolver())


def test_a_bad_time_is_a_clear_error() -> None:
    with pytest.raises(BadInput, match="'yesterday' is not a time"):
        compile_query(parse("@timestamp:>yesterday"), TableResolver())
    with pytest.raises(BadInput, match="outside the range of times"):
        compile_query(parse("@timestamp:<now-999999w"), TableResolver())
    with pytest.raises(BadInput, match="not a wildcard"):
        compile_query(parse("@timestamp:2026*"), TableResolver())


def test_free_text_fields_are_configurable(table: Any) -> None:
    sql, params = compile_query(parse("sshd"), TableResolver(), free_text=("message",))
    assert table.execute(f"SELECT id FROM events WHERE {sql}", params).fetchall() == []
    sql, params = compile_query(parse("sshd"), TableResolver(), free_text=())
    assert sql == "FALSE"


def test_the_clause_works_as_an_aggregate_filter(table: Any) -> None:
    sql, params = compile_query(parse("event.outcome:failure AND NOT user.name:root"), TableResolver())
    rows = table.execute(
        f"SELECT host_name, count(*) FILTER (WHERE {sql}) FROM events GROUP BY host_name ORDER BY host_name", params
    ).fetchall()
    assert rows == [("DC01", 1), ("WS7", 0), ("web01", 3)]


def test_an_escape_clause_only_when_the_pattern_escapes_something(table: Any) -> None:
    plain, _ = compile_query(parse("user.name:root"), TableResolver())
    escaped, params = compile_query(parse("user.name:o'brien%_x"), TableResolver())
    assert "ESCAPE" not in plain
    assert "ESCAPE" in escaped
    assert params == ["o'brien\\%\\_x"]
    assert ids(table, "user.name:o'brien%_x") == {9}
