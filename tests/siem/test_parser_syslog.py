"""Syslog records (RFC 5424's and RFC 3164's own examples, rsyslog's and devices' variants) as searched."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from vigil.siem.parsers.base import Event, ParseContext, ParseError, ParseFailure, get, run_batch
from vigil.siem.parsers.syslog import SyslogParser

from .text_fuzz import check_never_raises

SHANGHAI = ZoneInfo("Asia/Shanghai")
CTX = ParseContext(source="syslog-udp", timezone=SHANGHAI, received_at=datetime(2026, 3, 10, 4, 0, tzinfo=UTC))
PARSER = SyslogParser()

RFC5424_SU = ("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \ufeff'su root' failed for lonvick "
              "on /dev/pts/8")
RFC5424_SD = (b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
              b'eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] An application event')
RFC3164 = b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"
RSYSLOG_SSHD = (b"<86>2026-03-10T11:58:01.123456+08:00 bastion sshd[4012]: Accepted password for alice from "
                b"203.0.113.5 port 52311 ssh2")
CEF_OVER_SYSLOG = (b"<134>Mar 10 11:58:01 fw01 CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|"
                   b"src=10.0.0.1 dst=2.1.2.2 spt=1232")
SAMPLES = [RFC5424_SU.encode(), RFC5424_SD, RFC3164, RSYSLOG_SSHD, CEF_OVER_SYSLOG,
           b"Mar 10 11:58:01 web01 nginx[12]: worker process 13 exited"]


def parse(line: str | bytes, ctx: ParseContext = CTX) -> Event:
    return PARSER.parse_one(line.encode() if isinstance(line, str) else line, ctx)


def pick(event: Event, *fields: str) -> dict[str, object]:
    return {name: get(event, name) for name in fields}


def test_rfc5424_example_with_a_bom() -> None:
    event = parse(RFC5424_SU)
    assert pick(event, "log.syslog.facility.code", "log.syslog.facility.name", "log.syslog.severity.code",
                "log.syslog.severity.name", "host.hostname", "process.name", "process.pid", "log.syslog.msgid",
                "log.syslog.version", "message", "event.module", "event.dataset") == {
        "log.syslog.facility.code": 4, "log.syslog.facility.name": "auth", "log.syslog.severity.code": 2,
        "log.syslog.severity.name": "critical", "host.hostname": "mymachine.example.com", "process.name": "su",
        "process.pid": None, "log.syslog.msgid": "ID47", "log.syslog.version": "1",
        "message": "'su root' failed for lonvick on /dev/pts/8", "event.module": "system",
        "event.dataset": "system.syslog",
    }
    assert event["@timestamp"] == datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC)
    assert get(event, "event.original") == RFC5424_SU


def test_rfc5424_with_offset_and_procid() -> None:
    event = parse("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.")
    assert event["@timestamp"] == datetime(2003, 8, 24, 12, 14, 15, 3, tzinfo=UTC)
    assert pick(event, "log.syslog.facility.name", "log.syslog.severity.name", "process.name", "process.pid",
                "log.syslog.procid", "message") == {
        "log.syslog.facility.name": "local4", "log.syslog.severity.name": "notice", "process.name": "myproc",
        "process.pid": 8710, "log.syslog.procid": "8710", "message": "%% It's time to make the do-nuts."}


def test_rfc5424_structured_data() -> None:
    event = parse(RFC5424_SD)
    assert get(event, "log.syslog.structured_data") == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
        "examplePriority@32473": {"class": "high"},
    }
    assert get(event, "message") == "An application event"


def test_structured_data_escapes_and_no_message() -> None:
    event = parse(b'<13>1 2026-03-10T11:58:01+08:00 h app - - [x@1 q="say \\"hi\\"" b="a\\\\b" r="[1\\]" '
                  b'n="keep\\n"]')
    assert get(event, "log.syslog.structured_data") == {
        "x@1": {"q": 'say "hi"', "b": "a\\b", "r": "[1]", "n": "keep\\n"}}
    assert get(event, "message") == ""
    assert event["@timestamp"] == datetime(2026, 3, 10, 3, 58, 1, tzinfo=UTC)


def test_structured_data_mixing_plain_and_escaped_elements_keeps_every_element() -> None:
    event = parse(b'<13>1 2026-03-10T11:58:01+08:00 h app - - [a@1 x="1"][b@1 q="say \\"hi\\""][a@1 y="2"] '
                  b'[not sd]')
    assert get(event, "log.syslog.structured_data") == {"a@1": {"x": "1", "y": "2"}, "b@1": {"q": 'say "hi"'}}
    assert get(event, "message") == "[not sd]"


def test_broken_structured_data_after_a_plain_element_is_refused() -> None:
    with pytest.raises(ParseError, match="not closed"):
        PARSER.parse_one(b'<13>1 2026-03-10T11:58:01+08:00 h app - - [a@1 x="1"][b@1 q="2"', CTX)


def test_rfc3164_example_gets_the_year_that_is_not_in_the_future() -> None:
    event = parse(RFC3164)
    assert event["@timestamp"] == datetime(2025, 10, 11, 14, 14, 15, tzinfo=UTC)  # 22:14:15 in Shanghai, last year
    assert pick(event, "host.hostname", "process.name", "log.syslog.severity.name", "message") == {
        "host.hostname": "mymachine", "process.name": "su", "log.syslog.severity.name": "critical",
        "message": "'su root' failed for lonvick on /dev/pts/8"}


@pytest.mark.parametrize(("stamp", "received", "expected"), [
    ("Dec 31 23:59:59", datetime(2027, 1, 2, 1, 0, tzinfo=UTC), datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)),
    ("Jan  1 00:00:05", datetime(2026, 12, 31, 15, 59, 50, tzinfo=UTC), datetime(2026, 12, 31, 16, 0, 5, tzinfo=UTC)),
    ("Jun 14 10:00:00", datetime(2026, 6, 15, 0, 0, tzinfo=UTC), datetime(2026, 6, 14, 2, 0, tzinfo=UTC)),
    ("Jul 20 10:00:00", datetime(2026, 6, 15, 0, 0, tzinfo=UTC), datetime(2025, 7, 20, 2, 0, tzinfo=UTC)),
    ("Feb 29 12:00:00", datetime(2028, 3, 2, 0, 0, tzinfo=UTC), datetime(2028, 2, 29, 4, 0, tzinfo=UTC)),
    ("Feb 29 12:00:00", datetime(2027, 3, 1, 0, 0, tzinfo=UTC), datetime(2024, 2, 29, 4, 0, tzinfo=UTC)),
])
def test_year_resolution_of_classic_stamps(stamp: str, received: datetime, expected: datetime) -> None:
    ctx = ParseContext(timezone=SHANGHAI, received_at=received)
    assert parse(f"<13>{stamp} host app: x", ctx)["@timestamp"] == expected


def test_the_source_time_zone_applies_to_classic_stamps() -> None:
    ctx = ParseContext(timezone=ZoneInfo("Europe/Berlin"), received_at=datetime(2026, 7, 1, tzinfo=UTC))
    assert parse(b"<13>Jun 30 12:00:00 host app: x", ctx)["@timestamp"] == datetime(2026, 6, 30, 10, 0, tzinfo=UTC)


def test_rsyslog_iso_stamp_and_sshd_login_analysed_like_auth_log() -> None:
    event = parse(RSYSLOG_SSHD)
    assert event["@timestamp"] == datetime(2026, 3, 10, 3, 58, 1, 123456, tzinfo=UTC)
    assert pick(event, "log.syslog.facility.name", "log.syslog.severity.name", "event.category", "event.action",
                "event.outcome", "user.name", "source.ip", "source.port", "process.pid", "event.module",
                "event.dataset") == {
        "log.syslog.facility.name": "authpriv", "log.syslog.severity.name": "informational",
        "event.category": ["authentication"], "event.action": "ssh_login", "event.outcome": "success",
        "user.name": "alice", "source.ip": "203.0.113.5", "source.port": 52311, "process.pid": 4012,
        "event.module": "system", "event.dataset": "system.auth"}


def test_sudo_over_rfc5424() -> None:
    event = parse(b"<85>1 2026-03-10T11:58:01+08:00 bastion sudo - - - alice : TTY=pts/0 ; PWD=/home/alice ; "
                  b"USER=root ; COMMAND=/usr/bin/systemctl stop auditd")
    assert pick(event, "event.action", "user.name", "user.target.name", "process.command_line", "event.dataset") == {
        "event.action": "sudo_command", "user.name": "alice", "user.target.name": "root",
        "process.command_line": "/usr/bin/systemctl stop auditd", "event.dataset": "system.auth"}


def test_plain_line_from_a_var_log_file() -> None:
    event = parse(SAMPLES[5])
    assert pick(event, "host.hostname", "process.name", "process.pid", "message", "log.syslog.priority") == {
        "host.hostname": "web01", "process.name": "nginx", "process.pid": 12,
        "message": "worker process 13 exited", "log.syslog.priority": None}


def test_device_without_timestamp_uses_the_time_received() -> None:
    event = parse(b"<189>%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down")
    assert event["@timestamp"] == CTX.received_at
    assert pick(event, "process.name", "message", "log.syslog.severity.name") == {
        "process.name": "%LINK-3-UPDOWN", "message": "Interface GigabitEthernet0/1, changed state to down",
        "log.syslog.severity.name": "notice"}


def test_cef_over_syslog_keeps_the_header() -> None:
    event = parse(CEF_OVER_SYSLOG)
    assert pick(event, "host.hostname", "log.syslog.facility.name", "source.ip", "destination.ip", "source.port",
                "observer.product", "event.severity", "event.module", "message") == {
        "host.hostname": "fw01", "log.syslog.facility.name": "local0", "source.ip": "10.0.0.1",
        "destination.ip": "2.1.2.2", "source.port": 1232, "observer.product": "threatmanager", "event.severity": 10,
        "event.module": "cef", "message": "worm successfully stopped"}
    assert event["@timestamp"] == datetime(2026, 3, 10, 3, 58, 1, tzinfo=UTC)
    assert get(event, "event.original") == CEF_OVER_SYSLOG.decode()


def test_cef_and_leef_over_rfc5424() -> None:
    cef = parse(b"<134>1 2026-03-10T11:58:01+08:00 fw02 panos - - - CEF:0|PAN|PAN-OS|10|THREAT|virus|8|"
                b"rt=1773115082000 src=10.9.9.9 suser=bob")
    assert pick(cef, "host.hostname", "process.name", "user.name", "source.ip") == {
        "host.hostname": "fw02", "process.name": "panos", "user.name": "bob", "source.ip": "10.9.9.9"}
    assert cef["@timestamp"] == datetime(2026, 3, 10, 3, 58, 2, tzinfo=UTC)  # the device's own time
    leef = parse(b"<13>Mar 10 11:58:01 qr01 LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dstPort=21")
    assert pick(leef, "host.hostname", "source.ip", "destination.port", "event.module") == {
        "host.hostname": "qr01", "source.ip": "10.0.1.8", "destination.port": 21, "event.module": "leef"}


def test_a_broken_cef_body_is_kept_as_a_message() -> None:
    event = parse(b"<134>Mar 10 11:58:01 fw01 CEF:0|only|three")
    assert get(event, "message") == "CEF:0|only|three"
    assert "header" in get(event, "vigil.parse_warning")


@pytest.mark.parametrize(("raw", "reason"), [
    (b"<999>Mar 10 11:58:01 host app: x", "out of range"),
    (b"hello world", "not syslog"),
    (b'<34>1 2003-10-11T22:14:15.003Z host app - ID47 [x@1 a="unterminated', "closing quote"),
    (b"<34>1 2003-10-11T22:14:15.003Z host app - ID47 [x@1 a=1]", 'name="value"'),
    (b"<34>1 yesterday host app - ID47 - msg", "RFC 3339"),
    (b"<34>1 2003-10-11T22:14:15.003Z host app - ID47 nothing", "STRUCTURED-DATA"),
    (b"<34>Feb 31 10:00:00 host app: x", "invalid date"),
])
def test_not_syslog(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(raw)


def test_sniff() -> None:
    assert all(PARSER.sniff(sample) for sample in SAMPLES)
    assert not PARSER.sniff(b'{"@timestamp": "2026-03-10T11:58:01Z"}')
    assert not PARSER.sniff(b'127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326')


def test_invalid_utf8_is_kept_and_the_record_parsed() -> None:
    raw = b"<13>Mar 10 11:58:01 host app[1]: caf\xe9 \xff"
    event = parse(raw)
    assert get(event, "vigil.invalid_utf8") is True
    assert base64.b64decode(get(event, "vigil.original_base64")) == raw
    assert get(event, "message") == "caf\\xe9 \\xff"
    assert get(event, "process.name") == "app"


def test_batch_keeps_good_records_around_a_bad_one() -> None:
    bad = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    results = run_batch(PARSER, [RFC3164, bad, RSYSLOG_SSHD], CTX)
    assert [get(r, "host.hostname") for r in results if isinstance(r, dict)] == ["mymachine", "bastion"]
    failure = results[1]
    assert isinstance(failure, ParseFailure)
    assert (failure.raw, failure.parser, failure.source) == (bad, "syslog", "syslog-udp")
    assert "not syslog" in failure.reason


def test_fuzz() -> None:
    check_never_raises(PARSER, SAMPLES)
