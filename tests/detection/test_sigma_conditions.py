"""Sigma conditions in pySigma's style: and/or/not with their precedence, parentheses, ``1 of`` /
``all of`` / ``any of`` over patterns and ``them``, filters, lists of maps, maps of several fields.

Precedence (specification, least to most binding): or, and, not, ``x of``, parentheses; ``them`` and
patterns leave out identifiers starting with ``_`` (pySigma ``ConditionSelector``).
"""

from __future__ import annotations

import random
import re
import sqlite3
import textwrap
from typing import Any

import pytest
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from tests.detection.sigma_support import hits, sigma

from vigil.detection.sigma import Engine, Rule, rule_from_yaml

# Three independent selections a, b, c; each event is named after the selections it satisfies.
ABC_SELECTIONS = """
    sel_a:
        A: 'yes'
    sel_b:
        B: 'yes'
    sel_c:
        C: 'yes'
"""
ABC_EVENTS: dict[str, dict[str, Any]] = {
    "none": {},
    "a": {"A": "yes"},
    "b": {"B": "yes"},
    "c": {"C": "yes"},
    "ab": {"A": "yes", "B": "yes"},
    "ac": {"A": "yes", "C": "yes"},
    "bc": {"B": "yes", "C": "yes"},
    "abc": {"A": "yes", "B": "yes", "C": "yes"},
}


def abc_hits(condition: str) -> set[str]:
    return hits(f"{ABC_SELECTIONS}\n    condition: {condition}", ABC_EVENTS)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("sel_a", {"a", "ab", "ac", "abc"}),
        ("sel_a and sel_b", {"ab", "abc"}),
        ("sel_a or sel_b", {"a", "b", "ab", "ac", "bc", "abc"}),
        ("not sel_a", {"none", "b", "c", "bc"}),
        # not binds tighter than and: (not a) and b
        ("not sel_a and sel_b", {"b", "bc"}),
        # and binds tighter than or: a or (b and c)
        ("sel_a or sel_b and sel_c", {"a", "ab", "ac", "bc", "abc"}),
        ("sel_a and sel_b or sel_c", {"c", "ac", "bc", "ab", "abc"}),
        ("(sel_a or sel_b) and sel_c", {"ac", "bc", "abc"}),
        ("not (sel_a or sel_b)", {"none", "c"}),
        ("not (sel_a and sel_b)", {"none", "a", "b", "c", "ac", "bc"}),
        ("not not sel_a", {"a", "ab", "ac", "abc"}),
        ("sel_a and not (sel_b or sel_c)", {"a"}),
        ("((sel_a) and ((sel_b)))", {"ab", "abc"}),
    ],
)
def test_boolean_operators_precedence_and_parentheses(condition: str, expected: set[str]) -> None:
    assert abc_hits(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("1 of sel_*", {"a", "b", "c", "ab", "ac", "bc", "abc"}),
        ("any of sel_*", {"a", "b", "c", "ab", "ac", "bc", "abc"}),
        ("all of sel_*", {"abc"}),
        ("1 of them", {"a", "b", "c", "ab", "ac", "bc", "abc"}),
        ("all of them", {"abc"}),
        ("all of sel_* and not sel_c", set()),
        ("1 of sel_* and not sel_c", {"a", "b", "ab"}),
        ("not 1 of sel_*", {"none"}),
        ("not all of sel_*", {"none", "a", "b", "c", "ab", "ac", "bc"}),
        ("sel_a and 1 of sel_b*", {"ab", "abc"}),
    ],
)
def test_quantifiers(condition: str, expected: set[str]) -> None:
    assert abc_hits(condition) == expected


def test_patterns_match_whole_names_with_star_anywhere() -> None:
    detection = """
        selection:
            Kind: 'bare'
        selection_img:
            Kind: 'img'
        proc_selection:
            Kind: 'proc'
        other:
            Kind: 'other'
        condition: 1 of selection_* or 1 of *_selection
    """
    events = {name: {"Kind": name} for name in ("bare", "img", "proc", "other")}
    # "selection_*" does not take "selection" (no underscore); "*_selection" takes "proc_selection".
    assert hits(detection, events) == {"img", "proc"}


