"""Big CSV block lists are read by DuckDB itself (``feeds.tabular_native``), the Python reader taking only the
lines SQL is not sure of. What a user sees must not depend on it: the same indicators, sources, scores,
flags and errors (with their lines) as when the same file goes through ``CsvParser.parse``'s items; and a
file the native reader cannot take is read by the Python reader from its start."""

from __future__ import annotations

import io
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from tests.conftest import cli_context
from tests.intel.test_staged_load import DECAY, DEFAULTS, assert_alike

from vigil.core.db import Scope
from vigil.intel import service
from vigil.intel.feeds import tabular_native
from vigil.intel.feeds.tabular import CsvParser
from vigil.intel.feeds.tabular_native import NativeCsv
from vigil.intel.feeds.tabular_options import CsvOptions
from vigil.intel.runtime import Intel
from vigil.intel.staging import Stager
from vigil.intel.store import IntelStore


@pytest.fixture()
def native_used(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int | None]]:
    """Every file is big enough for the native reader; the list says, per import, how many rows SQL staged
    itself (None: the native reader did not take the file)."""
    monkeypatch.setattr(tabular_native, "MIN_BYTES", 0)
    used: list[int | None] = []
    stage_rows = NativeCsv.stage_rows

    def spied(self: NativeCsv, db: duckdb.DuckDBPyConnection, *args: Any) -> str | None:
        relation = stage_rows(self, db, *args)
        used.append(None if relation is None else db.execute("SELECT count(*) FROM csv_native").fetchone()[0])
        return relation

    monkeypatch.setattr(NativeCsv, "stage_rows", spied)
    yield used


def take(intel: Intel, store: IntelStore, data: bytes, options: dict[str, Any], *, by_items: bool,
         **extra: Any) -> service.IntakeResult:
    """``data`` taken in from a file (as `vigil intel import` and a feed's download give it), or by items."""
    with tempfile.TemporaryFile() as stream:  # unnamed, as a feed's download is
        stream.write(data)
        stream.seek(0)
        items = CsvParser().parse(io.BytesIO(data), options) if by_items else None
        with intel.db.transaction(Scope.system()) as session:
            result = service.take_in(cli_context(session), store, stream=stream, fmt="csv", options=options,
                                     source="feed:1", replace=True, warninglists=intel.warninglists, items=items,
                                     **extra)
            session.expunge(result.pull)
    return result


def both_ways(intel: Intel, tmp_path: Path, data: bytes, options: dict[str, Any], **extra: Any
              ) -> tuple[service.IntakeResult, IntelStore]:
    """Take ``data`` in natively and by items (twice: new, then every indicator known) and check they agree."""
    by_items = IntelStore(tmp_path / "by-items.duckdb")
    try:
        for _ in range(2):
            native = take(intel, intel.store, data, options, by_items=False, **extra)
            itemised = take(intel, by_items, data, options, by_items=True, **extra)
            assert_alike(native, intel.store, itemised, by_items)
    finally:
        by_items.close()
    return native, intel.store


# Feodo Tracker's layout: a commented header, every cell quoted, Windows line ends, and rows of every kind.
FEODO = """\
################################################################
# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)          #
################################################################
#
# "first_seen_utc","dst_ip","dst_port","c2_status","last_online","malware"
"2026-10-01 10:00:00","203.0.113.5","443","online","2026-10-02","QakBot"
"2026-10-01 10:00:00", "203.0.113.6","443","online","2026-10-02","QakBot"
"2026-10-01 10:00:00","203.0.113.7:8080","443","offline","None","Emotet"

"2026-10-02 11:00:00","198[.]51[.]100[.]10","443","online","2026-10-03","QakBot"
"2026-10-02 11:00:00","999.1.1.1","443","online","2026-10-03","QakBot"
"2026-02-30 11:00:00","198.51.100.11","443","online","2026-10-03","Dridex"
"yesterday","198.51.100.12","443","online","2026-10-03","Dridex"
"2026-10-03T05:00:00Z","198.51.100.13","443","online","1700000000","银狐"
"2026-10-03 05:00:00","198.51.100.14","443","online","","Pikabot"
"2026-10-03 05:00:00",198.51.100.15,"443","online","","Pikabot"
"2026-10-03 05:00:00","  198.51.100.16\t","443","online","-","Pikabot"
   \t
"2026-10-04 06:00:00","203.0.113.5","443","online","2026-10-05","IcedID"
"2026-10-04 06:00:00","8.8.8.8","443","online","2026-10-05","IcedID"
"2026-10-04 06:00:00","198.51.100.17"
# generated 2026-10-04
"2026-10-04 24:00:00","198.51.100.18","443","online","2026-10-05","IcedID"
"2026-10-04 06:00:00","198.51.100.19","443","online","2026-10-05","IcedID"
""".replace("\n", "\r\n")
FEODO_OPTIONS = {"value": "dst_ip", "default_type": "ipv4", "first_seen": "first_seen_utc", "last_seen": "last_online",
                 "malware": "malware", "tags": ["c2_status"],
                 "columns": ["first_seen_utc", "dst_ip", "dst_port", "c2_status", "last_online", "malware"]}


