"""The prefilter's needle of a regular expression: text every match contains, so that a value without it
is skipped without running the expression. A wrong needle would hide a match: checked on hand-picked
cases, against SigmaHQ's own expressions, and on random expressions and values (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import pytest
import regex
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.detection.sigma.engine import Engine
from vigil.detection.sigma.regex_needles import regex_needle

from .sigma_support import rule_from_yaml

SIGMA = Path(__file__).resolve().parents[3] / "shared" / "data" / "sigma" / "rules"
NOCASE = regex.IGNORECASE


@pytest.mark.parametrize(("pattern", "flags", "needle"), [
    (r"\\powershell\.exe.+-enc", 0, "\\powershell.exe"),
    (r"^cmd\.exe /c (whoami|net)\s", 0, "cmd.exe /c "),
    (r"a(bc|de)fgh", 0, "fgh"),  # the alternation is not certain, what follows it is
    (r"(abc)?xyz", 0, "xyz"),  # an optional part is not required
    (r"(DOWNLOAD)+String", 0, "download"),  # repeated at least once: required (case-folded)
    (r"[a-z]{3}\.exe", 0, ".exe"),
    (r"MIMIKATZ", NOCASE, "katz"),  # case-insensitive: a run stops at i (İ and ı match it but fold elsewhere)
    (r"(?i)mimikatz", 0, "katz"),  # an inline flag counts as case-insensitive
    (r"\p{L}abc", 0, ""),  # syntax only the regex module reads: no needle rather than a wrong one
    (r"a|b", 0, ""),
    (r"x", 0, ""),  # too short to help
])
def test_the_needle_is_the_longest_certain_literal(pattern: str, flags: int, needle: str) -> None:
    assert regex_needle(pattern, flags) == needle


def test_a_case_insensitive_expression_is_still_found_through_a_dotless_or_dotted_i() -> None:
    rule = rule_from_yaml("""
title: admin tool
logsource: {product: windows, category: process_creation}
detection:
    selection:
        CommandLine|re|i: 'admintool'
    condition: selection
""")
    engine = Engine([rule])
    for written in ("ADMINTOOL", "admİntool", "admıntool", "AdminTool"):
        expected = regex.search("admintool", written, regex.IGNORECASE) is not None
        event = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "CommandLine": written}
        assert bool(engine.match(event)) is expected, written


def test_most_sigmahq_expressions_get_a_needle() -> None:
    """What the speed-up rests on: most of SigmaHQ's expressions have a needle for the prefilter. (That no
    match is lost through one is what the random tests below and the differential test against SQLite
    over the EVTX set check.)"""
    if not SIGMA.is_dir():
        pytest.skip(f"the SigmaHQ rules are not at {SIGMA}")
    patterns: set[str] = set()
    for path in SIGMA.rglob("*.yml"):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            _collect(document.get("detection") if isinstance(document, dict) else None, patterns)
    assert len(patterns) > 100
    with_needle = 0
    for pattern in patterns:
        needle = regex_needle(pattern, NOCASE)
        if needle:
            with_needle += 1
            assert len(needle) >= 2
    assert with_needle > len(patterns) // 2  # most SigmaHQ expressions get one


def _collect(node: object, patterns: set[str], regex_field: bool = False) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _collect(value, patterns, isinstance(key, str) and "|re" in key)
    elif isinstance(node, list):
        for item in node:
            _collect(item, patterns, regex_field)
    elif regex_field and isinstance(node, str):
        patterns.add(node)


ALPHABET = "abcİıIiK.\\-+*?()|[]{}^$ 0123"


@settings(max_examples=600, deadline=None)
@given(pattern=st.text(alphabet=ALPHABET, min_size=1, max_size=12),
       text=st.text(alphabet="abcİıIiK. -0123xyz", max_size=20),
       ignorecase=st.booleans())
def test_a_value_without_the_needle_never_matches(pattern: str, text: str, ignorecase: bool) -> None:
    flags = regex.IGNORECASE if ignorecase else 0
    try:
        compiled = regex.compile(pattern, flags)
    except (regex.error, OverflowError):
        return
    needle = regex_needle(pattern, flags)
    if needle and needle not in text.casefold():
        assert compiled.search(text) is None, (pattern, text, needle)


@settings(max_examples=300, deadline=None)
@given(literal=st.text(alphabet="abcİıIiK. -xyz", min_size=2, max_size=8),
       before=st.text(alphabet="abcİıIiK. -0123", max_size=6), after=st.text(alphabet="abc. -0123", max_size=6),
       ignorecase=st.booleans())
def test_text_the_expression_matches_holds_its_needle(literal: str, before: str, after: str,
                                                      ignorecase: bool) -> None:
    """The same property from the other side: build a matching value first."""
    flags = regex.IGNORECASE if ignorecase else 0
    pattern = f"[0-9]*{regex.escape(literal)}.?"
    text = before + (literal.upper() if ignorecase else literal) + after
    if regex.search(pattern, text, flags) is None:
        return
    assert regex_needle(pattern, flags) in text.casefold()