def test_pattern_with_star_in_the_middle() -> None:
    detection = """
        sel_proc_a:
            Kind: 'a'
        sel_net_b:
            Kind: 'b'
        sel_proc_c:
            Kind: 'c'
        condition: 1 of sel_*_c or all of sel_net*
    """
    events = {name: {"Kind": name} for name in ("a", "b", "c")}
    assert hits(detection, events) == {"b", "c"}


def test_them_leaves_out_identifiers_starting_with_underscore() -> None:
    detection = """
        selection:
            A: 'yes'
        _internal:
            B: 'yes'
        condition: 1 of them
    """
    events = {"a": {"A": "yes"}, "b": {"B": "yes"}}
    assert hits(detection, events) == {"a"}


def test_all_of_them_ignores_underscore_identifiers_too() -> None:
    detection = """
        selection:
            A: 'yes'
        _never:
            B: 'impossible'
        condition: all of them
    """
    assert hits(detection, {"a": {"A": "yes"}, "none": {}}) == {"a"}


def test_selection_and_not_filter() -> None:
    detection = r"""
        selection:
            Image|endswith: '\rundll32.exe'
        filter_main_system:
            ParentImage|startswith: 'C:\Windows\System32\'
        filter_optional_empty:
            CommandLine: ''
        condition: selection and not 1 of filter_*
    """
    events = {
        "suspicious": {"Image": r"C:\Windows\System32\rundll32.exe", "ParentImage": r"C:\Users\x\evil.exe",
                       "CommandLine": "rundll32 a.dll,b"},
        "system_parent": {"Image": r"C:\Windows\System32\rundll32.exe",
                          "ParentImage": r"C:\Windows\System32\svchost.exe", "CommandLine": "rundll32 a.dll,b"},
        "empty_commandline": {"Image": r"C:\Windows\System32\rundll32.exe", "ParentImage": r"C:\x\y.exe",
                              "CommandLine": ""},
        # A filter on a field the event lacks does not hold, so "not filter" does: the event matches.
        "no_parent_field": {"Image": r"C:\Windows\System32\rundll32.exe", "CommandLine": "rundll32 a.dll,b"},
        "other_image": {"Image": r"C:\Windows\System32\cmd.exe", "ParentImage": r"C:\Users\x\evil.exe"},
    }
    assert hits(detection, events) == {"suspicious", "no_parent_field"}


def test_list_of_maps_is_an_or_of_ands() -> None:
    detection = r"""
        selection:
            - Image|endswith: '\certutil.exe'
              CommandLine|contains: 'urlcache'
            - Image|endswith: '\bitsadmin.exe'
              CommandLine|contains: '/transfer'
        condition: selection
    """
    events = {
        "certutil": {"Image": r"C:\w\certutil.exe", "CommandLine": "certutil -urlcache -f http://x a"},
        "bitsadmin": {"Image": r"C:\w\bitsadmin.exe", "CommandLine": "bitsadmin /transfer j http://x a"},
        "crossed": {"Image": r"C:\w\certutil.exe", "CommandLine": "bitsadmin /transfer j"},
        "half": {"Image": r"C:\w\certutil.exe", "CommandLine": "certutil -decode a b"},
    }
    assert hits(detection, events) == {"certutil", "bitsadmin"}


def test_map_with_several_fields_is_an_and() -> None:
    detection = """
        selection:
            EventID: 4625
            LogonType: 10
            TargetUserName: 'Administrator'
        condition: selection
    """
    events = {
        "all_three": {"EventID": 4625, "LogonType": 10, "TargetUserName": "administrator"},
        "wrong_type": {"EventID": 4625, "LogonType": 3, "TargetUserName": "administrator"},
        "missing_user": {"EventID": 4625, "LogonType": 10},
    }
    assert hits(detection, events) == {"all_three"}


