"""Hunts in the event store (``store_hunt``, ``sigma_sql``): the SQL finds exactly the (rule, event) pairs the
Sigma engine finds on the same stored events read back.

- every kind of predicate on hand-made events that probe the edges (lists, null against missing, a
  top-level key holding a dot against a nested path, numbers, booleans, floats, cased values, wildcards,
  regular expressions RE2 cannot run, IPv4 and IPv6 networks, keywords, field references, comparisons);
- the starter pack and a sample of SigmaHQ ``rules/windows`` (skipped where ``../shared`` is absent) over
  the demo day and the EVTX attack samples, ingested through the SIEM's own pipeline;
- scoping: units, the window and an extra search filter narrow what a hunt reads.

No difference is known: ``docs/detection.md`` ("Hunting over stored events") lists where SQL alone could
differ from Python and how each case is handed to the engine instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.detection.conftest import WINDOWS_RULES_DIR, absent_reason

import vigil
from vigil.core.config import Settings
from vigil.core.db import Database
from vigil.detection.sigma import Engine, Rule, load_rules, rule_from_yaml
from vigil.detection.sigma_sql import glob_like, json_escaped, re2_literal
from vigil.detection.store_hunt import Window, build_query, hunt_store, plan
from vigil.siem import demo
from vigil.siem.search import compile_text
from vigil.siem.store.duckdb import DuckDBEventStore

STARTER = Path(vigil.__file__).resolve().parent / "detection" / "rules" / "starter"
EVTX_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "evtx"
EVER = Window(datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
WINDOWS_SAMPLE_EVERY = 3  # one SigmaHQ Windows rule in three (the whole set: see the docs' figures)

Pair = tuple[str, int]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBEventStore]:
    events = DuckDBEventStore(tmp_path / "events.duckdb")
    yield events
    events.close()


def every_event(store: DuckDBEventStore) -> Iterator[tuple[int, dict[str, Any]]]:
    offset = 0
    while page := store.search(limit=5_000, offset=offset, order="asc"):
        offset += len(page)
        yield from ((event.id, event.doc) for event in page)


def engine_pairs(store: DuckDBEventStore, rules: Sequence[Rule]) -> set[Pair]:
    engine = Engine(rules)
    return {(rule.id, event_id) for event_id, doc in every_event(store) for rule in engine.match(doc)}


def sql_pairs(store: DuckDBEventStore, rules: Sequence[Rule], window: Window = EVER) -> set[Pair]:
    found = hunt_store(store, rules, window)
    return {(rule_id, event_id) for rule_id, ids in found.hits.items() for event_id in ids}


def rule(detection: str, *, logsource: str = "product: test", name: str = "r") -> Rule:
    return rule_from_yaml(f"title: '{name}'\nid: {uuid.uuid5(uuid.NAMESPACE_URL, name)}\n"
                          f"logsource:\n  {logsource}\ndetection:\n{detection}")


def ids_of(store: DuckDBEventStore, pairs: set[Pair], rule_id: str) -> list[str]:
    """The ``n`` field of the events a rule matched, for readable assertions."""
    docs = dict(every_event(store))
    return sorted(str(docs[event_id].get("n")) for rid, event_id in pairs if rid == rule_id)


# --- hand-made events: every predicate kind --------------------------------------------------------------

EDGE_EVENTS: list[dict[str, Any]] = [
    {"n": 1, "Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "cmd /c whoami", "User": "CORP\\Alice",
     "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Port": "3389", "Count": 12},
    {"n": 2, "Image": "C:\\Tools\\CMD.EXE", "CommandLine": "CMD /C WHOAMI /ALL", "User": None, "EventID": "1",
     "Channel": "microsoft-windows-sysmon/operational", "Count": 12.0, "Flag": True},
    {"n": 3, "Image": ["a.exe", "C:\\x\\cmd.exe"], "tags": ["one", "two"], "Count": "7", "Flag": "true",
     "dotted.key": "top", "dotted": {"key": "nested"}},
    {"n": 4, "dotted": {"key": "nested"}, "CommandLine": "line one\nline two\n", "Count": "nan",
     "source": {"ip": "10.1.2.3"}, "IpAddress": "::1"},
    {"n": 5, "source": {"ip": " 192.168.0.7 "}, "IpAddress": "010.1.2.3", "Parent": "cmd.exe",
     "Image": "c:\\windows\\cmd.exe", "message": 'he said "mimikatz" \\ sekurlsa::logonpasswords'},
    {"n": 6, "source": {"ip": "fe80::1"}, "IpAddress": "fe80::abcd", "Image": "Ünïcödé.exe",
     "CommandLine": "café ١٢٣", "Parent": "CMD.EXE", "Empty": [], "Obj": {"a": 1}},
    {"n": 7, "Image": None, "CommandLine": "", "Count": -3, "Big": 18446744073709551616, "Float": 1.5,
     "nested": {"list": [{"deep": "x"}]}, "Channel": "Security", "EventID": 4688},
]

EDGE_RULES = [
    ("exact", "  sel:\n    Image: 'C:\\Windows\\System32\\cmd.exe'\n  condition: sel"),
    ("suffix-list", "  sel:\n    Image|endswith: '\\cmd.exe'\n  condition: sel"),
    ("contains-many", "  sel:\n    CommandLine|contains:\n      - whoami\n      - 'line t'\n      - café\n"
                      "  condition: sel"),
    ("contains-all", "  sel:\n    CommandLine|contains|all:\n      - cmd\n      - /all\n  condition: sel"),
    ("cased", "  sel:\n    CommandLine|cased: 'cmd /c whoami'\n  condition: sel"),
    ("glob", "  sel:\n    Image: 'C:\\*\\cm?.exe'\n  condition: sel"),
    ("null", "  sel:\n    User: null\n  condition: sel"),
    ("not-null", "  sel:\n    Image: null\n  condition: not sel"),
    ("exists", "  sel:\n    User|exists: true\n  condition: sel"),
    ("not-exists", "  sel:\n    User|exists: false\n  condition: sel"),
    ("number", "  sel:\n    EventID: 1\n  condition: sel"),
    ("number-text", "  sel:\n    Port: 3389\n  condition: sel"),
    ("float-whole", "  sel:\n    Count: 12\n  condition: sel"),
    ("bool", "  sel:\n    Flag: true\n  condition: sel"),
    ("compare", "  sel:\n    Count|gte: 7\n  condition: sel"),
    ("compare-lt", "  sel:\n    Count|lt: 0\n  condition: sel"),
    ("dotted-top", "  sel:\n    dotted.key: top\n  condition: sel"),
    ("dotted-nested", "  sel:\n    dotted.key: nested\n  condition: sel"),
    ("list-any", "  sel:\n    tags: two\n  condition: sel"),
    ("empty-list-null", "  sel:\n    Empty: null\n  condition: sel"),
    ("object", "  sel:\n    Obj|contains: a\n  condition: sel"),
    ("regex", "  sel:\n    CommandLine|re: '^cmd /c \\w+$'\n  condition: sel"),
    ("regex-i", "  sel:\n    CommandLine|re|i: 'WHOAMI'\n  condition: sel"),
    ("regex-dollar", "  sel:\n    CommandLine|re: 'two$'\n  condition: sel"),
    ("regex-unicode-digits", "  sel:\n    CommandLine|re: '\\d{3}'\n  condition: sel"),
    ("regex-lookbehind", "  sel:\n    CommandLine|re: '(?<=cmd )/c'\n  condition: sel"),
    ("regex-not", "  sel:\n    CommandLine|re: 'who(?!ami /all)'\n  condition: sel and not sel2\n"
                  "  sel2:\n    User: null"),
    ("cidr4", "  sel:\n    source.ip|cidr: 192.168.0.0/16\n  condition: sel"),
    ("cidr4-strict", "  sel:\n    IpAddress|cidr: 10.0.0.0/8\n  condition: sel"),
    ("cidr6", "  sel:\n    IpAddress|cidr:\n      - '::1/128'\n      - 'fe80::/10'\n  condition: sel"),
    ("not-cidr6", "  sel:\n    IpAddress|cidr: 'fe80::/10'\n  f:\n    IpAddress|exists: true\n"
                  "  condition: f and not sel"),
    ("keyword", "  keywords:\n    - 'sekurlsa::logonpasswords'\n    - '\"mimikatz\" \\'\n  condition: keywords"),
    ("keyword-not", "  keywords:\n    - whoami\n  sel:\n    Count|exists: true\n  condition: sel and not keywords"),
    ("fieldref", "  sel:\n    Image|fieldref|endswith: Parent\n  condition: sel"),
    ("gate-and-rest", "  sel:\n    Channel: Security\n    EventID: 4688\n  condition: sel"),
    ("gate-only-sysmon", "  sel:\n    Channel: Microsoft-Windows-Sysmon/Operational\n    EventID: 1\n"
                         "  filter:\n    CommandLine|contains: '/all'\n  condition: sel and not filter"),
    ("big-number", "  sel:\n    Big|gt: 1000\n  condition: sel"),
    ("float-text", "  sel:\n    Float: 1.5\n  condition: sel"),
    ("nested-list-path", "  sel:\n    nested.list.deep: x\n  condition: sel"),
    ("one-of", "  a:\n    Image|contains: tools\n  b:\n    Count: -3\n  condition: 1 of them"),
]


@pytest.fixture
def edge_store(store: DuckDBEventStore) -> DuckDBEventStore:
    store.append(EDGE_EVENTS, unit_id=1, source="edges")
    return store


@pytest.fixture(scope="module")
def edge_rules() -> list[Rule]:
    return [rule(detection, name=name) for name, detection in EDGE_RULES]


def test_every_predicate_kind_finds_what_the_engine_finds(edge_store: DuckDBEventStore,
                                                          edge_rules: list[Rule]) -> None:
    expected = engine_pairs(edge_store, edge_rules)
    assert sql_pairs(edge_store, edge_rules) == expected
    by_name = {r.title: r.id for r in edge_rules}
    # What the engine (and so the hunt) says on the edges, for a reader to check against the Sigma spec.
    assert ids_of(edge_store, expected, by_name["suffix-list"]) == ["1", "2", "3", "5"]
    assert ids_of(edge_store, expected, by_name["null"]) == ["2", "3", "4", "5", "6", "7"]
    assert ids_of(edge_store, expected, by_name["exists"]) == ["1", "2"]
    assert ids_of(edge_store, expected, by_name["dotted-top"]) == ["3"]
    assert ids_of(edge_store, expected, by_name["dotted-nested"]) == ["4"]
    assert ids_of(edge_store, expected, by_name["float-whole"]) == ["1", "2"]
    assert ids_of(edge_store, expected, by_name["cidr4"]) == ["5"]
    assert ids_of(edge_store, expected, by_name["cidr4-strict"]) == []  # 010.1.2.3 is no address
    assert ids_of(edge_store, expected, by_name["cidr6"]) == ["4", "6"]
    assert ids_of(edge_store, expected, by_name["keyword"]) == ["5"]
    assert ids_of(edge_store, expected, by_name["regex-dollar"]) == ["4"]  # before the final newline
    assert ids_of(edge_store, expected, by_name["regex-unicode-digits"]) == ["6"]
    assert ids_of(edge_store, expected, by_name["fieldref"]) == ["5"]
    assert ids_of(edge_store, expected, by_name["gate-only-sysmon"]) == ["1"]


def test_what_sql_cannot_decide_goes_to_the_engine_and_only_that(edge_store: DuckDBEventStore,
                                                                  edge_rules: list[Rule]) -> None:
    found = hunt_store(edge_store, edge_rules, EVER)
    by_id = {r.id: r.title for r in edge_rules}
    in_python = {by_id[rule_id] for rule_id in found.rules_checked_in_python}
    assert {"regex-lookbehind", "cidr6", "keyword", "regex-i", "regex-dollar"} <= in_python
    assert not {"exact", "suffix-list", "contains-many", "glob", "cidr4", "number", "fieldref"} & in_python
    assert found.events_scanned == len(EDGE_EVENTS)
    assert 0 < found.verified < len(EDGE_EVENTS) * len(in_python)


def test_a_column_gate_keeps_every_row_the_engine_could_match(store: DuckDBEventStore) -> None:
    """Rules without a Windows gate are narrowed on a typed column (event.module here): events where that
    column cannot tell (a top-level key with a dot, a list) still reach the condition."""
    gated = rule("  sel:\n    event.module: system\n    message|contains: sudo\n  condition: sel", name="gated")
    store.append([{"n": 1, "event": {"module": "System"}, "message": "sudo x"},
                  {"n": 2, "event.module": "system", "message": "sudo y"},
                  {"n": 3, "event": {"module": ["auth", "system"]}, "message": "sudo z"},
                  {"n": 4, "event": {"module": "nginx"}, "message": "sudo w"}], unit_id=1, source="s")
    [(gate, column)] = plan([gated]).keys()
    assert gate == (None, None) and column == ("event.module", "system")
    expected = engine_pairs(store, [gated])
    assert ids_of(store, expected, gated.id) == ["1", "2", "3"]
    assert sql_pairs(store, [gated]) == expected


def test_rule_text_never_becomes_sql(store: DuckDBEventStore) -> None:
    hostile = "x'); DROP TABLE events; --"
    rules = [rule(f"  sel:\n    CommandLine|contains: \"{hostile}\"\n  condition: sel", name="hostile"),
             rule("  sel:\n    \"we'ird\\\"field\": 1\n  condition: sel", name="field")]
    store.append([{"CommandLine": f"a {hostile} b", "we'ird\"field": 1}], unit_id=1, source="s")
    for (gate, column), variants in plan(rules).items():
        assert hostile not in build_query(variants, gate, EVER, column).sql
    assert sql_pairs(store, rules) == engine_pairs(store, rules) != set()
    assert store.count() == 1


def test_helpers_translate_exactly() -> None:
    assert glob_like("C:\\\\.*\\\\cm.\\.exe") == "C:\\\\%\\\\cm_.exe"
    assert glob_like("100%.*a_b") == "100\\%%a\\_b"
    assert glob_like("a|b") is None
    assert json_escaped('a"b\\c\nd\x01') == 'a\\"b\\\\c\\nd\\u0001'
    assert re2_literal("a.b c") == "a\\x2eb\\x20c"


# --- scoping ---------------------------------------------------------------------------------------------


def test_units_window_and_extra_query_narrow_the_hunt(store: DuckDBEventStore) -> None:
    whoami = rule("  sel:\n    CommandLine|contains: whoami\n  condition: sel", name="whoami")
    base = {"CommandLine": "whoami", "host": {"name": "a"}}
    store.append([{**base, "@timestamp": "2026-11-20T10:00:00Z"}], unit_id=1, source="hq")
    store.append([{**base, "@timestamp": "2026-11-20T10:00:00Z", "host": {"name": "b"}}], unit_id=2, source="br")
    store.append([{**base, "@timestamp": "2026-11-21T10:00:00Z"}], unit_id=1, source="hq")
    day = Window(datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
    assert len(sql_pairs(store, [whoami])) == 3
    assert len(sql_pairs(store, [whoami], day)) == 2
    only_hq = Window(day.start, day.end, units=[1])
    found = hunt_store(store, [whoami], only_hq)
    assert found.events_scanned == 1 and len(found.hits[whoami.id]) == 1
    assert sql_pairs(store, [whoami], Window(day.start, day.end, units=[])) == set()
    compiled = compile_text("host.name:b")
    narrowed = Window(day.start, day.end, None, compiled.sql, compiled.params)
    assert [store.search("id = ?", [event_id])[0].unit_id for _, event_id in sql_pairs(store, [whoami], narrowed)] \
        == [2]


# --- real rules over real events -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[DuckDBEventStore]:
    """The demo day and (when the shared set is there) the EVTX attack samples, through the SIEM's pipeline."""
    import shutil

    from vigil.accounts.bootstrap import migrate  # noqa: F401 - the template is migrated already
    from vigil.core.config import load_settings

    root = tmp_path_factory.mktemp("hunt-demo")
    shutil.copyfile(sqlite_template, root / "vigil.db")
    url = f"sqlite:///{root / 'vigil.db'}"
    settings: Settings = load_settings(data_dir=root / "var", database_url=url)
    database = Database(url)
    demo.load(settings, database, evtx_dir=EVTX_DIR)
    database.dispose()
    events = DuckDBEventStore(settings.events_path)
    yield events
    events.close()


