"""Sigma placeholders (``expand``) with values, in pySigma's style: an inline rule, the values, which events
match; a placeholder without values refuses the rule saying how to give it some; compiled caches never give
back rules compiled with other values; `vigil hunt --placeholder/--placeholders`; and SigmaHQ's rules that
use ``|expand`` load and fire once their placeholder has values."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.detection.conftest import SIGMA_DIR
from typer.testing import CliRunner, Result

from vigil.cli.main import app
from vigil.detection.hunt import RuleSource
from vigil.detection.sigma import Engine, RuleError, load_cached, load_rules, rule_from_yaml
from vigil.detection.sigma.placeholders import (
    PlaceholderError,
    check_name,
    check_values,
    digest,
    frozen,
    parse_assignment,
    read_file,
    used_in,
)

CERTIGHOST = SIGMA_DIR / "rules-emerging-threats" / "2026" / "Exploits" / "CVE-2026-54121"


def rule_text(detection: str, *, rule_id: str = "6f1f2a52-0c55-4f1e-9d7e-2b1d7b0c9a02") -> str:
    body = textwrap.indent(textwrap.dedent(detection).strip("\n"), "    ")
    return (f"title: Placeholder rule\nid: {rule_id}\nstatus: test\nlogsource:\n    product: vigil_unit_test\n"
            f"detection:\n{body}\nlevel: medium\n")


def hits(detection: str, placeholders: Mapping[str, Sequence[str]],
         events: Mapping[str, Mapping[str, Any]]) -> set[str]:
    engine = Engine([rule_from_yaml(rule_text(detection), placeholders=placeholders)])
    return {name for name, event in events.items() if engine.match(event)}


ADMINS = """
    selection:
        SubjectUserName|expand: '%Administrators%'
    condition: selection