def test_several_values_with_all_and_a_second_field() -> None:
    detection = r"""
        selection:
            Image|endswith: '\powershell.exe'
            CommandLine|contains|all:
                - 'Net.WebClient'
                - 'DownloadFile'
                - 'Start-Process'
        condition: selection
    """
    events = {
        "all": {"Image": r"C:\p\powershell.exe",
                "CommandLine": "(New-Object Net.WebClient).DownloadFile('u','f'); Start-Process f"},
        "two": {"Image": r"C:\p\powershell.exe", "CommandLine": "(New-Object Net.WebClient).DownloadFile('u','f')"},
        "other_image": {"Image": r"C:\p\pwsh.exe",
                        "CommandLine": "(New-Object Net.WebClient).DownloadFile('u','f'); Start-Process f"},
    }
    assert hits(detection, events) == {"all"}


def test_condition_list_is_an_or() -> None:
    detection = """
        sel_a:
            A: 'yes'
        sel_b:
            B: 'yes'
        condition:
            - sel_a
            - sel_b
    """
    assert hits(detection, {"a": {"A": "yes"}, "b": {"B": "yes"}, "none": {"C": "yes"}}) == {"a", "b"}


def test_selection_names_with_dashes_and_digits() -> None:
    detection = """
        selection-1:
            A: 'yes'
        selection-2:
            B: 'yes'
        condition: selection-1 and not selection-2
    """
    assert hits(detection, {"a": {"A": "yes"}, "ab": {"A": "yes", "B": "yes"}}) == {"a"}


def test_keywords_combined_with_a_filter() -> None:
    detection = """
        keywords:
            - 'segfault'
        filter:
            program: 'chrome'
        condition: keywords and not filter
    """
    events = {
        "kernel": {"program": "kernel", "message": "app[1]: segfault at 0 ip 0"},
        "chrome": {"program": "chrome", "message": "segfault at 0"},
        "quiet": {"program": "kernel", "message": "eth0 up"},
    }
    assert hits(detection, events) == {"kernel"}


def test_several_rules_are_told_apart() -> None:
    first = sigma("""
        selection:
            A: 'yes'
        condition: selection
    """, title="First", rule_id="11111111-1111-4111-8111-111111111111")
    second = sigma("""
        selection:
            B: 'yes'
        condition: selection
    """, title="Second", rule_id="22222222-2222-4222-8222-222222222222")
    engine = Engine([first, second])
    assert [rule.title for rule in engine.match({"A": "yes"})] == ["First"]
    assert sorted(rule.title for rule in engine.match({"A": "yes", "B": "yes"})) == ["First", "Second"]
    assert engine.match({"C": "yes"}) == []


def test_match_many_agrees_with_match() -> None:
    rule = sigma(f"{ABC_SELECTIONS}\n    condition: sel_a and not sel_c")
    engine = Engine([rule])
    events = list(ABC_EVENTS.values())
    batched = engine.match_many(events)
    assert [[r.title for r in matched] for matched in batched] == [[r.title for r in engine.match(e)] for e in events]
    assert [bool(matched) for matched in batched] == [name in {"a", "ab"} for name in ABC_EVENTS]


def test_rules_with_the_same_detection_both_match() -> None:
    detection = """
        selection:
            Image|endswith: '\\whoami.exe'
        condition: selection
    """
    first = sigma(detection, title="First", rule_id="33333333-3333-4333-8333-333333333333")
    second = sigma(detection, title="Second", rule_id="44444444-4444-4444-8444-444444444444")
    engine = Engine([first, second])
    assert sorted(rule.title for rule in engine.match({"Image": r"C:\Windows\System32\whoami.exe"})) == [
        "First", "Second"]
    assert engine.match({"Image": r"C:\Windows\System32\hostname.exe"}) == []


