"""A rule's test cases (``vigil.detection.rule_tests``) on a real records store: the starter pack's cases
stored at install and passing, a case that does not hold failing with expected and got, an unreadable
record failing with the parser's reason, trying events without storing them, refused input never
half-applied, re-installs that refresh the pack's cases and keep the SOC's own, and the audit trail."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from sqlalchemy import select
from tests.api.support import audit_records
from tests.conftest import cli_context
from tests.detection.test_rules_service import rows, sigma_rule

from vigil.core.db import Scope
from vigil.core.errors import BadInput, NotFound
from vigil.detection import rule_tests
from vigil.detection.models import DetectionRule
from vigil.detection.rules_import import STARTER_TESTS_DIR, add_rule_text, install_starter_pack
from vigil.detection.schemas_rules import MAX_TEST_CASES, EnablePolicy, RuleTestCreate, RuleTestTry


def sysmon_process(image: str, command_line: str) -> str:
    """A Sysmon process creation (event 1) in evtx_dump's JSON shape, as the windows_json parser reads it."""
    return orjson.dumps({"Event": {
        "System": {"Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}, "EventID": 1,
                   "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS-FIN-07.corp.example",
                   "EventRecordID": 7001, "TimeCreated": {"#attributes": {"SystemTime": "2026-11-28T13:37:12Z"}}},
        "EventData": {"Image": image, "CommandLine": command_line, "User": "CORP\\ops"}}}).decode()


WHOAMI = sysmon_process("C:\\Windows\\System32\\whoami.exe", "whoami /all")
HOSTNAME = sysmon_process("C:\\Windows\\System32\\hostname.exe", "hostname")


def new_rule(database: Any) -> int:
    """A fresh rule firing on whoami.exe process creations (no test cases)."""
    with database.transaction(Scope.system()) as session:
        result = add_rule_text(cli_context(session), text=sigma_rule(f"Whoami {uuid.uuid4().hex}"), pack="local",
                               enable=EnablePolicy.all)
    rule_id = result.added[0].id
    assert rule_id is not None
    return rule_id


def matrix_rule_with_case(database: Any) -> int:
    """A fresh rule holding one test case, for the role matrix to delete."""
    rule_id = new_rule(database)
    add(database, rule_id, expect="match", format="windows_json", record=WHOAMI)
    return rule_id


def add(database: Any, rule_id: int, **case: str) -> Any:
    with database.transaction(Scope.system()) as session:
        return rule_tests.add_test(cli_context(session), rule_id=rule_id, data=RuleTestCreate.model_validate(case))


def stored(database: Any, rule_id: int) -> list[dict[str, str]]:
    with database.transaction(Scope.system()) as session:
        return list(session.get(DetectionRule, rule_id).tests)  # type: ignore[union-attr]


def run(database: Any, rule_id: int) -> Any:
    with database.transaction(Scope.system()) as session:
        return rule_tests.run_tests(session, rule_id=rule_id)


def test_every_starter_rule_passes_its_shipped_cases_after_install(world: Any) -> None:
    install_starter_pack(world.database)
    starter = rows(world.database, "vigil-starter")
    assert len(starter) == 49
    for row in starter.values():
        report = run(world.database, row.id)
        expected = rule_tests.starter_cases(STARTER_TESTS_DIR / row.path)
        assert [(r.name, r.expect, r.record) for r in report.results] == \
            [(c["name"], c["expect"], c["record"]) for c in expected], row.path
        assert {r.expect for r in report.results} == {"match", "no_match"}, row.path
        failed = [(r.name, r.expect, r.got, r.error) for r in report.results if not r.passed]
        assert failed == [] and report.ok and report.passed == report.total >= 2, (row.title, failed)
        assert {r.source for r in report.results} == {"pack"}


