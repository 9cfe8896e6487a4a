"""Live IOC matching: events through the real SIEM pipeline (spool, parsers, DuckDB store) with ``LiveIntel``
attached reach ``record`` with the right hits, in the pipeline's thread and in the parse worker processes; a
new version of the indicators is picked up without a restart; a bad event never stops its batch."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from vigil.core.config import load_settings
from vigil.intel import live, matcher, screen
from vigil.intel.indicators import normalise
from vigil.intel.live import IntelHit, LiveIntel, WorkerIntelMatch, snapshot_path
from vigil.intel.matcher import Entry
from vigil.siem.runtime import Siem
from vigil.siem.spool import BatchMeta

UNIT = 7
MD5 = "42893adbc36605ec79b5bd610759947e"
SSH_FROM_C2 = b"<38>Nov 28 10:00:01 bastion sshd[2211]: Accepted password for root from 203.0.113.66 port 52144 ssh2"
SSH_FROM_LAN = b"<38>Nov 28 10:00:02 bastion sshd[2212]: Accepted password for bob from 10.0.0.5 port 40000 ssh2"


def rows(*items: tuple[str, str]) -> list[Entry]:
    return [(number, kind, normalise(kind, value)) for number, (kind, value) in enumerate(items, 1)]


INDICATORS = rows(("cidr", "203.0.113.0/24"), ("domain", "evil.example"), ("md5", MD5),
                  ("url", "http://dl.evil.example/stage2.ps1"), ("filename", "mimikatz.exe"))


def sysmon(record: int, **fields: Any) -> bytes:
    return orjson.dumps({"@timestamp": "2026-11-28T10:00:00Z", "Channel": "Microsoft-Windows-Sysmon/Operational",
                         "EventRecordID": record, "Computer": "WS01", **fields})


class Recorded:
    """The ``record`` callable: every batch's hits, kept in order."""

    def __init__(self) -> None:
        self.hits: list[IntelHit] = []
        self.lock = threading.Lock()

    def __call__(self, hits: Iterable[IntelHit]) -> None:
        with self.lock:
            self.hits.extend(hits)

    def seen(self) -> set[tuple[Any, ...]]:
        return {(h.hit.value, h.hit.field, h.event.get("EventRecordID"), h.source, h.unit_id) for h in self.hits}


class Running:
    def __init__(self, root: Path, *, workers: int = 0, indicators: list[Entry] = INDICATORS,
                 version: str = "v1") -> None:
        self.indicators = indicators
        self.version = version
        self.recorded = Recorded()
        self.intel = LiveIntel(lambda: (self.version, iter(self.indicators)), self.recorded,
                               worker_dir=root / "intel" if workers else None, refresh_seconds=3600)
        self.settings = load_settings(data_dir=root / "var", pipeline_workers=workers)
        self.siem = Siem(self.settings, None, consumers=[self.intel])

    def send(self, records: list[bytes], *, source: str = "http:edr", format_name: str | None = "json") -> None:
        self.siem.submit(records, BatchMeta(source=source, unit_id=UNIT, format=format_name))
        assert self.siem.drain(60)
        assert self.siem.pipeline.status.errors == 0, self.siem.pipeline.status.last_error


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    parts = Running(tmp_path)
    parts.intel.refresh(wait=True)
    yield parts
    parts.siem.stop()


def test_nothing_is_wanted_until_indicators_are_loaded(tmp_path: Path) -> None:
    parts = Running(tmp_path, indicators=[])
    try:
        assert not parts.intel.wanted()
        parts.intel.refresh(wait=True)
        assert not parts.intel.wanted() and parts.intel.status.builds == 1
        parts.send([sysmon(1, DestinationIp="203.0.113.9")])
        assert parts.recorded.hits == [] and parts.intel.status.events == 0  # JSON not even decoded for it
    finally:
        parts.siem.stop()


def test_json_events_reach_record_with_their_hits(running: Running) -> None:
    running.send([sysmon(1, EventID=3, Image="C:\\Tools\\mimikatz.exe", DestinationIp="203.0.113.9",
                         DestinationHostname="cdn.evil.example"),
                  sysmon(2, EventID=3, Image="C:\\Windows\\explorer.exe", DestinationIp="10.1.1.1"),
                  sysmon(3, EventID=1, Hashes=f"SHA1={'0' * 40},MD5={MD5.upper()}", Image="C:\\x\\a.exe")])
    assert running.recorded.seen() == {
        ("203.0.113.0/24", "DestinationIp", 1, "http:edr", UNIT),
        ("evil.example", "DestinationHostname", 1, "http:edr", UNIT),
        ("mimikatz.exe", "Image", 1, "http:edr", UNIT),
        (MD5, "Hashes", 3, "http:edr", UNIT)}
    first = next(h for h in running.recorded.hits if h.hit.field == "DestinationIp")
    assert first.hit.observed == "203.0.113.9" and first.event["Computer"] == "WS01"
    assert running.intel.status.events == 3 and running.intel.status.hits == 4
    assert running.siem.store.count() == 3
    if screen.available():  # the pipeline's thread matched only the events the screen named
        assert (running.intel.status.screened, running.intel.status.named) == (3, 2)