@pytest.fixture(scope="module")
def starter_rules() -> list[Rule]:
    loaded = load_rules([STARTER], pack="starter")
    assert loaded.errors == []
    return loaded.rules


def test_starter_pack_over_the_demo_day_equals_the_engine(demo_store: DuckDBEventStore,
                                                          starter_rules: list[Rule]) -> None:
    expected = engine_pairs(demo_store, starter_rules)
    assert len({rule_id for rule_id, _ in expected}) >= 10  # the demo day trips many rules: a real comparison
    assert sql_pairs(demo_store, starter_rules) == expected


@pytest.mark.skipif(absent_reason(WINDOWS_RULES_DIR, "the SigmaHQ Windows rules") is not None
                    or absent_reason(EVTX_DIR, "the EVTX sample set") is not None,
                    reason=str(absent_reason(WINDOWS_RULES_DIR, "the SigmaHQ Windows rules")
                               or absent_reason(EVTX_DIR, "the EVTX sample set")))
def test_sigmahq_windows_rules_over_the_evtx_samples_equal_the_engine(demo_store: DuckDBEventStore) -> None:
    files = sorted(WINDOWS_RULES_DIR.rglob("*.yml"))[::WINDOWS_SAMPLE_EVERY]
    rules = load_rules(files).rules
    assert len(rules) > 700
    expected = engine_pairs(demo_store, rules)
    assert len(expected) > 300
    assert sql_pairs(demo_store, rules) == expected
