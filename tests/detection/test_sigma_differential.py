"""Differential test: Vigil's engine against pySigma's SQLite backend, rule by rule and event by event.

For every rule of SigmaHQ ``rules/windows``, the set of (rule id, file, EventRecordID) pairs Vigil
reports must equal the set pySigma's SQLite backend finds when its queries run in SQLite over the same
events (``sqlite_reference`` says how the table is built). Three event sets:

- ``evtx``: every record of ``../shared/data/evtx`` (EVTX-ATTACK-SAMPLES), the set the issue names;
- ``regression``: every record of SigmaHQ's ``regression_data`` files, made to trigger Windows rules;
- ``security-twins``: the Sysmon process-creation and registry events of ``evtx`` rewritten as the
  Security 4688 / 4657 events Windows writes for the same activity (with those events' field names),
  so that the Security variants of ``process_creation`` and ``registry_*`` rules meet more than the
  42 real 4688 records of the sample set.

Files are named by their path under their folder (two sample files share a name). The only pairs
allowed to differ are in ``KNOWN_DIFFERENCES``, each with its reason: limits of the SQLite reference,
not of the engine (``docs/detection-differences.md`` explains each kind). An entry that stops differing
fails too, so the list cannot go stale. Rules pySigma cannot convert (keyword rules: SQLite has no
full-text search here) have no reference and are not compared.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.detection import sqlite_reference
from tests.detection.conftest import REGRESSION_DIR, absent_reason
from tests.detection.evtx_events import evtx_events
from tests.detection.sqlite_reference import Conversion, Pair

from vigil.detection.sigma import Engine, LoadResult, load_rules

# The architecture notes (§4) and this set: 2,407 Windows rules, 2,395 convert to SQLite, 12 keyword rules.
WINDOWS_RULES = 2407
KEYWORD_RULES = 12
SYSMON = "Microsoft-Windows-Sysmon/Operational"
# pysigma-pipeline-windows' field names for the Security events of the same activity.
PROCESS_CREATION_TWIN = {"Image": "NewProcessName", "ParentImage": "ParentProcessName", "LogonId": "SubjectLogonId"}
REGISTRY_TWIN = {"Image": "ProcessName", "TargetObject": "ObjectName", "Details": "NewValue"}
REGISTRY_OPERATION = {12: "New registry value created", 13: "Existing registry value modified"}


@dataclass(frozen=True)
class KnownDifference:
    side: str  # "reference": only pySigma/SQLite matches; "vigil": only Vigil matches
    reason: str


_NUMBER_AS_TEXT = KnownDifference(
    "vigil",
    "the event holds DestPort/SourcePort as the text '3389' (EVTX UnicodeString); the rule's 3389 is an SQLite"
    " integer and a typeless column compares 3389 = '3389' as false; Sigma (and Vigil) compare by value",
)
_RDP_TUNNEL = (
    "5bed80b6-b3e8-428e-a3ae-d3c757589e41",
    "EVTX-ATTACK-SAMPLES/Command and Control/DE_RDP_Tunnel_5156.evtx",
)

# (rule id, file, EventRecordID) -> why the two sides legitimately disagree on it.
KNOWN_DIFFERENCES: dict[Pair, KnownDifference] = {
    (*_RDP_TUNNEL, 227727): _NUMBER_AS_TEXT,
    (*_RDP_TUNNEL, 227728): _NUMBER_AS_TEXT,
    (*_RDP_TUNNEL, 227741): _NUMBER_AS_TEXT,
    (*_RDP_TUNNEL, 227742): _NUMBER_AS_TEXT,
}


@dataclass(frozen=True)
class Samples:
    events: list[Mapping[str, Any]]
    keys: list[tuple[str, int]]  # (file under its folder, EventRecordID), one per event


@dataclass(frozen=True)
class Outcome:
    """Both sides' pairs for one event set."""

    expected: set[Pair]  # pySigma's SQLite backend
    found: set[Pair]  # Vigil, restricted to the rules pySigma converts
    query_errors: dict[str, str]


