"""MISP events, search responses and feeds: which attributes become indicators, of which type, with
what tags, TLP, dates and relations, and what a bad attribute, event file or source does."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from vigil.core.errors import BadInput
from vigil.intel.feeds.base import feed_parsers
from vigil.intel.feeds.misp import MispItems, MispParser, attack_name, load_manifest, misp_feed
from vigil.intel.indicators import IndicatorType, ItemError, ParsedEntity, ParsedIndicator, ParsedItem, Related

MISP_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "intel" / "misp"


@pytest.fixture(scope="module")
def misp_data() -> Path:
    if not (MISP_DATA / "existing_event.json").is_file():
        pytest.skip(f"the MISP samples are not at {MISP_DATA.resolve()} (the shared data set; see its README)")
    return MISP_DATA


def parse_file(path: Path, **options: Any) -> tuple[list[ParsedItem], MispItems]:
    with path.open("rb") as source:
        items = MispParser().parse(source, options)
        return list(items), items


def parse_event(event: dict[str, Any], **options: Any) -> list[ParsedItem]:
    return list(MispParser().parse(io.BytesIO(json.dumps(event).encode()), options))


def indicators(items: list[ParsedItem]) -> list[ParsedIndicator]:
    return [item for item in items if isinstance(item, ParsedIndicator)]


def entities(items: list[ParsedItem]) -> list[ParsedEntity]:
    return [item for item in items if isinstance(item, ParsedEntity)]


def errors(items: list[ParsedItem]) -> list[ItemError]:
    return [item for item in items if isinstance(item, ItemError)]


def test_the_format_is_an_installed_plugin() -> None:
    assert isinstance(feed_parsers()["misp"], MispParser)


def test_xorist_event_only_ids_attributes_become_indicators(misp_data: Path) -> None:
    items, run = parse_file(misp_data / "57c4445b-c548-4654-af0b-4be3950d210f.json")
    # 9 attributes: 4 hashes and names flagged for IDS, a registry key (not matched), 2 links, a comment, a text.
    assert [(item.type, item.value) for item in indicators(items)] == [
        (IndicatorType.FILENAME, "3z4wng9603it23y.exe"), (IndicatorType.MD5, "0749bae92ca336a02c83d126e04ec628"),
        (IndicatorType.SHA1, "77b0c41b7d340b8a3d903f21347bbf06aa766b5b"),
        (IndicatorType.SHA256, "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68")]
    assert run.skipped_types == {"link": 2, "comment": 1, "text": 1, "regkey|value": 1}
    assert not errors(items)
    [report] = entities(items)
    assert (report.kind, report.name, report.external_id) == (
        "report", "Ransomware - Xorist", "57c4445b-c548-4654-af0b-4be3950d210f")
    assert report.first_seen == datetime(2016, 8, 29, tzinfo=UTC)
    md5 = indicators(items)[1]
    assert md5.tlp == "clear"  # tlp:white
    assert md5.tags == ('circl:incident-classification="malware"', 'ms-caro-malware:malware-type="Ransom"',
                        'malware_classification:malware-category="Ransomware"')
    assert md5.related == (Related("report", "Ransomware - Xorist", "57c4445b-c548-4654-af0b-4be3950d210f"),)
    assert md5.external_id == "57c4448b-454c-4d17-90d1-4d2f950d210f"
    assert md5.valid_from == datetime.fromtimestamp(1472480395, UTC)
    assert md5.description == "Imported via the Freetext Import Tool"
    assert md5.position == "Event[0].Attribute[5]"


def test_sednit_event_objects_galaxies_and_actor(misp_data: Path) -> None:
    items, _ = parse_file(misp_data / "existing_event.json")
    found = indicators(items)
    # 7 domain attributes; in objects 37 sha1, 15 file names, 12 ip-dst and 12 domains flagged for IDS.
    assert len(found) == 83
    assert sum(item.type is IndicatorType.DOMAIN for item in found) == 19
    assert sum(item.type is IndicatorType.IPV4 for item in found) == 12
    assert any(item.position.startswith("Event[0].Object[") for item in found)
    kinds = {(entity.kind, entity.name) for entity in entities(items)}
    assert ("report", "OSINT - Sednit update: How Fancy Bear Spent the Year") in kinds
    assert {("intrusion-set", "Sofacy"), ("malware", "CHOPSTICK"), ("tool", "X-Agent")} <= kinds
    assert len(entities(items)) == 15  # the report and 14 galaxy clusters, each once
    sofacy = next(entity for entity in entities(items) if entity.name == "Sofacy")
    assert "APT28" in sofacy.aliases
    for item in found:
        assert item.tlp == "clear"
        assert Related("intrusion-set", "Sofacy", "7cdff317-a673-4474-84ec-4f1754947823") in item.related
        assert not any(tag.startswith(("workflow:", "misp-galaxy:")) for tag in item.tags)
        assert len({(related.kind, related.name) for related in item.related}) == len(item.related)


def test_search_response_and_malware_sample(misp_data: Path) -> None:
    items, run = parse_file(misp_data / "malware_exist.json")
    assert [(item.type, item.value, item.position) for item in indicators(items)] == [
        (IndicatorType.FILENAME, "simple.json", "Event[0].Object[0].Attribute[0]"),
        (IndicatorType.MD5, "7637beddacbeac59d44469b2b120b9e6", "Event[0].Object[0].Attribute[0]"),
        (IndicatorType.MD5, "7637beddacbeac59d44469b2b120b9e6", "Event[0].Object[0].Attribute[2]"),
        (IndicatorType.SHA1, "023853a4331db8d67e44553004cf338ec1b7440e", "Event[0].Object[0].Attribute[3]"),
        (IndicatorType.SHA256, "6ae8b0f1c7d6f3238d1fc14038018c3b4704c8cc23dac1c2bfd2c81b5a278eef",
         "Event[0].Object[0].Attribute[4]")]
    assert run.skipped_types == {"size-in-bytes": 1}
    assert run.not_for_ids == 1  # the file name attribute not flagged for IDS


def test_proposals_are_ignored(misp_data: Path) -> None:
    flagged, _ = parse_file(misp_data / "shadow.json")
    everything, _ = parse_file(misp_data / "shadow.json", all_attributes=True)
    assert [item.value for item in indicators(flagged)] == ["baz.png"]
    assert [item.value for item in indicators(everything)] == ["blah.exe", "baz.png"]


def test_custom_object_of_text_attributes_gives_only_the_report(misp_data: Path) -> None:
    items, run = parse_file(misp_data / "misp_custom_obj.json")
    assert [(entity.kind, entity.name) for entity in entities(items)] == [("report", "This is a test")]
    assert not indicators(items) and run.skipped_types == {"text": 2}


def attribute(misp_type: str, value: str, **fields: Any) -> dict[str, Any]:
    return {"type": misp_type, "value": value, "to_ids": True, "category": "Network activity", **fields}


def test_attribute_types_and_their_parts() -> None:
    items = parse_event({"Event": {"info": "types", "Attribute": [
        attribute("ip-dst", "198.51.100.0/24"),
        attribute("ip-src", "2001:DB8::5"),
        attribute("ip-dst|port", "203.0.113.10|8443"),
        attribute("domain|ip", "evil.example|203.0.113.11"),
        attribute("hostname", "c2.evil.example"),
        attribute("url", "hxxps://evil[.]example/gate.php"),
        attribute("email-src", "Phish@Evil.example"),
        attribute("filename|sha256", "invoice.pdf.exe|" + "A" * 64),
        attribute("regkey", "HKLM\\Software\\Evil"),
    ]}})
    assert [(item.type, item.value) for item in indicators(items)] == [
        (IndicatorType.CIDR, "198.51.100.0/24"), (IndicatorType.IPV6, "2001:db8::5"),
        (IndicatorType.IPV4, "203.0.113.10"),
        (IndicatorType.DOMAIN, "evil.example"), (IndicatorType.IPV4, "203.0.113.11"),
        (IndicatorType.HOSTNAME, "c2.evil.example"), (IndicatorType.URL, "https://evil.example/gate.php"),
        (IndicatorType.EMAIL, "phish@evil.example"),
        (IndicatorType.FILENAME, "invoice.pdf.exe"), (IndicatorType.SHA256, "a" * 64)]


def test_tags_tlp_confidence_dates_and_galaxies() -> None:
    items = parse_event({"Event": {
        "info": "Phishing wave", "uuid": "5f0c0000-0000-4000-8000-000000000001", "date": "2024-03-01",
        "Tag": [{"name": "tlp:amber"}, {"name": "phishing"}, {"name": 'osint:certainty="75"'},
                {"name": 'misp-galaxy:mitre-intrusion-set="APT28 - G0007"'},
                {"name": 'misp-galaxy:sector="Government"'}],
        "Galaxy": [{"type": "mitre-attack-pattern", "GalaxyCluster": [{
            "type": "mitre-attack-pattern", "value": "Spearphishing Attachment - T1566.001",
            "uuid": "232b7f21-adf9-4b42-b936-b9d6f7df856e", "description": "Adversaries may send spearphishing...",
            "meta": {"external_id": ["T1566.001"]}}]}],
        "Attribute": [
            attribute("domain", "login-update.example", comment="landing page", uuid="a1",
                      timestamp="1709290800", first_seen="2024-02-28T08:00:00.000000+00:00",
                      last_seen="2024-03-01T09:30:00+00:00",
                      Tag=[{"name": "tlp:red"}, {"name": "credential-theft"}]),
            attribute("url", "http://login-update.example/o365", to_ids="0"),
            attribute("domain", "deleted.example", deleted=True),
            attribute("filename", "report.doc",
                      ShadowAttribute=[{"type": "filename", "value": "proposal.exe", "to_ids": True}]),
        ]}})
    domain, filename = indicators(items)
    assert (domain.tlp, filename.tlp) == ("red", "amber")  # the attribute's own TLP wins over the event's
    assert domain.confidence == 75
    assert domain.tags == ("phishing", 'misp-galaxy:sector="Government"', "credential-theft")
    assert domain.description == "landing page" and domain.external_id == "a1"
    assert domain.valid_from == datetime(2024, 3, 1, 11, 0, tzinfo=UTC)
    assert domain.first_seen == datetime(2024, 2, 28, 8, 0, tzinfo=UTC)
    assert domain.last_seen == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    assert domain.related == (
        Related("report", "Phishing wave", "5f0c0000-0000-4000-8000-000000000001"),
        Related("attack-pattern", "Spearphishing Attachment", "T1566.001"),
        Related("intrusion-set", "APT28", "G0007"))
    technique = next(entity for entity in entities(items) if entity.kind == "attack-pattern")
    assert (technique.name, technique.attack_ids, technique.external_id) == (
        "Spearphishing Attachment", ("T1566.001",), "T1566.001")
    actor = next(entity for entity in entities(items) if entity.kind == "intrusion-set")
    assert (actor.name, actor.attack_ids) == ("APT28", ("G0007",))
    report = next(entity for entity in entities(items) if entity.kind == "report")
    assert Related("intrusion-set", "APT28", "G0007") in report.related


def test_all_attributes_takes_those_not_flagged_for_ids() -> None:
    event = {"info": "context", "Attribute": [attribute("ip-dst", "203.0.113.7", to_ids=False)]}
    assert not indicators(parse_event(event))
    assert [item.value for item in indicators(parse_event(event, all_attributes=True))] == ["203.0.113.7"]


def test_a_bad_attribute_is_an_error_and_the_rest_are_kept() -> None:
    items = parse_event({"Event": {"info": "mixed", "Attribute": [
        attribute("ip-dst", "203.0.113.300"), attribute("md5", "not-a-hash"), "junk",
        attribute("domain|ip", "good.example|203.0.113.999"), attribute("domain", "fine.example")]}})
    assert [item.value for item in indicators(items)] == ["good.example", "fine.example"]
    positions = [error.position for error in errors(items)]
    assert positions == ["Event[0].Attribute[0]", "Event[0].Attribute[1]", "Event[0].Attribute[2]",
                         "Event[0].Attribute[3]"]
    assert "203.0.113.300" in errors(items)[0].reason


@pytest.mark.parametrize(("data", "says"), [
    (b"<html>not json</html>", "not JSON"),
    (b'{"name": "a STIX bundle?", "objects": []}', "not a MISP event"),
    (b"[1, 2, 3]", "not a MISP event"),
    (b'{"5a3c2fcd-8328-42bb-a95e-4f4402de0b81": {"info": "x", "timestamp": "1"}}', "misp_feed"),
])
def test_sources_that_are_not_misp_are_refused(data: bytes, says: str) -> None:
    with pytest.raises(BadInput, match=says):
        MispParser().parse(io.BytesIO(data), {})


def test_unknown_option_is_refused() -> None:
    with pytest.raises(BadInput, match="all_atributes"):
        MispParser().parse(io.BytesIO(b'{"Event": {"info": "x"}}'), {"all_atributes": True})


def test_a_feed_folder_with_one_broken_event(tmp_path: Path) -> None:
    good = {"Event": {"info": "first", "uuid": "11111111-1111-4111-8111-111111111111",
                      "Attribute": [attribute("ip-dst", "203.0.113.21")]}}
    other = {"Event": {"info": "second", "uuid": "33333333-3333-4333-8333-333333333333",
                       "Attribute": [attribute("domain", "second.example")]}}
    (tmp_path / "11111111-1111-4111-8111-111111111111.json").write_text(json.dumps(good))
    (tmp_path / "22222222-2222-4222-8222-222222222222.json").write_text('{"Event": {"info": "cut off')
    (tmp_path / "33333333-3333-4333-8333-333333333333.json").write_text(json.dumps(other))
    manifest = {uuid: {"info": name, "timestamp": "1709290800"} for uuid, name in (
        ("11111111-1111-4111-8111-111111111111", "first"), ("22222222-2222-4222-8222-222222222222", "broken"),
        ("33333333-3333-4333-8333-333333333333", "second"), ("44444444-4444-4444-8444-444444444444", "missing"))}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    opened: list[BinaryIO] = []

    def open_event(name: str) -> BinaryIO:
        handle = (tmp_path / name).open("rb")
        opened.append(handle)
        return handle

    with (tmp_path / "manifest.json").open("rb") as source:
        items = list(misp_feed(load_manifest(source), open_event))
    assert [item.value for item in indicators(items)] == ["203.0.113.21", "second.example"]
    assert indicators(items)[0].position == "11111111-1111-4111-8111-111111111111.json: Event[0].Attribute[0]"
    assert [error.position for error in errors(items)] == [
        "22222222-2222-4222-8222-222222222222.json", "44444444-4444-4444-8444-444444444444.json"]
    assert "not JSON" in errors(items)[0].reason
    assert all(handle.closed for handle in opened)
    assert {entity.name for entity in entities(items)} == {"first", "second"}


def test_feed_manifest_that_is_not_one_is_refused() -> None:
    with pytest.raises(BadInput):
        load_manifest(io.BytesIO(b'["not", "a", "manifest"]'))

    def never(name: str) -> BinaryIO:
        raise AssertionError(f"no event should be opened, not {name}")
    with pytest.raises(BadInput):
        misp_feed([], never)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "expected"), [
    ("Spearphishing Attachment - T1566.001", ("Spearphishing Attachment", "T1566.001")),
    ("APT28 - G0007", ("APT28", "G0007")),
    ("Emotet", ("Emotet", "")),
    ("Cobalt Strike - S0154", ("Cobalt Strike", "S0154")),
])
def test_attack_ids_in_galaxy_values(value: str, expected: tuple[str, str]) -> None:
    assert attack_name(value) == expected
