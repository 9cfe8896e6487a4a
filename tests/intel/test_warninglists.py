"""MISP warninglists: a known-good value is flagged with the lists that hold it, a random one is not,
and only the lists an operator enabled are consulted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vigil.core.errors import BadInput
from vigil.intel.indicators import IndicatorType
from vigil.intel.warninglists import WarninglistIndex, available, default_on

PUBLIC_DNS = "List of known IPv4 public DNS resolvers"
RFC1918 = "List of RFC 1918 CIDR blocks"
GOOGLE = "List of known google domains"
DYNAMIC_DNS = "List of known dynamic DNS domains"
DISPOSABLE = "List of disposable email domains"
CONTACTS = "Common contact e-mail addresses"
SMALL = frozenset({PUBLIC_DNS, RFC1918, GOOGLE, DYNAMIC_DNS, DISPOSABLE, CONTACTS})


def names(index: WarninglistIndex, kind: IndicatorType, value: str) -> set[str]:
    return {hit.name for hit in index.check(kind, value)}


@pytest.fixture(scope="module")
def small() -> WarninglistIndex:
    return WarninglistIndex.build(SMALL)


def test_available_lists_describe_themselves() -> None:
    lists = {info.name: info for info in available()}
    assert len(lists) >= 100
    dns = lists[PUBLIC_DNS]
    assert (dns.type, dns.category) == ("cidr", "false-positive")
    assert dns.entries > 10_000 and dns.version > 0 and "DNS" in dns.description
    assert {info.type for info in lists.values()} <= {"string", "substring", "hostname", "cidr", "regex"}


def test_by_default_every_false_positive_list_but_the_rankings_and_dynamic_dns_is_consulted() -> None:
    index = WarninglistIndex.build()
    # The shipped lists carry no category: false-positive, as in MISP; the million-site rankings and the
    # dynamic DNS list are off unless named.
    off = {info.name for info in available() if not default_on(info)}
    assert "Top 1,000,000 most-used sites from Tranco" in off and "List of known dynamic DNS domains" in off
    assert set(index.names) == {info.name for info in available()} - off
    assert names(index, IndicatorType.DOMAIN, "evil-c2.example.com") & off == set()
    assert PUBLIC_DNS in names(index, IndicatorType.IPV4, "8.8.8.8")
    assert names(index, IndicatorType.IPV4, "77.88.1.2") == set()
    assert names(index, IndicatorType.DOMAIN, "evil-wjqhx.example") == set()
    assert WarninglistIndex.build() is index  # built once, then kept


def test_public_resolver_and_private_addresses(small: WarninglistIndex) -> None:
    assert names(small, IndicatorType.IPV4, "8.8.8.8") == {PUBLIC_DNS}
    assert names(small, IndicatorType.IPV4, "10.20.30.40") == {RFC1918}
    assert names(small, IndicatorType.IPV4, "77.88.1.2") == set()


def test_a_network_hits_only_when_a_list_covers_all_of_it(small: WarninglistIndex) -> None:
    assert names(small, IndicatorType.CIDR, "192.168.10.0/24") == {RFC1918}
    assert names(small, IndicatorType.CIDR, "192.168.0.0/15") == set()  # half of it is public


def test_a_subdomain_of_a_listed_domain_hits(small: WarninglistIndex) -> None:
    assert GOOGLE in names(small, IndicatorType.DOMAIN, "google.com")
    assert GOOGLE in names(small, IndicatorType.HOSTNAME, "mail.google.com")
    assert DYNAMIC_DNS in names(small, IndicatorType.HOSTNAME, "c2.attacker.dyndns.org")
    assert names(small, IndicatorType.DOMAIN, "google.com.evil-wjqhx.example") == set()


def test_urls_are_checked_on_their_host_and_addresses_on_their_domain(small: WarninglistIndex) -> None:
    assert GOOGLE in names(small, IndicatorType.URL, "https://docs.google.com/document/d/1abc/edit")
    assert names(small, IndicatorType.URL, "http://evil-wjqhx.example/?next=google.com") == set()
    assert names(small, IndicatorType.EMAIL, "someone@0-mail.com") == {DISPOSABLE}
    assert names(small, IndicatorType.EMAIL, "abuse@evil-wjqhx.example") == {CONTACTS}


def test_a_disabled_list_is_not_consulted() -> None:
    only_private = WarninglistIndex.build({RFC1918})
    assert only_private.names == [RFC1918]
    assert names(only_private, IndicatorType.IPV4, "8.8.8.8") == set()
    assert names(only_private, IndicatorType.IPV4, "10.1.2.3") == {RFC1918}
    only_dns = WarninglistIndex.build({PUBLIC_DNS})
    assert names(only_dns, IndicatorType.IPV4, "10.1.2.3") == set()
    assert names(only_dns, IndicatorType.IPV4, "8.8.8.8") == {PUBLIC_DNS}


def test_an_unknown_list_is_refused() -> None:
    with pytest.raises(BadInput, match="List of good vibes"):
        WarninglistIndex.build({"List of good vibes"})


def write_lists(folder: Path, *lists: dict[str, Any]) -> Path:
    for number, data in enumerate(lists):
        (folder / f"list{number}").mkdir()
        (folder / f"list{number}" / "list.json").write_text(json.dumps(data))
    return folder


def a_list(name: str, kind: str, entries: list[str], **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "list": entries, "description": f"{name} (test)", "version": 3, **fields}


def test_list_types_categories_and_matching_attributes(tmp_path: Path) -> None:
    folder = write_lists(
        tmp_path,
        a_list("exact names", "string", ["Example.NET", ".cdn-example.org"], matching_attributes=["domain"]),
        a_list("sinkholes", "cidr", ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]),
        a_list("parts", "substring", ["sandbox"], matching_attributes=["domain", "hostname"]),
        a_list("patterns", "regex", ["/^noreply@/i"], matching_attributes=["email-src"]),
        a_list("empty file", "string", ["D41D8CD98F00B204E9800998ECF8427E"], matching_attributes=["md5"]),
        a_list("known services", "hostname", ["service.example"], category="known"),
    )
    index = WarninglistIndex.build(folder=folder)
    assert "known services" not in index.names  # only false-positive lists by default
    assert names(index, IndicatorType.DOMAIN, "example.net") == {"exact names"}
    assert names(index, IndicatorType.DOMAIN, "www.example.net") == set()  # a string list is exact
    assert names(index, IndicatorType.DOMAIN, "img.cdn-example.org") == {"exact names"}  # ".x" covers below
    assert names(index, IndicatorType.HOSTNAME, "example.net") == set()  # the list is for domains only
    assert names(index, IndicatorType.IPV4, "198.51.100.7") == {"sinkholes"}
    assert names(index, IndicatorType.IPV6, "2001:db8::53") == {"sinkholes"}
    assert names(index, IndicatorType.HOSTNAME, "win7-sandbox-04.lab.example") == {"parts"}
    assert names(index, IndicatorType.EMAIL, "NoReply@bank.example") == {"patterns"}
    assert names(index, IndicatorType.MD5, "d41d8cd98f00b204e9800998ecf8427e") == {"empty file"}
    [hit] = index.check(IndicatorType.MD5, "d41d8cd98f00b204e9800998ecf8427e")
    assert (hit.version, hit.category) == (3, "false-positive")
    with_known = WarninglistIndex.build({"known services"}, folder=folder)
    hits = with_known.check(IndicatorType.URL, "https://api.service.example/")
    assert [(hit.name, hit.category) for hit in hits] == [("known services", "known")]
