"""Suricata EVE JSON to ECS: alerts, dns, http, tls; the whole record kept under suricata.eve."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from vigil.siem.parsers.base import ParseContext, ParseError, ParseFailure, run_batch
from vigil.siem.parsers.suricata import SuricataEveParser

from .json_fuzz import fuzz_parser

CTX = ParseContext(source="ids01")
PARSER = SuricataEveParser()

ALERT: dict[str, Any] = {
    "timestamp": "2026-01-02T18:11:12.123456+0800",
    "flow_id": 1448120379287162,
    "in_iface": "eth1",
    "event_type": "alert",
    "src_ip": "10.20.30.40",
    "src_port": 49822,
    "dest_ip": "203.0.113.77",
    "dest_port": 80,
    "proto": "TCP",
    "app_proto": "http",
    "community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
    "alert": {
        "action": "allowed",
        "gid": 1,
        "signature_id": 2024897,
        "rev": 3,
        "signature": "ET USER_AGENTS Go HTTP Client User-Agent",
        "category": "A Network Trojan was detected",
        "severity": 1,
        "metadata": {"signature_severity": ["Major"]},
    },
    "http": {
        "hostname": "update.bad.example",
        "url": "/gate.php?id=7",
        "http_user_agent": "Go-http-client/1.1",
        "http_method": "POST",
        "protocol": "HTTP/1.1",
        "status": 200,
        "length": 512,
    },
}
DNS_QUERY: dict[str, Any] = {
    "timestamp": "2026-01-02T10:11:12.000000+0000",
    "flow_id": 7765340982101,
    "event_type": "dns",
    "src_ip": "10.20.30.40",
    "src_port": 53211,
    "dest_ip": "10.0.0.53",
    "dest_port": 53,
    "proto": "UDP",
    "dns": {"type": "query", "id": 41213, "rrname": "c2.bad.example", "rrtype": "A", "tx_id": 0},
}
DNS_V3: dict[str, Any] = {
    "timestamp": "2026-01-02T10:11:12.000000+0000",
    "event_type": "dns",
    "src_ip": "10.20.30.40",
    "dest_ip": "10.0.0.53",
    "proto": "UDP",
    "dns": {"version": 3, "type": "request", "id": 1, "queries": [{"rrname": "c2.bad.example", "rrtype": "AAAA"}]},
}
HTTP: dict[str, Any] = {
    "timestamp": "2026-01-02T10:11:13.500000+0000",
    "flow_id": 99,
    "event_type": "http",
    "src_ip": "2001:db8::10",
    "src_port": 50000,
    "dest_ip": "2001:db8::80",
    "dest_port": 8080,
    "proto": "TCP",
    "http": {"hostname": "intranet.corp.example", "url": "/login", "http_method": "GET", "status": 302},
}
TLS: dict[str, Any] = {
    "timestamp": "2026-01-02T10:11:14.000000+0000",
    "event_type": "tls",
    "src_ip": "10.20.30.40",
    "src_port": 50001,
    "dest_ip": "198.51.100.9",
    "dest_port": 443,
    "proto": "TCP",
    "tls": {"sni": "login.example.com", "version": "TLS 1.2", "subject": "CN=login.example.com",
            "issuerdn": "CN=Example CA", "ja3": {"hash": "e7d705a3286e19ea42f587b344ee6865"}},
}


def parse(record: dict[str, Any]) -> dict[str, Any]:
    return PARSER.parse_one(orjson.dumps(record), CTX)


def test_alert() -> None:
    event = parse(ALERT)
    assert event["@timestamp"] == datetime(2026, 1, 2, 10, 11, 12, 123456, tzinfo=UTC)
    assert {k: v for k, v in event["event"].items() if k != "original"} == {
        "kind": "alert",
        "module": "suricata",
        "dataset": "suricata.eve",
        "category": ["network", "intrusion_detection"],
        "type": ["info", "allowed"],
        "action": "alert",
        "severity": 1,
    }
    assert event["rule"] == {
        "name": "ET USER_AGENTS Go HTTP Client User-Agent",
        "id": "2024897",
        "category": "A Network Trojan was detected",
    }
    assert event["source"] == {"ip": "10.20.30.40", "port": 49822}
    assert event["destination"] == {"ip": "203.0.113.77", "port": 80}
    assert event["network"] == {
        "transport": "tcp", "protocol": "http", "community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
    }
    assert event["url"] == {"domain": "update.bad.example", "original": "/gate.php?id=7"}
    assert event["user_agent"] == {"original": "Go-http-client/1.1"}
    assert event["http"] == {
        "request": {"method": "POST"}, "response": {"status_code": 200, "body": {"bytes": 512}}, "version": "1.1",
    }
    assert event["message"] == "ET USER_AGENTS Go HTTP Client User-Agent"
    assert event["suricata"]["flow_id"] == 1448120379287162
    assert event["suricata"]["eve"] == ALERT
    assert event["observer"] == {"ingress": {"interface": {"name": "eth1"}}}
    assert orjson.loads(event["event"]["original"]) == ALERT


def test_dns_both_eve_versions() -> None:
    event = parse(DNS_QUERY)
    assert event["event"]["kind"] == "event"
    assert event["dns"] == {"question": {"name": "c2.bad.example", "type": "A"}, "id": 41213, "type": "query"}
    assert event["network"]["transport"] == "udp"
    assert parse(DNS_V3)["dns"]["question"] == {"name": "c2.bad.example", "type": "AAAA"}


def test_http_over_ipv6_and_tls() -> None:
    event = parse(HTTP)
    assert event["source"] == {"ip": "2001:db8::10", "port": 50000}
    assert event["url"] == {"domain": "intranet.corp.example", "original": "/login"}
    assert event["http"]["response"]["status_code"] == 302
    assert event["event"]["category"] == ["network", "web"]
    tls = parse(TLS)["tls"]
    assert tls == {
        "client": {"server_name": "login.example.com", "ja3": "e7d705a3286e19ea42f587b344ee6865"},
        "server": {"subject": "CN=login.example.com", "issuer": "CN=Example CA"},
        "version_protocol": "tls",
        "version": "1.2",
    }


def test_flow_fileinfo_and_unknown_event_types() -> None:
    flow = parse({**DNS_QUERY, "event_type": "flow", "flow": {"pkts_toserver": 3, "bytes_toserver": 180,
                                                              "pkts_toclient": 2, "bytes_toclient": 300}})
    assert flow["source"] == {"ip": "10.20.30.40", "port": 53211, "packets": 3, "bytes": 180}
    assert flow["event"]["type"] == ["connection"]
    files = parse({**HTTP, "event_type": "fileinfo", "fileinfo": {"filename": "/dl/setup.exe", "size": 4096,
                                                                   "sha256": "ab" * 32}})
    assert files["file"] == {"path": "/dl/setup.exe", "name": "setup.exe", "size": 4096, "hash": {"sha256": "ab" * 32}}
    stats = parse({"timestamp": "2026-01-02T10:00:00+0000", "event_type": "stats", "stats": {"uptime": 5}})
    assert stats["event"]["category"] == ["network"]
    assert stats["suricata"]["eve"]["stats"] == {"uptime": 5}


def test_bad_addresses_are_left_out_not_fatal() -> None:
    event = parse({**DNS_QUERY, "src_ip": "not-an-ip", "src_port": 70000})
    assert "source" not in event
    assert event["suricata"]["eve"]["src_ip"] == "not-an-ip"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"timestamp": "2026-01-02T10:00:00+0000"}, "not a Suricata EVE record: event_type is null, not a name"),
        ({"event_type": "alert"}, "not a Suricata EVE record: no timestamp"),
        (
            {"event_type": "alert", "timestamp": "noon"},
            "Suricata EVE timestamp: unreadable timestamp 'noon': Invalid isoformat string: 'noon'",
        ),
    ],
)
def test_not_eve_is_a_parse_error(record: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(record)
    assert str(caught.value) == reason


def test_batch_keeps_good_records() -> None:
    results = run_batch(PARSER, [orjson.dumps(ALERT), b"{not json", orjson.dumps(DNS_QUERY)], CTX)
    assert isinstance(results[1], ParseFailure)
    assert [r["event"]["action"] for r in results if isinstance(r, dict)] == ["alert", "dns"]


def test_sniff() -> None:
    assert PARSER.sniff(orjson.dumps(ALERT))
    assert not PARSER.sniff(b'{"ts": 1, "uid": "C1"}')


def test_fuzz() -> None:
    fuzz_parser(PARSER, [ALERT, DNS_QUERY, DNS_V3, HTTP, TLS])


def test_numbers_beyond_64_bits_stay_only_in_the_raw_record() -> None:
    raw = (b'{"timestamp":"2026-01-01T00:00:00.000000+0000","event_type":"flow","src_ip":"10.0.0.1",'
           b'"flow_id":"999999999999999999999999999999","flow":{"pkts_toserver":1e30}}')
    event = PARSER.parse_one(raw, CTX)
    assert "flow_id" not in event["suricata"]
    assert "packets" not in event.get("source", {})
    assert event["suricata"]["eve"]["flow_id"] == "999999999999999999999999999999"