def test_a_quoted_feed_with_odd_rows_is_stored_as_by_items(intel: Intel, tmp_path: Path,
                                                            native_used: list[int | None]) -> None:
    result, store = both_ways(intel, tmp_path, FEODO.encode(), FEODO_OPTIONS, defaults=DEFAULTS, decay=DECAY)
    assert native_used == [9, 9]  # the rest (the first row, refanged, quoted oddly, refused) went to Python
    qakbot = store.find("ipv4", "203.0.113.6")
    assert qakbot is not None and qakbot.related == [{"kind": "malware", "name": "QakBot", "external_id": ""}]
    assert sorted(qakbot.tags) == ["feed-tag", "online"] and qakbot.sources[0]["tlp"] == "amber"
    assert store.find("ipv4", "203.0.113.7") is not None  # its port dropped
    assert store.find("ipv4", "198.51.100.10") is not None  # refanged by the Python reader
    restated = store.find("ipv4", "203.0.113.5")  # twice: the later row counts for the source
    assert restated is not None and restated.related[-1]["name"] == "IcedID"
    assert store.find("ipv4", "198.51.100.13") is not None and store.find("ipv4", "198.51.100.16") is not None
    assert [error["position"] for error in result.pull.errors] == ["line 11", "line 12", "line 13", "line 23"]


