"""Sigma correlation rules: loading (references by id and name, multi-document files, errors naming file,
line and reason) and evaluation (each type fires exactly when it should, per group, once per window,
across a restart, in bounded memory)."""

from __future__ import annotations

import json
import pickle
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.detection.evtx_events import evtx_events

from vigil.detection.correlation import (
    CorrelationEngine,
    CorrelationHit,
    CorrelationRule,
    load_correlations,
    silenced_rules,
)
from vigil.detection.sigma import Engine, Rule, RuleError, load_rules, rule_from_yaml

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

FAILED_ID = "0e95725d-7320-415d-80f7-004da920fc11"
FAILED_LOGON = f"""\
title: Failed logon
id: {FAILED_ID}
name: failed_logon
status: test
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4625
    condition: selection
level: low
"""

SSH_ID = "6a1e4c1b-2d3f-4a5b-9c8d-7e6f5a4b3c21"
SSH_FAILED = f"""\
title: SSH failed password
id: {SSH_ID}
name: ssh_failed
status: test
logsource:
    product: vigil_unit_test
detection:
    selection:
        message|contains: 'Failed password'
    condition: selection
level: low
"""

WHOAMI_ID = "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b01"
NET_USER_ID = "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b02"
RECON = f"""\
title: Whoami
id: {WHOAMI_ID}
name: recon_whoami
status: test
logsource:
    product: vigil_unit_test
detection:
    selection:
        CommandLine|contains: whoami
    condition: selection
level: low
---
title: Net user
id: {NET_USER_ID}
name: recon_net_user
status: test
logsource:
    product: vigil_unit_test
detection:
    selection:
        CommandLine|contains: 'net user'
    condition: selection
level: low
"""


def correlation(body: str, *, title: str = "Test correlation",
                cid: str = "c0ffee00-0000-4000-8000-000000000001") -> str:
    return f"title: {title}\nid: {cid}\nstatus: test\n{body.strip()}\nlevel: high\n"


BRUTE_FORCE = correlation("""
correlation:
    type: event_count
    rules:
        - failed_logon
    group-by:
        - IpAddress
    timespan: 5m
    condition:
        gte: 3
""")

SPRAY = correlation("""
correlation:
    type: value_count
    rules:
        - failed_logon
    group-by:
        - IpAddress
    timespan: 5m
    condition:
        gte: 3
        field: TargetUserName
""")


def temporal(kind: str, rules: str = "[recon_whoami, recon_net_user]") -> str:
    return correlation(f"""
correlation:
    type: {kind}
    rules: {rules}
    group-by:
        - Computer
    timespan: 1m
""")


def base(*texts: str) -> list[Rule]:
    rules: list[Rule] = []
    for text in texts:
        for part in text.split("\n---\n"):
            rules.append(rule_from_yaml(part))
    return rules


def load_one(text: str, *base_texts: str) -> CorrelationRule:
    correlations, errors = load_correlations([text], base(*(base_texts or (FAILED_LOGON,))))
    assert errors == []
    assert len(correlations) == 1
    return correlations[0]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def logon_failure(ip: str | None = "203.0.113.5", user: str = "admin", record: int = 1) -> dict[str, Any]:
    event: dict[str, Any] = {"Channel": "Security", "EventID": 4625, "TargetUserName": user, "EventRecordID": record}
    if ip is not None:
        event["IpAddress"] = ip
    return event


def feed(engine: CorrelationEngine, rule: str, events: Sequence[tuple[float, Mapping[str, Any]]]) -> list[int]:
    """Observe each (seconds, event); the positions (0-based) of the observations that raised a hit."""
    return [number for number, (seconds, event) in enumerate(events) if engine.observe(rule, event, at(seconds))]


# Loading ------------------------------------------------------------------------------------------------


def test_a_sigmahq_style_file_with_base_rule_and_correlation_loads_as_plain_data() -> None:
    text = FAILED_LOGON + "---\n" + BRUTE_FORCE
    correlations, errors = load_correlations([text], base(FAILED_LOGON))
    assert errors == []
    [rule] = correlations
    assert (rule.type, rule.timespan, rule.timespan_text, rule.group_by) == ("event_count", 300, "5m", ("IpAddress",))
    assert (rule.threshold.op, rule.threshold.count, rule.level, rule.generate) == ("gte", 3, "high", False)
    assert [(ref.id, ref.name) for ref in rule.rules] == [(FAILED_ID, "failed_logon")]
    assert pickle.loads(pickle.dumps(rule)) == rule  # no pySigma object inside: hunt workers get it


