"""CSV and plain-list feeds: columns by name or position, types mapped or guessed, bad rows reported
with their line and every other row kept, options checked before anything is read."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from vigil.core.errors import BadInput
from vigil.intel.feeds.base import feed_parsers
from vigil.intel.feeds.tabular import CsvParser, LinesParser, indicator_fields, make_indicator, parse_time
from vigil.intel.indicators import IndicatorType, ItemError, ParsedIndicator, ParsedItem, Related


def parse_csv(text: str, **options: Any) -> list[ParsedItem]:
    return list(CsvParser().parse(io.BytesIO(text.encode()), options))


def parse_lines(text: str, **options: Any) -> list[ParsedItem]:
    return list(LinesParser().parse(io.BytesIO(text.encode()), options))


def indicators(items: list[ParsedItem]) -> list[ParsedIndicator]:
    return [item for item in items if isinstance(item, ParsedIndicator)]


def errors(items: list[ParsedItem]) -> list[ItemError]:
    return [item for item in items if isinstance(item, ItemError)]


def test_both_formats_are_installed_plugins() -> None:
    parsers = feed_parsers()
    assert isinstance(parsers["csv"], CsvParser)
    assert isinstance(parsers["lines"], LinesParser)


def test_csv_columns_by_name_with_every_optional_column() -> None:
    items = parse_csv(
        "indicator,kind,first,last,labels,score,note,family\n"
        "198.51.100.7:443,ip:port,2024-01-15 10:05:09,2024-01-16,botnet;c2|Emotet,80,seen in spam,Emotet\n"
        "d41d8cd98f00b204e9800998ecf8427e,md5_hash,,,,,,\n",
        value="indicator", type="kind", first_seen="first", last_seen="last", tags="labels",
        confidence="score", description="note", malware="family", header=True,
        type_map={"ip:port": "ipv4", "md5_hash": "md5"}, tags_all=["abuse"], tlp="white")
    first, second = indicators(items)
    assert (first.type, first.value) == (IndicatorType.IPV4, "198.51.100.7")  # the port is dropped
    assert first.first_seen == datetime(2024, 1, 15, 10, 5, 9, tzinfo=UTC)
    assert first.last_seen == datetime(2024, 1, 16, tzinfo=UTC)
    assert first.tags == ("abuse", "botnet", "c2", "Emotet")
    assert first.confidence == 80
    assert first.description == "seen in spam"
    assert first.related == (Related("malware", "Emotet"),)
    assert first.tlp == "clear"
    assert first.position == "line 2"
    assert (second.type, second.value, second.tags, second.confidence) == (
        IndicatorType.MD5, "d41d8cd98f00b204e9800998ecf8427e", ("abuse",), None)


def test_csv_columns_by_position_and_guessed_types() -> None:
    items = parse_csv("1;203.0.113.9\n2;hxxp://evil[.]example/x\n3;2001:DB8::1\n4;evil.example\n",
                      value=1, delimiter=";")
    assert [(item.type, item.value) for item in indicators(items)] == [
        (IndicatorType.IPV4, "203.0.113.9"), (IndicatorType.URL, "http://evil.example/x"),
        (IndicatorType.IPV6, "2001:db8::1"), (IndicatorType.DOMAIN, "evil.example")]


def test_a_bad_row_is_an_error_with_its_line_and_the_others_are_kept() -> None:
    items = parse_csv("# exported 2024-01-15\n\n"
                      "203.0.113.1\n"
                      "999.1.1.1\n"
                      "\n"
                      "# a comment in the middle\n"
                      "203.0.113.3\n", value=0, default_type="ipv4")
    assert [item.value for item in indicators(items)] == ["203.0.113.1", "203.0.113.3"]
    [error] = errors(items)
    assert error.position == "line 4"
    assert "IPv4" in error.reason
    assert [item.position for item in indicators(items)] == ["line 3", "line 7"]


def test_row_problems_each_say_what_is_wrong() -> None:
    items = parse_csv("v,t,seen,conf\n"
                      "203.0.113.1,ipv4,yesterday,50\n"
                      "203.0.113.2,ipv4,2024-01-01,high\n"
                      "203.0.113.3,registry-key,,\n"
                      "short\n", value="v", type="t", first_seen="seen", confidence="conf", header=True)
    reasons = {error.position: error.reason for error in errors(items)}
    assert "first seen" in reasons["line 2"] and "yesterday" in reasons["line 2"]
    assert "confidence" in reasons["line 3"]
    assert "registry-key" in reasons["line 4"] and "type_map" in reasons["line 4"]
    assert "line 5" in reasons
    assert not indicators(items)


def test_quoted_fields_with_separators_line_breaks_and_spaces_after_commas() -> None:
    items = parse_csv('"2024-01-15 10:00:25", "http://a.example/x?a=1,2", "multi\nline, note"\n'
                      '"2024-01-15 10:00:26", "http://b.example/", "plain"\n',
                      value=1, default_type="url", description=2, first_seen=0)
    first, second = indicators(items)
    assert first.value == "http://a.example/x?a=1,2"
    assert first.description == "multi\nline, note"
    assert second.position == "line 3"  # numbered by physical lines, the quoted break included


def test_named_columns_without_a_header_take_the_columns_option() -> None:
    text = '# "when","ip"\n"when","ip"\n"2024-01-15","192.0.2.5"\n'
    items = parse_csv(text, value="ip", first_seen="when", columns=["when", "ip"], default_type="ipv4")
    # The uncommented copy of the header is recognised and skipped, not reported as a bad IP.
    assert not errors(items)
    [only] = indicators(items)
    assert only.value == "192.0.2.5"


@pytest.mark.parametrize(("options", "mentioned"), [
    ({}, "value"),
    ({"value": 0, "colour": "red"}, "colour"),
    ({"value": "ip"}, "header"),
    ({"value": -1}, "value"),
    ({"value": 0, "default_type": "ip"}, "default_type"),
    ({"value": 0, "type_map": {"ip:port": "socket"}}, "type_map"),
    ({"value": 0, "tlp": "purple"}, "tlp"),
    ({"value": 0, "confidence_all": 101}, "confidence_all"),
    ({"value": 0, "delimiter": "::"}, "delimiter"),
    ({"value": 0, "header": "yes"}, "header"),
])
def test_bad_options_are_refused_before_reading(options: dict[str, Any], mentioned: str) -> None:
    source = io.BytesIO(b"203.0.113.1\n")
    with pytest.raises(BadInput) as refused:
        CsvParser().parse(source, options)
    assert mentioned in refused.value.detail
    assert source.tell() == 0


def test_a_named_column_missing_from_the_header_is_refused_naming_the_columns() -> None:
    with pytest.raises(BadInput) as refused:
        parse_csv("ip,date\n203.0.113.1,2024-01-01\n", value="address", header=True)
    assert "address" in refused.value.detail and "'ip'" in refused.value.detail


def test_binary_input_is_refused() -> None:
    with pytest.raises(BadInput):
        list(CsvParser().parse(io.BytesIO(b"\x1f\x8b\x08\x00\x00\x00\x00"), {"value": 0}))


class EndlessFeed(io.RawIOBase):
    """A source that never ends: only a streaming parser can give its first items."""

    def __init__(self) -> None:
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        line = f"10.0.{self.count // 250 % 250}.{self.count % 250 + 1}\n".encode()
        self.count += 1
        buffer[:len(line)] = line
        return len(line)


@pytest.mark.parametrize("parser", [CsvParser(), LinesParser()])
def test_sources_are_streamed_not_read_whole(parser: CsvParser | LinesParser) -> None:
    options = {"value": 0} if isinstance(parser, CsvParser) else {}
    first = list(itertools.islice(parser.parse(io.BufferedReader(EndlessFeed()), options), 3))
    assert [item.value for item in first if isinstance(item, ParsedIndicator)] == [
        "10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_the_callers_source_stays_open() -> None:
    source = io.BytesIO(b"203.0.113.1\n")
    list(LinesParser().parse(source, {}))
    list(CsvParser().parse(source, {"value": 0}))
    assert not source.closed


def test_lines_guess_each_type_and_skip_comments() -> None:
    items = parse_lines("# Emerging Threats compromised IPs\n"
                        "203.0.113.77\n"
                        "192.0.2.0/24 ; SBL123456\n"
                        "evil[.]example\n"
                        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f\n"
                        "phish@evil.example\n"
                        "not a value at all!\n", tags_all="et, compromised", tlp="green", confidence_all=60)
    assert [(item.type, item.value) for item in indicators(items)] == [
        (IndicatorType.IPV4, "203.0.113.77"), (IndicatorType.CIDR, "192.0.2.0/24"),
        (IndicatorType.DOMAIN, "evil.example"),
        (IndicatorType.SHA256, "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"),
        (IndicatorType.EMAIL, "phish@evil.example")]
    assert {(item.tags, item.tlp, item.confidence) for item in indicators(items)} == {
        (("et", "compromised"), "green", 60)}
    [error] = errors(items)
    assert error.position == "line 7"


def test_lines_with_a_given_type() -> None:
    items = parse_lines("evil.example\nwww.evil.example\n203.0.113.5\n", type="hostname")
    assert [item.value for item in indicators(items)] == ["evil.example", "www.evil.example"]
    assert all(item.type is IndicatorType.HOSTNAME for item in indicators(items))
    assert [error.position for error in errors(items)] == ["line 3"]


def test_lines_options_are_checked() -> None:
    with pytest.raises(BadInput, match="type"):
        LinesParser().parse(io.BytesIO(b""), {"type": "address"})
    with pytest.raises(BadInput, match="value"):
        LinesParser().parse(io.BytesIO(b""), {"value": 0})


def test_fast_indicators_equal_ordinary_ones() -> None:
    fast = make_indicator(indicator_fields(type=IndicatorType.IPV4, value="192.0.2.1", tags=("a",),
                                           position="line 1"))
    ordinary = ParsedIndicator(IndicatorType.IPV4, "192.0.2.1", tags=("a",), position="line 1")
    assert fast == ordinary and hash(fast) == hash(ordinary) and repr(fast) == repr(ordinary)


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-01-15 10:05:09", datetime(2024, 1, 15, 10, 5, 9, tzinfo=UTC)),
    ("2024-01-15T10:05:09Z", datetime(2024, 1, 15, 10, 5, 9, tzinfo=UTC)),
    ("2024-01-15T12:05:09+02:00", datetime(2024, 1, 15, 10, 5, 9, tzinfo=UTC)),
    ("2024-01-15 10:05:09 UTC", datetime(2024, 1, 15, 10, 5, 9, tzinfo=UTC)),
    ("2024-01-15", datetime(2024, 1, 15, tzinfo=UTC)),
    ("1705313109", datetime(2024, 1, 15, 10, 5, 9, tzinfo=UTC)),
    ("1705313109000", datetime(2024, 1, 15, 10, 5, 9, tzinfo=UTC)),
])
def test_times_as_feeds_write_them(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected
