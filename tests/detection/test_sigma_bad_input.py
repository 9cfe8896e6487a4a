"""Bad rules and bad events: a broken rule is a ``RuleError`` naming its file, line and reason (and the
rest of a folder still loads); no event, however odd, makes ``match`` raise or stall.

A runaway regular expression is run in a child process: CPython's ``re`` holds the GIL while it
backtracks, so a watchdog thread in this process could not even wake up to notice.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from vigil.detection.sigma import Engine, RuleError, load_rules, predicates, rule_from_yaml

GOOD_RULE = """\
title: Good rule {n}
id: 5a0c3f1e-7b2d-4e6f-8a9b-0c1d2e3f4a5{n}
status: test
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '\\good{n}.exe'
    condition: selection
level: high
"""

# Line 7 is indented one space less than its sibling: PyYAML reports it there.
BROKEN_YAML = """\
title: Broken rule
logsource:
    product: windows
detection:
    selection:
        Image: 'a.exe'
       CommandLine: 'b'
    condition: selection
level: high
"""


def rule_text(detection: str) -> str:
    """A rule whose ``detection:`` block starts on line 6: a one-field selection's field is on line 8 and
    the condition after it on line 9."""
    body = textwrap.indent(textwrap.dedent(detection).strip("\n"), "    ")
    return (
        "title: Bad input test\n"
        "id: 9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b\n"
        "status: test\n"
        "logsource:\n"
        "    product: vigil_unit_test\n"
        f"detection:\n{body}\n"
        "level: medium\n"
    )


def rule_error(text: str, path: str = "rules/custom/bad_rule.yml") -> RuleError:
    """The RuleError loading *text* raises, whether at parsing or when the engine compiles it."""
    with pytest.raises(RuleError) as caught:
        Engine([rule_from_yaml(text, path=path)])
    return caught.value


# --- broken rules ----------------------------------------------------------------------------------


def test_broken_yaml_names_path_and_line() -> None:
    error = rule_error(BROKEN_YAML, path="rules/custom/broken.yml")
    assert error.path == "rules/custom/broken.yml"
    assert error.line == 7
    assert str(error).startswith("rules/custom/broken.yml:7: ")
    assert error.reason


def test_tab_indentation_names_the_line() -> None:
    error = rule_error("title: x\nlogsource:\n\tproduct: windows\n", path="tab.yml")
    assert error.line == 3
    assert str(error).startswith("tab.yml:3: ")


def test_yaml_that_is_not_a_mapping_is_an_error() -> None:
    error = rule_error("- just\n- a list\n", path="list.yml")
    assert str(error).startswith("list.yml")


def test_unknown_modifier_is_named_with_its_line() -> None:
    text = rule_text("""
        selection:
            CommandLine|contians: 'mimikatz'
        condition: selection
    """)
    error = rule_error(text)
    assert "contians" in error.reason
    assert error.line == 8
    assert str(error).startswith("rules/custom/bad_rule.yml:8: ")


def test_condition_naming_a_missing_selection() -> None:
    text = rule_text("""
        selection:
            Image|endswith: '\\cmd.exe'
        condition: selection and not filter
    """)
    error = rule_error(text)
    assert "filter" in error.reason
    assert error.line == 9
    assert str(error).startswith("rules/custom/bad_rule.yml:9: ")


def test_condition_that_does_not_parse() -> None:
    text = rule_text("""
        selection:
            Image|endswith: '\\cmd.exe'
        condition: selection and or
    """)
    error = rule_error(text)
    assert str(error).startswith("rules/custom/bad_rule.yml")
    assert error.line == 9


def test_pipe_aggregation_is_an_unsupported_construct() -> None:
    text = rule_text("""
        selection:
            EventID: 4625
        condition: selection | count() by TargetUserName > 5
    """)
    error = rule_error(text)
    assert "count" in error.reason or "pipe" in error.reason.lower() or "aggregation" in error.reason.lower()
    assert error.line == 9
    assert str(error).startswith("rules/custom/bad_rule.yml:9: ")


def test_unknown_quantifier_in_condition() -> None:
    text = rule_text("""
        selection:
            EventID: 4625
        condition: 2 of selection*
    """)
    error = rule_error(text)
    assert error.line == 9


def test_empty_selection() -> None:
    text = rule_text("""
        selection: {}
        condition: selection
    """)
    error = rule_error(text)
    assert str(error).startswith("rules/custom/bad_rule.yml")
    assert "selection" in error.reason or "empty" in error.reason.lower()


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(text: str) -> None:
    error = rule_error(text, path="rules/empty.yml")
    assert error.path == "rules/empty.yml"
    assert error.reason


def test_rule_without_detection() -> None:
    text = (
        "title: No detection\nid: 1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f\n"
        "logsource:\n    product: windows\nlevel: low\n"
    )
    error = rule_error(text, path="rules/no_detection.yml")
    assert error.path == "rules/no_detection.yml"
    assert "detection" in error.reason.lower()


def test_detection_without_condition() -> None:
    text = rule_text("""
        selection:
            EventID: 4625
    """)
    error = rule_error(text)
    assert "condition" in error.reason.lower()


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("Count|gt: 'many'", "a comparison needs a number"),
        ("CommandLine|re: '(unclosed'", "an invalid regular expression"),
        ("SourceIp|cidr: '10.0.0.0/33'", "an invalid network"),
        ("SourceIp|cidr: 'not-a-network'", "an invalid network"),
        ("Field|exists: 'yes'", "exists takes a boolean"),
        ("CommandLine|base64: 'who*mi'", "base64 of a wildcard"),
        ("CommandLine|contains|re: 'a+'", "re applies to the plain value only"),
        ("Field|fieldref: 'Other*'", "a field reference has no wildcard"),
    ],
)
def test_values_pysigma_refuses_are_rule_errors(line: str, why: str) -> None:
    text = rule_text(f"""
        selection:
            {line}
        condition: selection
    """)
    error = rule_error(text)
    assert str(error).startswith("rules/custom/bad_rule.yml"), why
    assert error.reason, why


# --- load_rules: one broken file, the others load ---------------------------------------------------


def test_load_rules_folder_keeps_the_good_rules_and_names_the_broken_file(tmp_path: Path) -> None:
    (tmp_path / "good_1.yml").write_text(GOOD_RULE.format(n=1), encoding="utf-8")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "good_2.yaml").write_text(GOOD_RULE.format(n=2), encoding="utf-8")
    (tmp_path / "nested" / "broken.yml").write_text(BROKEN_YAML, encoding="utf-8")
    (tmp_path / "README.md").write_text("# not a rule\n", encoding="utf-8")

    result = load_rules([tmp_path])

    assert sorted(rule.title for rule in result.rules) == ["Good rule 1", "Good rule 2"]
    assert len(result.errors) == 1
    error = result.errors[0]
    assert Path(error.path).name == "broken.yml"
    assert "broken.yml" in str(error)
    assert error.line == 7


# Rules that parse as YAML but whose shapes pySigma's own code trips over (TypeError, ValueError).
ODD_SHAPED_RULES = {
    "condition_number": "detection:\n    selection:\n        Image: 'a.exe'\n    condition: 5\n",
    "condition_empty": "detection:\n    selection:\n        Image: 'a.exe'\n    condition:\n",
    "giant_integer_value": "detection:\n    selection:\n        Count: " + "9" * 5000 + "\n    condition: selection\n",
    "condition_matching_nothing": "detection:\n    selection:\n        Image: 'a.exe'\n    condition: 1 of nothing*\n",
}


@pytest.mark.parametrize("name", sorted(ODD_SHAPED_RULES))
def test_odd_shaped_rule_is_a_rule_error(name: str) -> None:
    text = "title: Odd\nlogsource:\n    product: windows\n" + ODD_SHAPED_RULES[name]
    error = rule_error(text, path=f"rules/{name}.yml")
    assert str(error).startswith(f"rules/{name}.yml")


@pytest.mark.parametrize("name", sorted(ODD_SHAPED_RULES))
def test_load_rules_survives_an_odd_shaped_rule(tmp_path: Path, name: str) -> None:
    (tmp_path / "good_1.yml").write_text(GOOD_RULE.format(n=1), encoding="utf-8")
    (tmp_path / "good_2.yml").write_text(GOOD_RULE.format(n=2), encoding="utf-8")
    (tmp_path / f"{name}.yml").write_text("title: Odd\nlogsource:\n    product: windows\n" + ODD_SHAPED_RULES[name],
                                          encoding="utf-8")

    result = load_rules([tmp_path])

    assert sorted(rule.title for rule in result.rules) == ["Good rule 1", "Good rule 2"]
    assert [Path(error.path).name for error in result.errors] == [f"{name}.yml"]


def test_load_rules_zip_with_a_broken_member(tmp_path: Path) -> None:
    archive = tmp_path / "rules.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("rules/good_1.yml", GOOD_RULE.format(n=1))
        zipped.writestr("rules/broken.yml", BROKEN_YAML)

    result = load_rules([archive])

    assert [rule.title for rule in result.rules] == ["Good rule 1"]
    assert len(result.errors) == 1
    assert "broken.yml" in str(result.errors[0])


def test_loaded_rules_fire(tmp_path: Path) -> None:
    (tmp_path / "good_1.yml").write_text(GOOD_RULE.format(n=1), encoding="utf-8")
    (tmp_path / "broken.yml").write_text(BROKEN_YAML, encoding="utf-8")
    engine = Engine(load_rules([tmp_path]).rules)
    sysmon = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": r"C:\x\good1.exe"}
    assert [rule.title for rule in engine.match(sysmon)] == ["Good rule 1"]
    assert engine.match({**sysmon, "Image": r"C:\x\bad.exe"}) == []


# --- odd events never make match raise ---------------------------------------------------------------

EVERY_KIND_OF_PREDICATE = """
    sel_plain:
        CommandLine: 'whoami'
    sel_contains:
        CommandLine|contains: 'mimikatz'
    sel_wild:
        Image: '*\\cmd?.exe'
    sel_re:
        CommandLine|re|i: 'invoke-[a-z]+'
    sel_cidr:
        DestinationIp|cidr: '10.0.0.0/8'
    sel_number:
        Count|gt: 5
    sel_exists:
        User|exists: true
    sel_null:
        ParentImage: null
    sel_fieldref:
        TargetUserName|fieldref: SubjectUserName
    sel_b64:
        CommandLine|wide|base64offset|contains: 'IEX'
    sel_nested:
        url.original|contains: '/admin'
    sel_int:
        EventID: 4688
    sel_bool:
        Elevated: true
    keywords:
        - 'needle'
    condition: 1 of sel_* or keywords