def test_empty_engine_and_empty_batch() -> None:
    assert Engine([]).match({"A": "yes"}) == []
    assert Engine([sigma(f"{ABC_SELECTIONS}\n    condition: sel_a")]).match_many([]) == []


def test_rules_come_back_in_the_order_given() -> None:
    keyword_rule = sigma("""
        keywords:
            - 'mimikatz'
        condition: keywords
    """, title="Keyword", rule_id="55555555-5555-4555-8555-555555555555")
    field_rule = sigma("""
        selection:
            Image|endswith: '.exe'
        condition: selection
    """, title="Field", rule_id="66666666-6666-4666-8666-666666666666")
    negated_rule = sigma("""
        selection:
            Image|contains: 'calc'
        condition: not selection
    """, title="Negated", rule_id="77777777-7777-4777-8777-777777777777")
    event = {"Image": r"C:\t\mimikatz.exe"}
    assert [r.title for r in Engine([keyword_rule, field_rule, negated_rule]).match(event)] == [
        "Keyword", "Field", "Negated"]
    assert [r.title for r in Engine([negated_rule, field_rule, keyword_rule]).match(event)] == [
        "Negated", "Field", "Keyword"]


# A rule per kind of predicate, and events that look alike (same values, other types, one field more or
# less): whatever an engine remembers between events must not change any answer.
STATEFUL_RULES = {
    "bool": "selection:\n    Flag: true",
    "number": "selection:\n    Flag: 1",
    "false": "selection:\n    Flag: false",
    "zero": "selection:\n    Flag: 0",
    "gt": "selection:\n    Flag|gt: 0",
    "null": "selection:\n    Flag: null",
    "exists": "selection:\n    Flag|exists: true",
    "text": "selection:\n    Flag: 'yes'",
    "fieldref": "selection:\n    Flag|fieldref: Other",
    "nested": "selection:\n    obj.Flag: 1",
    "keyword": "keywords:\n    - 'yes'",
    "not": "selection:\n    Flag: 'yes'\ncondition: not selection",
}
STATEFUL_EVENTS: list[dict[str, Any]] = [
    {"Flag": True}, {"Flag": 1}, {"Flag": 1.0}, {"Flag": "1"}, {"Flag": "true"}, {"Flag": False}, {"Flag": 0},
    {"Flag": None}, {}, {"Flag": "yes"}, {"Flag": "YES"}, {"Flag": ["yes"]}, {"Flag": "yes", "Other": "YES"},
    {"Flag": 1, "Other": True}, {"Flag": True, "Other": 1}, {"obj": {"Flag": 1}}, {"obj": {"Flag": True}},
    {"obj.Flag": 1}, {"Flag": "no", "x": "yes"}, {"Flag": ""},
]


def stateful_engine() -> Engine:
    rules = []
    for number, (name, detection) in enumerate(STATEFUL_RULES.items()):
        if "condition:" not in detection:
            detection += f"\ncondition: {detection.split(':')[0]}"
        rules.append(sigma(detection, title=name, rule_id=f"88888888-8888-4888-8888-{number:012d}"))
    return Engine(rules)


def test_results_do_not_depend_on_earlier_events() -> None:
    alone = [sorted(r.title for r in stateful_engine().match(event)) for event in STATEFUL_EVENTS]
    shared = stateful_engine()
    for order in (list(range(len(STATEFUL_EVENTS))), list(reversed(range(len(STATEFUL_EVENTS)))),
                  [i for i in range(len(STATEFUL_EVENTS)) for _ in range(2)]):
        for index in order:
            assert sorted(r.title for r in shared.match(STATEFUL_EVENTS[index])) == alone[index], STATEFUL_EVENTS[index]
    batched = shared.match_many(STATEFUL_EVENTS[::-1])
    assert [sorted(r.title for r in found) for found in batched] == alone[::-1]


