"""Staging lines: how indicators travel from Python to the indicator store's DuckDB merge.

One tab-separated line per indicator: its position (the later of two statements of a value wins), the
value, first and last seen, then the *tail*: type, confidence, tags, decay policy and the rarely set
fields as one JSON column. Rows of a feed mostly share their tail, so a reader that knows which cells
make it (the CSV reader) computes a tail once per distinct cells and writes the rest of each line itself
(``StagingParser``); every other source goes through ``Stager.line``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

import duckdb
import orjson

from vigil.intel.indicators import IndicatorType, ItemError, ParsedIndicator

# The staging file's columns, in line order, and their types in DuckDB.
STAGE_FIELDS = (("pos", "BIGINT"), ("value", "VARCHAR"), ("first_seen", "TIMESTAMPTZ"), ("last_seen", "TIMESTAMPTZ"),
                ("type", "VARCHAR"), ("confidence", "INTEGER"), ("tags", "VARCHAR"), ("policy", "INTEGER"),
                ("extra", "VARCHAR"))
# How DuckDB's read_csv reads a staging file.
STAGE_CSV = ("delim='\t', header=false, quote='', escape='', nullstr='', auto_detect=false, columns={"
             + ", ".join(f"'{name}': '{kind}'" for name, kind in STAGE_FIELDS) + "}")
SEP = "\x1f"  # joins list items in the staging file; never inside a validated value
_CLEAN = str.maketrans({"\t": " ", "\n": " ", "\r": " ", SEP: " "})
_MEMO_SIZE = 100_000


@dataclass(frozen=True)
class DecayPolicy:
    """How a source's word on an indicator fades: its score starts at ``base_score`` (0..100) and reaches 0
    after ``lifetime_days``; ``decay_speed`` > 1 keeps it high longer; below ``threshold`` it stops counting."""

    base_score: float = 80.0
    lifetime_days: float = 30.0
    decay_speed: float = 1.0
    threshold: float = 20.0


def staged_time(value: datetime | None) -> str:
    """A time as the staging file writes it (empty: none)."""
    if value is None:
        return ""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


class Stager:
    """Turns parsed indicators into staging lines fast. A feed repeats the same tags and policy on every
    line, so those are joined once and looked up after; the fields most feeds leave empty travel together
    as one JSON column, written only when one of them is set."""

    def __init__(self, policies: Mapping[str, DecayPolicy]) -> None:
        self.policies = policies
        self.scores: list[tuple[float, float, float, float]] = []  # staged rows name one by its position
        self._policy_of: dict[tuple[str, int | None], int] = {}
        self._tags: dict[tuple[str, ...], str] = {}
        self._times: dict[datetime, str] = {}  # feeds repeat their dates

    def _policy(self, kind: str, confidence: int | None) -> int:
        policy = self.policies.get(kind, self.policies.get("*", DecayPolicy()))
        base = float(confidence) if confidence is not None else policy.base_score
        self.scores.append((base, policy.lifetime_days, policy.decay_speed, policy.threshold))
        self._policy_of[(kind, confidence)] = position = len(self.scores) - 1
        return position

    def _join(self, tags: tuple[str, ...]) -> str:
        self._tags[tags] = text = SEP.join(tag.translate(_CLEAN) for tag in tags)  # cleaned before joining
        return text

    def tail(self, item: ParsedIndicator) -> str:
        """What follows the value and the times on an item's line: type, confidence, tags, policy, extra."""
        tags = (self._tags.get(item.tags) or self._join(item.tags)) if item.tags else ""
        policy = self._policy_of.get((item.type, item.confidence))
        if policy is None:
            policy = self._policy(item.type, item.confidence)
        extra = ""
        if (item.external_id or item.tlp or item.valid_from or item.valid_until or item.kill_chain or item.related
                or item.description or item.pattern):
            extra = orjson.dumps({
                "external_id": item.external_id, "tlp": item.tlp, "valid_from": staged_time(item.valid_from) or None,
                "valid_until": staged_time(item.valid_until) or None, "kill_chain": item.kill_chain,
                "related": [orjson.dumps({"kind": r.kind, "name": r.name, "external_id": r.external_id}).decode()
                            for r in item.related],
                "description": item.description[:4000], "pattern": item.pattern}).decode()
        confidence = item.confidence
        # A StrEnum formats as its value: no descriptor look-up per line.
        return f"{item.type}\t{'' if confidence is None else confidence}\t{tags}\t{policy}\t{extra}"

    def line(self, position: int, item: ParsedIndicator) -> str:
        times = self._times
        first = item.first_seen
        first_text = "" if first is None else (times.get(first) or self.time(first))
        last = item.last_seen
        last_text = "" if last is None else (times.get(last) or self.time(last))
        value = item.value if item.type is not IndicatorType.PATTERN else item.value.translate(_CLEAN)
        return f"{position}\t{value}\t{first_text}\t{last_text}\t{self.tail(item)}"

    def time(self, value: datetime) -> str:
        text = staged_time(value)
        if len(self._times) < _MEMO_SIZE:
            self._times[value] = text
        return text


class NativeRows(Protocol):
    """Rows staged by DuckDB itself, in the indicator store's transaction (``feeds.tabular_native``)."""

    def stage_rows(self, db: duckdb.DuckDBPyConnection, folder: Path) -> str | None:
        """A relation (SQL) of the source's rows with ``STAGE_FIELDS``, as ``Stager.line`` would stage them;
        the rows it refuses go to the caller's ``refuse``, in order; ``folder`` is for files of its own. None
        when this source is not one it can read: then nothing was staged or refused, and nothing is left."""
        ...

    def release(self, db: duckdb.DuckDBPyConnection) -> None:
        """Drop what ``stage_rows`` made, once its relation is read."""
        ...


@runtime_checkable
class StagingParser(Protocol):
    """A format that can write staging lines itself, without an item per row. ``stage`` yields exactly the
    lines ``Stager.line`` would write for the items ``parse`` yields (each passed through ``finish``: the
    feed's defaults), positioned by their line numbers; the items ``parse`` would yield as errors go to
    ``refuse`` instead, in order."""

    def stage(self, source: BinaryIO, options: Mapping[str, Any], stager: Stager, *,
              finish: Callable[[ParsedIndicator], ParsedIndicator],
              refuse: Callable[[ItemError], None]) -> Iterator[str]:
        ...

    def native(self, source: BinaryIO, options: Mapping[str, Any], stager: Stager, *,
               finish: Callable[[ParsedIndicator], ParsedIndicator],
               refuse: Callable[[ItemError], None]) -> NativeRows | None:
        """DuckDB's own reading of the source, where the format has one for it (the store then reads no line
        of ``stage``); None: ``stage``'s lines are read."""
        ...
