"""CSV imports write their rows straight to the store's staging lines (``CsvParser.stage``), most rows on a
fast path and the rest (refanged values, errors, cells not seen yet) through the item path. What a user
sees must not depend on which path a row took: the same indicators, sources, scores, flags and errors
as when the same file goes through ``CsvParser.parse``'s items."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import cli_context

from vigil.core.db import Scope
from vigil.core.errors import BadInput
from vigil.intel import service
from vigil.intel.feeds.tabular import CsvParser, LinesParser
from vigil.intel.indicators import IndicatorType, ParsedIndicator
from vigil.intel.runtime import Intel
from vigil.intel.store import IntelStore

MIXED = """\
# an export with every kind of row
first_seen,ioc,type,tags,confidence,malware,description
2026-10-01 10:00:00,203.0.113.5,ip,"c2,botnet",80,QakBot,
2026-10-01 10:00:00,hxxp://evil[.]example/a,url,phish,,None,"two
lines"
2026-10-02,evil[.]example,domain,,-,Emotet,

not-a-date,198.51.100.7,ip,c2,50,,
2026-10-02,999.1.1.1,ip,,,,
first_seen,ioc,type,tags,confidence,malware,description
1700000000,203.0.113.5:8080,ip,c2,90,QakBot,
2026-10-03T05:00:00Z,D41D8CD98F00B204E9800998ECF8427E,md5,,,,
2026-10-03,203.0.113.9,ip,c2,101,,
2026-10-03,198.51.100.8,ip,"c2,botnet",80,QakBot,
2026-10-03,[2001:db8::1]:443,ipv6,,,,
2026-10-03,evil.example,weird,,,,
2026-10-04,198.51.100.9
2026-10-04,198[.]51[.]100[.]10,ip,"c2,botnet",80,QakBot,
2026-10-04,8.8.8.8,ip,"c2,botnet",80,QakBot,
"""
MIXED_OPTIONS = {"value": "ioc", "type": "type", "type_map": {"ip": "ipv4"}, "first_seen": "first_seen",
                 "tags": "tags", "confidence": "confidence", "malware": "malware", "description": "description",
                 "header": True}
DEFAULTS = {"confidence": 60, "tlp": "amber", "tags": ["feed-tag"]}
DECAY = {"ipv4": {"base_score": 70, "lifetime_days": 10, "decay_speed": 1, "threshold": 30}}


def take(intel: Intel, store: IntelStore, text: str, options: dict[str, Any], *, by_items: bool, fmt: str = "csv",
         **extra: Any) -> service.IntakeResult:
    """``text`` taken in as ``fmt``: by the staging path, or (``by_items``) by the parser's items."""
    stream = io.BytesIO(text.encode())
    items = (CsvParser() if fmt == "csv" else LinesParser()).parse(stream, options) if by_items else None
    with intel.db.transaction(Scope.system()) as session:
        result = service.take_in(cli_context(session), store, stream=stream, fmt=fmt, options=options,
                                 source="feed:1", replace=True, warninglists=intel.warninglists, items=items,
                                 **extra)
        session.expunge(result.pull)
    return result


def seen(store: IntelStore) -> list[tuple[Any, ...]]:
    """Everything a user can read of the stored indicators, their ids, import times and exact scores aside."""
    found, total = store.search(limit=1000)
    assert total == len(found)
    return sorted((i.type, i.value, round(i.score, 1), i.active, i.first_seen, i.last_seen, i.tags, i.kill_chain,
                   i.related, i.description, i.pattern, i.warninglists, i.allowlisted,
                   [{k: round(v, 1) if k == "score" else v for k, v in s.items() if k != "imported_at"}
                    for s in i.sources]) for i in found)


def both_ways(intel: Intel, tmp_path: Path, text: str, options: dict[str, Any], **extra: Any
              ) -> tuple[service.IntakeResult, IntelStore]:
    """Take ``text`` in both ways (twice: new, then every indicator known) and check that they agree."""
    by_items = IntelStore(tmp_path / "by-items.duckdb")
    try:
        for _ in range(2):
            staged = take(intel, intel.store, text, options, by_items=False, **extra)
            itemised = take(intel, by_items, text, options, by_items=True, **extra)
            assert_alike(staged, intel.store, itemised, by_items)
    finally:
        by_items.close()
    return staged, intel.store


