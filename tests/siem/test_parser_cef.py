"""ArcSight CEF records (examples after the CEF specification) as a SOC engineer searches them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from vigil.siem.parsers.base import Event, ParseContext, ParseError, ParseFailure, get, run_batch
from vigil.siem.parsers.cef import CefParser

from .text_fuzz import check_never_raises

CTX = ParseContext(source="arcsight", timezone=ZoneInfo("Asia/Shanghai"),
                   received_at=datetime(2026, 3, 10, 4, 0, tzinfo=UTC))
PARSER = CefParser()

FIREWALL = (
    b"CEF:0|Palo Alto Networks|PAN-OS|10.1.0|TRAFFIC|end|3|rt=1773115081000 src=10.1.2.3 spt=51522 "
    b"dst=198.51.100.20 dpt=443 proto=TCP act=allow suser=corp\\\\alice shost=ws-042 dhost=portal.example.com "
    b"request=https://portal.example.com/login?next\\=/home msg=Session ended after 3 minutes "
    b"cs1Label=Rule cs1=allow-web"
)
SAMPLES = [
    FIREWALL,
    b"CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232",
    b"CEF:0|security|threatmanager|1.0|100|detected a \\| in message|10|src=10.0.0.1 act=blocked a | dst=1.1.1.1",
    b"CEF:1|Trend Micro|Deep Security Agent|20.0|4000000|Eicar_test_file|High|duser=bob fname=eicar.com "
    b"filePath=C:\\\\Users\\\\bob\\\\eicar.com end=Mar 10 2026 11:40:00 Asia/Shanghai",
]


def parse(line: bytes) -> Event:
    return PARSER.parse_one(line, CTX)


def pick(event: Event, *fields: str) -> dict[str, object]:
    return {name: get(event, name) for name in fields}


def test_firewall_record_maps_to_ecs() -> None:
    event = parse(FIREWALL)
    assert pick(event, "source.ip", "source.port", "destination.ip", "destination.port", "network.transport",
                "event.action", "user.name", "source.domain", "destination.domain", "url.original", "message",
                "observer.vendor", "observer.product", "observer.version", "event.code", "event.severity",
                "event.module", "event.dataset") == {
        "source.ip": "10.1.2.3", "source.port": 51522, "destination.ip": "198.51.100.20", "destination.port": 443,
        "network.transport": "tcp", "event.action": "allow", "user.name": "corp\\alice", "source.domain": "ws-042",
        "destination.domain": "portal.example.com", "url.original": "https://portal.example.com/login?next=/home",
        "message": "Session ended after 3 minutes", "observer.vendor": "Palo Alto Networks",
        "observer.product": "PAN-OS", "observer.version": "10.1.0", "event.code": "TRAFFIC", "event.severity": 3,
        "event.module": "cef", "event.dataset": "cef.log",
    }
    assert event["@timestamp"] == datetime(2026, 3, 10, 3, 58, 1, tzinfo=UTC)
    assert get(event, "cef.extensions.cs1") == "allow-web"
    assert get(event, "cef.labels") == {"Rule": "allow-web"}
    assert get(event, "event.original") == FIREWALL.decode()


def test_escaped_pipe_in_the_header_and_a_bare_pipe_in_a_value() -> None:
    event = parse(SAMPLES[2])
    assert get(event, "cef.name") == "detected a | in message"
    assert get(event, "event.action") == "blocked a |"
    assert get(event, "destination.ip") == "1.1.1.1"


def test_escaped_equals_backslash_and_newline_in_values() -> None:
    event = parse(b"CEF:0|security|threatmanager|1.0|100|detected a = in message|10|src=10.0.0.1 "
                  b"act=blocked a \\= sign msg=line one\\nline two\\\\end dst=1.1.1.1")
    assert pick(event, "event.action", "message", "destination.ip") == {
        "event.action": "blocked a = sign", "message": "line one\nline two\\end", "destination.ip": "1.1.1.1"}


def test_severity_words_and_date_formats() -> None:
    event = parse(SAMPLES[3])
    assert pick(event, "event.severity", "cef.severity", "destination.user.name", "file.name", "file.path") == {
        "event.severity": 8, "cef.severity": "High", "destination.user.name": "bob", "file.name": "eicar.com",
        "file.path": "C:\\Users\\bob\\eicar.com"}
    assert event["@timestamp"] == datetime(2026, 3, 10, 3, 40, tzinfo=UTC)
    yearless = parse(b"CEF:0|v|p|1|x|n|Very-High|rt=Dec 31 23:59:59.250")
    assert yearless["@timestamp"] == datetime(2025, 12, 31, 15, 59, 59, 250000, tzinfo=UTC)
    assert get(yearless, "event.severity") == 10


def test_no_time_in_the_record_means_the_time_received() -> None:
    assert parse(SAMPLES[1])["@timestamp"] == CTX.received_at


def test_values_that_are_not_addresses_stay_in_the_extensions_only() -> None:
    event = parse(b"CEF:0|v|p|1|x|n|5|src=not-an-ip spt=99999 dst=10.0.0.9")
    assert get(event, "source.ip") is None
    assert get(event, "source.port") is None
    assert get(event, "cef.extensions") == {"src": "not-an-ip", "spt": "99999", "dst": "10.0.0.9"}


def test_record_after_a_syslog_header() -> None:
    event = parse(b"<134>Mar 10 11:58:01 fw01 " + SAMPLES[1])
    assert get(event, "destination.ip") == "2.1.2.2"


@pytest.mark.parametrize(("raw", "reason"), [
    (b"CEF:0|only|four|fields", "header has 3 of its 7"),
    (b"CEF:x|a|b|c|d|e|f|src=1.2.3.4", "version"),
    (b"hello world", "no 'CEF:'"),
])
def test_not_cef(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(raw)


def test_sniff() -> None:
    assert PARSER.sniff(FIREWALL)
    assert not PARSER.sniff(b"LEEF:1.0|Microsoft|MSExchange|4.0 SP1|15345|src=192.0.2.1")
    assert not PARSER.sniff(b"Mar 10 11:58:01 host sshd[1]: Accepted password for a from 1.2.3.4 port 1 ssh2")


def test_invalid_utf8_is_kept_and_the_record_parsed() -> None:
    event = parse(b"CEF:0|v|p|1|x|n|5|suser=\xc3\x28bad dst=10.0.0.9")
    assert get(event, "vigil.invalid_utf8") is True
    assert get(event, "vigil.original_base64") == "Q0VGOjB8dnxwfDF8eHxufDV8c3VzZXI9wyhiYWQgZHN0PTEwLjAuMC45"
    assert get(event, "destination.ip") == "10.0.0.9"


def test_batch_keeps_good_records_around_a_bad_one() -> None:
    results = run_batch(PARSER, [SAMPLES[1], b"CEF:0|broken", FIREWALL], CTX)
    assert [get(r, "source.ip") for r in results if isinstance(r, dict)] == ["10.0.0.1", "10.1.2.3"]
    assert isinstance(results[1], ParseFailure)
    assert results[1].raw == b"CEF:0|broken"
    assert "header" in results[1].reason


def test_fuzz() -> None:
    check_never_raises(PARSER, SAMPLES)


def test_header_without_extension_or_final_pipe() -> None:
    event = parse(b"CEF:0|Vendor|Product|1.0|42|Heartbeat|Low")
    assert pick(event, "event.code", "cef.name", "event.severity", "cef.extensions") == {
        "event.code": "42", "cef.name": "Heartbeat", "event.severity": 3, "cef.extensions": {}}
