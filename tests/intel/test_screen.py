"""The screen of live matching: every raw JSON document and every event (dict) the matcher would find a hit in
is named (whatever the field, the case, the port, the escapes), those holding no indicator value are not, and
what the screen cannot read is named rather than passed."""

from __future__ import annotations

import json
from collections import UserDict
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.intel import screen
from vigil.intel.event_fields import FIELDS, MAX_LIST_ITEMS
from vigil.intel.indicators import normalise
from vigil.intel.matcher import Entry, IndicatorIndex

pytestmark = pytest.mark.skipif(not screen.available(), reason="vigil.intel._screen is not built (no C compiler at "
                                "install time): plain JSON is decoded to be matched instead")

MD5 = "42893adbc36605ec79b5bd610759947e"
SHA1 = "b4e581f173f782a2f1da5d29c95946ee500eb2d0"
SHA256 = "1a061c74619de6af8c02cba0fa00754bdd9e3515c0e08cad6350c7adfc8cdd5b"

INDICATORS: list[tuple[str, str]] = [
    ("ipv4", "203.0.113.5"), ("ipv6", "2001:db8::dead:beef"), ("cidr", "198.51.100.0/24"),
    ("cidr", "100.64.0.0/10"), ("cidr", "45.9.20.7/32"), ("cidr", "2001:db8:aaaa::/48"), ("cidr", "2400::/12"),
    ("domain", "evil.com"), ("domain", "bad.co.uk"), ("hostname", "c2.example.net"),
    ("url", "http://dl.example.org/payload/a.exe"), ("url", "https://phish.example:8443/login?user=1"),
    ("url", "http://198.18.0.9/x"), ("url", "http://[2001:db8::77]/y"),
    ("md5", MD5), ("sha1", SHA1), ("sha256", SHA256),
    ("email", "boss@ceo-fraud.example"), ("filename", "mimikatz.exe"), ("filename", "invoice 2024 (1).pdf.exe"),
]
# What each indicator can be seen as in a field: the parts the variations below are made of.
SEEN = ["203.0.113.5", "2001:db8::dead:beef", "2001:0DB8:0:0::DEAD:BEEF", "198.51.100.77", "100.100.1.1",
        "45.9.20.7", "2001:db8:aaaa:5::1", "240f::9", "evil.com", "www.Evil.COM", "a.b.bad.co.uk",
        "c2.example.net", "dl.example.org/payload/a.exe", "phish.example:8443/login?user=1&x=2",
        "198.18.0.9/x", "[2001:db8::77]/y", MD5, MD5.upper(), SHA1, SHA256, "Boss@CEO-Fraud.example",
        "mimikatz.exe", "MimiKatz.EXE", "invoice 2024 (1).pdf.exe",
        "mimi\u212aatz.exe", "例子.evil.com", "Bücher.bad.co.uk", "a.evil\u3002com", "x.ｅｖｉｌ.com"]
# (the Kelvin sign lowers to 'k'; IDNA writes labels beyond ASCII as "xn--...", splits at U+3002 too, and makes
# full-width letters ASCII)
NEAR = ["203.0.113.50", "evil.co", "notevil.com", "198.51.101.1", "c3.example.net", "boss@ceo-fraud.exampl",
        "mimikatz.ex", MD5[:-1] + "0", "dl.example.org", "10.0.0.1", "2001:db8::1", "ok.example",
        "张三", "报告.docx", "用户 登录成功", "例子.com", "mimikatz.exé", "例子\u3002com", "x.例子.net"]

FIELD_NAMES = sorted({field for fields in FIELDS.values() for field in fields} | {"message", "user.name", "tags"})


def entries(items: list[tuple[str, str]] = INDICATORS) -> list[Entry]:
    return [(number, kind, normalise(kind, value)) for number, (kind, value) in enumerate(items, 1)]


@pytest.fixture(scope="module")
def index() -> IndicatorIndex:
    built = IndicatorIndex.build(entries())
    built.screen = screen.screen_for(built)
    return built


def named(index: IndicatorIndex, documents: list[bytes]) -> list[int]:
    assert index.screen is not None
    return index.screen.candidates(documents)


