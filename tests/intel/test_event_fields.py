"""Which event fields carry which observable: every field of the table is read nested and as a dotted key,
real parser output (Sysmon, Zeek, Suricata, web access logs, CEF) yields its addresses, hosts, URLs, hashes,
mail addresses and file names, and no value, however odd, raises."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.intel.event_fields import (
    ADDRESS_FIELDS,
    EMAIL_FIELDS,
    FIELDS,
    FILENAME_FIELDS,
    HASH_FIELDS,
    HOST_FIELDS,
    PATH_FIELDS,
    URL_FIELDS,
    Observed,
    Plan,
    observe,
    split_address,
)
from vigil.intel.indicators import IndicatorType
from vigil.siem.parsers.access import WebAccessParser
from vigil.siem.parsers.base import ParseContext, put
from vigil.siem.parsers.cef import CefParser
from vigil.siem.parsers.suricata import SuricataEveParser
from vigil.siem.parsers.windows import WindowsJsonParser
from vigil.siem.parsers.zeek import ZeekJsonParser

T = IndicatorType
CTX = ParseContext()
MD5 = "42893ADBC36605EC79B5BD610759947E"
SHA1 = "B4E581F173F782A2F1DA5D29C95946EE500EB2D0"
SHA256 = "1A061C74619DE6AF8C02CBA0FA00754BDD9E3515C0E08CAD6350C7ADFC8CDD5B"


def nested(field: str, value: Any) -> dict[str, Any]:
    event: dict[str, Any] = {}
    put(event, field, value)
    return event


def sample(field: str) -> tuple[Any, Observed]:
    """A value for a field of the table, and the observable it must give."""
    if field in ADDRESS_FIELDS:
        return "198.51.100.7", (T.IPV4, field, "198.51.100.7")
    if field in HOST_FIELDS:
        return "c2.evil.example", (T.DOMAIN, field, "c2.evil.example")
    if field in URL_FIELDS:
        return "http://evil.example/a?b=1", (T.URL, field, "http://evil.example/a?b=1")
    if field in HASH_FIELDS:
        return SHA1, (T.SHA1, field, SHA1)
    if field in EMAIL_FIELDS:
        return "x@evil.example", (T.EMAIL, field, "x@evil.example")
    if field in PATH_FIELDS:
        return "C:\\Temp\\drop.exe", (T.FILENAME, field, "drop.exe")
    if field in FILENAME_FIELDS:
        return "drop.exe", (T.FILENAME, field, "drop.exe")
    return f"MD5={MD5}", (T.MD5, field, MD5)  # Hashes, Hash


EVERY_FIELD = sorted({field for fields in FIELDS.values() for field in fields})


@pytest.mark.parametrize("field", EVERY_FIELD)
def test_every_field_of_the_table_is_read_nested_and_as_a_dotted_key(field: str) -> None:
    value, expected = sample(field)
    assert expected in observe(nested(field, value))
    assert expected in observe({field: value})
    assert expected in observe(nested(field, [value, None, 7]))  # a list: each item is the field's value


def test_a_field_belongs_to_one_reading() -> None:
    tables = [ADDRESS_FIELDS, HOST_FIELDS, tuple(URL_FIELDS), HASH_FIELDS, EMAIL_FIELDS, PATH_FIELDS, FILENAME_FIELDS]
    every = [field for table in tables for field in table]
    assert len(every) == len(set(every))


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.1", (T.IPV4, "10.0.0.1")),
    ("10.0.0.1:443", (T.IPV4, "10.0.0.1")),
    ("[2001:db8::1]:8443", (T.IPV6, "2001:db8::1")),
    ("2001:db8::1", (T.IPV6, "2001:db8::1")),
    ("fe80::1%eth0", (T.IPV6, "fe80::1")),
    ("::ffff:192.0.2.9", (T.IPV4, "192.0.2.9")),
    ("evil.example:8080", (T.DOMAIN, "evil.example")),
    (" evil.example ", (T.DOMAIN, "evil.example")),
    ("-", None), ("", None), ("two words", None), ("[::1", None),
])
def test_addresses_lose_their_port_brackets_and_zone(text: str, expected: tuple[IndicatorType, str] | None) -> None:
    assert split_address(text) == expected


def test_sysmon_hashes_give_each_algorithm_and_skip_imphash() -> None:
    event = {"Hashes": f"SHA1={SHA1},MD5={MD5},SHA256={SHA256},IMPHASH=40BEC1A4A3BCB7D3089B5E1532386613"}
    assert sorted(observe(event)) == sorted([(T.SHA1, "Hashes", SHA1), (T.MD5, "Hashes", MD5),
                                             (T.SHA256, "Hashes", SHA256)])
    assert observe({"Hashes": "MD5=tooshort,SHA1="}) == []


def test_paths_give_their_file_name() -> None:
    found = observe({"Image": "C:\\Users\\bob\\AppData\\Local\\Temp\\Invoice.PDF.exe",
                     "file": {"path": "/tmp/.x/kinsing"}, "ParentImage": "C:\\Windows\\"})
    assert sorted(found) == [(T.FILENAME, "Image", "Invoice.PDF.exe"), (T.FILENAME, "file.path", "kinsing")]


def test_a_url_gives_its_host_too_and_a_path_is_joined_to_its_host_field() -> None:
    assert sorted(observe({"url": {"full": "https://user:pw@Evil.Example:8443/x?y=1"}})) == [
        (T.DOMAIN, "url.full", "Evil.Example"), (T.URL, "url.full", "https://user:pw@Evil.Example:8443/x?y=1")]
    assert sorted(observe({"url": {"original": "/gate.php?id=1", "domain": "evil.example"}})) == [
        (T.DOMAIN, "url.domain", "evil.example"), (T.DOMAIN, "url.original", "evil.example"),
        (T.URL, "url.original", "evil.example/gate.php?id=1")]
    assert (T.IPV4, "http.request.referrer", "203.0.113.9") in observe(
        {"http": {"request": {"referrer": "http://203.0.113.9:8080/"}}})
    assert observe({"url": {"original": "/no/host/field"}}) == []


def test_email_lists_and_display_names() -> None:
    found = observe({"rcptto": ["a@x.example", "b@y.example"], "email": {"from": {"address": "Eve <eve@z.example>"}}})
    assert sorted(found) == [(T.EMAIL, "email.from.address", "Eve <eve@z.example>"),
                             (T.EMAIL, "rcptto", "a@x.example"), (T.EMAIL, "rcptto", "b@y.example")]


def test_a_plan_for_some_types_reads_only_their_fields() -> None:
    event = {"Image": "C:\\x\\drop.exe", "source": {"ip": "10.0.0.1"}, "Hashes": f"MD5={MD5}"}
    assert observe(event, Plan.for_types([T.MD5])) == [(T.MD5, "Hashes", MD5)]
    assert observe(event, Plan.for_types([])) == []


def test_sysmon_events_as_the_windows_parser_writes_them() -> None:
    record = {"Event": {"System": {"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational",
                                   "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
                                   "TimeCreated": {"#attributes": {"SystemTime": "2026-11-28T10:00:00Z"}}},
                        "EventData": {"Image": "C:\\Windows\\System32\\rundll32.exe", "SourceIp": "10.0.2.15",
                                      "DestinationIp": "203.0.113.80", "DestinationHostname": "cdn.evil.example"}}}
    event = WindowsJsonParser().parse_one(orjson.dumps(record), CTX)
    found = set(observe(event))
    assert {(T.IPV4, "DestinationIp", "203.0.113.80"), (T.IPV4, "destination.ip", "203.0.113.80"),
            (T.DOMAIN, "DestinationHostname", "cdn.evil.example"),
            (T.DOMAIN, "destination.domain", "cdn.evil.example"),
            (T.FILENAME, "Image", "rundll32.exe"), (T.FILENAME, "process.executable", "rundll32.exe"),
            (T.FILENAME, "process.name", "rundll32.exe")} <= found


def test_zeek_http_and_suricata_dns_as_parsed_and_as_sent() -> None:
    zeek = {"ts": 1764324000.0, "uid": "C1", "id.orig_h": "10.0.0.5", "id.orig_p": 50000, "id.resp_h": "203.0.113.7",
            "id.resp_p": 80, "method": "GET", "host": "evil.example", "uri": "/drop/a.bin", "status_code": 200}
    parsed = set(observe(ZeekJsonParser().parse_one(orjson.dumps(zeek), CTX)))
    assert {(T.URL, "url.original", "evil.example/drop/a.bin"), (T.IPV4, "destination.ip", "203.0.113.7")} <= parsed
    as_sent = set(observe(zeek))  # a JSON batch the store takes as it is
    assert {(T.URL, "uri", "evil.example/drop/a.bin"), (T.IPV4, "id.resp_h", "203.0.113.7"),
            (T.DOMAIN, "uri", "evil.example")} <= as_sent
    eve = {"timestamp": "2026-11-28T10:00:00.000000+0000", "event_type": "dns", "src_ip": "10.0.0.5",
           "dest_ip": "10.0.0.53", "dns": {"type": "request", "queries": [{"rrname": "a.evil.example"},
                                                                           {"rrname": "b.evil.example"}]}}
    parsed = set(observe(SuricataEveParser().parse_one(orjson.dumps(eve), CTX)))
    assert {(T.DOMAIN, "dns.question.name", "a.evil.example"),
            (T.DOMAIN, "suricata.eve.dns.queries.rrname", "b.evil.example")} <= parsed
    assert {(T.DOMAIN, "dns.queries.rrname", "a.evil.example"),
            (T.DOMAIN, "dns.queries.rrname", "b.evil.example")} <= set(observe(eve))


def test_web_access_and_cef_lines() -> None:
    line = b'evil.example:443 198.51.100.4 - - [28/Nov/2026:10:00:00 +0000] "GET /wp-login.php?x=1 HTTP/1.1" 200 5'
    found = set(observe(WebAccessParser().parse_one(line, CTX)))
    assert {(T.IPV4, "source.ip", "198.51.100.4"), (T.URL, "url.original", "evil.example/wp-login.php?x=1")} <= found
    cef = (b"CEF:0|Vendor|Proxy|1.0|100|Blocked|5|src=10.0.0.8 dst=203.0.113.66 "
           b"request=http://evil.example/payload.exe fname=payload.exe")
    found = set(observe(CefParser().parse_one(cef, CTX)))
    assert {(T.IPV4, "destination.ip", "203.0.113.66"), (T.URL, "url.original", "http://evil.example/payload.exe"),
            (T.DOMAIN, "url.original", "evil.example"), (T.FILENAME, "file.name", "payload.exe")} <= found


def test_odd_values_are_no_observable() -> None:
    event = {"source": {"ip": 167772161}, "destination": "203.0.113.1", "Image": None, "Hashes": ["MD5=x", {"a": 1}],
             "url": {"original": "x" * 100_000, "domain": ["a", ["b"]]}, "dns": {"question": {"name": {"x": 1}}},
             "QueryName": True, "related": {"ip": [[["10.0.0.1"]]]}, "TargetFilename": "\\", "rcptto": "no-at-sign"}
    assert observe(event) == []


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*EVERY_FIELD, "source", "dns", "process", "url", "email", "http"]), JSON,
                       max_size=6), st.booleans())
def test_no_event_makes_reading_fail(event: dict[str, Any], nest: bool) -> None:
    if nest:
        event = {key.split(".")[0]: {".".join(key.split(".")[1:]) or "x": value} for key, value in event.items()}
    for kind, field, value in observe(event):
        assert isinstance(kind, IndicatorType) and field in EVERY_FIELD and isinstance(value, str)
