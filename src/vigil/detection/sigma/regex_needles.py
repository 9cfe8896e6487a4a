"""The literal text every match of a regular expression must contain, for the engine's prefilter.

A rule whose only test is ``CommandLine|re: '...\\\\powershell\\.exe.+-enc'`` would otherwise run its
expression on every event of its log source; with the literal ``\\powershell.exe`` as its needle, the
engine's Aho-Corasick scan finds the few values worth running it on. The needle is only a necessary
condition (the expression is always run to confirm), so it may be short or missing but never wrong:

* it comes from a run of consecutive literal characters that every match consumes (not inside an
  alternation, an optional or repeated-zero-times part, or a lookaround);
* the scan looks for it, case-folded, in the case-folded value; under case-insensitive matching a
  run stops at ``i``, ``I``, ``İ`` and ``ı`` (they match each other there but fold to other text);
* an expression Python's own parser cannot read (syntax only the ``regex`` module knows), or reads
  with a warning that the two may differ, gets none.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

sre_parse: Any
sre_constants: Any
try:  # Python's own parser is private (re._parser since 3.11): without it no expression gets a needle
    sre_parse = importlib.import_module("re._parser")
    sre_constants = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - another Python
    sre_parse = sre_constants = None

# What Python's parser warns about (possible set operations; non-ASCII group names), where the regex
# module may read the expression differently: such an expression gets no needle (nor prints a warning).
_PARSER_WARNS = re.compile(r"\[\[|--|&&|~~|\|\|")
# A needle shorter than this finds nearly every value: no help to the prefilter.
MIN_NEEDLE = 2
# The only letters whose case-insensitive matches fold to other text (checked over the whole BMP, for
# both ``re`` and ``regex``): İ and ı match i and I, but fold to "i̇" and "ı".
_NO_CASE_FOLD_LETTERS = frozenset("iIİı")


def regex_needle(pattern: str, flags: int) -> str:
    """The longest literal text every match contains, case-folded; "" when none is known."""
    if sre_parse is None or _PARSER_WARNS.search(pattern) or (not pattern.isascii() and "(?" in pattern):
        return ""
    try:
        parsed = sre_parse.parse(pattern, flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL))
    except (re.error, RecursionError, OverflowError, ValueError, TypeError):
        return ""
    # Any inline flag group may switch case-insensitive matching on for a part: treated as if it did.
    ignorecase = bool(flags & re.IGNORECASE) or "(?" in pattern
    runs: list[str] = []
    _required(list(parsed), ignorecase, runs)
    best = max(runs, key=len, default="")
    return best.casefold() if len(best) >= MIN_NEEDLE else ""


def _required(items: list[tuple[Any, Any]], ignorecase: bool, runs: list[str]) -> None:
    """Add to ``runs`` the literal runs of a sequence that every match of it consumes."""
    current: list[str] = []

    def close() -> None:
        if current:
            runs.append("".join(current))
            current.clear()

    for op, argument in items:
        if op is sre_constants.LITERAL:
            char = chr(argument)
            if ignorecase and char in _NO_CASE_FOLD_LETTERS:
                close()
            else:
                current.append(char)
        elif op is sre_constants.AT:
            continue  # an anchor consumes nothing: the run goes on across it
        elif op is sre_constants.SUBPATTERN:
            close()
            _required(list(argument[-1]), ignorecase, runs)
        elif op is sre_constants.ATOMIC_GROUP:
            close()
            _required(list(argument), ignorecase, runs)
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT):
            close()
            low, _high, body = argument
            if low >= 1:  # consumed at least once
                _required(list(body), ignorecase, runs)
        else:  # alternation, classes, any character, lookarounds, back references: nothing certain
            close()
    close()