def test_text_logs_are_parsed_then_matched(running: Running) -> None:
    running.send([SSH_FROM_C2, SSH_FROM_LAN], source="syslog", format_name="syslog")
    [found] = running.recorded.hits
    assert (found.hit.value, found.hit.field, found.hit.observed) == ("203.0.113.0/24", "source.ip", "203.0.113.66")
    assert found.event["host"]["hostname"] == "bastion" and found.source == "syslog"


def test_web_logs_match_urls_by_host_and_path(running: Running) -> None:
    line = b'dl.evil.example:80 198.51.100.4 - - [28/Nov/2026:10:00:00 +0000] "GET /stage2.ps1?x=1 HTTP/1.1" 200 5'
    running.send([line], source="web", format_name="web_access")
    assert {(h.hit.value, h.hit.field) for h in running.recorded.hits} == {
        ("http://dl.evil.example/stage2.ps1", "url.original"), ("evil.example", "url.original"),
        ("evil.example", "url.domain")}


def test_a_bad_event_never_stops_its_batch(running: Running) -> None:
    odd = orjson.dumps({"DestinationIp": ["203.0.113.1", {"x": [1, 2]}, 3.5], "Hashes": 12, "url": "x" * 300_000,
                        "dns": {"question": {"name": None}}, "related": {"ip": [[["203.0.113.2"]]]}})
    running.send([odd, b"this line is no JSON", b"[1, 2]", sysmon(9, DestinationIp="203.0.113.50")])
    assert ("203.0.113.0/24", "DestinationIp", 9, "http:edr", UNIT) in running.recorded.seen()
    assert running.siem.store.count() == 4  # the batch came back parsed; every record stored