def test_a_case_that_does_not_hold_fails_with_expected_and_got(world: Any) -> None:
    rule_id = new_rule(world.database)
    assert run(world.database, rule_id).total == 0
    add(world.database, rule_id, name="whoami fires", expect="match", format="windows_json", record=WHOAMI)
    add(world.database, rule_id, name="hostname is a near miss", expect="no_match", format="windows_json",
        record=HOSTNAME)
    report = add(world.database, rule_id, name="wrongly a near miss", expect="no_match", format="windows_json",
                 record=WHOAMI)
    assert [(r.index, r.name, r.expect, r.got, r.passed) for r in report.results] == [
        (0, "whoami fires", "match", "match", True),
        (1, "hostname is a near miss", "no_match", "no_match", True),
        (2, "wrongly a near miss", "no_match", "match", False)]
    assert (report.total, report.passed, report.failed, report.ok) == (3, 2, 1, False)


def test_a_stored_record_that_no_longer_parses_fails_saying_why(world: Any) -> None:
    rule_id = new_rule(world.database)
    with world.database.transaction(Scope.system()) as session:
        row = session.get(DetectionRule, rule_id)
        assert row is not None
        row.tests = [{"name": "broken", "expect": "match", "format": "web_access", "record": "not an access log line",
                      "source": "user"},
                     {"name": "gone parser", "expect": "match", "format": "no_such_parser", "record": WHOAMI,
                      "source": "user"}]
    report = run(world.database, rule_id)
    assert [(r.got, r.passed) for r in report.results] == [("unreadable", False), ("unreadable", False)]
    assert "the web_access parser refused the record" in (report.results[0].error or "")
    assert "unknown log format 'no_such_parser'" in (report.results[1].error or "")


def test_trying_events_stores_nothing_and_detects_the_format(world: Any) -> None:
    rule_id = new_rule(world.database)
    with world.database.transaction(Scope.system()) as session:
        report = rule_tests.try_events(session, rule_id=rule_id, events=[
            RuleTestTry(record=WHOAMI), RuleTestTry(format="windows_json", record=HOSTNAME, expect="match"),
            RuleTestTry(format="syslog", record="   not syslog at all")])
    assert [(r.got, r.format, r.passed, r.index) for r in report.results] == [
        ("match", "windows_json", None, None), ("no_match", "windows_json", False, None),
        ("unreadable", "syslog", None, None)]
    assert "the syslog parser refused" in (report.results[2].error or "")
    assert stored(world.database, rule_id) == []
    with world.database.transaction(Scope.system()) as session, \
            pytest.raises(BadInput, match="unknown log format 'nope'"):
        rule_tests.try_events(session, rule_id=rule_id, events=[RuleTestTry(format="nope", record=WHOAMI)])


def test_bad_cases_are_refused_and_nothing_is_stored(world: Any) -> None:
    rule_id = new_rule(world.database)
    before = len(audit_records(world.database, action="detection.rule.test.add"))
    with pytest.raises(BadInput, match="unknown log format 'evtx_json'"):
        add(world.database, rule_id, expect="match", format="evtx_json", record=WHOAMI)
    with pytest.raises(BadInput, match="the web_access parser refused"):
        add(world.database, rule_id, expect="match", format="web_access", record="hello")
    with pytest.raises(ValidationError, match="at most 65,536"):
        RuleTestCreate(expect="match", format="json", record='{"a": "' + "x" * 65_536 + '"}')
    with pytest.raises(ValidationError, match="expect"):
        RuleTestCreate.model_validate({"expect": "maybe", "format": "json", "record": "{}"})
    assert stored(world.database, rule_id) == []
    for _ in range(MAX_TEST_CASES):
        add(world.database, rule_id, expect="no_match", format="windows_json", record=HOSTNAME)
    with pytest.raises(BadInput, match="already holds 50 test cases"):
        add(world.database, rule_id, expect="match", format="windows_json", record=WHOAMI)
    cases = stored(world.database, rule_id)
    assert len(cases) == MAX_TEST_CASES and cases[0]["name"] == "must not fire 1" and cases[-1]["name"] == \
        "must not fire 50"
    assert len(audit_records(world.database, action="detection.rule.test.add")) == before + MAX_TEST_CASES