"""


def deeply_nested_list(depth: int) -> Any:
    """A list in a list ... around "mimikatz": valid JSON up to orjson's 1,024 levels."""
    value: Any = "mimikatz needle"
    for _ in range(depth):
        value = [value]
    return value


def deeply_nested(depth: int) -> dict[str, Any]:
    event: dict[str, Any] = {"message": "needle"}
    for _ in range(depth):
        event = {"inner": event}
    return event


ODD_VALUES: dict[str, Any] = {
    "dict": {"nested": {"deeper": "mimikatz"}},
    "list_of_dicts": [{"a": "mimikatz"}, {"b": 1}],
    "nested_lists": [[["mimikatz"]], []],
    "bytes": b"mimikatz \xff\xfe",
    "float": 1.5,
    "nan": float("nan"),
    "infinity": float("inf"),
    "none": None,
    "true": True,
    "huge_int": 10**400,
    "giant_int": 10**5000,  # str() of it raises ValueError in Python 3.11 (4300-digit limit)
    "negative_huge_int": -(10**5000),
    "empty_list": [],
    "empty_dict": {},
    "one_megabyte": "x" * 1_000_000,
    "ten_megabytes": "y" * 10_000_000,
    "nul_and_surrogate": "a\x00b\udcff",
    "tuple": ("mimikatz", 1),
    "datetime": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    "set": {"mimikatz"},
}
ODD_FIELDS = ("CommandLine", "Image", "DestinationIp", "Count", "User", "ParentImage", "TargetUserName",
              "SubjectUserName", "url", "EventID", "Elevated", "Channel")


