"""Differential test: Vigil's engine against pySigma's SQLite backend, rule by rule and event by event.

For every rule of SigmaHQ ``rules/windows`` over every record of ``../shared/data/evtx``, the set of
(rule id, file, EventRecordID) pairs Vigil reports must equal the set pySigma's SQLite backend finds
when its queries run in SQLite over the same events (``sqlite_reference`` says how the table is built).
Files are named by their path under the EVTX folder: two files of the set share a name.

The only pairs allowed to differ are listed in ``KNOWN_DIFFERENCES``, each with its reason; they are
limits of the SQLite reference, not of the engine, and ``docs/detection-differences.md`` explains each
kind. An entry that stops differing fails too, so the list cannot go stale. Rules pySigma cannot
convert (keyword rules: SQLite has no full-text search here) have no reference and are not compared.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.detection import sqlite_reference
from tests.detection.evtx_events import evtx_events
from tests.detection.sqlite_reference import Conversion, Pair, ReferenceMatches

from vigil.detection.sigma import Engine, LoadResult, load_rules

# The architecture notes (§4) and this set: 2,407 Windows rules, 2,395 convert to SQLite, 12 keyword rules.
WINDOWS_RULES = 2407
KEYWORD_RULES = 12


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
    keys: list[tuple[str, int]]  # (file under the EVTX folder, EventRecordID), one per event


@dataclass(frozen=True)
class Reference:
    conversion: Conversion
    matches: ReferenceMatches


@dataclass(frozen=True)
class Vigil:
    loaded: LoadResult
    pairs: set[Pair]


@pytest.fixture(scope="module")
def samples(evtx_dir: Path) -> Samples:
    events: list[Mapping[str, Any]] = []
    keys: list[tuple[str, int]] = []
    for path in sorted(evtx_dir.rglob("*.evtx")):
        name = path.relative_to(evtx_dir).as_posix()
        for event in evtx_events(path):
            events.append(event)
            keys.append((name, int(event["EventRecordID"])))
    return Samples(events, keys)


@pytest.fixture(scope="module")
def reference(windows_rules_dir: Path, samples: Samples) -> Reference:
    conversion = sqlite_reference.convert_rules(windows_rules_dir)
    connection = sqlite_reference.events_table(samples.events)
    try:
        matches = sqlite_reference.run_rules(connection, conversion.rules, samples.keys)
    finally:
        connection.close()
    return Reference(conversion, matches)


@pytest.fixture(scope="module")
def vigil(windows_rules_dir: Path, samples: Samples) -> Vigil:
    loaded = load_rules([windows_rules_dir])
    pairs: set[Pair] = set()
    for key, rules in zip(samples.keys, Engine(loaded.rules).match_many(samples.events), strict=True):
        pairs.update((rule.id, *key) for rule in rules)
    return Vigil(loaded, pairs)


def test_pysigma_converts_every_windows_rule_but_the_keyword_rules(reference: Reference) -> None:
    conversion = reference.conversion
    assert len(conversion.rules) + len(conversion.failures) == WINDOWS_RULES
    assert [failure for failure in conversion.failures if "Value-only" not in failure.reason] == []
    assert len(conversion.failures) == KEYWORD_RULES
    assert reference.matches.query_errors == {}


def test_vigil_loads_every_windows_rule(vigil: Vigil) -> None:
    assert [str(error) for error in vigil.loaded.errors] == []
    assert len(vigil.loaded.rules) == WINDOWS_RULES


def test_vigil_matches_the_same_events_as_pysigma(reference: Reference, vigil: Vigil) -> None:
    compared = {rule.id for rule in reference.conversion.rules}
    expected = reference.matches.pairs
    found = {pair for pair in vigil.pairs if pair[0] in compared}
    only_reference = expected - found
    only_vigil = found - expected
    unexplained_reference = {p for p in only_reference if _allowed(p, "reference") is None}
    unexplained_vigil = {p for p in only_vigil if _allowed(p, "vigil") is None}
    stale = {
        pair
        for pair, known in KNOWN_DIFFERENCES.items()
        if pair not in (only_reference if known.side == "reference" else only_vigil)
    }
    titles = {rule.id: rule.title for rule in reference.conversion.rules}
    summary = _summary(expected & found, only_reference, only_vigil, unexplained_reference, unexplained_vigil, titles)
    assert not unexplained_reference and not unexplained_vigil, summary
    assert not stale, f"KNOWN_DIFFERENCES entries that no longer differ (remove them): {sorted(stale)}"
    # The comparison must have had something to compare (a broken harness would agree on nothing).
    assert len(expected) > 1000


def _allowed(pair: Pair, side: str) -> KnownDifference | None:
    known = KNOWN_DIFFERENCES.get(pair)
    return known if known is not None and known.side == side else None


def _summary(
    both: set[Pair],
    only_reference: set[Pair],
    only_vigil: set[Pair],
    unexplained_reference: set[Pair],
    unexplained_vigil: set[Pair],
    titles: Mapping[str, str],
) -> str:
    lines = [
        f"pairs in both: {len(both)}; only pySigma/SQLite: {len(only_reference)}"
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