def assert_alike(result: service.IntakeResult, store: IntelStore, other: service.IntakeResult,
                 other_store: IntelStore) -> None:
    """Two intakes of one source that must not differ in anything a user sees."""
    assert result.pull.errors == other.pull.errors
    assert result.pull.error_count == other.pull.error_count
    assert result.pull.warninglisted == other.pull.warninglisted
    assert (result.merge.received, result.merge.added, result.merge.updated, result.merge.removed) == (
        other.merge.received, other.merge.added, other.merge.updated, other.merge.removed)
    assert len(result.merge.fresh) == len(other.merge.fresh)
    assert seen(store) == seen(other_store)


def test_refanged_and_plain_rows_of_one_file_are_stored_alike(intel: Intel, tmp_path: Path) -> None:
    result, store = both_ways(intel, tmp_path, MIXED, MIXED_OPTIONS, defaults=DEFAULTS, decay=DECAY)
    assert store.find("url", "http://evil.example/a") is not None  # refanged, quoted over two lines
    assert store.find("domain", "evil.example") is not None
    refanged = store.find("ipv4", "198.51.100.10")
    plain = store.find("ipv4", "198.51.100.8")
    assert refanged is not None and plain is not None
    assert sorted(refanged.tags) == sorted(plain.tags) == ["botnet", "c2", "feed-tag"]
    assert refanged.related == plain.related == [{"kind": "malware", "name": "QakBot", "external_id": ""}]
    assert plain.sources[0]["confidence"] == 80 and plain.sources[0]["tlp"] == "amber"
    restated = store.find("ipv4", "203.0.113.5")  # twice in the file: the later row counts for the source
    assert restated is not None and restated.sources[0]["confidence"] == 90
    assert store.find("md5", "d41d8cd98f00b204e9800998ecf8427e") is not None
    assert store.find("ipv6", "2001:db8::1") is not None
    google = store.find("ipv4", "8.8.8.8")
    assert google is not None and google.warninglists  # flagged at import, whichever path it took
    # The second pull found every value known; the errors are listed with their lines, in order.
    assert [e["position"] for e in result.pull.errors] == ["line 8", "line 9", "line 13", "line 16", "line 17"]
    assert "date" in result.pull.errors[0]["reason"] and "confidence" in result.pull.errors[2]["reason"]


def test_a_bad_row_between_good_rows_is_reported_with_its_line(intel: Intel, tmp_path: Path) -> None:
    rows = [f"192.0.2.{n},scan" for n in range(1, 60)]
    rows[30] = "192.0.2.300,scan"
    result, store = both_ways(intel, tmp_path, "\n".join(rows) + "\n", {"value": 0, "tags": 1,
                                                                          "default_type": "ipv4"})
    assert result.pull.error_count == 1 and result.pull.errors[0]["position"] == "line 31"
    assert store.count() == 58


