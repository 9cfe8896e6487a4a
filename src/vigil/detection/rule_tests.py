"""A detection rule's test cases, as Sigma's own regression tests do it: events that must make the rule fire
and near misses that must not, run through Vigil's real parsers and the real engine.

A case is ``{"name", "expect": "match"|"no_match", "format": a parser name, "record": the raw record as
text, "source": "pack"|"user"}``, stored in ``DetectionRule.tests``. The starter pack ships its cases in
``rules/starter_tests/<area>/<rule file>`` (``starter_cases`` reads one). Each record is parsed as the
pipeline parses a batch (``parse_record``), then matched by an engine holding the one rule: a case passes
when the rule fired as expected; a record its parser refuses fails the case, saying why. ``try_events``
runs events given ad hoc, storing nothing. Service functions never commit; changes are audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import yaml
from sqlalchemy.orm import Session

from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import BadInput, NotFound
from vigil.detection import rules_service
from vigil.detection.correlation_store import CORRELATION_KIND
from vigil.detection.models import DetectionRule
from vigil.detection.schemas_rules import (
    MAX_TEST_CASES,
    MAX_TEST_RECORD,
    Expectation,
    RuleTestCase,
    RuleTestCreate,
    RuleTestReport,
    RuleTestResult,
    RuleTestTry,
)
from vigil.detection.sigma import Engine, Rule, RuleError
from vigil.siem.normalize import normalise
from vigil.siem.parsers.base import Event
from vigil.siem.parsers.registry import detect_format, parser, parsers
from vigil.siem.parsing import SourceConfig, parse_records
from vigil.siem.spool import BatchMeta

SOURCE = "rule-test"  # the input name the test events carry (vigil.input)
AUTO = "auto"  # the format shown for a record whose parser was detected and none claimed it
CORRELATION_REFUSED = ("a correlation rule matches a sequence of events, not one event: test the rules it "
                       "correlates")


class UnreadableRecord(BadInput):
    """A test record its parser refuses (or that no parser recognises)."""


# --- records -----------------------------------------------------------------------------------------


def format_names() -> list[str]:
    """The parsers a test case may name."""
    return sorted(parsers())


def check_format(name: str) -> str:
    """``name`` when a parser has it; ``BadInput`` naming the known ones otherwise."""
    parser(name)
    return name


def record_of(entry: Any, default_format: str) -> tuple[str, bytes]:
    """(format, raw record) of a starter test entry: a raw line, a mapping encoded as one JSON record, or
    ``{format: ..., record: ...}`` / ``{format: ..., line: ...}`` for an input in another format."""
    if isinstance(entry, str):
        return default_format, entry.encode("utf-8")
    if isinstance(entry, dict) and set(entry) in ({"format", "record"}, {"format", "line"}):
        return record_of(entry.get("record", entry.get("line")), entry["format"])
    return default_format, orjson.dumps(entry)


def parse_record(raw: bytes, format_name: str | None) -> tuple[str, Event]:
    """(the parser's name, the event Vigil's pipeline makes of ``raw``); ``format_name`` None: detected.
    ``UnreadableRecord`` when the parser refuses the record, with its reason."""
    if len(raw) > MAX_TEST_RECORD:
        raise UnreadableRecord(f"the record is {len(raw):,} bytes; at most {MAX_TEST_RECORD:,} (64 KiB) are "
                               "accepted")
    if not format_name:
        found = detect_format(raw)
        if found is None:
            raise UnreadableRecord("no parser recognises this record's format; choose one")
        format_name = found.name
    check_format(format_name)
    meta = BatchMeta(source=SOURCE, unit_id=0, format=format_name, transport="file")
    events, failures = normalise(parse_records([raw], meta, SourceConfig()), meta)
    if failures:
        raise UnreadableRecord(f"the {format_name} parser refused the record {raw[:200]!r}: "
                               f"{events[0]['error']['message']}")
    return format_name, events[0]


def parse_entry(entry: Any, default_format: str) -> Event:
    """The event of one starter test entry (see ``record_of``); ``UnreadableRecord`` when it does not parse."""
    name, raw = record_of(entry, default_format)
    return parse_record(raw, name)[1]


def starter_cases(path: Path) -> list[dict[str, str]]:
    """The test cases of a starter rule's test file: ``format``, then ``trigger`` records (must fire) and
    ``near_miss`` records (must not), as stored cases of the pack."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    cases: list[dict[str, str]] = []
    for key, expect, label in (("trigger", "match", "trigger"), ("near_miss", "no_match", "near miss")):
        for number, entry in enumerate(document.get(key) or [], start=1):
            name, raw = record_of(entry, document["format"])
            cases.append({"name": f"{label} {number}", "expect": expect, "format": name,
                          "record": raw.decode("utf-8"), "source": "pack"})
    return cases


def split_records(text: str, *, limit: int = MAX_TEST_CASES) -> list[str]:
    """The records in a pasted text or a file: a JSON document (an array: each element), else one record a
    non-blank line. ``BadInput`` past ``limit`` records."""
    body = text.strip()
    records: list[str] = []
    if body[:1] in ("{", "["):
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, list):
            records = [orjson.dumps(item).decode("utf-8") for item in document]
        elif isinstance(document, dict):
            records = [body]
    if not records:
        records = [line.rstrip("\r") for line in body.splitlines() if line.strip()]
    if not records:
        raise BadInput("there is no record to try")
    if len(records) > limit:
        raise BadInput(f"{len(records):,} records given; at most {limit} are tried at once")
    return records


# --- running -------------------------------------------------------------------------------------------


def stored_cases(row: DetectionRule) -> list[RuleTestCase]:
    return [RuleTestCase.model_validate(case) for case in row.tests or []]