@pytest.mark.parametrize(("kind", "values"), [
    ("sha256", ["E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                "a" * 64, " " + "b" * 64, "c" * 63, "not a hash", "a" * 64]),
    ("md5", ["D41D8CD98F00B204E9800998ECF8427E", "44d88612fea8a8f36de82e1278abb02f", "z" * 32, ""]),
])
def test_hash_lists_with_a_header_and_tag_columns(intel: Intel, tmp_path: Path, native_used: list[int | None],
                                                  kind: str, values: list[str]) -> None:
    rows = ["sha,first,tags,more,confidence,family,note"]
    for n, value in enumerate(values * 3):
        rows.append(",".join([value, f"2026-10-0{n % 9 + 1} 0{n % 10}:00:00", ["elf;mips", "", "None"][n % 3],
                              ["x|y", "z"][n % 2], ["80", "", "high", "101"][n % 4] if n != 0 else "80",
                              ["Mirai", "none", ""][n % 3], ["", "seen on a honeypot"][n % 2]]))
        if n == 7:
            rows.append(rows[0])  # the header again, inside the data
    options = {"value": "sha", "default_type": kind, "first_seen": "first", "tags": ["tags", "more"],
               "confidence": "confidence", "malware": "family", "description": "note", "header": True}
    result, store = both_ways(intel, tmp_path, ("\n".join(rows) + "\n").encode(), options)
    assert len(native_used) == 2 and native_used[0] == native_used[1] and (native_used[0] or 0) > 3
    assert result.pull.error_count > 0 and store.count() >= 2


def test_rows_drawn_at_random_are_stored_as_by_items(intel: Intel, tmp_path: Path,
                                                     native_used: list[int | None]) -> None:
    """Cells drawn (seeded) from what feeds write, good and bad, so that rows take either reader in any order."""
    pick = random.Random(7).choice
    values = ["198.51.100.7", " 198.51.100.8 ", "198.51.100.9:443", "198[.]51[.]100[.]10", "999.1.1.1", "",
              "1.2.3", "198.51.100.7", '"198.51.100.11"', "203.0.113.1\x0b", "203.0.113.2", "0.0.0.0", "01.2.3.4"]
    dates = ["2026-10-01", "2026-10-01 10:00:00", "1700000000", "-", "", "None", "2026-10-01T10:00:00+02:00",
             " 2026-10-02 03:04:05 ", "2026-10-03T04:05:06", "2026-13-01 00:00:00", "yesterday", "2026-10-01 23:59:60"]
    tags = ["c2", "c2;botnet", "", "None", "a|b; c", "c2", "x\x1fy"]
    confidences = ["80", "", "-", "50", "80", "101", "high"]
    families = ["QakBot", "", "None", "Emotet", "QakBot", "银狐"]
    rows = ["first,last,ioc,tags,confidence,malware"]
    for n in range(1500):
        value = pick(values) if n % 2 else f"192.0.2.{n % 250}"  # half of them plain and good
        rows.append(",".join([pick(dates[:3] * 3 + dates), pick(dates), value, pick(tags),
                              pick(confidences[:2] * 5 + confidences), pick(families)]))
        if pick(range(40)) == 0:
            rows.append(pick(["", "# a comment", rows[0], "only-one-cell", "  ", '"a","b"', '"203.0.113.9", "x"']))
    options = {"value": "ioc", "default_type": "ipv4", "first_seen": "first", "last_seen": "last", "tags": ["tags"],
               "confidence": "confidence", "malware": "malware", "header": True}
    result, store = both_ways(intel, tmp_path, ("\r\n".join(rows) + "\r\n").encode(), options, defaults=DEFAULTS)
    assert len(native_used) == 2 and (native_used[0] or 0) > 300
    assert result.pull.error_count > 0 and store.count() > 100


@pytest.mark.parametrize("data", [
    b'first,ioc\n2026-10-01,198.51.100.1\n"2026-10-01\n10:00",198.51.100.2\n',  # a quoted line break
    b"first,ioc\r2026-10-01,198.51.100.1\r2026-10-02,198.51.100.2\r",  # old Mac line ends
    b"first,ioc\n2026-10-01,198.51.100.1\n2026-10-02,198.51.100.\xff\n",  # not UTF-8
    b"first,ioc\n2026-10-01,198.51.100.1\n2026-10-02,198.51.100.2\x00\n",  # a NUL byte
    b"# nothing but a comment\n",
    b"",
])
def test_a_file_the_native_reader_cannot_take_is_read_by_python(intel: Intel, tmp_path: Path,
                                                                native_used: list[int | None], data: bytes) -> None:
    both_ways(intel, tmp_path, data, {"value": "ioc", "first_seen": "first", "default_type": "ipv4", "header": True})
    assert native_used == [None, None]


@pytest.mark.parametrize("options", [{"value": 0, "default_type": "domain"}, {"value": 0, "type": 1},
                                     {"value": 0}])
def test_only_fixed_types_sql_can_check_are_read_natively(tmp_path: Path, options: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tabular_native, "MIN_BYTES", 0)
    path = tmp_path / "feed.csv"
    path.write_text("evil.example,domain\n")
    with path.open("rb") as stream:
        assert NativeCsv.of(stream, CsvOptions.from_mapping(options), Stager({}), finish=lambda item: item,
                            refuse=lambda error: None) is None


def test_small_files_and_streams_without_a_file_stay_with_python(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_text("198.51.100.1\n")
    options = CsvOptions.from_mapping({"value": 0, "default_type": "ipv4"})
    with path.open("rb") as stream:
        assert NativeCsv.of(stream, options, Stager({}), finish=lambda item: item, refuse=print) is None
    assert NativeCsv.of(io.BytesIO(b"198.51.100.1\n" * 10**6), options, Stager({}), finish=lambda item: item,
                        refuse=print) is None