def test_references_by_id_and_by_name_to_rules_of_other_files() -> None:
    by_id = BRUTE_FORCE.replace("- failed_logon", f"- {FAILED_ID}")
    for text in (BRUTE_FORCE, by_id):
        rule = load_one(text)
        assert rule.rules[0].id == FAILED_ID


def test_load_rules_hands_over_the_correlations_of_the_files_it_loads(tmp_path: Path) -> None:
    """The way Vigil loads a rule folder: base rules by ``load_rules``, correlations from the files it
    names in ``correlation_sources``, resolved against those base rules."""
    (tmp_path / "brute_force.yml").write_text(FAILED_LOGON + "---\n" + BRUTE_FORCE)
    (tmp_path / "recon.yml").write_text(RECON)
    (tmp_path / "recon_sequence.yml").write_text(temporal("temporal_ordered").replace("c0ffee00", "c0ffee07"))
    loaded = load_rules([tmp_path])
    assert loaded.errors == [] and len(loaded.rules) == 3
    correlations, errors = load_correlations(loaded.correlation_sources, loaded.rules)
    assert errors == []
    assert sorted(rule.type for rule in correlations) == ["event_count", "temporal_ordered"]
    assert {rule.path for rule in correlations} == {str(tmp_path / "brute_force.yml"),
                                                     str(tmp_path / "recon_sequence.yml")}


def test_names_of_rules_without_ids_in_a_multi_document_file(tmp_path: Path) -> None:
    without_ids = "".join(line + "\n" for line in RECON.splitlines() if not line.startswith("id:"))
    path = tmp_path / "recon.yml"
    path.write_text(without_ids)
    loaded = load_rules([path])
    assert loaded.errors == [] and len(loaded.rules) == 2
    correlations, errors = load_correlations([temporal("temporal_ordered")], loaded.rules)
    assert errors == []
    by_title = {rule.title: rule.id for rule in loaded.rules}
    assert [(ref.id, ref.name) for ref in correlations[0].rules] == [
        (by_title["Whoami"], "recon_whoami"), (by_title["Net user"], "recon_net_user")]


