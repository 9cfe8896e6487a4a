"""nginx and Apache access log lines as a SOC engineer searches them (web scans, failed logins)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vigil.siem.parsers.access import WebAccessParser
from vigil.siem.parsers.base import Event, ParseContext, ParseError, ParseFailure, get, run_batch

from .text_fuzz import check_never_raises

CTX = ParseContext(source="web01", received_at=datetime(2026, 3, 10, 4, 0, tzinfo=UTC))
PARSER = WebAccessParser()

COMBINED = (b'203.0.113.9 - - [10/Mar/2026:11:58:01 +0800] "GET /wp-login.php?action=register&x=1 HTTP/1.1" 404 '
            b'153 "-" "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)"')
COMMON = b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
VHOST = (b'shop.example.com:443 2001:db8::5 - - [10/Mar/2026:03:58:01 +0000] "POST /api/login HTTP/2.0" 200 512 '
         b'"https://shop.example.com/login" "curl/8.5.0"')
SAMPLES = [COMBINED, COMMON, VHOST]


def parse(line: bytes) -> Event:
    return PARSER.parse_one(line, CTX)


def pick(event: Event, *fields: str) -> dict[str, object]:
    return {name: get(event, name) for name in fields}


def test_combined_format() -> None:
    event = parse(COMBINED)
    assert pick(event, "source.ip", "user.name", "http.request.method", "url.original", "url.path", "url.query",
                "http.version", "http.response.status_code", "http.response.body.bytes", "http.request.referrer",
                "user_agent.original", "event.category", "event.outcome", "event.module", "event.dataset") == {
        "source.ip": "203.0.113.9", "user.name": None, "http.request.method": "GET",
        "url.original": "/wp-login.php?action=register&x=1", "url.path": "/wp-login.php",
        "url.query": "action=register&x=1", "http.version": "1.1", "http.response.status_code": 404,
        "http.response.body.bytes": 153, "http.request.referrer": None,
        "user_agent.original": "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
        "event.category": ["web"], "event.outcome": "failure", "event.module": "web", "event.dataset": "web.access",
    }
    assert event["@timestamp"] == datetime(2026, 3, 10, 3, 58, 1, tzinfo=UTC)
    assert get(event, "event.original") == COMBINED.decode()


def test_common_format_from_the_apache_documentation() -> None:
    event = parse(COMMON)
    assert pick(event, "source.ip", "user.name", "url.path", "http.version", "http.response.status_code",
                "http.response.body.bytes", "event.outcome", "user_agent.original") == {
        "source.ip": "127.0.0.1", "user.name": "frank", "url.path": "/apache_pb.gif", "http.version": "1.0",
        "http.response.status_code": 200, "http.response.body.bytes": 2326, "event.outcome": "success",
        "user_agent.original": None}
    assert event["@timestamp"] == datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)


def test_vhost_prefix_and_ipv6_client() -> None:
    event = parse(VHOST)
    assert pick(event, "source.ip", "url.domain", "destination.port", "http.request.method", "http.version",
                "http.request.referrer", "user_agent.original") == {
        "source.ip": "2001:db8::5", "url.domain": "shop.example.com", "destination.port": 443,
        "http.request.method": "POST", "http.version": "2.0", "http.request.referrer": "https://shop.example.com/login",
        "user_agent.original": "curl/8.5.0"}


def test_dash_size_escaped_quotes_and_a_tls_handshake_on_the_http_port() -> None:
    event = parse(b'198.51.100.3 - - [10/Mar/2026:11:58:01 +0800] "\\x16\\x03\\x01\\x00\\xA5\\x01" 400 - "-" "-"')
    assert pick(event, "http.response.status_code", "http.response.body.bytes", "http.request.method",
                "url.original") == {
        "http.response.status_code": 400, "http.response.body.bytes": 0, "http.request.method": None,
        "url.original": None}
    quoted = parse(b'198.51.100.3 - - [10/Mar/2026:11:58:01 +0800] "GET /?q=\\"1\\"%20or%201=1 HTTP/1.1" 200 5 '
                   b'"-" "sqlmap/1.7 \\x22quoted\\x22"')
    assert get(quoted, "url.query") == 'q="1"%20or%201=1'
    assert get(quoted, "user_agent.original") == 'sqlmap/1.7 "quoted"'


def test_absolute_url_of_a_proxy_request() -> None:
    event = parse(b'198.51.100.3 - - [10/Mar/2026:11:58:01 +0800] "CONNECT example.org:443 HTTP/1.1" 405 0')
    assert pick(event, "http.request.method", "url.original") == {
        "http.request.method": "CONNECT", "url.original": "example.org:443"}
    proxied = parse(b'198.51.100.3 - - [10/Mar/2026:11:58:01 +0800] "GET http://example.org/a?b=c HTTP/1.1" 200 1')
    assert pick(proxied, "url.domain", "url.path", "url.query") == {
        "url.domain": "example.org", "url.path": "/a", "url.query": "b=c"}


@pytest.mark.parametrize(("raw", "reason"), [
    (b"Mar 10 11:58:01 host sshd[1]: hello", "not an access log line"),
    (b'1.2.3.4 - - [10/Foo/2026:11:58:01 +0800] "GET / HTTP/1.1" 200 1', "unknown month"),
    (b'1.2.3.4 - - [yesterday] "GET / HTTP/1.1" 200 1', "not like"),
])
def test_not_an_access_line(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(raw)


def test_sniff() -> None:
    assert all(PARSER.sniff(sample) for sample in SAMPLES)
    assert not PARSER.sniff(b"CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1")
    assert not PARSER.sniff(b'{"message": "] \\"GET"}')


def test_invalid_utf8_is_kept_and_the_line_parsed() -> None:
    raw = b'203.0.113.9 - - [10/Mar/2026:11:58:01 +0800] "GET /\xff\xfe HTTP/1.1" 200 1 "-" "bot\xc0"'
    event = parse(raw)
    assert get(event, "vigil.invalid_utf8") is True
    assert get(event, "vigil.original_base64") == (
        "MjAzLjAuMTEzLjkgLSAtIFsxMC9NYXIvMjAyNjoxMTo1ODowMSArMDgwMF0gIkdFVCAv//4gSFRUUC8xLjEiIDIwMCAxICItIiAiYm90wCI=")
    assert get(event, "http.response.status_code") == 200
    assert get(event, "url.original") == "/\\xff\\xfe"


def test_non_ascii_paths_nginx_escaped_read_as_text() -> None:
    event = parse(b'203.0.113.9 - - [10/Mar/2026:11:58:01 +0800] '
                  b'"GET /\\xE6\\x96\\x87\\xE4\\xBB\\xB6?q=\\xC3 HTTP/1.1" 200 1')
    assert get(event, "url.path") == "/文件"
    assert get(event, "url.query") == "q=\\xc3"


def test_batch_keeps_good_lines_around_a_bad_one() -> None:
    results = run_batch(PARSER, [COMBINED, b"\x16\x03\x01 junk", COMMON], CTX)
    assert [get(r, "source.ip") for r in results if isinstance(r, dict)] == ["203.0.113.9", "127.0.0.1"]
    assert isinstance(results[1], ParseFailure)
    assert results[1].raw == b"\x16\x03\x01 junk"
    assert results[1].parser == "web_access"


def test_fuzz() -> None:
    check_never_raises(PARSER, SAMPLES)