@st.composite
def texts(draw: st.DrawFn) -> str:
    """A field's text: an indicator's value (or a near miss) as logs write it, or other text."""
    core = draw(st.sampled_from(SEEN) | st.sampled_from(NEAR) | st.text(max_size=12))
    form = draw(st.sampled_from(["bare", "port", "scheme", "user", "path", "dot", "sub", "space", "quote", "dir",
                                 "angle", "mailto", "hashes", "mapped", "bracket", "upper", "odd", "wide_space",
                                 "wide_dir", "wide_query"]))
    port = draw(st.integers(0, 65535))
    return {
        "bare": core, "port": f"{core}:{port}", "scheme": f"{draw(st.sampled_from(['http', 'HTTPS', 'ftp']))}://{core}",
        "user": f"https://u:p@{core}", "path": f"/{core}", "dot": f"{core}.", "sub": f"x-1.{core}",
        "space": f"  {core}\t", "quote": f'"{core}"', "dir": f"C:\\Users\\x\\{core}", "angle": f"Boss <{core}>",
        "mailto": f"mailto:{core}", "hashes": f"MD5={core},SHA256={SHA256[:10]}", "mapped": f"::ffff:{core}",
        "bracket": f"[{core}]:{port}", "upper": core.upper(), "odd": f"http://x.example:{port}://{core}",
        "wide_space": f"\u3000{core}\u00a0", "wide_dir": f"D:\\工具\\{core}", "wide_query": f"http://{core}/?名={port}",
    }[form]


def nest(field: str, value: Any, dotted: bool) -> dict[str, Any]:
    if dotted:
        return {field: value}
    event: dict[str, Any] = value
    for part in reversed(field.split(".")):
        event = {part: event}
    return event


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {"@timestamp": "2026-11-29T10:00:00.000Z", "event": {"action": "x"}}
    for _ in range(draw(st.integers(1, 4))):
        field = draw(st.sampled_from(FIELD_NAMES))
        value: Any = draw(texts())
        if draw(st.booleans()):
            value = [draw(texts()), value]
        part = nest(field, value, draw(st.booleans()))
        for key, item in part.items():  # merged one level deep: two fields under one object
            if isinstance(event.get(key), dict) and isinstance(item, dict):
                event[key] = {**event[key], **item}
            else:
                event[key] = item
    if draw(st.booleans()):  # a Zeek or web server log: the host beside the path
        event["host"] = draw(texts())
        event["uri"] = "/" + draw(texts()).lstrip("/")
    return event


def encodings(event: dict[str, Any]) -> list[bytes]:
    """The event as JSON writers write it: raw UTF-8, every character above ASCII escaped, '/' escaped."""
    plain = json.dumps(event, ensure_ascii=False)
    return [orjson.dumps(event), json.dumps(event).encode(), plain.replace("/", "\\/").encode(),
            json.dumps(event, indent=1).encode()]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_every_document_the_matcher_finds_a_hit_in_is_named(index: IndicatorIndex, event: dict[str, Any]) -> None:
    if not index.match(event):
        return
    documents = encodings(event)
    assert named(index, documents) == list(range(len(documents))), (event, index.match(event))
    assert index.to_match([{"x": "y"}, event]) == [1], (event, index.match(event))


def test_documents_without_an_indicator_value_are_not_named(index: IndicatorIndex) -> None:
    quiet = [
        {"source": {"ip": "10.0.0.5", "port": 51000}, "destination": {"ip": "203.0.113.50"}, "message": "ok"},
        {"dns": {"question": {"name": "www.notevil.com"}}, "url": {"original": "https://evil.co/login"}},
        {"QueryName": "c3.example.net", "Image": "C:\\Windows\\System32\\cmd.exe", "Hashes": f"MD5={MD5[:-1]}0"},
        {"email": {"from": {"address": "boss@ceo-fraud.exampl"}}, "SourceIp": "198.51.101.1"},
        {"url": {"original": "https://dl.example.com/payload/a.exe"}, "server": {"domain": "example.org"}},
        {"evil.com": "a key is no value", "203.0.113.5": 1, "related": {"ip": ["2001:db8::1", "100.128.0.1"]}},
        {"rcptto": ["a@b.example", "c@d.example"], "file": {"name": "mimikatz.ex"}, "tags": [1, 2.5, None, True]},
    ]
    documents = [encoded for event in quiet for encoded in encodings(event)]
    assert not any(index.match(event) for event in quiet)
    assert named(index, documents) == []
    assert index.to_match(quiet) == []