def odd_events() -> list[dict[str, Any]]:
    # (Lists nested a thousand deep have their own test below, so that one failure does not hide another.)
    events: list[dict[str, Any]] = [{}, {"unrelated": "x"}, deeply_nested(1000)]
    for value in ODD_VALUES.values():
        events.append({field: value for field in ODD_FIELDS})
        events.extend({field: value} for field in ODD_FIELDS)
        events.append({"url": {"original": value}})
    return events


def engine_of_every_kind() -> Engine:
    return Engine([rule_from_yaml(rule_text(EVERY_KIND_OF_PREDICATE), path="every_kind.yml")])


def test_odd_values_never_make_match_raise() -> None:
    engine = engine_of_every_kind()
    for event in odd_events():
        assert isinstance(engine.match(event), list), event.keys()


def test_odd_values_never_make_match_many_raise() -> None:
    engine = engine_of_every_kind()
    events = odd_events()
    assert len(engine.match_many(events)) == len(events)


def test_odd_values_still_match_what_they_should() -> None:
    engine = engine_of_every_kind()
    assert engine.match({"CommandLine": ["x", "mimikatz"]})
    assert engine.match({"Count": 10**400})
    assert engine.match({"url": {"original": ["/", "/admin/x"]}})
    assert engine.match(deeply_nested(200))  # the keyword is found deep down
    assert engine.match({"CommandLine": deeply_nested_list(50)})  # any element, however deep
    assert not engine.match({"Count": float("nan"), "CommandLine": 1.5, "DestinationIp": b"\xff", "ParentImage": "x"})


