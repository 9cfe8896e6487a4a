"""AlienVault OTX pulses: indicator types, the pulse's context on every indicator, entities for the
pulse, its adversary, malware families and techniques, and what is left out."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from vigil.core.errors import BadInput
from vigil.intel.feeds.base import feed_parsers
from vigil.intel.feeds.otx import OtxItems, OtxParser
from vigil.intel.indicators import IndicatorType, ItemError, ParsedEntity, ParsedIndicator, ParsedItem, Related


def indicator(number: int, kind: str, value: str, **fields: Any) -> dict[str, Any]:
    return {"id": 3_700_000_000 + number, "indicator": value, "type": kind, "created": "2024-01-15T10:00:00",
            "content": "", "title": "", "description": "", "expiration": None, "is_active": 1, "role": None,
            **fields}


PULSE: dict[str, Any] = {
    "id": "65a50f1e2b4a8c0d1e2f3a4b",
    "name": "Lazarus targets defence contractors with fake job offers",
    "description": "Spear-phishing with trojanised PDF readers.",
    "author_name": "AlienVault",
    "created": "2024-01-15T10:00:00.123000",
    "modified": "2024-01-16T08:30:00.000000",
    "revision": 2,
    "tlp": "white",
    "public": 1,
    "adversary": "Lazarus Group",
    "tags": ["lazarus", "dream job", "apt"],
    "targeted_countries": ["Germany"],
    "industries": ["Defense"],
    "malware_families": [{"id": "Manuscrypt", "display_name": "Manuscrypt", "target": None}],
    "attack_ids": [{"id": "T1566.001", "name": "Spearphishing Attachment",
                    "display_name": "T1566.001 - Spearphishing Attachment"}, "T1204"],
    "references": ["https://example.org/blog/lazarus-dream-job"],
    "indicators": [
        indicator(1, "IPv4", "203.0.113.45", expiration="2024-02-14T10:00:00", title="C2"),
        indicator(2, "IPv6", "2001:DB8::45"),
        indicator(3, "CIDR", "198.51.100.0/24"),
        indicator(4, "domain", "jobs-portal[.]example"),
        indicator(5, "hostname", "cdn.jobs-portal.example"),
        indicator(6, "URL", "hxxps://jobs-portal.example/offer.pdf"),
        indicator(7, "URI", "/gate.php"),
        indicator(8, "URI", "http://jobs-portal.example/gate.php"),
        indicator(9, "FileHash-MD5", "D41D8CD98F00B204E9800998ECF8427E"),
        indicator(10, "FileHash-SHA1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        indicator(11, "FileHash-SHA256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        indicator(12, "email", "recruiter@jobs-portal.example"),
        indicator(13, "FilePath", "C:\\Users\\Public\\SumatraPDF.exe"),
        indicator(14, "Mutex", "Global\\LazarusMutex"),
        indicator(15, "CVE", "CVE-2023-1234"),
        indicator(16, "IPv4", "203.0.113.46", is_active=0),
        indicator(17, "domain", "not a domain"),
    ],
}


def parse(document: Any) -> tuple[list[ParsedItem], OtxItems]:
    items = OtxParser().parse(io.BytesIO(json.dumps(document).encode()), {})
    return list(items), items


def indicators(items: list[ParsedItem]) -> list[ParsedIndicator]:
    return [item for item in items if isinstance(item, ParsedIndicator)]


def entities(items: list[ParsedItem]) -> list[ParsedEntity]:
    return [item for item in items if isinstance(item, ParsedEntity)]


def test_the_format_is_an_installed_plugin() -> None:
    assert isinstance(feed_parsers()["otx"], OtxParser)


def test_indicator_types() -> None:
    items, run = parse(PULSE)
    assert [(item.type, item.value) for item in indicators(items)] == [
        (IndicatorType.IPV4, "203.0.113.45"), (IndicatorType.IPV6, "2001:db8::45"),
        (IndicatorType.CIDR, "198.51.100.0/24"), (IndicatorType.DOMAIN, "jobs-portal.example"),
        (IndicatorType.HOSTNAME, "cdn.jobs-portal.example"), (IndicatorType.URL, "https://jobs-portal.example/offer.pdf"),
        (IndicatorType.URL, "http://jobs-portal.example/gate.php"),
        (IndicatorType.MD5, "d41d8cd98f00b204e9800998ecf8427e"),
        (IndicatorType.SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (IndicatorType.SHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (IndicatorType.EMAIL, "recruiter@jobs-portal.example"), (IndicatorType.FILENAME, "sumatrapdf.exe")]
    assert run.skipped_types == {"Mutex": 1, "CVE": 1, "URI (a path, not a URL)": 1}
    assert run.inactive == 1
    [error] = [item for item in items if isinstance(item, ItemError)]
    assert error.position == "indicators[16]"


def test_the_pulse_gives_context_to_every_indicator() -> None:
    items, _ = parse(PULSE)
    first = indicators(items)[0]
    assert first.tags == ("lazarus", "dream job", "apt")
    assert first.tlp == "clear"
    assert first.first_seen == datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    assert first.valid_until == datetime(2024, 2, 14, 10, 0, tzinfo=UTC)
    assert first.description == "C2"
    assert first.external_id == "3700000001"
    assert first.position == "indicators[0]"
    assert first.related == (
        Related("report", "Lazarus targets defence contractors with fake job offers", "65a50f1e2b4a8c0d1e2f3a4b"),
        Related("intrusion-set", "Lazarus Group"), Related("malware", "Manuscrypt"),
        Related("attack-pattern", "Spearphishing Attachment", "T1566.001"), Related("attack-pattern", "T1204", "T1204"))
    assert all(item.related == first.related and item.tlp == "clear" for item in indicators(items))


def test_pulse_entities() -> None:
    items, _ = parse(PULSE)
    by_kind = {(entity.kind, entity.name): entity for entity in entities(items)}
    report = by_kind[("report", "Lazarus targets defence contractors with fake job offers")]
    assert report.description == "Spear-phishing with trojanised PDF readers."
    assert report.first_seen == datetime(2024, 1, 15, 10, 0, 0, 123000, tzinfo=UTC)
    assert report.last_seen == datetime(2024, 1, 16, 8, 30, tzinfo=UTC)
    assert Related("intrusion-set", "Lazarus Group") in report.related
    assert ("intrusion-set", "Lazarus Group") in by_kind and ("malware", "Manuscrypt") in by_kind
    technique = by_kind[("attack-pattern", "Spearphishing Attachment")]
    assert technique.attack_ids == ("T1566.001",) and technique.external_id == "T1566.001"


def test_a_page_of_subscribed_pulses() -> None:
    second = {**PULSE, "id": "65a6", "name": "Second pulse", "tlp": "amber", "adversary": "",
              "malware_families": ["Manuscrypt"], "attack_ids": [],
              "indicators": [indicator(20, "domain", "second.example")]}
    items, _ = parse({"count": 2, "next": None, "previous": None, "results": [PULSE, second]})
    last = indicators(items)[-1]
    assert (last.value, last.tlp, last.position) == ("second.example", "amber", "results[1].indicators[0]")
    assert Related("malware", "Manuscrypt") in last.related
    # A malware family named by both pulses is one entity.
    assert sum(entity.name == "Manuscrypt" for entity in entities(items)) == 1
    assert {entity.name for entity in entities(items) if entity.kind == "report"} == {PULSE["name"], "Second pulse"}


def test_a_page_of_one_pulses_indicators() -> None:
    items, _ = parse({"count": 1, "next": None, "results": [indicator(1, "IPv4", "203.0.113.9")]})
    [only] = indicators(items)
    assert (only.value, only.position, only.related) == ("203.0.113.9", "results[0]", ())


@pytest.mark.parametrize(("data", "says"), [
    (b"not json", "not JSON"),
    (b'{"Event": {"info": "a MISP event"}}', "not an OTX pulse"),
    (b"[]", "not an OTX pulse"),
])
def test_sources_that_are_not_otx_are_refused(data: bytes, says: str) -> None:
    with pytest.raises(BadInput, match=says):
        OtxParser().parse(io.BytesIO(data), {})


def test_options_are_refused() -> None:
    with pytest.raises(BadInput, match="api_key"):
        OtxParser().parse(io.BytesIO(b"{}"), {"api_key": "secret"})
