"""The IOC matcher, type by type: exact addresses and networks (IPv4 and IPv6, many prefix lengths), domains
with their subdomains, exact host names, URLs and their extensions, hashes (ECS and Sysmon's Hashes), e-mail
addresses and file names (from paths too); one hit per (indicator, field); the holder swaps indexes."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.intel.event_fields import ADDRESS, read
from vigil.intel.indicators import normalise
from vigil.intel.matcher import Entry, Hit, IndexHolder, IndicatorIndex

MD5 = "42893adbc36605ec79b5bd610759947e"
SHA1 = "b4e581f173f782a2f1da5d29c95946ee500eb2d0"
SHA256 = "1a061c74619de6af8c02cba0fa00754bdd9e3515c0e08cad6350c7adfc8cdd5b"

INDICATORS: list[tuple[str, str]] = [
    ("ipv4", "203.0.113.5"), ("ipv6", "2001:db8::dead:beef"),
    ("cidr", "198.51.100.0/24"), ("cidr", "100.64.0.0/10"), ("cidr", "192.0.2.128/25"), ("cidr", "45.9.20.7/32"),
    ("cidr", "2001:db8:aaaa::/48"), ("cidr", "2001:db8:bbbb:cccc::/64"), ("cidr", "2400::/12"),
    ("domain", "evil.com"), ("domain", "bad.co.uk"), ("hostname", "c2.example.net"),
    ("url", "http://dl.example.org/payload/a.exe"), ("url", "https://phish.example/login?user=1"),
    ("url", "http://files.example/"),
    ("md5", MD5), ("sha1", SHA1), ("sha256", SHA256),
    ("email", "boss@ceo-fraud.example"), ("filename", "mimikatz.exe"),
]


def entries(items: list[tuple[str, str]] = INDICATORS) -> list[Entry]:
    return [(number, kind, normalise(kind, value)) for number, (kind, value) in enumerate(items, 1)]


@pytest.fixture(scope="module")
def index() -> IndicatorIndex:
    return IndicatorIndex.build(entries())


def matched(index: IndicatorIndex, event: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(hit.value, hit.field, hit.observed) for hit in index.match(event)}


def values(index: IndicatorIndex, event: dict[str, Any]) -> set[str]:
    return {hit.value for hit in index.match(event)}


@pytest.mark.parametrize(("address", "expected"), [
    ("203.0.113.5", {"203.0.113.5"}), ("203.0.113.6", set()),
    ("2001:db8::dead:beef", {"2001:db8::dead:beef"}), ("2001:0DB8:0:0::DEAD:BEEF", {"2001:db8::dead:beef"}),
    ("198.51.100.0", {"198.51.100.0/24"}), ("198.51.100.255", {"198.51.100.0/24"}), ("198.51.101.1", set()),
    ("100.64.0.1", {"100.64.0.0/10"}), ("100.127.255.254", {"100.64.0.0/10"}), ("100.128.0.1", set()),
    ("192.0.2.200", {"192.0.2.128/25"}), ("192.0.2.100", set()),
    ("45.9.20.7", {"45.9.20.7/32"}), ("45.9.20.8", set()),
    ("2001:db8:aaaa:1::9", {"2001:db8:aaaa::/48"}), ("2001:db8:aaab::9", set()),
    ("2001:db8:bbbb:cccc:1:2:3:4", {"2001:db8:bbbb:cccc::/64"}), ("2001:db8:bbbb:cccd::1", set()),
    ("240f:1::1", {"2400::/12"}), ("2410::1", set()),
    ("[2001:db8:aaaa::1]:443", {"2001:db8:aaaa::/48"}), ("198.51.100.7:8443", {"198.51.100.0/24"}),
    ("::ffff:203.0.113.5", {"203.0.113.5"}),
    ("0198.51.100.7", set()), ("198.51.100", set()), ("not-an-ip", set()),
])
def test_addresses_and_networks(index: IndicatorIndex, address: str, expected: set[str]) -> None:
    assert values(index, {"destination": {"ip": address}}) == expected
    assert values(index, {"DestinationIp": address}) == expected  # Sysmon's name, as sent


def test_a_cidr_hit_names_the_network_and_the_address_seen(index: IndicatorIndex) -> None:
    [hit] = index.match({"source.ip": "198.51.100.77"})
    assert hit == Hit(3, "cidr", "198.51.100.0/24", "source.ip", "198.51.100.77")


@pytest.mark.parametrize(("name", "expected"), [
    ("evil.com", {"evil.com"}), ("a.b.evil.com", {"evil.com"}), ("WWW.EVIL.COM.", {"evil.com"}),
    ("notevil.com", set()), ("evil.com.au", set()), ("evil.co", set()), ("x.bad.co.uk", {"bad.co.uk"}),
    ("co.uk", set()),
    ("c2.example.net", {"c2.example.net"}), ("C2.Example.Net", {"c2.example.net"}),
    ("www.c2.example.net", set()), ("example.net", set()),
])
def test_domains_match_their_subdomains_and_host_names_only_themselves(index: IndicatorIndex, name: str,
                                                                       expected: set[str]) -> None:
    assert values(index, {"dns": {"question": {"name": name}}}) == expected
    assert values(index, {"QueryName": name}) == expected


@pytest.mark.parametrize(("url", "expected"), [
    ("http://dl.example.org/payload/a.exe", True),
    ("http://dl.example.org/payload/a.exe?x=1", True),
    ("HTTP://DL.EXAMPLE.ORG/payload/a.exe#top", True),
    ("https://dl.example.org/payload/a.exe", True),  # scheme not compared
    ("http://dl.example.org/payload/a.exe/more", True),
    ("http://dl.example.org/payload/a.exe2", False),
    ("http://dl.example.org/payload/A.EXE", False),  # paths are case-sensitive
    ("http://dl.example.org/payload/", False),
    ("http://other.example/?u=http://dl.example.org/payload/a.exe", False),
    ("https://phish.example/login?user=1", True),
    ("https://phish.example/login?user=1&next=/", True),
    ("https://phish.example/login?user=12", False),
    ("https://phish.example/login", False),
    ("http://files.example", True), ("http://files.example/anything/at/all?x", True),
    ("http://files.example.evil/x", False),
])
def test_urls_match_themselves_and_their_extensions(index: IndicatorIndex, url: str, expected: bool) -> None:
    hits = [hit for hit in index.match({"url": {"original": url}}) if hit.type == "url"]
    assert bool(hits) is expected


def test_a_url_path_logged_with_its_host_field(index: IndicatorIndex) -> None:
    zeek = {"host": "dl.example.org", "uri": "/payload/a.exe?id=7"}
    assert matched(index, zeek) == {("http://dl.example.org/payload/a.exe", "uri", "dl.example.org/payload/a.exe?id=7")}
    ecs = {"url": {"domain": "dl.example.org", "original": "/payload/a.exe"}}
    assert values(index, ecs) == {"http://dl.example.org/payload/a.exe"}
    # The same path on another host is another URL (the memo must not answer for it).
    assert values(index, {"url": {"domain": "good.example", "original": "/payload/a.exe"}}) == set()
    assert values(index, {"url": {"domain": "dl.example.org", "original": "/payload/a.exe"}}) == {
        "http://dl.example.org/payload/a.exe"}
    flat = {"url.domain": "DL.example.org", "url.original": "/payload/a.exe/x"}  # dotted keys, as sent
    assert values(index, flat) == {"http://dl.example.org/payload/a.exe"}
    assert values(index, {"http": {"hostname": "dl.example.org", "url": "/payload/a.exe"}}) == {  # Suricata
        "http://dl.example.org/payload/a.exe"}


def test_a_url_host_matches_domains(index: IndicatorIndex) -> None:
    assert matched(index, {"http": {"request": {"referrer": "https://login.evil.com/x"}}}) == {
        ("evil.com", "http.request.referrer", "login.evil.com")}


@pytest.mark.parametrize("event", [
    {"file": {"hash": {"md5": MD5.upper()}}}, {"process": {"hash": {"sha1": SHA1}}}, {"sha256": SHA256},
    {"fileinfo": {"md5": MD5}}, {"file.hash.sha256": SHA256},
])
def test_hashes(index: IndicatorIndex, event: dict[str, Any]) -> None:
    assert len(index.match(event)) == 1


def test_sysmon_hashes_match_each_algorithm(index: IndicatorIndex) -> None:
    event = {"Hashes": f"SHA1={SHA1.upper()},MD5={MD5.upper()},SHA256={SHA256.upper()},IMPHASH={'0' * 32}"}
    assert values(index, event) == {MD5, SHA1, SHA256}
    assert {hit.field for hit in index.match(event)} == {"Hashes"}


def test_email_addresses(index: IndicatorIndex) -> None:
    event = {"email": {"from": {"address": "Big Boss <BOSS@ceo-fraud.example>"}},
             "smtp": {"rcpt_to": ["<a@b.example>"]}, "rcptto": ["x@y.example", "boss@ceo-fraud.example"]}
    assert matched(index, event) == {
        ("boss@ceo-fraud.example", "email.from.address", "Big Boss <BOSS@ceo-fraud.example>"),
        ("boss@ceo-fraud.example", "rcptto", "boss@ceo-fraud.example")}


def test_file_names_from_paths_and_names(index: IndicatorIndex) -> None:
    event = {"Image": "C:\\Users\\bob\\Downloads\\MIMIKATZ.EXE", "file": {"path": "/tmp/mimikatz.exe"},
             "process": {"name": "mimikatz.exe"}, "TargetFilename": "C:\\temp\\mimikatz.exe.txt"}
    assert {(hit.value, hit.field) for hit in index.match(event)} == {
        ("mimikatz.exe", "Image"), ("mimikatz.exe", "file.path"), ("mimikatz.exe", "process.name")}


def test_one_hit_per_indicator_and_field(index: IndicatorIndex) -> None:
    event = {"related": {"ip": ["203.0.113.5", "203.0.113.5:80", "10.0.0.1"]}, "source": {"ip": "203.0.113.5"},
             "SourceIp": "203.0.113.5"}
    assert sorted(hit.field for hit in index.match(event)) == ["SourceIp", "related.ip", "source.ip"]


def test_indicators_sharing_a_value_all_hit() -> None:
    index = IndicatorIndex.build([(1, "domain", "evil.com"), (2, "domain", "evil.com"), (3, "hostname", "evil.com"),
                                  (4, "url", "http://evil.com/a"), (5, "url", "https://evil.com/a")])
    assert sorted(hit.indicator_id for hit in index.match({"url": {"full": "http://evil.com/a"}})) == [1, 2, 3, 4, 5]


def test_rows_that_cannot_be_indexed_are_counted_not_fatal() -> None:
    rows: list[Any] = [(1, "stix-pattern", "[file:name = 'x']"), (2, "unknown", "x"), (3, "ipv4", "999.1.1.1"),
                       (4, "cidr", "10.0.0.0/99"), (5, "ipv4", None), ("six", "ipv4", "10.0.0.1"), (7,),
                       (8, "ipv4", "10.0.0.8")]
    index = IndicatorIndex.build(rows)
    assert index.skipped == 7 and len(index) == 1
    assert values(index, {"source": {"ip": "10.0.0.8"}}) == {"10.0.0.8"}


def test_an_empty_index_matches_nothing() -> None:
    index = IndicatorIndex.empty()
    assert index.match({"source": {"ip": "10.0.0.1"}}) == [] and len(index) == 0


def test_repeated_values_give_the_same_hits(index: IndicatorIndex) -> None:
    """The second time a value is seen its answer comes from the memo: it must be the same one."""
    event = {"Image": "C:\\x\\mimikatz.exe", "dns": {"question": {"name": "a.evil.com"}}, "source.ip": "10.9.9.9"}
    assert index.match(event) == index.match(dict(event)) != []


def test_the_holder_swaps_and_rebuilds_in_the_background() -> None:
    holder = IndexHolder()
    assert holder.match({"source": {"ip": "203.0.113.5"}}) == []
    release = threading.Event()
    built: list[IndicatorIndex] = []

    def slow_entries() -> list[Entry]:
        release.wait(10)
        return entries()

    thread = holder.rebuild(slow_entries, then=built.append)
    assert holder.match({"source": {"ip": "203.0.113.5"}}) == []  # the old index serves meanwhile
    release.set()
    thread.join(10)
    assert built and holder.index is built[0]
    assert [hit.value for hit in holder.match({"source": {"ip": "203.0.113.5"}})] == ["203.0.113.5"]
    old = holder.swap(IndicatorIndex.empty())
    assert old is built[0] and holder.match({"source": {"ip": "203.0.113.5"}}) == []


def test_a_failed_rebuild_keeps_the_current_index() -> None:
    holder = IndexHolder(IndicatorIndex.build(entries()))

    def broken() -> list[Entry]:
        raise RuntimeError("indicator store unreachable")

    holder.rebuild(broken).join(10)
    assert "indicator store unreachable" in holder.last_error
    assert holder.match({"source": {"ip": "203.0.113.5"}})


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30) | st.sampled_from(
    ["203.0.113.5", "a.evil.com", MD5, "http://dl.example.org/payload/a.exe", "[::1]:x", "::ffff:", "%", "@"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["source", "ip", "url", "original", "domain", "Hashes", "dns", "question", "name", "rcptto", "Image",
         "uri", "host", "file.path", "related"]), inner, max_size=4), max_leaves=15))
def test_no_event_makes_matching_fail(event: Any) -> None:
    index = IndicatorIndex.build(entries())
    for hit in index.match(event if isinstance(event, dict) else {"source": event}):
        assert isinstance(hit, Hit)


ADDRESS_TEXT = st.one_of(
    st.text(alphabet="0123456789.:[] \tabcdefx-", max_size=24),
    st.sampled_from(["203.0.113.5", "203.0.113.5:443", " 203.0.113.5", "203.0.113.5 ", "0203.0.113.5", "203.0.113",
                     "198.51.100.9", "1.2.3.4.5", "12345", "host7", "a.evil.com", "7.evil.com", "evil.com1",
                     "::ffff:203.0.113.5", "[203.0.113.5]"]))


@settings(max_examples=400, deadline=None)
@given(ADDRESS_TEXT)
def test_an_address_field_matches_as_its_text_reads(text: str) -> None:
    """The matcher's shortcut for addresses as they are (no reading apart, and with no IPv4 network indexed
    one table lookup) answers what reading the text and looking up each part answers, with networks and
    without."""
    with_networks = IndicatorIndex.build(entries())
    without = IndicatorIndex.build(entries([("ipv4", "203.0.113.5"), ("ipv4", "12.34.5.6"), ("domain", "evil.com"),
                                            ("hostname", "c2.example.net")]))
    for index in (with_networks, without):
        expected = {(ref[0], observed) for kind, observed in read(ADDRESS, "source.ip", text, {})
                    for ref in index.lookup(kind, observed)}
        for _ in range(2):  # the second time from the memo
            assert {(hit.indicator_id, hit.observed) for hit in index.match({"source": {"ip": text}})} == expected
