"""The pipeline over a real spool folder and a real DuckDB file: every spooled batch is stored exactly once,
also when the pipeline is restarted or replays from an older position; records no parser reads become
failure events; an enricher that raises costs its fields, never the batch; the JSON fast path falls back
to the parser when a batch holds a line that is not a JSON object."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from vigil.siem import search
from vigil.siem.parsers.base import Event
from vigil.siem.parsing import SourceConfig
from vigil.siem.pipeline import Pipeline
from vigil.siem.spool import BatchMeta, Spool
from vigil.siem.store.duckdb import DuckDBEventStore

QUOTA = 64 * 1024 * 1024
NOW = datetime.now(UTC).replace(microsecond=0)


def config(source: str) -> SourceConfig:
    return SourceConfig()


def meta(source: str = "http:test", format_name: str | None = "json") -> BatchMeta:
    return BatchMeta(source=source, unit_id=1, format=format_name, transport="http", peer="10.1.2.3")


def docs(batch: int, count: int = 4) -> list[bytes]:
    return [orjson.dumps({"@timestamp": NOW.isoformat(), "message": f"b{batch} n{n}",
                          "labels": {"batch": str(batch), "n": str(n)}}) for n in range(count)]


class Parts:
    """A spool folder and an event-store file, reopened as a restarted server would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = DuckDBEventStore(root / "events.duckdb")
        self.spool = Spool(root / "spool", quota_bytes=QUOTA, segment_bytes=64 * 1024)

    def pipeline(self, enrichers: list[Any] | None = None) -> Pipeline:
        return Pipeline(self.spool, self.store, configs=config, enrichers=enrichers or [])

    def reopen(self) -> None:
        self.close()
        self.store = DuckDBEventStore(self.root / "events.duckdb")
        last = self.store.last_position()
        self.spool = Spool(self.root / "spool", quota_bytes=QUOTA, segment_bytes=64 * 1024,
                           first_segment=last[0] + 1 if last else 1)

    def close(self) -> None:
        self.spool.close()
        self.store.close()

    def events(self, query: str = "") -> list[Event]:
        result = search.search(self.store, units=None, query=query, window=search.time_range("1d"), limit=1000)
        return [event.doc for event in result.events]


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    opened = Parts(tmp_path)
    yield opened
    opened.close()


def batch_labels(events: list[Event]) -> list[str]:
    return sorted(f"{event['labels']['batch']}.{event['labels']['n']}" for event in events if "labels" in event)


def test_every_batch_is_stored_once_across_restarts(parts: Parts) -> None:
    for n in range(3):
        parts.spool.append(docs(n), meta())
    pipeline = parts.pipeline()
    assert pipeline.run_once() == 3
    assert len(parts.events()) == 12
    # More arrives, then the server restarts before the pipeline gets to it.
    for n in range(3, 5):
        parts.spool.append(docs(n), meta())
    parts.reopen()
    restarted = parts.pipeline()
    assert restarted.status.position is not None
    while restarted.run_once():
        pass
    assert batch_labels(parts.events()) == sorted(f"{b}.{n}" for b in range(5) for n in range(4))
    # A pipeline replaying from the spool's start (a lost position in memory) stores nothing twice.
    restarted.status.position = None
    restarted.run_once()
    assert len(parts.events()) == 20


def test_a_stopped_and_restarted_thread_stores_everything_once(parts: Parts) -> None:
    pipeline = parts.pipeline()
    pipeline.start()
    for n in range(10):
        parts.spool.append(docs(n, count=2), meta())
    assert pipeline.drain(timeout=60)
    pipeline.stop()
    assert pipeline.status.batches >= 1 and pipeline.status.events == 20
    parts.spool.append(docs(10, count=2), meta())
    again = parts.pipeline()
    again.start()
    assert again.drain(timeout=60)
    again.stop()
    assert len(parts.events()) == 22