def test_adding_and_deleting_cases_is_audited(world: Any) -> None:
    rule_id = new_rule(world.database)
    add(world.database, rule_id, name="fires", expect="match", format="windows_json", record=WHOAMI)
    add(world.database, rule_id, name="near miss", expect="no_match", format="windows_json", record=HOSTNAME)
    with world.database.transaction(Scope.system()) as session:
        report = rule_tests.delete_test(cli_context(session), rule_id=rule_id, index=0)
    assert [(r.index, r.name) for r in report.results] == [(0, "near miss")]
    with world.database.transaction(Scope.system()) as session, pytest.raises(NotFound, match="no test case 1"):
        rule_tests.delete_test(cli_context(session), rule_id=rule_id, index=1)
    added = audit_records(world.database, action="detection.rule.test.add", target_id=str(rule_id))
    deleted = audit_records(world.database, action="detection.rule.test.delete", target_id=str(rule_id))
    assert [r.details["name"] for r in added] == ["fires", "near miss"]
    assert [(r.details["index"], r.details["name"], r.actor) for r in deleted] == [(0, "fires", "test-setup")]


def test_a_reinstall_refreshes_the_packs_cases_and_keeps_the_socs_own(world: Any) -> None:
    install_starter_pack(world.database)
    row = next(r for r in rows(world.database, "vigil-starter").values()
               if r.path.endswith("proc_creation_win_whoami_discovery.yml"))
    shipped = stored(world.database, row.id)
    add(world.database, row.id, name="our jump host", expect="match", format="windows_json", record=WHOAMI)
    with world.database.transaction(Scope.system()) as session:
        # A database migrated from before test cases (or an edited pack case): the next install repairs it.
        for other in session.scalars(select(DetectionRule)):
            other.tests = [case for case in other.tests if case.get("source") != "pack"]
    assert len(stored(world.database, row.id)) == 1
    install_starter_pack(world.database)
    after = stored(world.database, row.id)
    assert after[:-1] == shipped and after[-1]["name"] == "our jump host" and after[-1]["source"] == "user"
    assert all(stored(world.database, r.id) for r in rows(world.database, "vigil-starter").values())
    assert run(world.database, row.id).ok


def test_a_correlation_rule_cannot_be_tried_on_one_event(world: Any) -> None:
    rule_id = new_rule(world.database)
    with world.database.transaction(Scope.system()) as session:
        row = session.get(DetectionRule, rule_id)
        assert row is not None
        row.kind = "correlation"
    with world.database.transaction(Scope.system()) as session, pytest.raises(BadInput, match="sequence of events"):
        rule_tests.try_events(session, rule_id=rule_id, events=[RuleTestTry(record=WHOAMI)])
    assert "sequence of events" in (run(world.database, rule_id).error or "")


@pytest.mark.parametrize(("text", "records"), [
    ('{"a": 1,\n "b": 2}\n', ['{"a": 1,\n "b": 2}']),
    ('[{"a": 1}, {"b": 2}]', ['{"a":1}', '{"b":2}']),
    ('{"a": 1}\n\n{"b": 2}\r\n', ['{"a": 1}', '{"b": 2}']),
    ("<13>Nov 28 12:00:00 h sshd[1]: one\n<13>Nov 28 12:00:01 h sshd[1]: two\n",
     ["<13>Nov 28 12:00:00 h sshd[1]: one", "<13>Nov 28 12:00:01 h sshd[1]: two"]),
])
def test_pasted_text_splits_into_records(text: str, records: list[str]) -> None:
    assert rule_tests.split_records(text) == records


def test_too_many_or_no_records_are_refused() -> None:
    with pytest.raises(BadInput, match="51 records given; at most 50"):
        rule_tests.split_records("\n".join(["line"] * 51))
    with pytest.raises(BadInput, match="no record"):
        rule_tests.split_records(" \n \n")