def test_booleans_and_numbers_in_the_stateful_set() -> None:
    # What the test above compares against, checked once by hand.
    engine = stateful_engine()

    def titles(event: dict[str, Any]) -> set[str]:
        return {r.title for r in engine.match(event)}

    assert titles({"Flag": True}) == {"bool", "exists", "not"}
    assert titles({"Flag": 1}) == {"number", "gt", "exists", "not"}
    assert titles({"Flag": "yes", "Other": "YES"}) == {"text", "exists", "fieldref", "keyword"}
    assert titles({}) == {"null", "not"}
    assert titles({"Flag": False}) == {"false", "exists", "not"}
    assert titles({"Flag": 0}) == {"zero", "exists", "not"}
    assert titles({"obj": {"Flag": 1}}) == {"nested", "null", "not"}


def test_underscore_pattern_takes_underscore_identifiers() -> None:
    # pySigma: a pattern that itself starts with "_" may name the "_" identifiers "them" leaves out.
    detection = """
        selection:
            A: 'yes'
        _internal_a:
            B: 'yes'
        condition: 1 of _internal*
    """
    assert hits(detection, {"a": {"A": "yes"}, "b": {"B": "yes"}}) == {"b"}


@pytest.mark.parametrize("name", ["notepad", "order", "android", "nothing_else"])
def test_identifiers_may_start_with_an_operator_word(name: str) -> None:
    # "notepad" is one identifier, not "not epad" (pySigma 1.5.1's grammar reads the prefix as the operator).
    detection = f"""
        selection:
            A: 'yes'
        {name}:
            B: 'yes'
        condition: selection and not {name}
    """
    assert hits(detection, {"a": {"A": "yes"}, "ab": {"A": "yes", "B": "yes"}}) == {"a"}


# --- random rules against pySigma's SQLite backend -------------------------------------------------
# Rules drawn at random from the forms above (maps, lists of maps, value lists, most string modifiers,
# exists, null, fieldref, neq, and/or/not/parentheses/quantifiers), converted by pySigma's SQLite
# backend and run in SQLite on the same events: Vigil must pick the same events. The values stay where
# the two agree by design: ASCII text (SQLite's NOCASE folds ASCII only), no numbers (SQLite compares by
# column affinity), no null values (``exists`` counts a null field as present in Vigil, per the spec),
# no keywords (the backend has none).

RANDOM_FIELDS = ("a", "b", "c")
RANDOM_WORDS = ("foo", "bar", "baz", "x", "-foo", "/bar", "FOO", "Bar")


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _random_value(draw: random.Random) -> str:
    word = draw.choice([*RANDOM_WORDS, "foo bar", "ba"])
    roll = draw.random()
    if roll < 0.15:
        return word + "*"
    if roll < 0.25:
        return "*" + word
    if roll < 0.3 and len(word) > 2:
        return word[0] + "?" + word[2:]
    return word


def _random_item(draw: random.Random) -> str:
    name = draw.choice(RANDOM_FIELDS)
    other = draw.choice([field for field in RANDOM_FIELDS if field != name])
    word = _quoted(draw.choice(RANDOM_WORDS))
    pair = "".join(f"\n    - {_quoted(_random_value(draw))}" for _ in range(2))
    return draw.choice([
        f"{name}: {_quoted(_random_value(draw))}",
        f"{name}:{pair}",
        f"{name}|{draw.choice(['contains', 'startswith', 'endswith'])}: {_quoted(_random_value(draw))}",
        f"{name}|contains|all:\n    - {word}\n    - {_quoted(draw.choice(RANDOM_WORDS))}",
        f"{name}|re: {_quoted(draw.choice(['^foo', 'ba.', 'o+$', 'bar$', '^x', 'z|x']))}",
        f"{name}|re|i: {_quoted(draw.choice(['^foo', 'BA.', 'o+$']))}",
        f"{name}|windash|contains: {_quoted(draw.choice(['-foo', '/bar', ' -foo']))}",
        f"{name}|exists: {draw.choice(['true', 'false'])}",
        f"{name}: null",
        f"{name}|fieldref{draw.choice(['', '|startswith', '|endswith', '|contains'])}: {other}",
        f"{name}|contains|cased: {word}",
        f"{name}|neq: {_quoted(_random_value(draw))}",
        f"{name}|neq:{pair}",
    ])