def test_records_no_parser_reads_become_failure_events(parts: Parts) -> None:
    # The JSON fast path meets bad lines: the parser takes over, the good lines are stored as usual.
    records = [*docs(0, count=2), b"not json at all", b'{"cut": ', b"[1, 2]"]
    parts.spool.append(records, meta("http:mixed"))
    pipeline = parts.pipeline()
    pipeline.run_once()
    assert pipeline.status.failures == 3
    assert batch_labels(parts.events()) == ["0.0", "0.1"]
    failures = parts.events("event.kind:pipeline_error")
    assert sorted(event["event"]["original"] for event in failures) == sorted(["not json at all", '{"cut": ', "[1, 2]"])
    for event in failures:
        assert event["error"]["type"] == "parse_failure" and event["error"]["message"]
        assert event["vigil"]["parser"] == "json" and event["vigil"]["input"] == "http:mixed"
        assert event["log"]["source"]["address"] == "10.1.2.3"


def test_undetectable_and_invalid_utf8_records_are_kept_losslessly(parts: Parts) -> None:
    # Stamped a minute ago (RFC 5424, with its zone): within the last day whenever the test runs.
    stamp = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    hello = f"<13>1 {stamp} host app - - - hello".encode()
    parts.spool.append([b"\xff\xfe binary \x00 junk", hello], meta(format_name=None))
    parts.pipeline().run_once()
    failure = parts.events("event.kind:pipeline_error")[0]
    assert failure["vigil"]["invalid_utf8"] is True and failure["vigil"]["original_base64"]
    assert "no parser" in failure["error"]["message"]
    assert parts.events('message:"hello"')


def test_mixed_formats_are_detected_record_by_record(parts: Parts) -> None:
    eve = orjson.dumps({"timestamp": NOW.isoformat(), "event_type": "dns", "src_ip": "10.0.0.1",
                        "dest_ip": "10.0.0.53", "dns": {"rrname": "example.org"}})
    syslog = b"<34>1 " + NOW.isoformat().encode() + b" fw01 kernel - - - link eth0 down"
    parts.spool.append([eve, syslog, docs(0, count=1)[0]], meta(format_name=None))
    parts.pipeline().run_once()
    stored = parts.events()
    assert len(stored) == 3 and not parts.events("event.kind:pipeline_error")
    assert parts.events('source.ip:"10.0.0.1"') and parts.events('host.hostname:"fw01" OR host.name:"fw01"')


class Boom:
    name = "boom"

    def enrich(self, events: list[Event]) -> None:
        raise RuntimeError("the asset service is down")


class Tagger:
    name = "tagger"

    def enrich(self, events: list[Event]) -> None:
        for event in events:
            event.setdefault("tags", []).append("enriched")


def test_an_enricher_that_raises_costs_its_fields_not_the_batch(parts: Parts) -> None:
    parts.spool.append(docs(0), meta())
    pipeline = parts.pipeline(enrichers=[Boom(), Tagger()])
    pipeline.run_once()
    stored = parts.events()
    assert batch_labels(stored) == ["0.0", "0.1", "0.2", "0.3"]
    assert all(event["tags"] == ["enriched"] for event in stored)  # the enricher after it still ran
    assert pipeline.status.errors == 0


def test_the_fast_path_stores_documents_as_sent(parts: Parts) -> None:
    document = {"@timestamp": NOW.isoformat(), "message": "ok", "source": {"ip": "10.9.8.7", "port": 443},
                "nested": {"deep": [1, {"x": "y"}]}}
    parts.spool.append([orjson.dumps(document)], meta())
    parts.pipeline().run_once()
    stored = parts.events('source.ip:"10.9.8.7"')
    assert len(stored) == 1
    assert stored[0]["nested"] == {"deep": [1, {"x": "y"}]} and stored[0]["source"]["port"] == 443


def test_a_damaged_batch_in_the_spool_is_passed_and_the_rest_stored(parts: Parts) -> None:
    positions = [parts.spool.append(docs(batch), meta()) for batch in range(3)]
    segment_file = parts.root / "spool" / f"{positions[0][0]:012d}.seg"
    parts.close()
    data = bytearray(segment_file.read_bytes())
    data[positions[0][1] + 30] ^= 0xFF  # inside the second batch
    segment_file.write_bytes(bytes(data))
    parts.reopen()
    pipeline = parts.pipeline()
    assert pipeline.drain()
    assert batch_labels(parts.events()) == [f"{batch}.{n}" for batch in (0, 2) for n in range(4)]
    assert parts.store.last_position() == positions[-1]