def _rule_of(session: Session, row: DetectionRule) -> Rule:
    if row.kind == CORRELATION_KIND:
        raise BadInput(CORRELATION_REFUSED)
    try:
        return rules_service.compiled_rule(row, rules_service.get_pack(session, row.pack_id).name)
    except RuleError as exc:
        raise BadInput(f"the rule's YAML no longer compiles: {exc}") from None


def _result(rule: Rule, engine: Engine, *, index: int | None, name: str, source: str | None,
            expect: Expectation | None, format_name: str | None, record: str) -> RuleTestResult:
    try:
        used, event = parse_record(record.encode("utf-8"), format_name)
    except BadInput as exc:
        return RuleTestResult(index=index, name=name, source=source, expect=expect, got="unreadable",
                              passed=False if expect else None, format=format_name or AUTO, record=record,
                              error=exc.detail)
    fired = any(hit.id == rule.id for hit in engine.match(event))
    got: Expectation = "match" if fired else "no_match"
    return RuleTestResult(index=index, name=name, source=source, expect=expect, got=got,
                          passed=(got == expect) if expect else None, format=used, record=record)


def _report(row: DetectionRule, results: list[RuleTestResult], error: str | None = None) -> RuleTestReport:
    return RuleTestReport(rule_id=row.id, rule_uid=row.rule_uid, title=row.title, total=len(results),
                          passed=sum(1 for r in results if r.passed is True),
                          failed=sum(1 for r in results if r.passed is False), error=error, results=results)


def run_tests(session: Session, *, rule_id: int) -> RuleTestReport:
    """The rule's stored cases, each run: passed or failed, expected and got. A rule that cannot run (a
    correlation, YAML that no longer compiles) fails every case, with the reason in ``error``."""
    row = rules_service.get_rule(session, rule_id)
    cases = stored_cases(row)
    try:
        rule = _rule_of(session, row)
    except BadInput as exc:
        return _report(row, [RuleTestResult(index=index, name=case.name, source=case.source, expect=case.expect,
                                            got="error", passed=False, format=case.format, record=case.record,
                                            error=exc.detail) for index, case in enumerate(cases)], exc.detail)
    engine = Engine([rule])
    return _report(row, [_result(rule, engine, index=index, name=case.name, source=case.source,
                                 expect=case.expect, format_name=case.format, record=case.record)
                         for index, case in enumerate(cases)])


def try_events(session: Session, *, rule_id: int, events: Sequence[RuleTestTry],
               limit: int = MAX_TEST_CASES) -> RuleTestReport:
    """Events given ad hoc run through the rule, stored nowhere; same shape as ``run_tests``. ``limit``: how
    many may be tried at once (the API and page: 50; the shell tries a file's records)."""
    if len(events) > limit:
        raise BadInput(f"{len(events):,} events given; at most {limit} are tried at once")
    row = rules_service.get_rule(session, rule_id)
    rule = _rule_of(session, row)
    engine = Engine([rule])
    results = []
    for event in events:
        if event.format:
            check_format(event.format)
        results.append(_result(rule, engine, index=None, name="", source=None, expect=event.expect,
                               format_name=event.format or None, record=event.record))
    return _report(row, results)


# --- changing ------------------------------------------------------------------------------------------


def add_test(ctx: Context, *, rule_id: int, data: RuleTestCreate) -> RuleTestReport:
    """Store a case on the rule (its record must parse with its format); audited. The rule's cases, run."""
    row = rules_service.get_rule(ctx.session, rule_id)
    _rule_of(ctx.session, row)  # a rule that cannot run takes no cases
    cases = list(row.tests or [])
    if len(cases) >= MAX_TEST_CASES:
        raise BadInput(f"the rule already holds {len(cases)} test cases, the most it may; delete one first")
    check_format(data.format)
    parse_record(data.record.encode("utf-8"), data.format)
    name = data.name.strip() or f"{'must fire' if data.expect == 'match' else 'must not fire'} {len(cases) + 1}"
    case = RuleTestCase(name=name, expect=data.expect, format=data.format, record=data.record, source="user")
    row.tests = [*cases, case.model_dump()]
    row.updated_at, row.updated_by = utcnow(), ctx.actor.name
    ctx.session.flush()
    ctx.audit("detection.rule.test.add", target_type="detection_rule", target_id=row.id,
              details={"rule_uid": row.rule_uid, "title": row.title, "index": len(cases), "name": name,
                       "expect": data.expect, "format": data.format})
    return run_tests(ctx.session, rule_id=rule_id)


def delete_test(ctx: Context, *, rule_id: int, index: int) -> RuleTestReport:
    """Remove the case at ``index`` (from 0); audited. The rule's remaining cases, run."""
    row = rules_service.get_rule(ctx.session, rule_id)
    cases = list(row.tests or [])
    if not 0 <= index < len(cases):
        raise NotFound(f"the rule {row.id} has no test case {index} (it has {len(cases)}, numbered from 0)")
    removed = cases.pop(index)
    row.tests = cases
    row.updated_at, row.updated_by = utcnow(), ctx.actor.name
    ctx.session.flush()
    ctx.audit("detection.rule.test.delete", target_type="detection_rule", target_id=row.id,
              details={"rule_uid": row.rule_uid, "title": row.title, "index": index,
                       "name": removed.get("name", ""), "expect": removed.get("expect", "")})
    return run_tests(ctx.session, rule_id=rule_id)


def set_pack_cases(row: DetectionRule, cases: list[dict[str, str]]) -> bool:
    """The pack's cases of a rule replaced by ``cases``, the SOC's own kept after them; whether it changed."""
    own = [case for case in row.tests or [] if case.get("source") != "pack"]
    wanted = [*cases, *own][:MAX_TEST_CASES]
    if wanted == (row.tests or []):
        return False
    row.tests = wanted
    return True