class Exploding(Mapping[str, Any]):
    """An event whose fields cannot be read: matching it raises."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("unreadable event")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("unreadable event")

    def __len__(self) -> int:
        return 1


def test_an_event_matching_fails_on_is_counted_and_skipped(running: Running) -> None:
    events: list[Any] = [Exploding(), {"source": {"ip": "203.0.113.7"}}]
    running.intel.consume(events, source="s", unit_id=UNIT)
    assert [h.hit.observed for h in running.recorded.hits] == ["203.0.113.7"]
    assert running.intel.status.bad_events == 1


def test_a_new_version_is_picked_up_without_a_restart(running: Running) -> None:
    running.send([sysmon(1, QueryName="www.evil.example"), sysmon(2, QueryName="login.phish.example")])
    assert {h.hit.value for h in running.recorded.hits} == {"evil.example"}
    running.indicators, running.version = rows(("domain", "phish.example")), "v2"
    running.intel.refresh(wait=True)
    running.send([sysmon(3, QueryName="www.evil.example"), sysmon(4, QueryName="login.phish.example")])
    assert {(h.hit.value, h.event["EventRecordID"]) for h in running.recorded.hits} == {
        ("evil.example", 1), ("phish.example", 4)}
    assert running.intel.status.version == "v2" and running.intel.status.builds == 2


def test_the_same_version_is_not_rebuilt(running: Running) -> None:
    index = running.intel.holder.index
    running.intel.refresh(wait=True)
    assert running.intel.holder.index is index and running.intel.status.builds == 1


def test_indicators_that_cannot_be_read_leave_the_current_set_matching(running: Running) -> None:
    def broken() -> tuple[str, list[Entry]]:
        raise RuntimeError("indicator store unreachable")

    running.intel.entries = broken
    running.intel.refresh(wait=True)
    assert "indicator store unreachable" in running.intel.status.last_error
    running.send([sysmon(1, DestinationIp="203.0.113.9")])
    assert len(running.recorded.hits) == 1


def test_a_failing_record_never_stops_ingestion(running: Running) -> None:
    def broken(hits: Iterable[IntelHit]) -> None:
        raise RuntimeError("sightings store unreachable")

    running.intel.record = broken
    running.siem.submit([sysmon(1, DestinationIp="203.0.113.9")], BatchMeta("http:edr", UNIT, "json"))
    assert running.siem.drain(30)
    assert running.siem.store.count() == 1
    assert "sightings store unreachable" in running.siem.pipeline.status.last_error


def not_here(events: object, **where: object) -> None:
    raise AssertionError("matched in the pipeline's thread, not in the parse workers")


def started_with_workers(root: Path) -> Running:
    parts = Running(root, workers=1)
    parts.intel.refresh(wait=True)
    parts.intel.consume = not_here  # type: ignore[method-assign]
    parts.siem.start()
    assert parts.siem.pipeline.wait_ready(60)
    return parts


@pytest.fixture
def with_workers(tmp_path: Path) -> Iterator[Running]:
    parts = started_with_workers(tmp_path)
    yield parts
    parts.siem.stop()


def test_parse_workers_match_the_events_they_parse(with_workers: Running, tmp_path: Path) -> None:
    with_workers.send([SSH_FROM_C2, SSH_FROM_LAN], source="syslog", format_name="syslog")
    [found] = with_workers.recorded.hits
    assert (found.hit.value, found.hit.field, found.hit.observed) == ("203.0.113.0/24", "source.ip", "203.0.113.66")
    assert found.event["message"].startswith("Accepted password for root") and found.unit_id == UNIT
    assert snapshot_path(tmp_path / "intel", "v1").is_file()
    assert with_workers.intel.status.events == 2 and with_workers.intel.status.hits == 1


def test_json_the_store_takes_as_it_is_is_screened_and_only_named_documents_decoded(with_workers: Running) -> None:
    with_workers.send([sysmon(1, Image="C:\\t\\mimikatz.exe"), sysmon(2, Image="C:\\t\\notepad.exe")])
    with_workers.send([sysmon(3, Hashes=f"MD5={MD5}")])
    assert {(h.hit.value, h.event["EventRecordID"]) for h in with_workers.recorded.hits} == {
        ("mimikatz.exe", 1), (MD5, 3)}
    assert with_workers.siem.store.count() == 3
    status = with_workers.intel.status
    if screen.available():
        assert (status.events, status.screened, status.named) == (3, 3, 2)


@pytest.mark.skipif(not screen.available(), reason="vigil.intel._screen is not built (no C compiler at install time)")
def test_a_group_of_batches_is_screened_ahead_batch_by_batch(tmp_path: Path) -> None:
    parts = Running(tmp_path, workers=1)  # not started: drain reads the three batches ahead as one group
    parts.intel.refresh(wait=True)
    try:
        for first in (1, 4, 7):
            batch = [sysmon(first, QueryName="ok.example"), sysmon(first + 1, QueryName=f"x{first}.evil.example"),
                     sysmon(first + 2, Image="C:\\t\\notepad.exe")]
            parts.siem.submit(batch, BatchMeta("http:edr", UNIT, "json"))
        assert parts.siem.drain(60)
        assert parts.siem.pipeline._screener is not None  # the screens ran in the screening threads
        assert sorted(h.event["EventRecordID"] for h in parts.recorded.hits) == [2, 5, 8]
        assert (parts.intel.status.screened, parts.intel.status.named) == (9, 3)
        assert parts.siem.store.count() == 9
    finally:
        parts.siem.stop()


def test_without_a_screen_parse_workers_match_json_the_store_takes_as_it_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matcher, "screen_for", lambda index: None)  # as where the C module was not built
    parts = started_with_workers(tmp_path)
    try:
        parts.send([sysmon(1, Image="C:\\t\\mimikatz.exe"), sysmon(2, Image="C:\\t\\notepad.exe")])
        assert {(h.hit.value, h.event["EventRecordID"]) for h in parts.recorded.hits} == {("mimikatz.exe", 1)}
        assert (parts.intel.status.events, parts.intel.status.screened) == (2, 0)
    finally:
        parts.siem.stop()


def test_parse_workers_take_a_new_version(with_workers: Running, tmp_path: Path) -> None:
    with_workers.send([sysmon(1, QueryName="a.evil.example")])
    with_workers.indicators, with_workers.version = rows(("hostname", "b.phish.example")), "v2"
    with_workers.intel.refresh(wait=True)
    with_workers.send([sysmon(2, QueryName="a.evil.example"), sysmon(3, QueryName="b.phish.example")])
    assert {(h.hit.value, h.event["EventRecordID"]) for h in with_workers.recorded.hits} == {
        ("evil.example", 1), ("b.phish.example", 3)}
    assert snapshot_path(tmp_path / "intel", "v2").is_file()



def test_a_worker_matches_batches_of_an_older_job_with_the_newer_index_it_prepared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "_current", None)  # this process stands in for a worker
    first, second = tmp_path / "v1.tsv", tmp_path / "v2.tsv"
    first.write_text("1\thostname\ta.evil.example\n", encoding="utf-8")
    second.write_text("2\thostname\tb.phish.example\n", encoding="utf-8")
    old, new = WorkerIntelMatch("v1", str(first), 1), WorkerIntelMatch("v2", str(second), 2)
    events = [{"QueryName": "a.evil.example"}, {"QueryName": "b.phish.example"}]
    assert [(at, hits[0][0]) for at, hits in old(events)] == [(0, 1)]
    new.prepare()  # the pipeline's step, while batches still go out with the old job
    assert [(at, hits[0][0]) for at, hits in old(events)] == [(1, 2)]  # no rebuild of v1: v2 is newer
    assert [(at, hits[0][0]) for at, hits in new(events)] == [(1, 2)]
