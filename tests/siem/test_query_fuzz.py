"""Property tests: queries built from the grammar parse, compile, run and round-trip through ``describe``; junk
raises only ``QuerySyntaxError`` (and, when it parses, compiles to SQL that runs or is refused as ``BadInput``)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.core.errors import BadInput
from vigil.siem.query import QuerySyntaxError, compile_query, describe, parse

from .test_query_events import NOW, TableResolver, make_table

TABLE = make_table()
TEXT_FIELDS = ["user.name", "host.name", "message", "event.category", "source.ip", "event.original", "Channel",
               "winlog.event_data.LogonType"]
NUMBER_FIELDS = ["http.response.status_code", "http.response.bytes"]
SPECIAL = set('\\+-&|!(){}[]^"~*?:/<>= \t\r\n')

characters = st.characters(blacklist_categories=("Cs", "Cc"))


def escape_word(text: str) -> str:
    escaped = "".join("\\" + c if c in SPECIAL or c.isspace() else c for c in text)
    return "\\" + escaped if text.upper() in ("AND", "OR", "NOT", "TO") else escaped


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


words = st.text(characters, min_size=1, max_size=12).map(escape_word)
phrases = st.text(characters, max_size=16).map(quote)
values = words | phrases
wildcards = st.lists(st.text(characters, max_size=5).map(escape_word), min_size=2, max_size=4).flatmap(
    lambda parts: st.lists(st.sampled_from("*?"), min_size=len(parts) - 1, max_size=len(parts) - 1).map(
        lambda wild: "".join(p + w for p, w in zip(parts, [*wild, ""], strict=True))))
numbers = (st.integers(-10**6, 10**6).map(str) | st.integers().map(str)
           | st.floats(allow_nan=False, allow_infinity=False).map(repr))
times = st.sampled_from(["now", "now-15m", "now-1h", "now+2d", "now-1w", "2026-11-28T01:00:00Z",
                         "2026-11-28", "\"2026-11-28 09:00:00+08:00\""]) | st.builds(
    "now{}{}{}".format, st.sampled_from("+-"), st.integers(0, 10**4), st.sampled_from("smhdw"))
text_field = st.sampled_from(TEXT_FIELDS)
number_field = st.sampled_from(NUMBER_FIELDS)
any_field = st.sampled_from([*TEXT_FIELDS, *NUMBER_FIELDS, "@timestamp"])


def bound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return inner | st.just("*")


leaves = st.one_of(
    values,
    wildcards.filter(lambda w: w.strip("*?") != ""),
    st.builds("{}:{}".format, text_field, values),
    st.builds("{}:{}".format, text_field, wildcards),
    st.builds("{}:({} OR {})".format, text_field, values, values),
    st.builds("_exists_:{}".format, any_field),
    st.builds("{}:*".format, any_field),
    st.builds("{}:{}{}".format, number_field, st.sampled_from([">", ">=", "<", "<="]), numbers),
    st.builds("{}:{}".format, number_field, numbers),
    st.builds("{}:{}{} TO {}{}".format, number_field, st.sampled_from("[{"), bound(numbers), bound(numbers),
              st.sampled_from("]}")),
    st.builds("{}:{}{} TO {}{}".format, text_field, st.sampled_from("[{"), bound(values), bound(values),
              st.sampled_from("]}")),
    st.builds("@timestamp:{}{}".format, st.sampled_from([">", ">=", "<", "<="]), times),
    st.builds("@timestamp:[{} TO {}]".format, bound(times), bound(times)),
)


def combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds("{} {} {}".format, children, st.sampled_from(["AND", "and", "&&", "OR", "or", "||"]), children),
        st.builds("{} {}".format, children, children),
        st.builds("{}{}".format, st.sampled_from(["NOT ", "not ", "!", "-"]), children.map("({})".format)),
        st.builds("NOT {}".format, children),
        children.map("({})".format),
    )


queries = st.recursive(leaves, combine, max_leaves=12)


def run(sql: str, params: list[object]) -> list[Any]:
    return TABLE.execute(f"SELECT id FROM events WHERE {sql}", params).fetchall()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries)
def test_grammar_queries_parse_compile_run_and_round_trip(query: str) -> None:
    tree = parse(query)
    canonical = describe(tree)
    assert parse(canonical) == tree
    assert describe(parse(canonical)) == canonical
    sql, params = compile_query(tree, TableResolver(), now=NOW)
    run(sql, params)


junk = st.text(max_size=60) | st.text(alphabet=st.sampled_from(list('ab: *?"\\()[]{}-!&|<>=TOAND OR NOT x.y_')),
                                       max_size=40)


@settings(max_examples=600, deadline=None)
@given(junk)
def test_junk_raises_only_syntax_errors(text: str) -> None:
    try:
        tree = parse(text)
    except QuerySyntaxError as error:
        assert error.line >= 1
        assert error.column >= 1
        return
    assert parse(describe(tree)) == tree
    try:
        sql, params = compile_query(tree, TableResolver(), now=NOW)
    except BadInput:
        return
    run(sql, params)