@pytest.mark.parametrize("document", [
    b'{"message": "lone \\ud800 surrogate"}',
    b'{"url": "' + b"a" * 20_000 + b'"}',  # longer than the screen reads
    b'{"source": {"ip": "203.0.113.5"',  # cut off inside
    b'{"a": "bad \\x escape"}',
    b'{"a": "tab\there"}',  # a raw control character
])
def test_what_the_screen_cannot_read_is_named(index: IndicatorIndex, document: bytes) -> None:
    assert named(index, [b'{"a": "b"}', document]) == [1]


@pytest.mark.parametrize("event", [
    {"message": "lone \ud800 surrogate"},
    {"url": "a" * 20_000},
    {"source": UserDict({"ip": "203.0.113.5"})},  # a mapping the matcher reads as an object
    nest(".".join(["a"] * 40), "x", dotted=False),  # nested deeper than the screen walks
    ["not", "a", "dict"],
])
def test_what_the_screen_cannot_read_in_an_event_is_named(index: IndicatorIndex, event: Any) -> None:
    assert index.to_match([{"a": "b"}, event]) == [1]


def test_an_event_holding_other_values_than_text_is_not_named(index: IndicatorIndex) -> None:
    event = {"@timestamp": datetime(2026, 11, 29, tzinfo=UTC), "source": {"port": 443, "bytes": 1.5},
             "tags": (None, True, b"203.0.113.5"), "nested": [[["x"]]]}
    assert index.match(event) == [] and index.to_match([event]) == []