@pytest.mark.parametrize("options", [
    {"value": 1, "first_seen": 0, "last_seen": 2},  # types guessed
    {"value": 1, "first_seen": 0, "default_type": "ipv4", "tags": [3, 4], "delimiter": ";", "comment": "//"},
    {"value": 1, "type": 3, "type_map": {"t0": "domain", "t1": "ipv4"}, "default_type": "ipv4", "tags": 4},
])
def test_guessed_types_several_tag_columns_and_chunks(intel: Intel, tmp_path: Path, options: dict[str, Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vigil.intel.store.STAGE_CHUNK", 7)  # several merges, a value restated across them
    delimiter = options.get("delimiter", ",")
    values = ["198.51.100.1", "hxxps://bad[.]example/x", "BAD.example", "198.51.100.2:80", "not a value",
              "44d88612fea8a8f36de82e1278abb02f", "198.51.100.1", "user@bad.example", "10.0.0.0/8"]
    rows = [delimiter.join([f"2026-10-0{n % 3 + 1}", value, "-" if n % 2 else "1700000000", f"t{n % 2}", "x;y"
                            if delimiter == "," else "x|y"]) for n, value in enumerate(values * 3)]
    text = "// comment\n" + "\n".join(rows) + "\n"
    result, store = both_ways(intel, tmp_path, text, options)
    assert result.merge.received > 0 and store.count() > 0


@pytest.mark.parametrize("options", [{}, {"type": "domain", "tags_all": "phish", "confidence_all": 70, "tlp": "green"}])
def test_plain_lists_are_stored_alike_both_ways(intel: Intel, tmp_path: Path, options: dict[str, Any]) -> None:
    text = ("# a blocklist\n198.51.100.1\nbad[.]example ; a comment\n\nhxxp://bad[.]example/x\nnot a value\n"
            "BAD.example\n198.51.100.1\n2001:db8::5\n44d88612fea8a8f36de82e1278abb02f\nevil.example\n")
    result, store = both_ways(intel, tmp_path, text, options, fmt="lines", defaults={"tags": ["list"]})
    assert result.pull.error_count > 0 and store.count() > 0


def test_an_indicators_tags_are_kept_apart(tmp_path: Path) -> None:
    store = IntelStore(tmp_path / "tags.duckdb")
    try:
        store.merge([ParsedIndicator(IndicatorType.DOMAIN, "evil.example", tags=("c2", "qak\tbot", "phish"))],
                    source="s")
        found = store.find("domain", "evil.example")
        assert found is not None and found.tags == ["c2", "qak bot", "phish"]
        assert store.search(tag="phish")[1] == 1
    finally:
        store.close()


def test_rows_drawn_at_random_are_stored_alike_both_ways(intel: Intel, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Cells drawn (seeded) from what feeds write, good and bad, so that rows take either path in any order."""
    monkeypatch.setattr("vigil.intel.store.STAGE_CHUNK", 200)
    pick = random.Random(5).choice
    typed = [("ip", "198.51.100.7"), ("ip", " 198.51.100.8 "), ("ip", "198.51.100.9:443"), ("IP", "198.51.100.7"),
             ("ip", "198[.]51[.]100[.]10"), ("ip", "999.1.1.1"), ("ip", ""), ("domain", "evil.example"),
             ("domain", "Evil[.]Example"), ("url", "hxxps://evil[.]example/p?q=1"), ("weird", "evil.example"),
             ("md5", "D41D8CD98F00B204E9800998ECF8427E"), ("md5", "x y"), ("ipv6", "2001:db8::7"), ("", "1.2.3.4"),
             ("cidr", "10.1.0.0/16"), ("email", "user@evil.example"), ("ip", '"198.51.100.11"')]
    dates = ["2026-10-01", "2026-10-01 10:00:00", "1700000000", "1700000000123", "-", "", "None",
             "2026-10-01T10:00:00+02:00", " 2026-10-02 ", "2026-10-03", "2026-10-04", "yesterday"]
    tags = ["c2", "c2,botnet", "", "None", "a|b; c", '"x,y"', "c2"]
    confidences = ["80", "", "-", "50", "80", "101", "high"]
    families = ["QakBot", "", "None", "Emotet", "QakBot"]
    rows = ["first,last,ioc,type,tags,confidence,malware,description"]
    for _ in range(1500):
        kind, value = pick(typed)
        rows.append(",".join([pick(dates), pick(dates), value, kind, pick(tags), pick(confidences), pick(families),
                              pick(["", "", "seen on a honeypot", '"two\nlines"'])]))
        if pick(range(40)) == 0:
            rows.append(pick(["", "# a comment", rows[0], "only-one-cell"]))
    options = {"value": "ioc", "type": "type", "type_map": {"ip": "ipv4"}, "first_seen": "first",
               "last_seen": "last", "tags": ["tags"], "confidence": "confidence", "malware": "malware",
               "description": "description", "header": True}
    result, store = both_ways(intel, tmp_path, "\n".join(rows) + "\n", options, defaults=DEFAULTS)
    assert result.pull.error_count > 0 and store.count() > 10


@pytest.mark.parametrize(("fmt", "options", "said"), [("csv", {}, "bad csv feed options"),
                                                      ("lines", {"nope": 1}, "bad lines feed options"),
                                                      ("no-such-format", {}, "unknown intelligence format")])
def test_the_format_and_its_options_are_refused_before_the_decay(intel: Intel, fmt: str, options: dict[str, Any],
                                                                 said: str) -> None:
    with intel.db.transaction(Scope.system()) as session, pytest.raises(BadInput, match=said):
        service.take_in(cli_context(session), intel.store, stream=io.BytesIO(b"198.51.100.1\n"), fmt=fmt,
                        options=options, source="feed:1", decay={"nonsense": {"base_score": 1}})
    assert intel.store.count() == 0