"""


# --- values given: the OR of the values ------------------------------------------------------------


def test_a_placeholder_matches_any_of_its_values_ignoring_case() -> None:
    events = {"first": {"SubjectUserName": "Administrator"}, "second": {"SubjectUserName": "DOMAINADMIN"},
              "other": {"SubjectUserName": "bob"}, "longer": {"SubjectUserName": "Administrator2"}}
    assert hits(ADMINS, {"Administrators": ["administrator", "domainadmin"]}, events) == {"first", "second"}


def test_values_are_sigma_strings_with_wildcards() -> None:
    events = {"prefix": {"SubjectUserName": "adm_alice"}, "exact": {"SubjectUserName": "root"},
              "other": {"SubjectUserName": "xadm_alice"}}
    assert hits(ADMINS, {"Administrators": ["adm_*", "root"]}, events) == {"prefix", "exact"}


def test_expand_with_contains_finds_any_value_inside() -> None:
    detection = """
        selection:
            Attributes|contains: 'cdc:'
        filter_known:
            Attributes|contains|expand: '%known_cdcs%'
        condition: selection and not filter_known
    """
    events = {"rogue": {"Attributes": "cdc:10.6.6.6\nrmd:dc01.corp.local"},
              "known_name": {"Attributes": "cdc:DC02.corp.local"},
              "known_ip": {"Attributes": "cdc:10.0.0.1"},
              "no_cdc": {"Attributes": "rmd:dc01.corp.local"}}
    assert hits(detection, {"known_cdcs": ["dc02.corp.local", "10.0.0.1"]}, events) == {"rogue"}


def test_a_placeholder_inside_a_longer_value() -> None:
    detection = """
        selection:
            TargetUserName|expand: 'svc_%site%_backup$'
        condition: selection
    """
    events = {"beijing": {"TargetUserName": "svc_beijing_backup$"}, "shanghai": {"TargetUserName": "SVC_SH_BACKUP$"},
              "other": {"TargetUserName": "svc_xian_backup$"}, "bare": {"TargetUserName": "beijing"}}
    assert hits(detection, {"site": ["beijing", "sh"]}, events) == {"beijing", "shanghai"}


def test_a_placeholder_in_a_regular_expression_is_expanded_as_regex_text() -> None:
    detection = """
        selection:
            SubjectUserName|re|expand: '^%Administrators%$'
        condition: selection
    """
    events = {"adm1": {"SubjectUserName": "adm1"}, "admin": {"SubjectUserName": "admin"},
              "adm1x": {"SubjectUserName": "adm1x"}, "ADMIN": {"SubjectUserName": "ADMIN"}}
    # As pySigma's ValueListPlaceholderTransformation: the value is regular-expression text; `re` is cased.
    assert hits(detection, {"Administrators": ["adm[0-9]", "admin"]}, events) == {"adm1", "admin"}


def test_values_for_other_placeholders_change_nothing() -> None:
    events = {"admin": {"SubjectUserName": "admin"}}
    assert hits(ADMINS, {"Administrators": ["admin"], "unrelated": ["x"]}, events) == {"admin"}


def test_percent_signs_without_expand_stay_literal_even_with_values() -> None:
    detection = """
        selection:
            SubjectUserName: '%Administrators%'
        condition: selection
    """
    events = {"literal": {"SubjectUserName": "%administrators%"}, "value": {"SubjectUserName": "admin"}}
    assert hits(detection, {"Administrators": ["admin"]}, events) == {"literal"}


# --- no values: refused, saying how to define them -------------------------------------------------


@pytest.mark.parametrize(("modifiers", "value"),
                         [("|expand", "%Administrators%"), ("|contains|expand", "%Administrators%"),
                          ("|re|expand", "^%Administrators%$")])
def test_without_values_the_rule_is_refused_with_how_to_define_them(modifiers: str, value: str) -> None:
    detection = f"""
        selection:
            SubjectUserName{modifiers}: '{value}'
        condition: selection
    """
    for given in ({}, {"other": ["x"]}):
        with pytest.raises(RuleError) as caught:
            rule_from_yaml(rule_text(detection), placeholders=given)
        message = str(caught.value)
        assert "%Administrators% has no values" in message
        assert "vigil rules placeholders set Administrators" in message
        assert "--placeholder Administrators=" in message


def test_one_placeholder_without_values_refuses_the_rule_though_another_has_some() -> None:
    detection = """
        selection:
            SubjectUserName|expand: '%Administrators%'
            Computer|expand: '%servers%'
        condition: selection
    """
    with pytest.raises(RuleError, match="%servers% has no values"):
        rule_from_yaml(rule_text(detection), placeholders={"Administrators": ["admin"]})
    rule = rule_from_yaml(rule_text(detection), placeholders={"Administrators": ["admin"], "servers": ["dc*"]})
    engine = Engine([rule])
    assert engine.match({"SubjectUserName": "admin", "Computer": "DC01"})
    assert not engine.match({"SubjectUserName": "admin", "Computer": "WS01"})


# --- names, values, files ------------------------------------------------------------------------------


def test_names_and_values_are_checked() -> None:
    assert check_name("%known_cdcs%") == "known_cdcs"
    assert check_name("a.b-c_9") == "a.b-c_9"
    for bad in ("", "has space", "x" * 65, "semi;colon", "ünï"):
        with pytest.raises(PlaceholderError):
            check_name(bad)
    assert check_values(["a", "b", "a", 3]) == ["a", "b", "3"]
    for values in ([], [""], ["x" * 1025], [str(n) for n in range(1001)], [None], [True]):
        with pytest.raises(PlaceholderError):
            check_values(values)


def test_assignments_and_files(tmp_path: Path) -> None:
    assert parse_assignment("known_cdcs=dc01,10.0.0.1") == ("known_cdcs", ["dc01", "10.0.0.1"])
    with pytest.raises(PlaceholderError):
        parse_assignment("known_cdcs")
    with pytest.raises(PlaceholderError):
        parse_assignment("known_cdcs=")
    yaml_file = tmp_path / "values.yml"
    yaml_file.write_text("known_cdcs:\n  - dc01\n  - 10.0.0.1\nsingle: one\n", encoding="utf-8")
    assert read_file(yaml_file) == {"known_cdcs": ["dc01", "10.0.0.1"], "single": ["one"]}
    json_file = tmp_path / "values.json"
    json_file.write_text('{"admins": ["root", "adm*"]}', encoding="utf-8")
    assert read_file(json_file) == {"admins": ["root", "adm*"]}
    (tmp_path / "list.yml").write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(PlaceholderError, match="mapping"):
        read_file(tmp_path / "list.yml")
    with pytest.raises(PlaceholderError, match="cannot read"):
        read_file(tmp_path / "absent.yml")


def test_digests_and_uses() -> None:
    assert digest({}) == "" and digest(None) == ""
    assert digest({"a": ["1"], "b": ["2"]}) == digest({"b": ["2"], "a": ["1"]})
    assert digest({"a": ["1"]}) != digest({"a": ["2"]}) != digest({"a": ["1", "2"]})
    assert frozen({"b": ["2"], "a": ["1"]}) == (("a", ("1",)), ("b", ("2",)))
    assert used_in(rule_text(ADMINS)) == {"Administrators"}
    assert used_in("SubjectUserName: '%Administrators%'") == set()  # no expand: literal


# --- compiled caches ---------------------------------------------------------------------------------


def test_load_cached_never_gives_back_rules_compiled_with_other_values(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "admins.yml").write_text(rule_text(ADMINS), encoding="utf-8")
    cache = tmp_path / "cache"
    admin, root = {"SubjectUserName": "admin"}, {"SubjectUserName": "root"}

    refused = load_cached([rules], cache_dir=cache)
    assert not refused.rules and "has no values" in str(refused.errors[0])
    first = load_cached([rules], cache_dir=cache, placeholders={"Administrators": ["admin"]})
    second = load_cached([rules], cache_dir=cache, placeholders={"Administrators": ["root"]})
    assert Engine(first.rules).match(admin) and not Engine(first.rules).match(root)
    assert Engine(second.rules).match(root) and not Engine(second.rules).match(admin)
    # From the cache now (one file per set of values), still each with its own values.
    assert len(list(cache.glob("rules-*.pickle"))) == 3
    again = load_cached([rules], cache_dir=cache, placeholders={"Administrators": ["admin"]})
    assert Engine(again.rules).match(admin) and not Engine(again.rules).match(root)
    assert not load_cached([rules], cache_dir=cache).rules


def test_the_hunt_engine_image_is_kept_per_set_of_values(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "admins.yml").write_text(rule_text(ADMINS), encoding="utf-8")
    cache = tmp_path / "cache"
    for _ in range(2):  # the second round reads the engine images
        with_admin = RuleSource((str(rules),), cache, placeholders=frozen({"Administrators": ["admin"]})).load()
        with_root = RuleSource((str(rules),), cache, placeholders=frozen({"Administrators": ["root"]})).load()
        without = RuleSource((str(rules),), cache).load()
        assert with_admin.engine.match({"SubjectUserName": "admin"})
        assert not with_admin.engine.match({"SubjectUserName": "root"})
        assert with_root.engine.match({"SubjectUserName": "root"})
        assert not with_root.engine.match({"SubjectUserName": "admin"})
        assert not without.rules and len(without.errors) == 1
    assert len(list(cache.glob("engine-*.pickle"))) == 3


# --- vigil hunt --placeholder / --placeholders ---------------------------------------------------------


def hunt(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["hunt", *args], env={"XDG_CACHE_HOME": str(tmp_path / "cache")})


@pytest.fixture
def certighost_like(tmp_path: Path) -> tuple[Path, Path]:
    """A rule in the shape of SigmaHQ's Certighost rule, and two Security events: one chase to a rogue host,
    one to a known domain controller."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "chase.yml").write_text(textwrap.dedent("""\
        title: CDC Chase To Unknown Host
        id: 7b1f2a52-0c55-4f1e-9d7e-2b1d7b0c9a03
        status: test
        author: Test Author
        logsource:
            product: windows
            service: security
        detection:
            selection:
                EventID: 4886
                Attributes|contains: 'cdc:'
            filter_main_known_cdc:
                Attributes|contains|expand: '%known_cdcs%'
            condition: selection and not 1 of filter_main_*
        level: high
        """), encoding="utf-8")
    events = tmp_path / "security.ndjson"
    events.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in (
        {"Channel": "Security", "EventID": 4886, "Computer": "CA01", "EventRecordID": 1,
         "Attributes": "cdc:10.6.6.6\nrmd:dc01.corp.local"},
        {"Channel": "Security", "EventID": 4886, "Computer": "CA01", "EventRecordID": 2,
         "Attributes": "cdc:dc02.corp.local\nrmd:dc01.corp.local"})))
    return rules, events


def matched_records(result: Result) -> list[int]:
    return sorted(orjson.loads(line)["event"]["EventRecordID"] for line in result.stdout.splitlines())


def test_hunt_refuses_the_rule_without_values_and_says_how_to_give_them(
        tmp_path: Path, certighost_like: tuple[Path, Path]) -> None:
    rules, events = certighost_like
    result = hunt(tmp_path, str(events), "--rules", str(rules), "--output", "jsonl")
    assert result.exit_code == 1  # the only rule did not load
    assert "%known_cdcs% has no values" in result.stderr and "--placeholder known_cdcs=" in result.stderr


def test_hunt_with_placeholder_values_on_the_command_line_and_in_a_file(
        tmp_path: Path, certighost_like: tuple[Path, Path]) -> None:
    rules, events = certighost_like
    given = hunt(tmp_path, str(events), "--rules", str(rules), "--output", "jsonl",
                 "--placeholder", "known_cdcs=dc02.corp.local,dc03.corp.local")
    assert given.exit_code == 0, given.output
    assert matched_records(given) == [1]
    # Other values, same rule files: the cache must not answer with the rule compiled above.
    other = hunt(tmp_path, str(events), "--rules", str(rules), "--output", "jsonl",
                 "--placeholder", "known_cdcs=10.6.6.6")
    assert matched_records(other) == [2]
    values = tmp_path / "placeholders.yml"
    values.write_text("known_cdcs:\n  - dc02.corp.local\n  - 10.6.6.6\n", encoding="utf-8")
    from_file = hunt(tmp_path, str(events), "--rules", str(rules), "--output", "jsonl", "--placeholders", str(values))
    assert from_file.exit_code == 0 and matched_records(from_file) == []
    # --placeholder wins over the file for the same name.
    both = hunt(tmp_path, str(events), "--rules", str(rules), "--output", "jsonl", "--placeholders", str(values),
                "--placeholder", "known_cdcs=dc02.corp.local")
    assert matched_records(both) == [1]


def test_hunt_refuses_bad_placeholder_options(tmp_path: Path, certighost_like: tuple[Path, Path]) -> None:
    rules, events = certighost_like
    bad = hunt(tmp_path, str(events), "--rules", str(rules), "--placeholder", "known cdcs=x")
    assert bad.exit_code == 1 and "not allowed" in bad.stderr
    missing = hunt(tmp_path, str(events), "--rules", str(rules), "--placeholders", str(tmp_path / "none.yml"))
    assert missing.exit_code == 1 and "cannot read" in missing.stderr


# --- SigmaHQ's rules with |expand -------------------------------------------------------------------------


@pytest.mark.skipif(not CERTIGHOST.is_dir(), reason=f"SigmaHQ's rules are not at {CERTIGHOST} (../shared/data)")
def test_sigmahq_rules_with_expand_load_and_fire_once_values_are_given(tmp_path: Path) -> None:
    with_expand = sorted(path for path in CERTIGHOST.glob("*.yml") if "|expand" in path.read_text(encoding="utf-8"))
    assert len(with_expand) == 2
    refused = load_rules(with_expand)
    assert not refused.rules and all("%known_cdcs% has no values" in str(e) for e in refused.errors)
    loaded = load_rules(with_expand, placeholders={"known_cdcs": ["dc01.corp.local", "10.0.0.10"]})
    assert not loaded.errors and len(loaded.rules) == 2
    engines = [(rule.title, Engine([rule])) for rule in loaded.rules]

    def fired(event_id: int, attributes: str) -> set[str]:
        event = {"Channel": "Security", "EventID": event_id, "Attributes": attributes}
        return {title for title, engine in engines if engine.match(event)}

    assert fired(4886, "cdc:10.6.6.6\nrmd:dc02.corp.local") == {
        "ADCS - Certighost CDC Chase Certificate Request (CVE-2026-54121)"}
    assert fired(4887, "cdc:10.6.6.6\nrmd:dc02.corp.local") == {
        "ADCS - Certighost Certificate Issued via CDC Chase (CVE-2026-54121)"}
    assert fired(4886, "cdc:dc01.corp.local\nrmd:dc02.corp.local") == set()  # a known domain controller
    assert fired(4887, "cdc:10.0.0.10") == set()
    assert fired(4886, "rmd:dc02.corp.local") == set()

    # And through `vigil hunt`, from a copy of the folder.
    folder = tmp_path / "certighost"
    shutil.copytree(CERTIGHOST, folder)
    events = tmp_path / "ca.ndjson"
    events.write_bytes(orjson.dumps({"Channel": "Security", "EventID": 4887, "Computer": "CA01",
                                     "EventRecordID": 5, "Attributes": "cdc:10.6.6.6"}) + b"\n")
    result = hunt(tmp_path, str(events), "--rules", str(folder), "--output", "jsonl",
                  "--placeholder", "known_cdcs=dc01.corp.local")
    assert result.exit_code == 0, result.output
    assert [orjson.loads(line)["rule"]["id"] for line in result.stdout.splitlines()] == [
        "8b7e2c54-1f93-4a6d-b8e0-3c9d7f25a168"]
