"""The indicator store: one indicator per value with the provenance of each source, merges, replacement,
decay, flags, search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vigil.intel.indicators import IndicatorType, ParsedIndicator, Related
from vigil.intel.store import DecayPolicy, IntelStore

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> IntelStore:
    opened = IntelStore(tmp_path / "intel" / "indicators.duckdb")
    yield opened  # type: ignore[misc]
    opened.close()


def ip(value: str, **extra: object) -> ParsedIndicator:
    return ParsedIndicator(IndicatorType.IPV4, value, **extra)  # type: ignore[arg-type]


def test_one_indicator_many_sources_keeps_each_provenance(store: IntelStore) -> None:
    store.merge([ip("203.0.113.5", confidence=90, tlp="amber", tags=("c2",))], source="feed:1", version="v1",
                now=NOW)
    result = store.merge([ip("203.0.113.5", tags=("botnet",),
                             related=(Related("intrusion-set", "APT28", "G0007"),))], source="import:x", now=NOW)
    assert (result.added, result.updated) == (0, 1)
    found = store.find("ipv4", "203.0.113.5")
    assert found is not None and store.count() == 1
    assert sorted(found.tags) == ["botnet", "c2"]
    assert found.related == [{"kind": "intrusion-set", "name": "APT28", "external_id": "G0007"}]
    by_source = {s["source"]: s for s in found.sources}
    assert set(by_source) == {"feed:1", "import:x"}
    assert by_source["feed:1"]["confidence"] == 90 and by_source["feed:1"]["tlp"] == "amber"
    assert by_source["feed:1"]["version"] == "v1"


def test_a_replacing_source_loses_what_it_no_longer_states(store: IntelStore) -> None:
    store.merge([ip("198.51.100.1"), ip("198.51.100.2")], source="feed:1", replace=True, now=NOW)
    store.merge([ip("198.51.100.2")], source="other", now=NOW)
    result = store.merge([ip("198.51.100.2")], source="feed:1", replace=True, now=NOW)
    assert result.removed == 1
    gone = store.find("ipv4", "198.51.100.1")
    assert gone is not None and gone.sources == [] and not gone.active
    assert [s["source"] for s in store.find("ipv4", "198.51.100.2").sources] == ["feed:1", "other"]  # type: ignore[union-attr]
    active = {value for _, _, value in store.active(now=NOW)}
    assert active == {"198.51.100.2"}


def test_fresh_lists_indicators_new_to_the_store_or_to_the_source(store: IntelStore) -> None:
    first = store.merge([ip("192.0.2.1"), ip("192.0.2.2")], source="a", now=NOW)
    assert len(first.fresh) == 2
    again = store.merge([ip("192.0.2.1"), ip("192.0.2.3")], source="a", now=NOW)
    assert [store.get(i).value for i in again.fresh] == ["192.0.2.3"]  # type: ignore[union-attr]
    other = store.merge([ip("192.0.2.1")], source="b", now=NOW)
    assert [store.get(i).value for i in other.fresh] == ["192.0.2.1"]  # type: ignore[union-attr]


def test_decay_retires_an_indicator_its_sources_stopped_vouching_for(store: IntelStore) -> None:
    policy = {"ipv4": DecayPolicy(base_score=80, lifetime_days=10, decay_speed=1, threshold=40)}
    store.merge([ip("192.0.2.10", last_seen=NOW)], source="feed:1", policies=policy, now=NOW)
    assert [v for _, _, v in store.active(now=NOW + timedelta(days=4))] == ["192.0.2.10"]  # score 48
    assert list(store.active(now=NOW + timedelta(days=6))) == []  # score 32, below 40
    later, _ = store.search(now=NOW + timedelta(days=6))
    assert later[0].score == pytest.approx(32.0, abs=0.2) and not later[0].active


def test_valid_until_ends_an_indicator(store: IntelStore) -> None:
    store.merge([ip("192.0.2.20", valid_until=NOW + timedelta(hours=1))], source="s", now=NOW)
    assert len(list(store.active(now=NOW))) == 1
    assert list(store.active(now=NOW + timedelta(hours=2))) == []


def test_allowlisted_and_warninglisted_indicators_are_held_back(store: IntelStore) -> None:
    store.merge([ip("8.8.8.8"), ip("192.0.2.30"), ip("192.0.2.31")], source="s", now=NOW)
    held = store.find("ipv4", "8.8.8.8")
    assert held is not None
    store.set_flags(warninglists={held.id: ["List of known IPv4 public DNS resolvers"]},
                    allowlisted=[("ipv4", "192.0.2.31")])
    assert {v for _, _, v in store.active(now=NOW)} == {"192.0.2.30"}
    assert {v for _, _, v in store.active(now=NOW, include_warninglisted=True)} == {"8.8.8.8", "192.0.2.30"}
    flagged = store.find("ipv4", "8.8.8.8")
    assert flagged is not None and flagged.warninglists == ["List of known IPv4 public DNS resolvers"]
    assert store.find("ipv4", "192.0.2.31").allowlisted  # type: ignore[union-attr]


def test_search_filters_and_pages(store: IntelStore) -> None:
    store.merge([ip(f"10.0.0.{n}", tags=("scan",)) for n in range(1, 31)], source="feed:1", now=NOW)
    store.merge([ParsedIndicator(IndicatorType.DOMAIN, "evil.example", description="Phishing kit host")],
                source="feed:2", now=NOW)
    page, total = store.search(types=["ipv4"], limit=10, offset=10)
    assert total == 30 and len(page) == 10 and all(i.type == "ipv4" for i in page)
    assert store.search(text="phishing")[1] == 1
    assert store.search(source="feed:2")[0][0].value == "evil.example"
    assert store.search(tag="scan")[1] == 30


def test_the_version_changes_with_each_merge(store: IntelStore) -> None:
    before = store.version()
    store.merge([ip("192.0.2.40")], source="s", now=NOW)
    after = store.version()
    assert after != before
    store.set_flags(allowlisted=[])
    assert store.version() != after


def test_a_huge_merge_is_staged_in_chunks(store: IntelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vigil.intel.store.STAGE_CHUNK", 1000)
    items = [ip(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}") for n in range(2500)]
    items.append(items[0])  # a duplicate in another chunk
    result = store.merge(items, source="big", replace=True, now=NOW)
    assert result.received == 2501 and store.count() == 2500
    assert len(list(store.active(now=NOW))) == 2500


def test_text_with_tabs_and_newlines_survives_staging(store: IntelStore) -> None:
    store.merge([ParsedIndicator(IndicatorType.URL, "http://evil.example/a?b=c", description="line one\nline\ttwo",
                                 tags=("a\tb",), external_id="indicator--1")], source="s", now=NOW)
    found = store.find("url", "http://evil.example/a?b=c")
    assert found is not None
    assert found.description == "line one\nline\ttwo" and found.tags == ["a b"]
    assert found.sources[0]["external_id"] == "indicator--1"
