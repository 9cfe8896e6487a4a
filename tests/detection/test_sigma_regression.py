"""SigmaHQ's regression data as a conformance suite: each case's rule fires on its own ``.evtx`` file
with the expected number of matching events.

A case is a folder of ``regression_data/`` holding ``info.yml`` (the rule's id and title under
``rule_metadata``, and under ``regression_tests_info`` the ``.evtx`` file and ``match_count``) and the
file. The rule is found through its own ``regression_tests_path`` line, which names the case's
``info.yml`` (a rule can move or be renamed without its case folder following). A test without
``match_count`` (about 30 of them) states only that the rule must fire: at least one match.
Cases whose test is not an ``.evtx`` file (one Cisco case, commented out upstream) are not collected.

Four upstream counts are wrong: their file holds more events the rule plainly matches than
``match_count`` says, and pySigma's SQLite backend (``sqlite_reference``) finds the same larger number.
Those cases assert the corrected count, listed in ``UPSTREAM_COUNT_ERRATA`` with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest
import yaml
from tests.detection import sqlite_reference
from tests.detection.conftest import REGRESSION_DIR, SIGMA_DIR, absent_reason
from tests.detection.evtx_events import evtx_events

from vigil.detection.sigma import Engine, load_rules

RULE_FOLDERS = ("rules", "rules-emerging-threats", "rules-threat-hunting")
_REGRESSION_PATH = re.compile(r"^regression_tests_path:\s*(\S+)\s*$", re.MULTILINE)
_RULE_ID = re.compile(r"^id:\s*(\S+)\s*$", re.MULTILINE)


# case folder -> (the count pySigma's SQLite backend also finds, why upstream's is wrong)
UPSTREAM_COUNT_ERRATA: dict[str, tuple[int, str]] = {
    "file_event_win_anydesk_artefact": (
        3,
        "says 1, but records 14985, 14988 and 14990 all create files under AppData\\Roaming\\AnyDesk\\user.conf*",
    ),
    "file_event_win_cred_dump_tools_dropped_files": (
        3,
        "says 1, but procdump64.exe, procdump64a.exe and procdump.exe are each dropped (records 26359, 26366, 26373)",
    ),
    "registry_set_change_security_zones": (
        3,
        "says 1, but all 3 records set a ZoneMap\\Domains value to DWORD 2, which the filter does not exclude",
    ),
    "registry_set_disable_administrative_share": (
        2,
        "says 1, but the file sets both AutoShareServer and AutoShareWks to 0 (records 28656599, 28656618)",
    ),
}


@dataclass(frozen=True)
class Case:
    name: str  # the case folder's name (the rule file's stem)
    rule_id: str
    title: str
    evtx: Path
    match_count: int | None  # None: "fires at least once"


@lru_cache(maxsize=1)
def rules_by_regression_path() -> dict[str, Path]:
    """``regression_data/.../info.yml`` -> the rule file naming it."""
    found: dict[str, Path] = {}
    for folder in RULE_FOLDERS:
        for path in (SIGMA_DIR / folder).rglob("*.yml"):
            text = path.read_text(encoding="utf-8")
            for match in _REGRESSION_PATH.finditer(text):
                found[match.group(1)] = path
    return found


def cases() -> list[Case]:
    found: list[Case] = []
    for info_path in sorted(REGRESSION_DIR.rglob("info.yml")):
        info = yaml.safe_load(info_path.read_text(encoding="utf-8"))
        rule = info["rule_metadata"][0]
        for test in info.get("regression_tests_info") or []:
            if test.get("type") != "evtx":
                continue
            count = test.get("match_count")
            if info_path.parent.name in UPSTREAM_COUNT_ERRATA:
                count = UPSTREAM_COUNT_ERRATA[info_path.parent.name][0]
            found.append(Case(info_path.parent.name, str(rule["id"]), rule["title"], SIGMA_DIR / test["path"], count))
    return found


def case_params() -> list[object]:
    reason = absent_reason(REGRESSION_DIR, "SigmaHQ's regression data")
    if reason is not None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-regression-data")]
    return [pytest.param(case, id=case.name) for case in cases()]


def rule_file(case: Case) -> Path:
    """The rule file whose ``regression_tests_path`` names this case, checked against the case's rule id."""
    info = case.evtx.parent / "info.yml"
    path = rules_by_regression_path().get(info.relative_to(SIGMA_DIR).as_posix())
    assert path is not None, f"no rule under {', '.join(RULE_FOLDERS)} has regression_tests_path {info}"
    declared = _RULE_ID.search(path.read_text(encoding="utf-8"))
    assert declared is not None and declared.group(1) == case.rule_id, f"{path} is not rule {case.rule_id}"
    return path


def reference_count(case: Case, rule: Path, folder: Path) -> int:
    """How many of the case's events pySigma's SQLite backend matches with the rule (see sqlite_reference)."""
    (folder / rule.name).write_bytes(rule.read_bytes())
    conversion = sqlite_reference.convert_rules(folder)
    (folder / rule.name).unlink()
    assert conversion.failures == [], f"pySigma does not convert {rule}: {conversion.failures}"
    events = evtx_events(case.evtx)
    connection = sqlite_reference.events_table(events)
    try:
        matches = sqlite_reference.run_rules(
            connection, conversion.rules, [(case.name, index) for index in range(len(events))]
        )
    finally:
        connection.close()
    assert matches.query_errors == {}
    return len(matches.pairs)


def test_the_regression_data_is_all_there() -> None:
    reason = absent_reason(REGRESSION_DIR, "SigmaHQ's regression data")
    if reason is not None:
        pytest.skip(reason)
    # The README says 202 .evtx cases; fewer would mean a partial copy silently shrinking the suite.
    assert len(cases()) == 202


@pytest.mark.parametrize("case", case_params())
def test_rule_fires_on_its_regression_file(case: Case) -> None:
    path = rule_file(case)
    loaded = load_rules([path])
    assert loaded.errors == [], f"{path} does not load: {[str(error) for error in loaded.errors]}"
    (rule,) = loaded.rules
    assert rule.id == case.rule_id
    events = evtx_events(case.evtx)
    matched = [
        event.get("EventRecordID")
        for event, rules in zip(events, Engine([rule]).match_many(events), strict=True)
        if any(hit.id == rule.id for hit in rules)
    ]
    where = f"{case.title} ({path.relative_to(SIGMA_DIR)}) on {case.evtx.name}: matched records {matched}"
    if case.match_count is None:
        assert matched, f"{where}; expected at least one of {len(events)} events"
    else:
        assert len(matched) == case.match_count, f"{where}; expected {case.match_count} of {len(events)} events"


def test_pysigma_agrees_with_the_expected_counts(tmp_path: Path) -> None:
    """The expected counts, the four errata included, are what pySigma's SQLite backend finds too."""
    reason = absent_reason(REGRESSION_DIR, "SigmaHQ's regression data")
    if reason is not None:
        pytest.skip(reason)
    disagreeing = []
    for case in cases():
        found = reference_count(case, rule_file(case), tmp_path)
        if (found == 0) if case.match_count is None else (found != case.match_count):
            disagreeing.append(f"{case.name}: pySigma finds {found}, expected {case.match_count or 'at least 1'}")
    assert disagreeing == []