def test_read_only_mappings_are_events_too() -> None:
    engine = engine_of_every_kind()
    event = MappingProxyType({"CommandLine": "x mimikatz", "url": MappingProxyType({"original": "/admin/"})})
    assert engine.match(event)
    assert engine.match(MappingProxyType({"deep": MappingProxyType({"message": "needle"})}))
    assert not engine.match(MappingProxyType({"CommandLine": "calc.exe", "ParentImage": "x"}))  # null: absent


def test_a_list_nested_a_thousand_deep_does_not_raise() -> None:
    engine = engine_of_every_kind()
    for event in ({"CommandLine": deeply_nested_list(1000)}, {"other": deeply_nested_list(1000)}):
        assert isinstance(engine.match(event), list)


def test_huge_integers_compare_as_numbers() -> None:
    above = rule_from_yaml(rule_text("""
        selection:
            Count|gt: 5
        condition: selection
    """))
    below = rule_from_yaml(rule_text("""
        selection:
            Count|lt: 5
        condition: selection
    """).replace("Bad input test", "Below"))
    engine = Engine([above, below])
    assert [rule.title for rule in engine.match({"Count": 10**400})] == ["Bad input test"]
    assert [rule.title for rule in engine.match({"Count": 10**5000})] == ["Bad input test"]
    assert [rule.title for rule in engine.match({"Count": -(10**5000)})] == ["Below"]


# --- a runaway regular expression does not stall ----------------------------------------------------

CATASTROPHIC = r"""
import sys
from vigil.detection.sigma import Engine, rule_from_yaml

pattern, runaway_value = sys.argv[1], sys.argv[2]
rule = rule_from_yaml(f'''
title: Catastrophic backtracking
id: 7c6b5a4f-3e2d-4c1b-9a0f-8e7d6c5b4a39
logsource:
    product: vigil_unit_test
detection:
    selection:
        Payload|re: '{pattern}'
    other:
        Other: 'x'
    condition: selection or other
level: low
''')
engine = Engine([rule])
runaway = engine.match({"Payload": runaway_value})
# The engine is still usable afterwards, and a benign value still matches the same regex.
benign = engine.match({"Payload": "aaa"})
other = engine.match({"Payload": runaway_value, "Other": "x"})
print(len(runaway), len(benign), len(other))
"""


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        # The example: 2**50 paths for a backtracking engine such as CPython's re.
        ("(a+)+$", "a" * 50 + "b"),
        # The same blow-up in a form the third-party "regex" module does not optimise away either.
        ("(a|aa)+$", "a" * 60 + "b"),
    ],
)
def test_catastrophic_regex_returns(pattern: str, value: str) -> None:
    # Without protection the child runs for days; the timeout turns that into a failure instead of a
    # hung test run (a thread could not do it: re keeps the GIL while it backtracks).
    try:
        done = subprocess.run([sys.executable, "-c", CATASTROPHIC, pattern, value], capture_output=True, text=True,
                              timeout=120, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"matching {pattern!r} against {value[:8]!r}... did not return within 120 s")
    assert done.returncode == 0, done.stderr
    runaway, benign, other = (int(n) for n in done.stdout.split())
    assert benign == 1
    assert other == 1  # the other selection still decides the rule
    assert runaway == 0  # no run of a's reaches the end of the value


def test_an_event_of_many_runaway_values_shares_one_time_budget() -> None:
    """One value gets REGEX_TIMEOUT_SECONDS; an event crafted with many such values would get that many
    times over. All of an event's expressions share REGEX_EVENT_SECONDS: past it the rest are given up
    (counted), and the next event has its own budget again."""
    rule = rule_from_yaml("""
title: Runaway keyword list
id: 2b8e3c1d-5f4a-4e6b-8c7d-9a0b1c2d3e4f
logsource:
    product: vigil_unit_test
detection:
    selection:
        Payload|re: '(a|aa)+$'
    condition: selection
level: low
""")
    engine = Engine([rule])
    crafted = {"Payload": ["a" * 60 + "b"] * 40}  # 40 values, each a runaway
    spent_before = predicates.REGEX_BUDGET_SPENT[0]
    assert engine.match(crafted) == []
    given_up = predicates.REGEX_BUDGET_SPENT[0] - spent_before
    # 40 x 50 ms would be 2 s: the 250 ms budget runs out after about 5 values, the rest are given up.
    assert 30 <= given_up <= 38
    assert [r.title for r in engine.match({"Payload": "aaa"})] == ["Runaway keyword list"]  # a fresh budget