class Unreadable:
    """An object that fails when asked what it is."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("no class")


def test_a_batch_the_screen_fails_on_is_matched_whole(index: IndicatorIndex) -> None:
    events = [{"odd": Unreadable()}, {"QueryName": "x.evil.com"}, {"a": "b"}]
    assert list(index.to_match(events)) == [0, 1, 2]
    assert index.match(events[1]) and index.match(events[0]) == []


QUIET_WIDE = [  # text beyond ASCII the matcher finds nothing in: read, not named
    {"message": "用户 张三 登录成功", "user": {"name": "张三"}, "file": {"path": "C:\\用户\\文档\\报告.docx"},
     "process": {"name": "服务.exe"}, "host": {"hostname": "办公室-PC"}},
    {"message": "Zugriff verweigert für evil.co", "email": {"from": {"address": "张三 <zhang@corp.example>"}}},
    {"DestinationHostname": "例子.com", "Image": "C:\\T\\mimikatz.exé", "tags": ["告警", "测试"]},
    {"winlog": {"channel": "Security", "event_data": {"SubjectUserName": "管理员", "IpAddress": "10.1.2.3",
                                                      "ProcessName": "C:\\Windows\\System32\\服务主机.exe"}},
     "message": "已成功登录帐户。\n\n主题:\n\t安全 ID:\t\tS-1-5-18\n\t帐户名:\t\t财务部-PC01$\n\t登录 ID:\t\t0x3E7",
     "host": {"name": "财务部-PC01.corp.example"}},
]
LOUD_WIDE = [  # text beyond ASCII around what the matcher finds: named
    {"QueryName": "例子.evil.com"},  # IDNA: xn--fsqu00a.evil.com, under evil.com
    {"Image": "C:\\工具\\mimikatz.exe"},
    {"Image": "C:\\T\\mimi\u212aatz.exe"},  # the Kelvin sign: lower() makes it "mimikatz.exe"
    {"DestinationIp": "203.0.113.5\u3000"},  # str.strip() strips the ideographic space
    {"email": {"from": {"address": "张三 <Boss@CEO-Fraud.example>"}}},
    {"url": {"original": "http://dl.example.org/payload/a.exe?名=值"}},
]


def test_text_beyond_ascii_is_read_not_named_on_sight(index: IndicatorIndex) -> None:
    assert not any(index.match(event) for event in QUIET_WIDE) and all(index.match(event) for event in LOUD_WIDE)
    for events, expected in ((QUIET_WIDE, []), (LOUD_WIDE, list(range(len(LOUD_WIDE))))):
        for encoded in zip(*(encodings(event) for event in events), strict=True):
            assert named(index, list(encoded)) == expected, encoded
        assert index.to_match(events) == expected


def test_an_indicator_beyond_ascii_names_such_text() -> None:
    built = IndicatorIndex.build([(1, "filename", "发票.exe"), (2, "url", "http://例子/x")]).with_screen()
    assert built.screen is not None
    events = [{"file": {"name": "发票.EXE"}}, {"url": {"original": "http://例子/x"}}, {"file": {"name": "invoice.exe"}}]
    assert [bool(built.match(event)) for event in events] == [True, True, False]
    assert built.to_match(events) == [0, 1]
    assert built.screen.candidates([orjson.dumps(event) for event in events]) == [0, 1]


def test_an_event_list_is_read_as_far_as_the_matcher_reads_it(index: IndicatorIndex) -> None:
    quiet = ["10.0.0.1"] * MAX_LIST_ITEMS
    last_read, unread = [*quiet[:-1], "203.0.113.5"], [*quiet, "203.0.113.5"]
    events = [{"related": {"ip": last_read}}, {"related": {"ip": unread}}, {"related": {"ip": quiet * 2_000}}]
    assert [bool(index.match(event)) for event in events] == [True, False, False]
    assert index.to_match(events) == [0]


def test_a_document_with_an_escaped_indicator_value_is_named(index: IndicatorIndex) -> None:
    documents = [b'{"source": {"ip": "\\u0032\\u0030\\u0033.0.113.5"}}', b'{"Image": "C:\\\\T\\\\MIMIKATZ\\u002eexe"}',
                 b'{"url": {"original": "http:\\/\\/dl.example.org\\/payload\\/a.exe?x=1"}}']
    assert all(index.match(orjson.loads(document)) for document in documents)
    assert named(index, documents) == [0, 1, 2]


def test_text_and_bytes_documents_and_other_objects() -> None:
    built = IndicatorIndex.build(entries([("domain", "evil.com")]))
    screened = screen.screen_for(built)
    assert screened is not None
    documents = ['{"QueryName": "a.evil.com"}', b'{"QueryName": "a.evil.com"}', b'{"x": "y"}', 5]
    assert screened.candidates(documents) == [0, 1, 3]  # type: ignore[arg-type]


def test_a_url_indicator_on_a_host_of_one_label_names_such_hosts() -> None:
    built = IndicatorIndex.build([(1, "url", "http://intranet/upload.php")])  # the index takes what it is given
    screened = screen.screen_for(built)
    assert screened is not None
    documents = [b'{"uri": "/upload.php", "host": "INTRANET"}', b'{"url": {"original": "http://intranet/upload.php"}}',
                 b'{"uri": "/upload.php", "host": "extranet"}']
    assert [bool(built.match(orjson.loads(document))) for document in documents] == [True, True, False]
    assert screened.candidates(documents) == [0, 1]
    assert screened.candidate_events([orjson.loads(document) for document in documents]) == [0, 1]


def test_a_url_whose_path_starts_with_a_scheme_is_named() -> None:
    url = "http://a.example:1://C.example/p"  # the matcher compares it by the host "C.example", case kept
    built = IndicatorIndex.build([(1, "url", url)])
    screened = screen.screen_for(built)
    assert screened is not None
    document = orjson.dumps({"url": {"original": url + "?q=1"}})
    assert built.match(orjson.loads(document)) and screened.candidates([document]) == [0]
    assert screened.candidate_events([orjson.loads(document)]) == [0]


def test_no_screen_where_the_matcher_reads_every_field() -> None:
    patterns = IndicatorIndex.build([(1, "stix-pattern", "[process:name = 'x.exe' AND process:pid = 4]")])
    assert len(patterns) == 1 and screen.screen_for(patterns) is None
    assert screen.screen_for(IndicatorIndex.empty()) is None
