"""Hypothesis fuzzing shared by the JSON-family parser tests: random bytes, random JSON values and
mutations of valid documents (values swapped for random JSON, keys dropped, bytes damaged).

parse_one may only raise ParseError and must return an event with an aware UTC @timestamp; run_batch
never raises and keeps one result per record, in order.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.siem.parsers.base import ParseContext, ParseError, ParseFailure, Parser, run_batch

FUZZ_CTX = ParseContext(
    source="fuzz", timezone=ZoneInfo("Asia/Shanghai"), received_at=datetime(2026, 1, 3, 8, 0, tzinfo=UTC)
)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["-", "", "0x1f", "10.0.0.1", "::1", "2024-02-30T00:00:00", "1e400", "9" * 30])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


def mutated_documents(samples: Sequence[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """A valid document with some of its values (or the whole of it) replaced by random JSON, or keys removed."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        document: Any = copy.deepcopy(draw(st.sampled_from(list(samples))))
        for _ in range(draw(st.integers(1, 5))):
            paths = _paths(document)
            path = draw(st.sampled_from(paths))
            if not path:
                document = draw(JSON_VALUES)
                continue
            parent = document
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()) and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(JSON_VALUES)
        return orjson.dumps(document)

    return mutate()


def damaged_bytes(samples: Sequence[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    @st.composite
    def damage(draw: st.DrawFn) -> bytes:
        line = bytearray(orjson.dumps(draw(st.sampled_from(list(samples)))))
        for _ in range(draw(st.integers(1, 4))):
            pos = draw(st.integers(0, max(len(line) - 1, 0)))
            op = draw(st.sampled_from(["replace", "insert", "cut"]))
            if op == "replace" and line:
                line[pos] = draw(st.integers(0, 255))
            elif op == "insert":
                line[pos:pos] = draw(st.binary(min_size=1, max_size=6))
            else:
                del line[pos:]
        return bytes(line)

    return damage()


def fuzz_inputs(samples: Sequence[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    return (
        st.binary(max_size=300)
        | JSON_VALUES.map(orjson.dumps)
        | mutated_documents(samples)
        | damaged_bytes(samples)
    )


def check_one(parser: Parser, raw: bytes) -> None:
    try:
        event = parser.parse_one(raw, FUZZ_CTX)
    except ParseError as exc:
        assert str(exc)
        return
    stamp = event["@timestamp"]
    assert isinstance(stamp, datetime)
    assert stamp.utcoffset() == timedelta(0)
    orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS)


def fuzz_parser(parser: Parser, samples: Sequence[dict[str, Any]]) -> None:
    """Run the fuzz: every input either parses to a sane event or is a ParseError; batches never raise."""

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records=st.lists(fuzz_inputs(samples), min_size=1, max_size=4))
    def run(records: list[bytes]) -> None:
        for raw in records:
            check_one(parser, raw)
        results = run_batch(parser, records, FUZZ_CTX)
        assert len(results) == len(records)
        for result in results:
            if isinstance(result, ParseFailure):
                assert not result.reason.startswith("parser error"), result.reason
                assert result.parser == parser.name

    run()
