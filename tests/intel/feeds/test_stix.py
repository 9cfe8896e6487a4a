"""The STIX feed format: the OASIS example bundles (../shared/data/intel/stix), inline bundles for each
rule, broken objects among good ones, bad documents, and a bundle of 100,000 indicators read in chunks.
The incremental JSON reader it stands on is tested first."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.intel.feeds.stix_support import (
    SHARED_STIX,
    STAMP,
    RecordingSource,
    bundle,
    entities,
    errors,
    indicator,
    indicators,
    parse,
    relationship,
    sdo,
    stix_id,
    write_large_bundle,
)

from vigil.core.errors import BadInput
from vigil.intel.feeds.base import feed_parsers
from vigil.intel.feeds.jsonstream import JsonArrayReader, JsonStreamError
from vigil.intel.feeds.stix import STANDARD_TLP, StixParser, parse_objects
from vigil.intel.indicators import IndicatorType as T
from vigil.intel.indicators import ItemError, ParsedEntity, ParsedIndicator, Related

SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
needs_shared = pytest.mark.skipif(not SHARED_STIX.is_dir(),
                                  reason=f"the STIX examples are not at {SHARED_STIX} (see ../shared/data READMEs)")


# --- the incremental reader ---------------------------------------------------------------------------------

def read_all(data: bytes, chunk_size: int = 7) -> tuple[list[Any], JsonArrayReader]:
    reader = JsonArrayReader(io.BytesIO(data), chunk_size=chunk_size)
    return list(reader.elements()), reader


def test_the_reader_yields_the_arrays_elements_and_keeps_the_other_members_wherever_they_are() -> None:
    document = {"id": "bundle--1", "objects": [1, -2.5e3, "é ☃ 中文", {"a": [1, {"b": None}]}, True, None, []],
                "type": "bundle"}
    for chunk_size in (1, 2, 3, 64, 4096):
        elements, reader = read_all(json.dumps(document, ensure_ascii=False).encode(), chunk_size)
        assert elements == document["objects"]
        assert reader.members == {"id": "bundle--1", "type": "bundle"}
        assert (reader.top_level, reader.has_array) == ("object", True)


def test_the_reader_reads_in_chunks_and_holds_about_one_element() -> None:
    objects = [{"type": "indicator", "n": number, "pad": "x" * 50} for number in range(2000)]
    data = orjson.dumps({"type": "bundle", "objects": objects})
    elements, reader = read_all(data, chunk_size=1024)
    assert len(elements) == 2000
    assert reader.bytes_read == len(data)
    assert reader.chunks_read >= len(data) // 1024
    assert reader.largest_buffer < 2 * 1024 + 200  # a chunk and the element it cut, never the document


def test_the_reader_grows_its_buffer_for_one_large_element() -> None:
    big = {"description": "y" * 100_000}
    elements, reader = read_all(orjson.dumps({"objects": [1, big, 2]}), chunk_size=100)
    assert elements == [1, big, 2]
    assert reader.chunks_read < 100_000 // 100  # the read size doubles while an element is incomplete


def test_the_reader_reads_utf8_with_a_byte_order_mark_and_characters_cut_by_chunks() -> None:
    elements, _ = read_all("\ufeff{\"objects\": [\"中文\", \"ü\"]}".encode(), chunk_size=1)
    assert elements == ["中文", "ü"]


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "the document is empty"),
    (b"   \n", "the document is empty"),
    (b"not json", "at character 0"),
    (b'{"objects": [1, 2,]}', "at character"),
    (b'{"objects": [1 2]}', "expected ',' or ']' after element 0"),
    (b'{"objects": [1, 2', "ends inside the 'objects' array"),
    (b'{"type": "bundle"', "ends before its closing '}'"),
    (b'{"objects": []} trailing', "unexpected data after the end"),
    (b'{objects: []}', "expected a member name in double quotes"),
    (b'{"objects" []}', "expected ':' after the member name"),
    (b'\xff\xfe{"objects": []}', "not UTF-8"),
])
def test_the_reader_says_where_a_document_is_not_json(data: bytes, reason: str) -> None:
    with pytest.raises(JsonStreamError) as raised:
        read_all(data)
    assert reason in str(raised.value)


def test_the_reader_refuses_an_element_larger_than_its_limit() -> None:
    reader = JsonArrayReader(io.BytesIO(orjson.dumps({"objects": ["z" * 5000]})), chunk_size=64, max_element=1000)
    with pytest.raises(JsonStreamError, match="longer than 1000 characters"):
        list(reader.elements())


@pytest.mark.parametrize(("data", "top_level"), [
    (b"[1, 2]", "array"), (b'"text"', "string"), (b"12", "number"), (b"null", "null"), (b"true", "boolean"),
])
def test_the_reader_says_what_a_document_other_than_an_object_is(data: bytes, top_level: str) -> None:
    elements, reader = read_all(data)
    assert (elements, reader.top_level, reader.members) == ([], top_level, {})


# --- the OASIS examples ---------------------------------------------------------------------------------------

def parse_shared(name: str) -> list[Any]:
    with (SHARED_STIX / name).open("rb") as source:
        return list(StixParser().parse(source, {}))


@needs_shared
def test_poison_ivy_gives_its_25_indicators_3_campaigns_25_malware_and_its_relationships() -> None:
    raw = json.loads((SHARED_STIX / "poisonivy.json").read_text())["objects"]
    items = parse_shared("poisonivy.json")
    found = indicators(items)
    failed = {error.position.split(" ")[1].strip("()") for error in errors(items)}
    assert len({item.external_id for item in found} | failed) == 25
    kinds = Counter(entity.kind for entity in entities(items))
    assert kinds == {"campaign": 3, "malware": 25, "attack-pattern": 3, "report": 1}
    # one value that is not a domain ('domain autuo.xicp.net'): reported, the address beside it kept
    [error] = errors(items)
    assert error.position.startswith("objects[") and "domain autuo.xicp.net" in error.reason
    assert any(item.value == "60.10.1.115" and item.position == error.position for item in found)
    # every 'indicates' relationship (90 relationships, 55 of them from indicators) is on its indicator
    indicates = Counter(o["source_ref"] for o in raw if o["type"] == "relationship" and o["source_ref"].startswith(
        "indicator--"))
    assert sum(indicates.values()) == 55
    by_indicator = {item.external_id: item for item in found}
    for stix_indicator, count in indicates.items():
        related = by_indicator[stix_indicator].related
        assert len([r for r in related if r.kind in ("malware", "campaign")]) == count
        assert Related("report", "Poison Ivy: Assessing Damage and Extracting Intelligence",
                       "report--f2b63e80-b523-4747-a069-35c002c690db") in related
    assert Counter(item.type for item in found) == {T.IPV4: 40, T.DOMAIN: 24, T.FILENAME: 2}
    campaign = next(entity for entity in entities(items) if entity.name == "admin@338")
    assert campaign.first_seen == datetime(2008, 1, 7, tzinfo=UTC)
    assert {r.kind for r in campaign.related} == {"attack-pattern", "malware", "report"}


@needs_shared
def test_the_c2_address_example_is_one_indicator_with_its_details() -> None:
    [item] = parse_shared("indicator-for-c2-ip-address.json")
    assert item == ParsedIndicator(
        type=T.IPV4, value="10.0.0.0", valid_from=datetime(2014, 5, 8, 9, tzinfo=UTC), tags=("malicious-activity",),
        description="Test description C2 channel.", external_id="indicator--33fe3b22-0201-47cf-85d0-97c02164528d",
        pattern="[ipv4-addr:value = '10.0.0.0']",
        position="objects[0] (indicator--33fe3b22-0201-47cf-85d0-97c02164528d)")


@needs_shared
def test_an_indicator_carries_the_campaign_a_relationship_names() -> None:
    items = parse_shared("indicator-to-campaign-relationship.json")
    [found] = indicators(items)
    assert found.related == (Related("campaign", "Operation Omega", "campaign--b549a58c-afd9-4847-85c3-5be13d56d3cc"),)
    assert [entity.name for entity in entities(items)] == ["Operation Omega"]


@needs_shared
def test_c2_indicators_carry_their_malware_and_the_hash_is_a_sha256() -> None:
    found = indicators(parse_shared("indicators-for-C2-with-COA.json"))
    assert {(item.type, item.value) for item in found} == {
        (T.IPV4, "10.0.0.0"), (T.SHA256, "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c")}
    assert all([r.name for r in item.related] == ["Poison Ivy"] for item in found)


@needs_shared
def test_observables_of_an_infrastructure_become_indicators_related_to_it() -> None:
    items = parse_shared("infrastructure.json")
    found = {(item.type, item.value): item.related for item in indicators(items)}
    assert found == {
        (T.IPV4, "198.51.100.3"): (Related("infrastructure", "Poison Ivy C2",
                                           "infrastructure--38c47d93-d984-4fd9-b87b-d69d0841628d"),),
        (T.DOMAIN, "example.com"): (Related("infrastructure", "Example target-list-hosting",
                                            "infrastructure--d09c50cf-5bab-465e-9e2d-543912148b73"),),
    }
    assert Counter(entity.kind for entity in entities(items)) == {"infrastructure": 2, "malware": 2}


@needs_shared
def test_a_single_stix_object_is_read_as_such() -> None:
    [campaign] = parse_shared("interop-objectmarking-test.json")
    assert isinstance(campaign, ParsedEntity)
    assert (campaign.kind, campaign.name, campaign.position) == (
        "campaign", "Spear Phishing", "object (campaign--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061)")


@needs_shared
def test_email_patterns_are_kept_as_patterns_related_to_their_attack_pattern() -> None:
    found = indicators(parse_shared("malicious-email-indicator-with-attachment.json"))
    assert [item.type for item in found] == [T.PATTERN, T.PATTERN]
    assert found[0].value == "[email-message:subject MATCHES '^[IMPORTANT] Please Review Before']"
    assert all(item.value == item.pattern for item in found)
    assert all([r.name for r in item.related] == ["Phishing"] for item in found)
    assert found[0].description == "Malicious E-mail"  # no description: the name says what it is


# --- indicators ----------------------------------------------------------------------------------------------

def test_each_value_of_a_list_pattern_is_an_indicator_with_the_indicators_details() -> None:
    pattern = ("[ipv4-addr:value = '198.51.100.7' OR ipv4-addr:value = '198.51.100.0/24' OR "
               "domain-name:value = 'Evil.Example' OR url:value = 'hxxp://evil[.]example/x' OR "
               f"file:hashes.'SHA-256' = '{SHA256}' OR email-addr:value = 'a@example.org']")
    item = indicator(1, pattern, confidence=85, valid_until="2025-05-01T12:00:00Z", labels=["c2"],
                     indicator_types=["malicious-activity", "c2"], description="C2 of the week",
                     kill_chain_phases=[{"kill_chain_name": "lockheed-martin-cyber-kill-chain",
                                         "phase_name": "command-and-control"}],
                     object_marking_refs=["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"])
    found = indicators(parse(bundle(item)))
    assert [(i.type, i.value) for i in found] == [
        (T.IPV4, "198.51.100.7"), (T.CIDR, "198.51.100.0/24"), (T.DOMAIN, "evil.example"),
        (T.URL, "http://evil.example/x"), (T.SHA256, SHA256), (T.EMAIL, "a@example.org")]
    first = found[0]
    assert first.confidence == 85
    assert first.valid_from == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert first.valid_until == datetime(2025, 5, 1, 12, tzinfo=UTC)
    assert first.tags == ("c2", "malicious-activity")
    assert first.kill_chain == ("lockheed-martin-cyber-kill-chain:command-and-control",)
    assert (first.description, first.tlp, first.pattern) == ("C2 of the week", "green", pattern)
    assert first.external_id == item["id"]
    assert first.position == f"objects[0] ({item['id']})"


def test_a_pattern_that_is_more_than_values_is_one_indicator_holding_the_pattern() -> None:
    pattern = "[process:name = 'powershell.exe' AND process:command_line LIKE '%-enc%']"
    [found] = indicators(parse(bundle(indicator(1, pattern))))
    assert (found.type, found.value, found.pattern) == (T.PATTERN, pattern, pattern)


def test_a_value_its_path_refuses_is_an_error_and_the_other_values_stay() -> None:
    items = parse(bundle(indicator(1, "[ipv4-addr:value = '999.1.1.1' OR ipv4-addr:value = '192.0.2.1']")))
    assert [(i.type, i.value) for i in indicators(items)] == [(T.IPV4, "192.0.2.1")]
    [error] = errors(items)
    assert error.position == f"objects[0] ({stix_id('indicator', 1)})" and "999.1.1.1" in error.reason


@pytest.mark.parametrize(("ref", "level"), sorted(STANDARD_TLP.items()))
def test_the_standard_tlp_markings_of_stix_2_0_2_1_and_tlp_2_0_are_known(ref: str, level: str) -> None:
    [found] = indicators(parse(bundle(indicator(1, "[ipv4-addr:value = '192.0.2.1']", object_marking_refs=[ref]))))
    assert found.tlp == level


def test_marking_definitions_of_the_bundle_give_the_tlp_and_the_most_restrictive_wins() -> None:
    tlp_1 = {"type": "marking-definition", "id": "marking-definition--00000000-0000-4000-8000-000000000001",
             "definition_type": "tlp", "definition": {"tlp": "amber"}, "created": STAMP}
    tlp_2 = {"type": "marking-definition", "spec_version": "2.1", "created": STAMP, "name": "Our red",
             "id": "marking-definition--00000000-0000-4000-8000-000000000002",
             "extensions": {"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                 "extension_type": "property-extension", "tlp_2_0": "red"}}}
    statement = {"type": "marking-definition", "id": "marking-definition--00000000-0000-4000-8000-000000000003",
                 "definition_type": "statement", "definition": {"statement": "Copyright"}, "created": STAMP}
    items = parse(bundle(
        indicator(1, "[ipv4-addr:value = '192.0.2.1']", object_marking_refs=[tlp_1["id"], statement["id"]]),
        indicator(2, "[ipv4-addr:value = '192.0.2.2']", object_marking_refs=[
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", tlp_2["id"]]),
        indicator(3, "[ipv4-addr:value = '192.0.2.3']", object_marking_refs=[statement["id"]]),
        tlp_1, tlp_2, statement))
    assert [item.tlp for item in indicators(items)] == ["amber", "red", None]



def test_relationships_in_either_direction_and_in_any_order_relate_an_indicator() -> None:
    ind = indicator(1, "[domain-name:value = 'c2.example.org']")
    malware = sdo("malware", 1, "BadRAT", is_family=True)
    intrusion = sdo("intrusion-set", 1, "APT Example", external_references=[
        {"source_name": "mitre-attack", "external_id": "G9999", "url": "https://attack.mitre.org/groups/G9999"}])
    campaign = sdo("campaign", 1, "Operation Example")
    actor = sdo("threat-actor", 1, "Example Actor")
    technique = sdo("attack-pattern", 1, "Phishing", external_references=[
        {"source_name": "mitre-attack", "external_id": "T1566"}])
    tool = sdo("tool", 1, "Cobalt Strike")
    infrastructure = sdo("infrastructure", 1, "C2 servers")
    items = parse(bundle(
        relationship(1, ind["id"], "indicates", malware["id"]),  # before the objects it links
        relationship(2, ind["id"], "indicates", campaign["id"]),
        relationship(3, campaign["id"], "attributed-to", intrusion["id"]),
        relationship(4, intrusion["id"], "attributed-to", actor["id"]),
        relationship(5, technique["id"], "related-to", ind["id"]),  # the indicator as the target
        relationship(6, ind["id"], "indicates", tool["id"]),
        relationship(7, ind["id"], "based-on", "observed-data--00000000-0000-4000-8000-000000000009"),
        relationship(8, infrastructure["id"], "related-to", ind["id"]),
        ind, malware, intrusion, campaign, actor, technique, tool, infrastructure))
    [found] = indicators(items)
    assert set(found.related) == {
        Related("malware", "BadRAT", malware["id"]), Related("campaign", "Operation Example", campaign["id"]),
        Related("intrusion-set", "APT Example", "G9999"),  # the campaign is attributed to it
        Related("attack-pattern", "Phishing", "T1566"), Related("tool", "Cobalt Strike", tool["id"]),
        Related("infrastructure", "C2 servers", infrastructure["id"]),
    }  # the actor is two attributions away; observed data is not an entity
    assert errors(items) == []


def test_a_related_object_absent_from_the_source_is_named_by_its_id() -> None:
    ind = indicator(1, "[domain-name:value = 'c2.example.org']")
    missing = "malware--00000000-0000-4000-8000-0000000000aa"
    [found] = indicators(parse(bundle(ind, relationship(1, ind["id"], "indicates", missing))))
    assert found.related == (Related("malware", missing, missing),)


def test_a_report_relates_what_it_lists() -> None:
    ind = indicator(1, "[ipv4-addr:value = '192.0.2.1']")
    malware = sdo("malware", 1, "BadRAT", is_family=True)
    report = sdo("report", 1, "Quarterly threats", published=STAMP, object_refs=[ind["id"], malware["id"]])
    items = parse(bundle(ind, report, malware))
    [found] = indicators(items)
    assert found.related == (Related("report", "Quarterly threats", report["id"]),)
    by_name = {entity.name: entity for entity in entities(items)}
    assert by_name["Quarterly threats"].related == (Related("malware", "BadRAT", malware["id"]),)
    assert by_name["BadRAT"].related == (Related("report", "Quarterly threats", report["id"]),)


# --- entities and observables ------------------------------------------------------------------------------------

def test_actors_campaigns_malware_tools_reports_techniques_and_infrastructure_are_entities() -> None:
    intrusion = sdo("intrusion-set", 1, "APT Example", description="Spies.", aliases=["APT Example", "Group X"],
                    first_seen="2019-01-01T00:00:00Z", last_seen="2024-01-01T00:00:00.123456789Z",
                    external_references=[{"source_name": "mitre-attack", "external_id": "G9999"},
                                         {"source_name": "other", "external_id": "X-1"}])
    malware = sdo("malware", 1, "BadRAT", is_family=True, x_mitre_aliases=["BadRAT", "RATty"],
                  external_references=[{"source_name": "mitre-attack", "external_id": "S9999"}])
    others = [sdo(kind, 1, f"a {kind}") for kind in ("threat-actor", "campaign", "tool", "report",
                                                     "attack-pattern", "infrastructure")]
    ignored = [sdo(kind, 1, f"a {kind}") for kind in ("identity", "vulnerability", "course-of-action", "location")]
    uses = relationship(1, intrusion["id"], "uses", malware["id"])
    items = parse(bundle(intrusion, malware, *others, *ignored, uses))
    assert [entity.kind for entity in entities(items)] == [
        "intrusion-set", "malware", "threat-actor", "campaign", "tool", "report", "attack-pattern", "infrastructure"]
    group, rat = entities(items)[:2]
    assert group == ParsedEntity(
        kind="intrusion-set", name="APT Example", external_id=intrusion["id"], description="Spies.",
        aliases=("Group X",), attack_ids=("G9999",), first_seen=datetime(2019, 1, 1, tzinfo=UTC),
        last_seen=datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC), related=(Related("malware", "BadRAT", "S9999"),),
        position=f"objects[0] ({intrusion['id']})")
    assert (rat.aliases, rat.attack_ids, rat.related) == (("RATty",), ("S9999",),
                                                          (Related("intrusion-set", "APT Example", "G9999"),))
    assert errors(items) == []


def test_observables_linked_to_malware_infrastructure_actors_or_campaigns_are_indicators_and_others_not() -> None:
    malware = sdo("malware", 1, "BadRAT", is_family=True)
    campaign = sdo("campaign", 1, "Operation Example")
    address = {"type": "ipv4-addr", "id": stix_id("ipv4-addr", 1), "value": "203.0.113.5"}
    network = {"type": "ipv6-addr", "id": stix_id("ipv6-addr", 1), "value": "2001:db8::/48"}
    url = {"type": "url", "id": stix_id("url", 1), "value": "https://evil.example/payload"}
    file = {"type": "file", "id": stix_id("file", 1), "name": "payload.exe", "hashes": {"SHA-256": SHA256}}
    named = {"type": "file", "id": stix_id("file", 2), "name": "dropper.dll"}
    lonely = {"type": "domain-name", "id": stix_id("domain-name", 1), "value": "unrelated.example"}
    bad = {"type": "domain-name", "id": stix_id("domain-name", 2), "value": "not a domain"}
    items = parse(bundle(malware, campaign, address, network, url, file, named, lonely, bad,
                         relationship(1, malware["id"], "communicates-with", address["id"]),
                         relationship(2, campaign["id"], "uses", network["id"]),
                         relationship(3, url["id"], "related-to", malware["id"]),
                         relationship(4, malware["id"], "drops", file["id"]),
                         relationship(5, malware["id"], "drops", named["id"]),
                         relationship(6, campaign["id"], "uses", bad["id"])))
    found = {(item.type, item.value): item for item in indicators(items)}
    assert set(found) == {(T.IPV4, "203.0.113.5"), (T.CIDR, "2001:db8::/48"), (T.URL, "https://evil.example/payload"),
                          (T.SHA256, SHA256), (T.FILENAME, "dropper.dll")}
    assert found[T.IPV4, "203.0.113.5"].related == (Related("malware", "BadRAT", malware["id"]),)
    assert found[T.IPV4, "203.0.113.5"].external_id == address["id"]
    [error] = errors(items)
    assert error.position == f"objects[8] ({bad['id']})" and "not a domain" in error.reason


# --- what cannot be read ---------------------------------------------------------------------------------------

def test_broken_objects_are_errors_with_their_position_and_the_objects_around_them_are_kept() -> None:
    first = indicator(1, "[ipv4-addr:value = '192.0.2.1']")
    last = indicator(9, "[ipv4-addr:value = '192.0.2.9']")
    broken: list[Any] = [
        42,
        ["not", "an", "object"],
        {"id": "indicator--00000000-0000-4000-8000-000000000000"},
        {"type": "indicator"},
        {"type": "indicator", "id": "malware--00000000-0000-4000-8000-000000000000"},
        indicator(2, "[ipv4-addr:value = '192.0.2.2'"),
        indicator(3, "[file:hashes.MD5 = 'nope']"),
        indicator(4, "[ipv4-addr:value = '192.0.2.4']", valid_from="yesterday"),
        indicator(5, "[ipv4-addr:value = '192.0.2.5']", confidence=250),
        indicator(6, "rule evil { condition: true }", pattern_type="yara"),
        {**indicator(7, ""), "pattern": None},
        sdo("malware", 1, "", is_family=True),
        sdo("campaign", 1, "Late", first_seen="2024-13-45T99:00:00Z"),
    ]
    items = parse(bundle(first, *broken, last))
    assert [item.value for item in indicators(items)] == ["192.0.2.1", "192.0.2.9"]
    reasons = [(error.position.split(" ")[0], error.reason) for error in errors(items)]
    assert [position for position, _ in reasons] == [f"objects[{n}]" for n in range(1, len(broken) + 1)]
    expected = ["not a STIX object but a JSON int", "not a STIX object but a JSON list", "without a type",
                "without a valid id", "without a valid id", "invalid pattern", "is not a valid MD5 hash",
                "valid_from 'yesterday' is not a STIX timestamp", "confidence 250 is not a whole number",
                "pattern_type 'yara'", "an indicator without a pattern", "a malware without a name",
                "first_seen '2024-13-45T99:00:00Z' is not a STIX timestamp"]
    for (_, reason), part in zip(reasons, expected, strict=True):
        assert part in reason


def test_revoked_objects_are_skipped() -> None:
    items = parse(bundle(indicator(1, "[ipv4-addr:value = '192.0.2.1']", revoked=True),
                         sdo("malware", 1, "Old", revoked=True)))
    assert items == []


def test_a_stix_2_0_bundle_is_read() -> None:
    ind = {"type": "indicator", "id": stix_id("indicator", 1), "created": STAMP, "modified": STAMP,
           "labels": ["malicious-activity"], "pattern": "[domain-name:value = 'old.example.com'] WITHIN 5 SECONDS",
           "valid_from": STAMP}
    data = orjson.dumps({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000001",
                         "spec_version": "2.0", "objects": [ind]})
    [found] = parse(data)
    assert isinstance(found, ParsedIndicator)
    assert (found.type, found.tags) == (T.PATTERN, ("malicious-activity",))


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "the document is empty"),
    (b"this is not json", "not a STIX bundle or object: not valid JSON at character 0"),
    (b'[{"type": "indicator"}]', "the document is a JSON array"),
    (b"42", "the document is a JSON number"),
    (b'{"name": "something else"}', "a JSON object without 'type' and 'id'"),
    (b'{"type": "indicator", "id": "malware--1"}', "a JSON object without 'type' and 'id'"),
    (b'{"type": "bundle", "objects": {"0": {}}}', "its 'objects' member is not an array"),
])
def test_a_document_that_is_not_stix_is_refused_as_a_whole(data: bytes, reason: str) -> None:
    with pytest.raises(BadInput) as raised:
        parse(data)
    assert reason in raised.value.detail


def test_broken_json_far_into_a_bundle_is_refused_before_any_item_is_given() -> None:
    good = [indicator(n, f"[ipv4-addr:value = '192.0.2.{n}']") for n in range(1, 50)]
    data = bundle(*good)[:-2] + b", {broken"
    items = StixParser().parse(io.BytesIO(data), {})
    with pytest.raises(BadInput, match="not valid JSON"):
        next(items)


def test_an_empty_bundle_gives_nothing() -> None:
    assert parse(b'{"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000001"}') == []
    assert parse(b'{"type": "bundle", "objects": []}') == []


def test_a_source_that_cannot_seek_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    ind = indicator(1, "[ipv4-addr:value = '192.0.2.1']")
    path.write_bytes(bundle(relationship(1, ind["id"], "indicates", stix_id("malware", 1)), ind,
                            sdo("malware", 1, "BadRAT", is_family=True)))
    source = RecordingSource(path, seekable=False)
    [found] = indicators(list(StixParser().parse(source, {})))  # type: ignore[arg-type]
    assert found.related == (Related("malware", "BadRAT", stix_id("malware", 1)),)


@pytest.mark.parametrize("chunk_size", [0, -5, "big", True])
def test_a_wrong_option_is_refused(chunk_size: object) -> None:
    with pytest.raises(BadInput, match="chunk_size"):
        parse(bundle(), chunk_size=chunk_size)


def test_objects_from_elsewhere_are_read_like_a_bundle() -> None:
    ind = indicator(1, "[ipv4-addr:value = '192.0.2.1']")
    items = list(parse_objects(iter([ind, relationship(1, ind["id"], "indicates", stix_id("malware", 1)),
                                     sdo("malware", 1, "BadRAT", is_family=True, x_size=10**30)])))
    [found] = indicators(items)
    assert found.related == (Related("malware", "BadRAT", stix_id("malware", 1)),)
    assert [entity.name for entity in entities(items)] == ["BadRAT"]


def test_the_format_loads_through_its_entry_point() -> None:
    parser = feed_parsers()["stix"]
    assert isinstance(parser, StixParser)
    assert parser.name == "stix"


# --- a large bundle, streamed ------------------------------------------------------------------------------------

def test_a_bundle_of_100000_indicators_is_read_in_chunks_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "large.json"
    write_large_bundle(path, 100_000)
    size = path.stat().st_size
    chunk_size = 64 * 1024

    # the reader's own account: many chunks, never more than a chunk and an element held
    with path.open("rb") as source:
        reader = JsonArrayReader(source, chunk_size=chunk_size)
        assert sum(1 for _ in reader.elements()) == 200_001
        assert reader.bytes_read == size
        assert reader.chunks_read >= size // chunk_size
        assert reader.largest_buffer < 2 * chunk_size

    # the parser through a source that records its reads: no read asks for more than a chunk, and the
    # first item comes while the second pass has read only its first chunks
    source = RecordingSource(path)
    items = StixParser().parse(source, {"chunk_size": chunk_size})  # type: ignore[arg-type]
    assert isinstance(next(items), ParsedEntity)  # the malware, first in the bundle
    first = next(items)
    assert isinstance(first, ParsedIndicator)
    assert source.total > size and source.position <= 2 * chunk_size
    count = 1 + sum(1 for item in items if isinstance(item, ParsedIndicator))
    assert count == 100_000
    assert max(source.requests) <= chunk_size
    assert source.total == 2 * size  # each pass read the file once
    assert first.related == (Related("malware", "Generated RAT", stix_id("malware", 1)),)
    assert not any(isinstance(item, ItemError) for item in items)
