"""ATT&CK coverage (vigil.detection.coverage): rules and alerts per technique, roll-up of sub-techniques,
tactic totals, the ids outside the ATT&CK data, and the Navigator layer's shape.

Rules and alerts are stored rows (``DetectionRule``, ``Alert``), made here directly or, for the alert a
Sigma match raises, through the detection's own ``record_matches``. The helpers are shared with the API
and page tests of the coverage.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from vigil.core.db import Database, Scope
from vigil.detection.alerts import Match, record_matches
from vigil.detection.attack import attack_data
from vigil.detection.coverage import CoverageReport, TechniqueCoverage, coverage_report, navigator_layer
from vigil.detection.models import Alert, DetectionRule, RulePack
from vigil.detection.sigma import rule_from_yaml

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_serial = itertools.count(1)


def add_rule(database: Database, title: str, tags: list[str], *, enabled: bool = True, level: str = "high") -> int:
    """A stored rule of a throw-away pack; its id."""
    with database.transaction(Scope.system()) as session:
        pack = session.scalar(select(RulePack).where(RulePack.name == "coverage-tests"))
        if pack is None:
            pack = RulePack(name="coverage-tests", source="tests")
            session.add(pack)
            session.flush()
        row = DetectionRule(pack_id=pack.id, rule_uid=str(uuid.uuid4()), title=title, level=level, status="test",
                            tags=tags, enabled=enabled, yaml="")
        session.add(row)
        session.flush()
        return row.id


def add_alert(database: Database, unit_id: int, techniques: list[str], *, last_seen: datetime = NOW,
              count: int = 1, title: str = "test alert") -> int:
    with database.transaction(Scope.system()) as session:
        row = Alert(unit_id=unit_id, rule_uid=str(uuid.uuid4()), title=title, level="high",
                    dedup_key=f"coverage-{next(_serial)}", techniques=techniques, count=count,
                    first_seen=last_seen - timedelta(minutes=5), last_seen=last_seen, event={})
        session.add(row)
        session.flush()
        return row.id


def report(database: Database, *, days: int = 30, units: set[int], platform: str | None = None) -> CoverageReport:
    with database.transaction(Scope.system()) as session:
        return coverage_report(session, days=days, alert_units=units, platform=platform, now=NOW)


def cell(found: CoverageReport, technique_id: str, tactic: str | None = None) -> TechniqueCoverage:
    """The matrix cell of a technique (under ``tactic``, or the first tactic that has it)."""
    for column in found.tactics:
        if tactic is None or column.shortname == tactic:
            for technique in column.techniques:
                if technique.id == technique_id:
                    return technique
    raise AssertionError(f"{technique_id} is not on the matrix under {tactic or 'any tactic'}")


def tactic_of(found: CoverageReport, shortname: str) -> Any:
    return next(column for column in found.tactics if column.shortname == shortname)


def test_an_empty_store_covers_nothing_but_shows_the_whole_matrix(world: Any) -> None:
    found = report(world.database, units={world.hq})
    shortnames = [t.shortname for t in found.tactics]
    assert (shortnames[0], shortnames[-1], len(shortnames)) == ("reconnaissance", "impact", 14)
    assert found.techniques_total == sum(1 for t in attack_data().techniques.values() if not t.is_subtechnique)
    assert found.techniques_covered == 0 and found.alerts == 0 and found.share == 0
    assert found.unknown == []
    assert cell(found, "T1059").name == "Command and Scripting Interpreter"
    assert cell(found, "T1059").rules == []


def test_a_sub_technique_rule_covers_its_technique_once(world: Any) -> None:
    powershell = add_rule(world.database, "Encoded PowerShell", ["attack.execution", "attack.t1059.001"])
    both = add_rule(world.database, "Script interpreter", ["attack.t1059", "attack.t1059.001", "attack.t1059.003"])
    found = report(world.database, units={world.hq})

    technique = cell(found, "T1059", "execution")
    assert sorted(rule.id for rule in technique.rules) == sorted([powershell, both])  # each rule once
    subs = {sub.id: sub for sub in technique.subtechniques}
    assert set(subs) == {"T1059.001", "T1059.003"}
    assert subs["T1059.001"].name == "PowerShell"
    assert len(subs["T1059.001"].rules) == 2 and len(subs["T1059.003"].rules) == 1
    execution = tactic_of(found, "execution")
    assert execution.covered == 1
    assert execution.share == pytest.approx(1 / execution.total)
    assert found.techniques_covered == 1 and found.enabled_rules == 2 and found.rules_with_techniques == 2


def test_a_disabled_rule_does_not_count(world: Any) -> None:
    add_rule(world.database, "Off", ["attack.t1003.001"], enabled=False)
    add_rule(world.database, "Untagged", ["attack.execution"])
    found = report(world.database, units={world.hq})
    assert cell(found, "T1003").rules == []
    assert found.techniques_covered == 0
    assert found.enabled_rules == 1 and found.rules_with_techniques == 0


def test_a_technique_of_several_tactics_counts_in_each_and_once_overall(world: Any) -> None:
    add_rule(world.database, "Scheduled task", ["attack.persistence", "attack.t1053.005"])
    found = report(world.database, units={world.hq})
    for tactic in ("execution", "persistence", "privilege-escalation"):
        assert len(cell(found, "T1053", tactic).rules) == 1
        assert tactic_of(found, tactic).covered == 1
    assert found.techniques_covered == 1
    assert found.share == pytest.approx(1 / found.techniques_total)


def test_alerts_of_the_window_and_of_the_viewer_units_count(world: Any) -> None:
    add_alert(world.database, world.branch_a, ["T1059.001"], count=4)
    add_alert(world.database, world.branch_a, ["T1059.001", "T1059"])  # one alert, both ids: T1059 counts it once
    add_alert(world.database, world.branch_a, ["T1059.001"], last_seen=NOW - timedelta(days=31))  # outside 30 d
    add_alert(world.database, world.branch_b, ["T1059.001"])  # another unit

    mine = report(world.database, units={world.branch_a})
    technique = cell(mine, "T1059")
    assert technique.alerts == 2 and technique.matches == 5
    assert technique.rules == []  # alerts without an enabled rule: a gap, still on the map
    assert mine.alerts == 2 and mine.techniques_alerted == 1 and mine.techniques_covered == 0
    assert tactic_of(mine, "execution").alerted == 1

    assert cell(report(world.database, units={world.branch_a}, days=60), "T1059").alerts == 3
    assert cell(report(world.database, units={world.branch_b}), "T1059").alerts == 1
    assert cell(report(world.database, units={world.branch_a, world.branch_b}), "T1059").alerts == 3
    assert report(world.database, units=set()).alerts == 0


def test_an_alert_raised_by_a_sigma_match_counts_for_its_rule_techniques(world: Any) -> None:
    text = """
