"""QRadar LEEF 1.0 and 2.0 records (examples after the LEEF specification) mapped to ECS."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from vigil.siem.parsers.base import Event, ParseContext, ParseError, ParseFailure, get, run_batch
from vigil.siem.parsers.leef import LeefParser

from .text_fuzz import check_never_raises

CTX = ParseContext(source="qradar", timezone=ZoneInfo("Asia/Shanghai"),
                   received_at=datetime(2026, 3, 10, 4, 0, tzinfo=UTC))
PARSER = LeefParser()

V1 = (b"LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=192.0.2.10\tdst=172.16.123.1\tsev=5\tcat=anomaly\t"
      b"srcPort=81\tdstPort=21\tusrName=joe.black\tproto=TCP\tdevTime=Mar 10 2026 11:58:01\t"
      b"devTimeFormat=MMM dd yyyy HH:mm:ss")
V2_CARET = b"LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5^srcPort=81^dstPort=21"
V2_HEX = (b"LEEF:2.0|Fortinet|FortiGate|7.2|traffic|x09|src=10.0.1.9\tdst=10.0.0.6\tusrName=alice\t"
          b"devTime=2026-03-10T11:58:01.250+0800\tdevTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ\taction=deny")
SAMPLES = [V1, V2_CARET, V2_HEX]


def parse(line: bytes) -> Event:
    return PARSER.parse_one(line, CTX)


def pick(event: Event, *fields: str) -> dict[str, object]:
    return {name: get(event, name) for name in fields}


def test_leef_1_maps_to_ecs() -> None:
    event = parse(V1)
    assert pick(event, "source.ip", "destination.ip", "source.port", "destination.port", "user.name",
                "network.transport", "event.severity", "observer.vendor", "observer.product", "observer.version",
                "event.code", "event.module", "event.dataset") == {
        "source.ip": "192.0.2.10", "destination.ip": "172.16.123.1", "source.port": 81, "destination.port": 21,
        "user.name": "joe.black", "network.transport": "tcp", "event.severity": 5, "observer.vendor": "Microsoft",
        "observer.product": "MSExchange", "observer.version": "4.0 SP1", "event.code": "15345",
        "event.module": "leef", "event.dataset": "leef.log",
    }
    assert event["@timestamp"] == datetime(2026, 3, 10, 3, 58, 1, tzinfo=UTC)
    assert get(event, "leef.attributes.cat") == "anomaly"
    assert get(event, "event.original") == V1.decode()


def test_leef_2_with_a_caret_delimiter() -> None:
    event = parse(V2_CARET)
    assert pick(event, "source.ip", "destination.ip", "source.port", "destination.port", "leef.version") == {
        "source.ip": "10.0.1.8", "destination.ip": "10.0.0.5", "source.port": 81, "destination.port": 21,
        "leef.version": "2.0"}
    assert event["@timestamp"] == CTX.received_at


def test_leef_2_with_a_hex_delimiter_and_a_java_time_format() -> None:
    event = parse(V2_HEX)
    assert pick(event, "source.ip", "user.name", "event.action") == {
        "source.ip": "10.0.1.9", "user.name": "alice", "event.action": "deny"}
    assert event["@timestamp"] == datetime(2026, 3, 10, 3, 58, 1, 250000, tzinfo=UTC)


def test_dev_time_in_epoch_milliseconds_without_format() -> None:
    event = parse(b"LEEF:1.0|V|P|1|e|devTime=1773115081000\tsrc=192.0.2.1")
    assert event["@timestamp"] == datetime(2026, 3, 10, 3, 58, 1, tzinfo=UTC)


def test_a_bad_dev_time_is_flagged_not_fatal() -> None:
    event = parse(b"LEEF:1.0|V|P|1|e|devTime=yesterday\tsrc=192.0.2.1")
    assert get(event, "vigil.bad_timestamp") is True
    assert get(event, "source.ip") == "192.0.2.1"


@pytest.mark.parametrize(("raw", "reason"), [
    (b"LEEF:1.0|V|P", "header has 3 of its 5"),
    (b"LEEF:3.0|V|P|1|e|src=1.2.3.4", "unknown version"),
    (b"LEEF:2.0|V|P|1|e|xyz|src=1.2.3.4", "delimiter"),
    (b"LEEF:1.0|V|P|1|e|src=1.2.3.4\tgarbage", "not key=value"),
    (b"just text", "no 'LEEF:'"),
])
def test_not_leef(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(raw)


def test_sniff() -> None:
    assert all(PARSER.sniff(sample) for sample in SAMPLES)
    assert not PARSER.sniff(b"CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1")


def test_invalid_utf8_is_kept_and_the_record_parsed() -> None:
    event = parse(b"LEEF:1.0|V|P|1|e|usrName=\xff\xfe\tsrc=192.0.2.1")
    assert get(event, "vigil.invalid_utf8") is True
    assert get(event, "vigil.original_base64") == "TEVFRjoxLjB8VnxQfDF8ZXx1c3JOYW1lPf/+CXNyYz0xOTIuMC4yLjE="
    assert get(event, "source.ip") == "192.0.2.1"


def test_batch_keeps_good_records_around_a_bad_one() -> None:
    results = run_batch(PARSER, [V1, b"LEEF:9|x", V2_CARET], CTX)
    assert [get(r, "source.ip") for r in results if isinstance(r, dict)] == ["192.0.2.10", "10.0.1.8"]
    assert isinstance(results[1], ParseFailure)
    assert results[1].raw == b"LEEF:9|x"


def test_fuzz() -> None:
    check_never_raises(PARSER, SAMPLES)


@pytest.mark.parametrize("pattern", [b"yyyy yyyy", b"Z Z", b"SSS SSS", b"%", b"q", b"'"])
def test_a_dev_time_format_that_cannot_work_is_flagged(pattern: bytes) -> None:
    event = parse(b"LEEF:1.0|V|P|1|e|devTime=2026 2026\tdevTimeFormat=" + pattern)
    assert get(event, "vigil.bad_timestamp") is True