def read_samples(folder: Path, prefix: str = "") -> Samples:
    events: list[Mapping[str, Any]] = []
    keys: list[tuple[str, int]] = []
    for path in sorted(folder.rglob("*.evtx")):
        name = prefix + path.relative_to(folder).as_posix()
        for event in evtx_events(path):
            events.append(event)
            keys.append((name, int(event["EventRecordID"])))
    return Samples(events, keys)


def security_twin(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Security 4688 / 4657 event for a Sysmon process creation / registry event (None for others)."""
    if event.get("Channel") != SYSMON or event.get("EventID") not in (1, 12, 13):
        return None
    native = sqlite_reference.native_fields(event)
    if event["EventID"] == 1:
        twin = {PROCESS_CREATION_TWIN.get(name, name): value for name, value in native.items()}
        twin["EventID"] = 4688
    else:
        twin = {REGISTRY_TWIN.get(name, name): value for name, value in native.items()}
        twin["EventID"] = 4657
        twin["OperationType"] = REGISTRY_OPERATION[event["EventID"]]
    twin["Channel"] = "Security"
    return twin


@pytest.fixture(scope="module")
def evtx_samples(evtx_dir: Path) -> Samples:
    return read_samples(evtx_dir)


@pytest.fixture(scope="module")
def conversion(windows_rules_dir: Path) -> Conversion:
    return sqlite_reference.convert_rules(windows_rules_dir)


@pytest.fixture(scope="module")
def vigil_rules(windows_rules_dir: Path) -> LoadResult:
    return load_rules([windows_rules_dir])


@pytest.fixture(scope="module")
def engine(vigil_rules: LoadResult) -> Engine:
    return Engine(vigil_rules.rules)


def compare(samples: Samples, conversion: Conversion, engine: Engine) -> Outcome:
    connection = sqlite_reference.events_table(samples.events)
    try:
        reference = sqlite_reference.run_rules(connection, conversion.rules, samples.keys)
    finally:
        connection.close()
    compared = {rule.id for rule in conversion.rules}
    found: set[Pair] = set()
    for key, rules in zip(samples.keys, engine.match_many(samples.events), strict=True):
        found.update((rule.id, *key) for rule in rules if rule.id in compared)
    return Outcome(reference.pairs, found, reference.query_errors)


def test_pysigma_converts_every_windows_rule_but_the_keyword_rules(conversion: Conversion) -> None:
    assert len(conversion.rules) + len(conversion.failures) == WINDOWS_RULES
    assert [failure for failure in conversion.failures if "Value-only" not in failure.reason] == []
    assert len(conversion.failures) == KEYWORD_RULES


def test_vigil_loads_every_windows_rule(vigil_rules: LoadResult) -> None:
    assert [str(error) for error in vigil_rules.errors] == []
    assert len(vigil_rules.rules) == WINDOWS_RULES


def test_vigil_matches_pysigma_on_the_evtx_samples(
    evtx_samples: Samples, conversion: Conversion, engine: Engine
) -> None:
    outcome = compare(evtx_samples, conversion, engine)
    assert_same_pairs(outcome, conversion, known=KNOWN_DIFFERENCES)
    # A broken harness would agree on nothing; this set gives over a thousand pairs.
    assert len(outcome.expected) > 1000


def test_vigil_matches_pysigma_on_the_regression_files(conversion: Conversion, engine: Engine) -> None:
    reason = absent_reason(REGRESSION_DIR, "SigmaHQ's regression data")
    if reason is not None:
        pytest.skip(reason)
    outcome = compare(read_samples(REGRESSION_DIR, "regression_data/"), conversion, engine)
    assert_same_pairs(outcome, conversion, known={})
    assert len(outcome.expected) > 200


def test_vigil_matches_pysigma_on_security_twins_of_sysmon_events(
    evtx_samples: Samples, conversion: Conversion, engine: Engine
) -> None:
    twins = Samples([], [])
    for event, key in zip(evtx_samples.events, evtx_samples.keys, strict=True):
        twin = security_twin(event)
        if twin is not None:
            twins.events.append(twin)
            twins.keys.append(key)
    outcome = compare(twins, conversion, engine)
    assert_same_pairs(outcome, conversion, known={})
    assert len(outcome.expected) > 500


def test_an_engine_from_its_image_matches_as_the_engine_does(evtx_samples: Samples, vigil_rules: LoadResult,
                                                             engine: Engine) -> None:
    """What `vigil hunt` keeps on disk (``EngineImage``, pickled) gives back an engine with the same matches."""
    image = pickle.loads(pickle.dumps(Engine(vigil_rules.rules).image()))
    restored = Engine.from_image(image)
    expected = [[rule.id for rule in found] for found in engine.match_many(evtx_samples.events)]
    assert [[rule.id for rule in found] for found in restored.match_many(evtx_samples.events)] == expected
    assert sum(map(len, expected)) > 1000
    assert all(rule.yaml == "" and rule.variants == () for rule in restored.rules)  # kept small
    with pytest.raises(ValueError, match="another Python"):
        Engine.from_image(dataclasses.replace(image, python="2.7.18"))


def assert_same_pairs(outcome: Outcome, conversion: Conversion, *, known: Mapping[Pair, KnownDifference]) -> None:
    assert outcome.query_errors == {}, "SQLite refused some converted queries"
    only_reference = outcome.expected - outcome.found
    only_vigil = outcome.found - outcome.expected
    unexplained_reference = {pair for pair in only_reference if _side(known, pair) != "reference"}
    unexplained_vigil = {pair for pair in only_vigil if _side(known, pair) != "vigil"}
    stale = sorted(
        pair
        for pair, entry in known.items()
        if pair not in (only_reference if entry.side == "reference" else only_vigil)
    )
    titles = {rule.id: rule.title for rule in conversion.rules}
    summary = _summary(outcome, only_reference, only_vigil, unexplained_reference, unexplained_vigil, titles)
    assert not unexplained_reference and not unexplained_vigil, summary
    assert not stale, f"KNOWN_DIFFERENCES entries that no longer differ (remove them): {stale}"


def _side(known: Mapping[Pair, KnownDifference], pair: Pair) -> str | None:
    entry = known.get(pair)
    return entry.side if entry is not None else None


def _summary(
    outcome: Outcome,
    only_reference: set[Pair],
    only_vigil: set[Pair],
    unexplained_reference: set[Pair],
    unexplained_vigil: set[Pair],
    titles: Mapping[str, str],
) -> str:
    lines = [
        f"pairs in both: {len(outcome.expected & outcome.found)}; only pySigma/SQLite: {len(only_reference)}"
        f" ({len(unexplained_reference)} unexplained); only Vigil: {len(only_vigil)}"
        f" ({len(unexplained_vigil)} unexplained)",
    ]
    for label, pairs in (("only pySigma/SQLite", unexplained_reference), ("only Vigil", unexplained_vigil)):
        by_rule: defaultdict[str, list[Pair]] = defaultdict(list)
        for pair in sorted(pairs):
            by_rule[pair[0]].append(pair)
        for rule_id, rule_pairs in sorted(by_rule.items(), key=lambda item: -len(item[1])):
            examples = ", ".join(f"{file}#{record}" for _, file, record in rule_pairs[:3])
            more = f" (+{len(rule_pairs) - 3} more)" if len(rule_pairs) > 3 else ""
            lines.append(f"  {label}: {rule_id} {titles.get(rule_id, '?')!r}: {len(rule_pairs)}: {examples}{more}")
    return "\n".join(lines)