title: Whoami run
id: 5c1a7d52-0d4e-4b9b-9b55-2f4a1f0c2a11
status: test
tags: [attack.discovery, attack.t1033]
logsource: {category: process_creation, product: windows}
detection:
    selection: {Image|endswith: '\\\\whoami.exe'}
    condition: selection
level: medium
"""
    rule = rule_from_yaml(text)
    event = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": r"C:\Windows\whoami.exe",
             "Computer": "ws1", "@timestamp": (NOW - timedelta(hours=1)).isoformat()}
    result = record_matches(world.database, [Match(rule=rule, event=event, unit_id=world.branch_a, source="test")],
                            now=NOW)
    assert result.raised == 1
    found = report(world.database, units={world.branch_a})
    assert cell(found, "T1033", "discovery").alerts == 1
    assert cell(found, "T1033", "discovery").name == "System Owner/User Discovery"


def test_ids_outside_the_attack_data_are_listed_not_dropped(world: Any) -> None:
    old = add_rule(world.database, "Old PowerShell tag", ["attack.t1086"])
    typo = add_rule(world.database, "Mistyped tag", ["attack.t9999", "attack.t1059.001"])
    add_alert(world.database, world.hq, ["T9999"])
    found = report(world.database, units={world.hq})

    unknown = {item.id: item for item in found.unknown}
    assert set(unknown) == {"T1086", "T9999"}
    assert unknown["T1086"].status == "revoked"
    assert unknown["T1086"].name == "PowerShell"
    assert unknown["T1086"].replaced_by == "T1059.001"
    assert [rule.id for rule in unknown["T1086"].rules] == [old]
    assert unknown["T9999"].status == "unknown" and unknown["T9999"].replaced_by is None
    assert [rule.id for rule in unknown["T9999"].rules] == [typo] and unknown["T9999"].alerts == 1
    # The revoked id is not moved onto the matrix: only the rule tagged with the live id covers T1059.
    assert [rule.id for rule in cell(found, "T1059").rules] == [typo]
    assert found.techniques_covered == 1


def test_a_platform_narrows_the_matrix(world: Any) -> None:
    add_rule(world.database, "Cloud login", ["attack.t1078.004"])
    everything = report(world.database, units={world.hq})
    windows = report(world.database, units={world.hq}, platform="Windows")
    assert 0 < windows.techniques_total < everything.techniques_total
    ids = {t.id for column in windows.tactics for t in column.techniques}
    assert all("Windows" in attack_data().techniques[i].platforms for i in ids)
    assert "T1059" in ids


# --- the Navigator layer -----------------------------------------------------------------------------


def assert_valid_layer(layer: dict[str, Any]) -> None:
    """The shape of an ATT&CK Navigator layer, format 4.5 (layers/spec/v4.5/layerformat.md)."""
    data = attack_data()
    assert isinstance(layer["name"], str) and layer["name"]
    assert layer["domain"] == "enterprise-attack"
    assert layer["versions"]["layer"] == "4.5"
    assert tuple(int(x) for x in layer["versions"]["navigator"].split(".")) >= (4, 9, 0)
    assert layer["versions"]["attack"] == data.version.split(".")[0]
    assert layer["sorting"] in (0, 1, 2, 3)
    assert layer["layout"]["layout"] in ("side", "flat", "mini")
    assert layer["layout"]["aggregateFunction"] in ("average", "min", "max", "sum")
    assert layer["layout"]["expandedSubtechniques"] in ("none", "all", "annotated")
    gradient = layer["gradient"]
    assert len(gradient["colors"]) >= 2 and all(c.startswith("#") for c in gradient["colors"])
    assert gradient["maxValue"] > gradient["minValue"]
    assert all(set(item) == {"label", "color"} for item in layer["legendItems"])
    assert all(isinstance(m["name"], str) and isinstance(m["value"], str) for m in layer["metadata"])
    tactics = {t.shortname for t in data.tactics}
    for entry in layer["techniques"]:
        technique = data.technique(entry["techniqueID"])
        assert technique is not None, f"{entry['techniqueID']} is not an ATT&CK technique"
        assert entry["techniqueID"] == technique.id
        if "tactic" in entry:
            assert entry["tactic"] in tactics and entry["tactic"] in technique.tactics, entry
        assert isinstance(entry["score"], int | float)
        assert isinstance(entry["comment"], str) and isinstance(entry["enabled"], bool)
        assert all(set(link) == {"label", "url"} and link["url"].startswith("https://") for link in entry["links"])


def test_the_layer_scores_techniques_by_enabled_rules(world: Any) -> None:
    add_rule(world.database, "Encoded PowerShell", ["attack.t1059.001"])
    add_rule(world.database, "Cmd", ["attack.t1059.003"])
    add_rule(world.database, "Old tag", ["attack.t1086"])
    add_alert(world.database, world.hq, ["T1003.001"], count=2)
    layer = navigator_layer(report(world.database, units={world.hq}))
    assert_valid_layer(layer)

    entries = {(e["techniqueID"], e.get("tactic")): e for e in layer["techniques"]}
    assert entries[("T1059", "execution")]["score"] == 2
    assert entries[("T1059", "execution")]["showSubtechniques"] is True
    assert entries[("T1059.001", "execution")]["score"] == 1
    assert "enabled rules: 2" in entries[("T1059", "execution")]["comment"]
    assert "Encoded PowerShell" in entries[("T1059", "execution")]["comment"]
    dumping = entries[("T1003", "credential-access")]
    assert dumping["score"] == 0 and "alerts in the last 30 days: 1" in dumping["comment"] and dumping["color"]
    assert not any(e["techniqueID"] == "T1086" for e in layer["techniques"])  # revoked: not a Navigator id
    assert any(m["name"] == "not in ATT&CK data" and "T1086" in m["value"] for m in layer["metadata"])
    assert layer["gradient"]["maxValue"] == 2
