"""Hypothesis fuzzing shared by the text-parser tests: random bytes and mutations of valid lines.

parse_one may only raise ParseError; run_batch never raises and keeps one result per record, in order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.siem.parsers.base import ParseContext, ParseError, ParseFailure, Parser, run_batch

FUZZ_CTX = ParseContext(
    source="fuzz", timezone=ZoneInfo("Asia/Shanghai"), received_at=datetime(2026, 1, 3, 8, 0, tzinfo=UTC)
)


def mutations(samples: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """A valid line with bytes replaced, inserted, deleted or the line cut short."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        line = bytearray(draw(st.sampled_from(list(samples))))
        for _ in range(draw(st.integers(1, 6))):
            op = draw(st.sampled_from(["replace", "insert", "delete", "cut", "special"]))
            pos = draw(st.integers(0, max(len(line) - 1, 0)))
            if op == "replace" and line:
                line[pos] = draw(st.integers(0, 255))
            elif op == "insert":
                line[pos:pos] = draw(st.binary(min_size=1, max_size=8))
            elif op == "delete" and line:
                del line[pos: pos + draw(st.integers(1, 8))]
            elif op == "cut":
                del line[pos:]
            else:
                line[pos:pos] = draw(st.sampled_from(
                    [b"|", b"=", b"\\", b"[", b"]", b'"', b"<", b">", b" ", b"\t", b"\xff", b"\x00", b"^", b":"]))
        return bytes(line)

    return mutate()


def check_never_raises(parser: Parser, samples: Sequence[bytes]) -> None:
    inputs = st.one_of(st.binary(max_size=300), mutations(samples), st.text(max_size=200).map(str.encode))

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records=st.lists(inputs, min_size=1, max_size=4))
    def run(records: list[bytes]) -> None:
        for raw in records:
            with contextlib.suppress(ParseError):
                parser.parse_one(raw, FUZZ_CTX)
            parser.sniff(raw)
        results = run_batch(parser, records, FUZZ_CTX)
        assert len(results) == len(records)
        for raw, result in zip(records, results, strict=True):
            if isinstance(result, ParseFailure):
                assert result.raw == raw
                assert not result.reason.startswith("parser error"), result.reason

    run()
