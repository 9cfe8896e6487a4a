"""STIX patterns too complex to index are kept as `stix-pattern` indicators and evaluated on each event."""

from __future__ import annotations

from pathlib import Path

from vigil.intel.indicators import IndicatorType, ParsedIndicator
from vigil.intel.matcher import IndicatorIndex
from vigil.intel.store import IntelStore

ENCODED_POWERSHELL = ("[process:name = 'powershell.exe' AND process:command_line LIKE '%-enc%']")
BEACON = "[domain-name:value = 'a.example.net'] FOLLOWEDBY [ipv4-addr:value = '198.51.100.9'] WITHIN 60 SECONDS"


def test_a_pattern_indicator_matches_the_event_it_describes(tmp_path: Path) -> None:
    store = IntelStore(tmp_path / "indicators.duckdb")
    try:
        store.merge([ParsedIndicator(IndicatorType.PATTERN, ENCODED_POWERSHELL, pattern=ENCODED_POWERSHELL),
                     ParsedIndicator(IndicatorType.PATTERN, BEACON, pattern=BEACON)], source="stix")
        entries = list(store.active())
    finally:
        store.close()
    index = IndicatorIndex.build(entries)
    assert len(index.patterns) == 1 and index.skipped == 1  # FOLLOWEDBY cannot be decided on one event
    hits = index.match({"process": {"name": "powershell.exe", "command_line": "powershell -nop -enc SQBFAFgA"}})
    assert [(h.type, h.value, h.field) for h in hits] == [("stix-pattern", ENCODED_POWERSHELL, "stix-pattern")]
    assert index.match({"Image": r"C:\Windows\System32\cmd.exe", "CommandLine": "cmd /c whoami"}) == []
    assert index.match({"process": {"name": "powershell.exe", "command_line": "powershell -File x.ps1"}}) == []
