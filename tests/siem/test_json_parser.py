"""The generic JSON parser: ECS pass-through, dotted keys, timestamps, bad records kept as failures."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from vigil.siem.parsers.base import ParseContext, ParseError, ParseFailure, run_batch
from vigil.siem.parsers.json import JsonParser, split_records

from .json_fuzz import fuzz_parser

CTX = ParseContext(source="app", timezone=ZoneInfo("Asia/Shanghai"), received_at=datetime(2026, 1, 3, 8, 0, tzinfo=UTC))
PARSER = JsonParser()

ECS_DOC = {
    "@timestamp": "2026-01-02T10:11:12.345Z",
    "source": {"ip": "203.0.113.9", "port": 51515},
    "destination.ip": "10.0.0.5",
    "destination.port": 443,
    "event": {"category": ["network"], "module": "nginx"},
    "event.action": "connection",
    "message": "hello",
}


def test_ecs_document_passes_through_with_dotted_keys_nested() -> None:
    event = PARSER.parse_one(orjson.dumps(ECS_DOC), CTX)
    assert event["@timestamp"] == datetime(2026, 1, 2, 10, 11, 12, 345000, tzinfo=UTC)
    assert event["source"] == {"ip": "203.0.113.9", "port": 51515}
    assert event["destination"] == {"ip": "10.0.0.5", "port": 443}
    assert event["event"]["action"] == "connection"
    assert event["event"]["module"] == "nginx"
    assert event["event"]["category"] == ["network"]
    assert event["message"] == "hello"
    assert orjson.loads(event["event"]["original"]) == ECS_DOC
    assert "destination.ip" not in event


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("timestamp", "2026-01-02T18:00:00+08:00", datetime(2026, 1, 2, 10, 0, tzinfo=UTC)),
        ("time", "2026-01-02 18:00:00", datetime(2026, 1, 2, 10, 0, tzinfo=UTC)),  # zone-less: source's zone
        ("ts", 1767348000, datetime(2026, 1, 2, 10, 0, tzinfo=UTC)),
        ("ts", 1767348000.5, datetime(2026, 1, 2, 10, 0, 0, 500000, tzinfo=UTC)),
        ("@timestamp", 1767348000123, datetime(2026, 1, 2, 10, 0, 0, 123000, tzinfo=UTC)),
        ("time", "1767348000", datetime(2026, 1, 2, 10, 0, tzinfo=UTC)),
    ],
)
def test_timestamps_become_aware_utc(field: str, value: object, expected: datetime) -> None:
    event = PARSER.parse_one(orjson.dumps({field: value, "msg": "x"}), CTX)
    assert event["@timestamp"] == expected
    assert event["@timestamp"].tzinfo is UTC


def test_no_timestamp_uses_arrival_and_unreadable_one_is_flagged() -> None:
    assert PARSER.parse_one(b'{"a": 1}', CTX)["@timestamp"] == datetime(2026, 1, 3, 8, 0, tzinfo=UTC)
    event = PARSER.parse_one(b'{"@timestamp": "yesterday", "a": 1}', CTX)
    assert event["@timestamp"] == datetime(2026, 1, 3, 8, 0, tzinfo=UTC)
    assert event["vigil"]["timestamp_unreadable"].startswith("@timestamp: unreadable timestamp 'yesterday'")
    assert event["vigil"]["original_timestamp"] == "yesterday"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": 1,}', "invalid JSON: trailing comma is not allowed: line 1 column 8 (char 7)"),
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b"42", "expected a JSON object, got a number"),
        (b"", "invalid JSON: Input is a zero-length, empty document: line 1 column 1 (char 0)"),
    ],
)
def test_not_an_object_is_a_parse_error_with_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        PARSER.parse_one(raw, CTX)
    assert str(caught.value) == reason


def test_invalid_json_between_good_lines_keeps_the_good_ones() -> None:
    records = [b'{"n": 1}', b'{"n": 2', b'{"n": 3}', b"\xff\xfe", b'{"n": 4}']
    results = run_batch(PARSER, records, CTX)
    assert [r["n"] if isinstance(r, dict) else None for r in results] == [1, None, 3, None, 4]
    failure = results[1]
    assert isinstance(failure, ParseFailure)
    assert failure.raw == b'{"n": 2'
    assert failure.parser == "json"
    assert failure.reason.startswith("invalid JSON:")


def test_non_object_event_field_and_conflicting_dotted_keys_are_kept() -> None:
    event = PARSER.parse_one(b'{"event": "login", "source": "web", "source.ip": "10.0.0.1"}', CTX)
    assert event["event_value"] == "login"
    assert event["source"] == "web"
    assert event["source.ip"] == "10.0.0.1"


def test_deep_nesting_does_not_crash() -> None:
    raw = b'{"a":' * 500 + b"1" + b"}" * 500
    event = PARSER.parse_one(raw, CTX)
    assert isinstance(event["a"], dict)


def test_split_records_ndjson_and_array() -> None:
    assert list(split_records(b'{"a":1}\n\n{"b":2}\r\n')) == [b'{"a":1}', b'{"b":2}']
    assert list(split_records(b' [{"a": 1}, {"b": 2}]')) == [b'{"a":1}', b'{"b":2}']
    assert list(split_records(b"[{broken")) == [b"[{broken"]


def test_sniff() -> None:
    assert PARSER.sniff(b'  {"a": 1}')
    assert PARSER.sniff(b"[{}]")
    assert not PARSER.sniff(b"<34>Oct 11 22:14:15 host su: hi")


def test_fuzz() -> None:
    fuzz_parser(PARSER, [ECS_DOC, {"ts": 1767348000, "x": [1, {"y.z": 2}]}, {"time": "2026-01-02 18:00:00"}])


def test_shipped_original_wins_and_keep_original_off_keeps_none() -> None:
    shipped = {"@timestamp": "2026-01-02T10:00:00Z", "event": {"original": "<13>Jan  2 10:00:00 web01 app: hi"}}
    assert PARSER.parse_one(orjson.dumps(shipped), CTX)["event"]["original"] == "<13>Jan  2 10:00:00 web01 app: hi"
    lean = ParseContext(source="app", keep_original=False)
    assert "original" not in PARSER.parse_one(orjson.dumps(shipped), lean)["event"]
    assert "original" not in PARSER.parse_one(b'{"a": 1}', lean)["event"]