def _random_map(draw: random.Random) -> list[str]:
    items: dict[str, str] = {}
    for _ in range(draw.randint(1, 2)):
        item = _random_item(draw)
        items.setdefault(item.split(":")[0], item)  # a YAML map has each key once
    return list(items.values())


def _random_selection(draw: random.Random) -> str:
    if draw.random() < 0.2:  # a list of maps
        blocks = []
        for _ in range(2):
            lines = "\n".join(_random_map(draw)).split("\n")
            blocks.append("\n".join(("- " if i == 0 else "  ") + line for i, line in enumerate(lines)))
        return "\n".join(blocks)
    return "\n".join(_random_map(draw))


def _random_condition(draw: random.Random, names: list[str], depth: int = 0) -> str:
    roll = draw.random()
    if depth > 2 or roll < 0.3:
        return draw.choice(names)
    if roll < 0.4:
        return draw.choice(["1 of sel_*", "all of sel_*", "1 of them", "any of filter_*", "all of them"])
    if roll < 0.55:
        return "not " + _random_condition(draw, names, depth + 1)
    joined = _random_condition(draw, names, depth + 1) + draw.choice([" and ", " or "]) + \
        _random_condition(draw, names, depth + 1)
    return f"({joined})" if draw.random() < 0.5 else joined


def _random_rule(draw: random.Random, number: int) -> str:
    names = [f"sel_{k}" for k in range(draw.randint(1, 3))] + [f"filter_{k}" for k in range(draw.randint(1, 2))]
    detection = "".join(f"    {name}:\n" + textwrap.indent(_random_selection(draw), " " * 8) + "\n" for name in names)
    return (f"title: 'random {number}'\nid: 00000000-0000-4000-8000-{number:012d}\nlogsource:\n    product: random\n"
            f"detection:\n{detection}    condition: {_random_condition(draw, names)}\n")


def _regexp(pattern: str, value: object) -> int:
    return 0 if value is None else int(re.search(pattern, str(value)) is not None)


def test_random_rules_agree_with_pysigma_sqlite_backend() -> None:
    draw = random.Random(20261128)
    events: list[dict[str, Any]] = [
        {name: draw.choice([" ", "-", ""]).join(draw.choice(RANDOM_WORDS) for _ in range(draw.randint(1, 3)))
         if draw.random() > 0.1 else "" for name in RANDOM_FIELDS if draw.random() < 0.75}
        for _ in range(60)
    ]
    database = sqlite3.connect(":memory:")
    database.create_function("regexp", 2, _regexp)
    database.execute("CREATE TABLE logs (row INTEGER PRIMARY KEY, "
                     "a COLLATE NOCASE, b COLLATE NOCASE, c COLLATE NOCASE)")
    database.executemany("INSERT INTO logs VALUES (?, ?, ?, ?)",
                         [(row, *(event.get(name) for name in RANDOM_FIELDS)) for row, event in enumerate(events)])

    rules: list[Rule] = []
    expected: list[set[int]] = []
    for number in range(200):
        text = _random_rule(draw, number)
        collection = SigmaCollection.from_yaml(text)
        queries = sqliteBackend().convert(collection)
        rules.append(rule_from_yaml(text))
        expected.append({row for query in queries
                         for (row,) in database.execute(query.replace("SELECT *", "SELECT row", 1))})

    engine = Engine(rules)
    found: list[set[int]] = [set() for _ in rules]
    position = {rule.id: index for index, rule in enumerate(rules)}
    for row, event in enumerate(events):
        for rule in engine.match(event):
            found[position[rule.id]].add(row)

    assert sum(1 for rows in expected if 0 < len(rows) < len(events)) > 100  # most rules tell events apart
    differing = [rules[index].yaml for index in range(len(rules)) if found[index] != expected[index]]
    assert differing == []