def test_files_and_folders_load_and_rule_files_without_correlations_are_passed_over(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    (folder / "nested").mkdir(parents=True)
    (folder / "failed_logon.yml").write_text(FAILED_LOGON)
    (folder / "nested" / "brute_force.yml").write_text(BRUTE_FORCE)
    (folder / "notes.txt").write_text("correlation: not a rule file")
    correlations, errors = load_correlations([folder], base(FAILED_LOGON))
    assert errors == []
    assert [rule.path for rule in correlations] == [str(folder / "nested" / "brute_force.yml")]
    correlations, errors = load_correlations([str(folder / "nested" / "brute_force.yml")], base(FAILED_LOGON))
    assert (len(correlations), errors) == (1, [])
    correlations, errors = load_correlations([(str(folder / "x.yml"), BRUTE_FORCE)], base(FAILED_LOGON))
    assert correlations[0].path == str(folder / "x.yml")


def test_a_correlation_naming_an_unknown_rule_is_an_error_with_file_line_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "brute.yml"
    path.write_text(BRUTE_FORCE.replace("- failed_logon", "- no_such_rule"))
    correlations, errors = load_correlations([path], base(FAILED_LOGON))
    assert correlations == []
    [error] = errors
    assert isinstance(error, RuleError)
    assert error.path == str(path)
    assert error.line == 7  # the line naming the rule
    assert "no_such_rule" in error.reason and "not defined" in error.reason


def test_a_rule_defined_in_the_file_but_not_loaded_is_an_error_not_a_silent_dead_correlation() -> None:
    correlations, errors = load_correlations([FAILED_LOGON + "---\n" + BRUTE_FORCE], [])
    assert correlations == []
    assert "failed_logon" in errors[0].reason and "not among the loaded rules" in errors[0].reason


def test_one_broken_correlation_does_not_stop_the_others() -> None:
    bad_span = BRUTE_FORCE.replace("timespan: 5m", "timespan: 5x").replace("c0ffee00", "c0ffee01")
    value_sum = SPRAY.replace("value_count", "value_sum").replace("c0ffee00", "c0ffee02")
    no_field = SPRAY.replace("        field: TargetUserName\n", "").replace("c0ffee00", "c0ffee03")
    text = "---\n".join([FAILED_LOGON, bad_span, value_sum, no_field, BRUTE_FORCE])
    correlations, errors = load_correlations([text], base(FAILED_LOGON))
    assert [rule.id for rule in correlations] == ["c0ffee00-0000-4000-8000-000000000001"]
    reasons = [error.reason for error in errors]
    assert len(reasons) == 3
    assert "5x" in reasons[0]
    assert "value_sum" in reasons[1] and "not supported" in reasons[1]
    assert "field" in reasons[2]
    assert all(error.line is not None and error.line > 13 for error in errors)  # inside their own documents


def test_what_vigil_cannot_evaluate_yet_is_refused_with_a_reason() -> None:
    condition = "    timespan: 1m\n    condition: recon_whoami and recon_net_user\n"
    boolean = temporal("temporal").replace("    timespan: 1m\n", condition)
    correlations, errors = load_correlations([boolean], base(RECON))
    assert correlations == [] and "boolean correlation conditions" in errors[0].reason


def test_two_correlations_with_one_id_are_an_error_for_the_second(tmp_path: Path) -> None:
    correlations, errors = load_correlations([BRUTE_FORCE, (str(tmp_path / "copy.yml"), SPRAY)], base(FAILED_LOGON))
    assert [rule.type for rule in correlations] == ["event_count"]
    assert errors[0].path == str(tmp_path / "copy.yml")
    assert "another correlation rule has the id" in errors[0].reason and "<inline 1>" in errors[0].reason


def test_a_missing_path_is_an_error() -> None:
    correlations, errors = load_correlations(["no/such/rules.yml"], [])
    assert correlations == [] and errors[0].reason == "no such file or folder"


def test_broken_yaml_is_an_error_with_its_line() -> None:
    correlations, errors = load_correlations(["correlation:\n  type: [event_count\n"], [])
    assert correlations == []
    assert errors[0].reason.startswith("broken YAML") and errors[0].line is not None


def test_generate_false_silences_the_base_rules_as_pysigma_does() -> None:
    quiet = load_one(BRUTE_FORCE)
    loud = load_one(BRUTE_FORCE.replace("correlation:\n", "correlation:\n    generate: true\n"))
    assert silenced_rules([quiet]) == {FAILED_ID}
    assert silenced_rules([loud]) == frozenset()
    inner = BRUTE_FORCE.replace("status: test", "name: brute_force\nstatus: test")
    outer = BRUTE_FORCE.replace("- failed_logon", "- brute_force").replace("c0ffee00", "c0ffee05")
    correlations, _ = load_correlations([inner, outer], base(FAILED_LOGON))
    assert silenced_rules(correlations) == {FAILED_ID, correlations[0].id}  # the inner correlation too


# event_count --------------------------------------------------------------------------------------------


def test_event_count_fires_at_the_threshold_and_not_one_below() -> None:
    engine = CorrelationEngine([load_one(BRUTE_FORCE)])
    assert feed(engine, FAILED_ID, [(0, logon_failure()), (60, logon_failure())]) == []
    hits = engine.observe(FAILED_ID, logon_failure(record=3), at(120))
    [hit] = hits
    assert (hit.value, hit.matches, hit.first, hit.last) == (3, 3, at(0), at(120))
    assert hit.group == (("IpAddress", "203.0.113.5"),)
    assert [event.ref for event in hit.events] == ["1", "1", "3"]


def test_event_count_timespan_includes_both_ends_and_nothing_beyond() -> None:
    engine = CorrelationEngine([load_one(BRUTE_FORCE)])
    assert feed(engine, FAILED_ID, [(0, logon_failure()), (150, logon_failure()), (300, logon_failure())]) == [2]
    engine = CorrelationEngine([load_one(BRUTE_FORCE)])
    assert feed(engine, FAILED_ID, [(0, logon_failure()), (150, logon_failure()), (301, logon_failure())]) == []


def test_event_count_fires_once_per_window_then_counts_again() -> None:
    engine = CorrelationEngine([load_one(BRUTE_FORCE)])
    six = [(second, logon_failure()) for second in range(0, 60, 10)]
    assert feed(engine, FAILED_ID, six) == [2, 5]


def test_observe_many_gives_the_hits_of_a_batch() -> None:
    engine = CorrelationEngine([load_one(BRUTE_FORCE)])
    batch = [(FAILED_ID, logon_failure(), at(second)) for second in range(7)]
    assert [hit.last for hit in engine.observe_many(batch)] == [at(2), at(5)]


def reference_hits(kind: str, threshold: int, span: float, events: Sequence[tuple[float, int, str]]) -> list[int]:
    """A plain re-statement of the rules for matches in time order: keep the last timespan, fire when the
    condition holds, then start again (events of the fired window are ignored)."""
    window: list[tuple[float, int, str]] = []
    fired_until, hits = float("-inf"), []
    for number, (seconds, rule, value) in enumerate(events):
        if seconds <= fired_until:
            continue
        window = [entry for entry in window if entry[0] >= seconds - span] + [(seconds, rule, value)]
        if kind == "event_count":
            count = len(window)
        elif kind == "value_count":
            count = len({entry[2] for entry in window})
        else:  # temporal_ordered over rules 0, 1, 2: the longest run in the listed order
            best = [0, 0, 0]
            for _, index, _ in window:
                best[index] = max(best[index], 1 + max(best[:index], default=0))
            count = max(best)
        if count >= threshold:
            hits.append(number)
            window, fired_until = [], seconds
    return hits


@pytest.mark.parametrize("kind", ["event_count", "value_count", "temporal_ordered"])
def test_random_streams_fire_where_a_plain_restatement_of_the_rules_does(kind: str) -> None:
    ids = [f"c0ffee00-0000-4000-8000-00000000010{index}" for index in range(3)]
    texts = [f"title: Rule {index}\nid: {ids[index]}\nlogsource:\n    product: vigil_unit_test\n"
             f"detection:\n    selection:\n        rule: {index}\n    condition: selection\n" for index in range(3)]
    threshold = 3 if kind == "temporal_ordered" else 4
    field = "\n        field: user" if kind == "value_count" else ""
    text = correlation(f"""
correlation:
    type: {kind}
    rules: {ids}
    group-by: [host]
    timespan: 30s
    condition:
        gte: {threshold}{field}
""", cid="c0ffee00-0000-4000-8000-0000000001ff")
    rule = load_one(text, *texts)
    generator = random.Random(7)
    for _ in range(30):
        engine = CorrelationEngine([rule])
        seconds, events = 0.0, []
        for _ in range(200):
            seconds += generator.choice([0, 0.5, 1, 2, 5, 10, 20, 40])
            events.append((seconds, generator.randrange(3), generator.choice("abcdef")))
        found = [number for number, (moment, index, user) in enumerate(events)
                 if engine.observe(ids[index], {"host": "h", "user": user}, at(moment))]
        assert found == reference_hits(kind, threshold, 30, events)
        assert found  # the stream is dense enough to fire: the comparison means something


def test_shuffling_within_the_lateness_does_not_change_whether_a_burst_is_seen() -> None:
    """Whether some 5-minute stretch holds 3 failures does not depend on the order the matches arrive
    in, as long as none is more than the lateness behind."""
    rule = load_one(BRUTE_FORCE)
    generator = random.Random(11)
    outcomes = set()
    for _ in range(300):
        times = sorted(generator.uniform(0, 3000) for _ in range(generator.randrange(2, 9)))
        shuffled = sorted(times, key=lambda moment: moment + generator.uniform(0, 200))  # < timespan behind
        in_order, late = CorrelationEngine([rule]), CorrelationEngine([rule])
        fired = bool(feed(in_order, FAILED_ID, [(moment, logon_failure()) for moment in times]))
        assert bool(feed(late, FAILED_ID, [(moment, logon_failure()) for moment in shuffled])) == fired
        assert late.stats.too_late == 0 or fired
        outcomes.add(fired)
    assert outcomes == {True, False}


def test_gt_needs_one_more_than_gte() -> None:
    rule = load_one(BRUTE_FORCE.replace("gte: 3", "gt: 3"))
    engine = CorrelationEngine([rule])
    assert feed(engine, FAILED_ID, [(second, logon_failure()) for second in range(4)]) == [3]


def test_group_by_keeps_sources_apart() -> None:
    engine = CorrelationEngine([load_one(BRUTE_FORCE)])
    events = [(0, logon_failure("10.0.0.1")), (1, logon_failure("10.0.0.2")), (2, logon_failure("10.0.0.1")),
              (3, logon_failure("10.0.0.2")), (4, logon_failure("10.0.0.1"))]
    hits = [hit for seconds, event in events for hit in engine.observe(FAILED_ID, event, at(seconds))]
    assert [hit.group for hit in hits] == [(("IpAddress", "10.0.0.1"),)]


def test_a_group_by_field_missing_from_the_event_does_not_count() -> None:
    engine = CorrelationEngine([load_one(BRUTE_FORCE)])
    events = [(0, logon_failure()), (1, logon_failure(ip=None)), (2, logon_failure(ip=None)),
              (3, {"IpAddress": None, "EventID": 4625})]
    assert feed(engine, FAILED_ID, events) == []
    assert engine.stats.missing_field == 3
    assert feed(engine, FAILED_ID, [(4, logon_failure()), (5, logon_failure())]) == [1]


def test_group_by_reads_dotted_paths_like_the_rule_engine() -> None:
    rule = load_one(BRUTE_FORCE.replace("- IpAddress", "- source.ip"))
    engine = CorrelationEngine([rule])
    events = [(second, {"source": {"ip": "198.51.100.7"}}) for second in range(3)]
    assert feed(engine, FAILED_ID, events) == [2]


def test_matches_may_arrive_out_of_order_within_the_timespan() -> None:
    engine = CorrelationEngine([load_one(BRUTE_FORCE)])
    # 400 and 100 are 300 apart: 250 arriving last completes the window [100, 400].
    assert feed(engine, FAILED_ID, [(400, logon_failure()), (100, logon_failure()), (250, logon_failure())]) == [2]
    engine = CorrelationEngine([load_one(BRUTE_FORCE)], lateness=timedelta(minutes=10))
    # A late match in no timespan-long window with two others does not complete one.
    assert feed(engine, FAILED_ID, [(400, logon_failure()), (350, logon_failure()), (99, logon_failure())]) == []
    assert engine.stats.too_late == 0  # 99 was within the lateness, just in no window with 400
    assert feed(engine, FAILED_ID, [(300, logon_failure())]) == [0]  # [99, 399] or [300, 600]: both hold 3 now


def test_a_match_later_than_the_lateness_allows_is_dropped() -> None:
    engine = CorrelationEngine([load_one(BRUTE_FORCE)], lateness=timedelta(seconds=30))
    assert feed(engine, FAILED_ID, [(100, logon_failure()), (110, logon_failure()), (60, logon_failure())]) == []
    assert engine.stats.too_late == 1


def test_a_late_match_from_a_window_that_already_fired_is_ignored() -> None:
    engine = CorrelationEngine([load_one(BRUTE_FORCE)])
    events = [(10, logon_failure()), (20, logon_failure()), (30, logon_failure()),  # fires
              (15, logon_failure()), (40, logon_failure()), (50, logon_failure())]
    assert feed(engine, FAILED_ID, events) == [2]
    assert engine.stats.too_late == 1
    assert feed(engine, FAILED_ID, [(60, logon_failure())]) == [0]


def test_lt_is_decided_when_the_window_has_closed() -> None:
    rule = load_one(BRUTE_FORCE.replace("gte: 3", "lt: 3"))
    engine = CorrelationEngine([rule], lateness=timedelta(0))
    assert feed(engine, FAILED_ID, [(0, logon_failure("10.0.0.1")), (10, logon_failure("10.0.0.1"))]) == []
    assert feed(engine, FAILED_ID, [(second, logon_failure("10.0.0.2")) for second in (0, 10, 20)]) == []
    assert engine.advance(at(300)) == []  # not closed yet: the window ends at 300
    hits = engine.advance(at(301))
    assert [(hit.group, hit.value) for hit in hits] == [((("IpAddress", "10.0.0.1"),), 2)]
    assert engine.groups() == 2 and engine.advance(at(1000)) == [] and engine.groups() == 0


def test_eq_closes_the_window_when_a_later_match_arrives() -> None:
    rule = load_one(BRUTE_FORCE.replace("gte: 3", "eq: 2"))
    engine = CorrelationEngine([rule], lateness=timedelta(0))
    hits = [engine.observe(FAILED_ID, logon_failure(), at(seconds)) for seconds in (0, 299, 301)]
    assert [len(found) for found in hits] == [0, 0, 1]
    assert (hits[2][0].value, hits[2][0].first, hits[2][0].last) == (2, at(0), at(299))


# value_count --------------------------------------------------------------------------------------------


def test_value_count_counts_distinct_values_not_matches() -> None:
    engine = CorrelationEngine([load_one(SPRAY)])
    assert feed(engine, FAILED_ID, [(second, logon_failure(user="admin")) for second in range(5)]) == []
    hits = [engine.observe(FAILED_ID, logon_failure(user=user), at(10)) for user in ("bob", "carol")]
    assert [len(found) for found in hits] == [0, 1]
    assert hits[1][0].value == 3 and hits[1][0].values == ("admin", "bob", "carol")


def test_value_count_ignores_matches_without_the_field_and_respects_the_timespan() -> None:
    engine = CorrelationEngine([load_one(SPRAY)])
    no_user = {"IpAddress": "203.0.113.5", "EventID": 4625}
    assert feed(engine, FAILED_ID, [(0, logon_failure(user="a")), (1, no_user), (2, logon_failure(user="b"))]) == []
    assert feed(engine, FAILED_ID, [(301, logon_failure(user="c"))]) == []  # "a" is now outside the timespan
    assert feed(engine, FAILED_ID, [(302, logon_failure(user="d"))]) == [0]


# temporal -----------------------------------------------------------------------------------------------


def recon_event(command: str, computer: str = "ws01") -> dict[str, str]:
    return {"CommandLine": command, "Computer": computer}


def run_recon(text: str, commands: Sequence[tuple[float, str, str]]) -> list[CorrelationHit]:
    """The base rules run on each event with the Sigma engine, their matches observed."""
    rules = base(RECON)
    correlations, errors = load_correlations([text], rules)
    assert errors == []
    engine, correlator = Engine(rules), CorrelationEngine(correlations)
    hits: list[CorrelationHit] = []
    for seconds, command, computer in commands:
        event = recon_event(command, computer)
        for rule in engine.match(event):
            hits.extend(correlator.observe(rule.id, event, at(seconds)))
    return hits


def test_temporal_fires_when_every_rule_matched_in_any_order() -> None:
    [hit] = run_recon(temporal("temporal"), [(0, "net user /domain", "ws01"), (30, "whoami /all", "ws01")])
    assert hit.value == 2 and set(hit.values) == {WHOAMI_ID, NET_USER_ID}
    assert run_recon(temporal("temporal"), [(0, "whoami", "ws01"), (10, "whoami", "ws01")]) == []
    assert run_recon(temporal("temporal"), [(0, "whoami", "ws01"), (61, "net user x", "ws01")]) == []
    assert run_recon(temporal("temporal"), [(0, "whoami", "ws01"), (5, "net user x", "ws02")]) == []


def test_temporal_ordered_needs_the_listed_order() -> None:
    ordered = temporal("temporal_ordered")
    assert len(run_recon(ordered, [(0, "whoami", "ws01"), (30, "net user x", "ws01")])) == 1
    assert run_recon(ordered, [(0, "net user x", "ws01"), (30, "whoami", "ws01")]) == []
    assert len(run_recon(ordered, [(0, "net user x", "ws01"), (10, "whoami", "ws01"),
                                   (20, "net user y", "ws01")])) == 1
    # out of order arrival: the events' times decide, not the order they came in
    assert len(run_recon(ordered, [(30, "net user x", "ws01"), (0, "whoami", "ws01")])) == 1


def test_one_event_matching_both_rules_completes_an_unordered_temporal_correlation() -> None:
    assert len(run_recon(temporal("temporal"), [(0, "whoami & net user", "ws01")])) == 1


def test_one_event_matching_two_listed_rules_counts_once_for_event_count() -> None:
    """As a backend's ``rule_a OR rule_b | count`` would count it."""
    condition = "    timespan: 1m\n    condition:\n        gte: 2\n"
    counting = temporal("event_count").replace("    timespan: 1m\n", condition)
    assert run_recon(counting, [(0, "whoami & net user", "ws01")]) == []
    assert len(run_recon(counting, [(0, "whoami & net user", "ws01"), (0, "whoami & net user", "ws01")])) == 1
    assert len(run_recon(counting, [(0, "whoami", "ws01"), (0, "net user", "ws01")])) == 1


# aliases and names --------------------------------------------------------------------------------------

ALIASED = correlation("""
correlation:
    type: event_count
    rules:
        - failed_logon
        - ssh_failed
    group-by:
        - source
    timespan: 10m
    aliases:
        source:
            failed_logon: IpAddress
            ssh_failed: source.ip
    condition:
        gte: 3
""")


def test_aliases_map_one_group_field_onto_each_rules_own_field() -> None:
    rule = load_one(ALIASED, FAILED_LOGON, SSH_FAILED)
    engine = CorrelationEngine([rule])
    ssh = {"message": "Failed password for root", "source": {"ip": "203.0.113.5"}}
    assert engine.observe(FAILED_ID, logon_failure("203.0.113.5"), at(0)) == []
    assert engine.observe("ssh_failed", ssh, at(10)) == []  # observed by the rule's name
    assert engine.observe(SSH_ID, {"message": "x", "source": {"ip": "198.51.100.1"}}, at(20)) == []
    [hit] = engine.observe(SSH_ID, ssh, at(30))
    assert hit.group == (("source", "203.0.113.5"),)
    assert [event.rule for event in hit.events] == [FAILED_ID, SSH_ID, SSH_ID]


def test_a_correlation_of_a_correlation_sees_the_inner_hits() -> None:
    outer = correlation("""
correlation:
    type: event_count
    rules:
        - brute_force
    group-by:
        - IpAddress
    timespan: 1h
    condition:
        gte: 2
""", title="Repeated brute force", cid="c0ffee00-0000-4000-8000-0000000000aa")
    inner = BRUTE_FORCE.replace("status: test", "name: brute_force\nstatus: test")
    correlations, errors = load_correlations([inner, outer], base(FAILED_LOGON))
    assert errors == [] and correlations[1].rules[0].correlation
    engine = CorrelationEngine(correlations)
    hits = [hit for second in range(6) for hit in engine.observe(FAILED_ID, logon_failure(), at(second))]
    assert [hit.correlation.title for hit in hits] == ["Test correlation", "Test correlation", "Repeated brute force"]


def test_a_correlation_of_a_correlation_that_did_not_load_is_an_error_too() -> None:
    inner = BRUTE_FORCE.replace("status: test", "name: brute_force\nstatus: test").replace("failed_logon", "gone")
    outer = BRUTE_FORCE.replace("- failed_logon", "- brute_force").replace("c0ffee00", "c0ffee05")
    correlations, errors = load_correlations([inner, outer], base(FAILED_LOGON))
    assert correlations == []
    assert "refers to rule 'gone'" in errors[0].reason
    assert "refers to correlation 'brute_force', which did not load" in errors[1].reason
    assert (errors[1].path, errors[1].line) == ("<inline 2>", 7)


# State across a restart, bounded memory -----------------------------------------------------------------


def test_a_window_survives_a_restart_and_fires_after_it() -> None:
    rules = [load_one(BRUTE_FORCE), load_one(temporal("temporal"), RECON)]
    engine = CorrelationEngine(rules)
    assert feed(engine, FAILED_ID, [(0, logon_failure()), (60, logon_failure())]) == []
    assert engine.observe(WHOAMI_ID, recon_event("whoami"), at(50)) == []
    data = engine.snapshot()
    assert json.loads(data)["format"] == 1
    restored = CorrelationEngine.restore(rules, data)
    assert restored.groups() == 2
    assert feed(restored, FAILED_ID, [(120, logon_failure())]) == [0]
    assert len(restored.observe(NET_USER_ID, recon_event("net user"), at(70))) == 1
    # a fired window stays fired across a restart too: a late match from it (90) is ignored
    again = CorrelationEngine.restore(rules, restored.snapshot())
    events = [(90, logon_failure()), (130, logon_failure()), (140, logon_failure()), (150, logon_failure())]
    assert feed(again, FAILED_ID, events) == [3]
    assert again.stats.too_late == 1


def test_an_open_lt_window_survives_a_restart_and_is_judged_after_it() -> None:
    rule = load_one(BRUTE_FORCE.replace("gte: 3", "lte: 2"))
    engine = CorrelationEngine([rule])
    feed(engine, FAILED_ID, [(0, logon_failure()), (100, logon_failure())])
    restored = CorrelationEngine.restore([rule], engine.snapshot())
    assert restored.advance(at(600)) == []  # the window [0, 300] may still get matches until 600
    [hit] = restored.advance(at(601))
    assert (hit.value, hit.first, hit.last) == (2, at(0), at(100))


def test_the_state_of_a_changed_correlation_is_dropped_on_restore() -> None:
    rule = load_one(BRUTE_FORCE)
    engine = CorrelationEngine([rule])
    feed(engine, FAILED_ID, [(0, logon_failure()), (60, logon_failure())])
    changed = load_one(BRUTE_FORCE.replace("timespan: 5m", "timespan: 10m"))
    restored = CorrelationEngine.restore([changed], engine.snapshot())
    assert restored.groups() == 0
    assert feed(restored, FAILED_ID, [(120, logon_failure())]) == []
    retitled = load_one(BRUTE_FORCE.replace("Test correlation", "Renamed"))  # not a change that matters
    assert CorrelationEngine.restore([retitled], engine.snapshot()).groups() == 1


@pytest.mark.parametrize("data", [b"", b"not json", b'{"format": 99}', b'{"format": 1, "correlations": 3}',
                                  b'{"format": 1, "watermark": null, "correlations": '
                                  b'[{"id": "x", "fingerprint": "y", "groups": [[1]]}]}'])
def test_unreadable_state_gives_an_empty_engine_not_a_crash(data: bytes) -> None:
    rule = load_one(BRUTE_FORCE)
    engine = CorrelationEngine.restore([rule], data)
    assert engine.groups() == 0
    assert feed(engine, FAILED_ID, [(second, logon_failure()) for second in range(3)]) == [2]


def test_groups_are_capped_the_least_recently_seen_going_first() -> None:
    engine = CorrelationEngine([load_one(BRUTE_FORCE)])
    for number in range(100_000):
        engine.observe(FAILED_ID, logon_failure(f"10.{number >> 16}.{(number >> 8) & 255}.{number & 255}"),
                       at(number / 1000))
    assert engine.groups() == 10_000
    assert engine.stats.evicted_groups == 90_000
    newest, oldest = "10.1.134.159", "10.0.0.0"  # numbers 99,999 and 0
    assert feed(engine, FAILED_ID, [(100, logon_failure(newest)), (100, logon_failure(newest))]) == [1]
    assert feed(engine, FAILED_ID, [(100, logon_failure(oldest)), (100, logon_failure(oldest))]) == []
    assert len(engine.snapshot()) < 5_000_000


def test_matches_kept_per_group_are_capped() -> None:
    engine = CorrelationEngine([load_one(temporal("temporal"), RECON)], max_events=50)
    for second in range(5_000):
        engine.observe(WHOAMI_ID, recon_event("whoami"), at(second / 100))
    [saved] = json.loads(engine.snapshot())["correlations"]
    [[_key, _latest, _fired, _start, _extra, entries]] = saved["groups"]
    assert len(entries) == 50
    assert len(engine.observe(NET_USER_ID, recon_event("net user"), at(50))) == 1


def test_advance_drops_expired_windows() -> None:
    engine = CorrelationEngine([load_one(BRUTE_FORCE)])
    feed(engine, FAILED_ID, [(0, logon_failure("10.0.0.1")), (500, logon_failure("10.0.0.2"))])
    assert engine.advance() == [] and engine.groups() == 2  # up to the newest match: both can still fire
    engine.advance(at(601))  # 10.0.0.1's match is older than timespan + lateness
    assert engine.groups() == 1
    assert feed(engine, FAILED_ID, [(620, logon_failure("10.0.0.1")), (630, logon_failure("10.0.0.1"))]) == []


def test_observing_a_rule_no_correlation_uses_costs_nothing_and_holds_nothing() -> None:
    engine = CorrelationEngine([load_one(BRUTE_FORCE)])
    assert engine.observe("some-other-rule", logon_failure(), at(0)) == []
    assert engine.groups() == 0 and engine.stats.observed == 0
    assert engine.rule_keys == {FAILED_ID, "failed_logon"}


def test_naive_times_are_taken_as_utc() -> None:
    engine = CorrelationEngine([load_one(BRUTE_FORCE)])
    naive = T0.replace(tzinfo=None)
    hits = [engine.observe(FAILED_ID, logon_failure(), naive + timedelta(seconds=s)) for s in range(3)]
    assert hits[2][0].first == T0


# Real events ----------------------------------------------------------------------------------------------

KERBEROS_RULES = """\
title: Kerberos TGT request for an unknown account
id: 8d0c8e6e-1f0a-4c1e-9a52-0b4f3c2d1e01
name: kerberos_unknown_account
status: test
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4768
        Status: '0x6'
    condition: selection
level: low
---
title: Kerberos pre-authentication failed
id: 8d0c8e6e-1f0a-4c1e-9a52-0b4f3c2d1e02
name: kerberos_bad_password
status: test
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4771
        Status: '0x18'
    condition: selection
level: low
"""
KERBEROS_SPRAY = """\
title: Kerberos password spray from one address
id: 8d0c8e6e-1f0a-4c1e-9a52-0b4f3c2d1e03
status: test
correlation:
    type: value_count
    rules:
        - kerberos_unknown_account
        - kerberos_bad_password
    group-by:
        - IpAddress
    timespan: 1m
    condition:
        gte: 5
        field: TargetUserName
level: high
"""


def test_a_kerberos_password_spray_recorded_by_a_domain_controller(evtx_dir: Path) -> None:
    """EVTX-ATTACK-SAMPLES' spray: seven unknown accounts (4768, 0x6) and two bad passwords (4771, 0x18)
    from 172.16.66.1 within 11 ms. The fifth account completes the window; the four after it do not
    make five again."""
    path = evtx_dir / "EVTX-ATTACK-SAMPLES" / "Credential Access" / "kerberos_pwd_spray_4771.evtx"
    if not path.is_file():
        pytest.skip(f"{path} is not in the shared EVTX sample set")
    rules = base(KERBEROS_RULES)
    correlations, errors = load_correlations([KERBEROS_RULES + "---\n" + KERBEROS_SPRAY], rules)
    assert errors == []
    engine, correlator = Engine(rules), CorrelationEngine(correlations)
    hits = [hit for event in evtx_events(path) for rule in engine.match(event)
            for hit in correlator.observe(rule.id, event, event["@timestamp"])]
    [hit] = hits
    assert hit.group == (("IpAddress", "172.16.66.1"),)
    assert hit.values == ("HD01", "admin", "svc-02", "HD02", "svc-01")
    assert [event.ref for event in hit.events] == ["887107", "887108", "887109", "887110", "887111"]
    assert correlator.stats.observed == 9
