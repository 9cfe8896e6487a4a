"""Zeek JSON logs to ECS: the log type found from the fields, the record kept under zeek.<type>."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from vigil.siem.parsers.base import ParseContext, ParseError, ParseFailure, run_batch
from vigil.siem.parsers.zeek import ZeekJsonParser

from .json_fuzz import fuzz_parser

CTX = ParseContext(source="zeek01")
PARSER = ZeekJsonParser()

CONN: dict[str, Any] = {
    "ts": 1767348672.123456,
    "uid": "CHhAvVGS1DHFjwGM9",
    "id.orig_h": "10.20.30.40",
    "id.orig_p": 51234,
    "id.resp_h": "93.184.216.34",
    "id.resp_p": 443,
    "proto": "tcp",
    "service": "ssl",
    "duration": 1.5,
    "orig_bytes": 517,
    "resp_bytes": 4096,
    "conn_state": "SF",
    "local_orig": True,
    "local_resp": False,
    "missed_bytes": 0,
    "history": "ShADadfF",
    "orig_pkts": 12,
    "orig_ip_bytes": 1200,
    "resp_pkts": 10,
    "resp_ip_bytes": 4800,
}
DNS: dict[str, Any] = {
    "ts": 1767348673.5,
    "uid": "C8bC4t3Ab2qbM5N2Y",
    "id.orig_h": "10.20.30.40",
    "id.orig_p": 40000,
    "id.resp_h": "10.0.0.53",
    "id.resp_p": 53,
    "proto": "udp",
    "trans_id": 1234,
    "query": "c2.bad.example",
    "qclass": 1,
    "qclass_name": "C_INTERNET",
    "qtype": 1,
    "qtype_name": "A",
    "rcode": 0,
    "rcode_name": "NOERROR",
    "AA": False,
    "RD": True,
    "RA": True,
    "answers": ["198.51.100.66", "c2-alias.bad.example"],
    "TTLs": [60.0, 60.0],
    "rejected": False,
}
HTTP: dict[str, Any] = {
    "ts": "2026-01-02T10:11:14.000000Z",
    "uid": "CmES5u32sYpV7JYN",
    "id.orig_h": "10.20.30.41",
    "id.orig_p": 50123,
    "id.resp_h": "203.0.113.80",
    "id.resp_p": 80,
    "trans_depth": 1,
    "method": "GET",
    "host": "download.bad.example",
    "uri": "/payload.bin?x=1",
    "version": "1.1",
    "user_agent": "curl/8.5.0",
    "request_body_len": 0,
    "response_body_len": 9000,
    "status_code": 200,
    "status_msg": "OK",
}
SSL: dict[str, Any] = {
    "ts": 1767348675.0, "uid": "C1", "id.orig_h": "10.0.0.2", "id.orig_p": 1, "id.resp_h": "10.0.0.3", "id.resp_p": 443,
    "version": "TLSv12", "cipher": "TLS_AES_128_GCM_SHA256", "server_name": "login.example.com", "established": True,
}
NOTICE: dict[str, Any] = {
    "ts": 1767348676.0, "uid": "C2", "id.orig_h": "10.0.0.9", "id.orig_p": 2, "id.resp_h": "10.0.0.10", "id.resp_p": 22,
    "note": "SSH::Password_Guessing", "msg": "10.0.0.9 appears to be guessing SSH passwords", "src": "10.0.0.9",
}
FILES: dict[str, Any] = {
    "ts": 1767348677.0, "fuid": "FHqoGd1Pqv9E4ZtVA4", "source": "HTTP", "mime_type": "application/x-dosexec",
    "filename": "setup.exe", "total_bytes": 9000, "md5": "0" * 32, "sha1": "1" * 40,
}
X509: dict[str, Any] = {
    "ts": 1767348678.0, "id": "FfPxoS3A6oHn6PBK6", "certificate.version": 3, "certificate.serial": "0A1B",
    "certificate.subject": "CN=login.example.com", "certificate.issuer": "CN=Example CA",
    "san.dns": ["login.example.com", "www.example.com"],
}


def parse(record: dict[str, Any]) -> dict[str, Any]:
    return PARSER.parse_one(orjson.dumps(record), CTX)


def test_conn() -> None:
    event = parse(CONN)
    assert event["@timestamp"] == datetime(2026, 1, 2, 10, 11, 12, 123456, tzinfo=UTC)
    assert {k: v for k, v in event["event"].items() if k != "original"} == {
        "kind": "event",
        "module": "zeek",
        "dataset": "zeek.conn",
        "category": ["network"],
        "type": ["connection"],
        "id": "CHhAvVGS1DHFjwGM9",
        "duration": 1_500_000_000,
    }
    assert event["source"] == {"ip": "10.20.30.40", "port": 51234, "bytes": 517, "packets": 12}
    assert event["destination"] == {"ip": "93.184.216.34", "port": 443, "bytes": 4096, "packets": 10}
    assert event["network"] == {"transport": "tcp", "protocol": "ssl"}
    kept = event["zeek"]["conn"]
    assert kept["id"] == {"orig_h": "10.20.30.40", "orig_p": 51234, "resp_h": "93.184.216.34", "resp_p": 443}
    assert kept["conn_state"] == "SF"
    assert kept["history"] == "ShADadfF"
    assert orjson.loads(event["event"]["original"]) == CONN


def test_dns() -> None:
    event = parse(DNS)
    assert event["event"]["dataset"] == "zeek.dns"
    assert event["dns"] == {
        "question": {"name": "c2.bad.example", "type": "A"},
        "response_code": "NOERROR",
        "id": 1234,
        "answers": [{"data": "198.51.100.66"}, {"data": "c2-alias.bad.example"}],
        "resolved_ip": ["198.51.100.66"],
    }
    assert event["network"] == {"transport": "udp", "protocol": "dns"}
    assert event["zeek"]["dns"]["qtype_name"] == "A"


def test_http_ssl_notice_files_x509() -> None:
    http = parse(HTTP)
    assert http["@timestamp"] == datetime(2026, 1, 2, 10, 11, 14, tzinfo=UTC)
    assert http["url"] == {"domain": "download.bad.example", "original": "/payload.bin?x=1", "path": "/payload.bin"}
    assert http["http"] == {"request": {"method": "GET"}, "response": {"status_code": 200}, "version": "1.1"}
    assert http["user_agent"] == {"original": "curl/8.5.0"}
    assert http["event"]["dataset"] == "zeek.http"
    ssl = parse(SSL)
    assert ssl["tls"] == {"client": {"server_name": "login.example.com"}, "established": True,
                          "version_protocol": "tls", "version": "1.2"}
    notice = parse(NOTICE)
    assert (notice["event"]["kind"], notice["event"]["dataset"]) == ("alert", "zeek.notice")
    assert notice["rule"] == {"name": "SSH::Password_Guessing"}
    assert notice["message"] == "10.0.0.9 appears to be guessing SSH passwords"
    files = parse(FILES)
    assert files["event"]["dataset"] == "zeek.files"
    assert files["file"] == {"name": "setup.exe", "mime_type": "application/x-dosexec", "size": 9000,
                             "hash": {"md5": "0" * 32, "sha1": "1" * 40}}
    x509 = parse(X509)
    assert x509["event"]["dataset"] == "zeek.x509"
    assert x509["x509"]["subject"] == {"distinguished_name": "CN=login.example.com"}
    assert x509["zeek"]["x509"]["certificate"]["serial"] == "0A1B"


def test_path_field_names_the_type() -> None:
    event = parse({**CONN, "_path": "conn_long"})
    assert event["event"]["dataset"] == "zeek.conn_long"
    assert event["zeek"]["conn_long"]["uid"] == "CHhAvVGS1DHFjwGM9"
    assert parse({**CONN, "_path": "../../x"})["event"]["dataset"] == "zeek.conn"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"uid": "C1"}, "not a Zeek log record: no ts"),
        ({"ts": 1.0, "a": 1}, "not a Zeek log record: none of uid, id.orig_h, fuid, _path"),
        ({"ts": "later", "uid": "C1"}, "Zeek ts: unreadable timestamp 'later': Invalid isoformat string: 'later'"),
        ({"ts": 1e300, "uid": "C1"}, "Zeek ts: unreadable timestamp 1e+300: "),  # then the platform's words
    ],
)
def test_not_zeek_is_a_parse_error(record: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(record)
    assert str(caught.value) == reason or (reason.endswith(": ") and str(caught.value).startswith(reason))


def test_batch_keeps_good_records() -> None:
    results = run_batch(PARSER, [orjson.dumps(CONN), b'{"ts": ', orjson.dumps(DNS)], CTX)
    assert isinstance(results[1], ParseFailure)
    assert [r["event"]["dataset"] for r in results if isinstance(r, dict)] == ["zeek.conn", "zeek.dns"]


def test_sniff() -> None:
    assert PARSER.sniff(orjson.dumps(CONN))
    assert PARSER.sniff(orjson.dumps(FILES))
    assert not PARSER.sniff(b'{"timestamp": "x", "event_type": "alert"}')


def test_fuzz() -> None:
    fuzz_parser(PARSER, [CONN, DNS, HTTP, SSL, NOTICE, FILES, X509])
