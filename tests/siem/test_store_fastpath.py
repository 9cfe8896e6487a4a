"""The ingest fast path: JSON text straight into DuckDB's typed columns, spool batches grouped per transaction.

What a user would notice if it went wrong: a field that reads differently depending on how the event
arrived (Python event or JSON line), a bad line losing its neighbours, a batch stored twice after a
restart, or a record changed on its way through the spool.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from vigil.core.errors import BadInput
from vigil.siem import pipeline as pipeline_module
from vigil.siem.fields import COLUMNS
from vigil.siem.parsing import SourceConfig
from vigil.siem.pipeline import Pipeline
from vigil.siem.spool import BatchMeta, Spool
from vigil.siem.store.duckdb import DuckDBEventStore

RECEIVED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TYPED = ", ".join(column.name for column in COLUMNS if column.name != "ingested")

# Every kind of typed column, with values that fit and values that do not.
ODD_EVENTS: list[dict[str, Any]] = [
    {"@timestamp": "2026-11-28T08:00:00+08:00", "event": {"category": ["authentication", "iam"], "code": 4625,
                                                          "severity": "7", "outcome": "failure"},
     "source": {"ip": "10.0.0.5", "port": "22"}, "user": {"name": {"first": "ann"}}, "EventID": "4625",
     "process": {"pid": 99999999999, "command_line": "a\u00e9\u4e2d \"quoted\"\nnext"}, "message": "hello"},
    {"@timestamp": "not a time", "event": {"category": "authentication", "ingested": "2026-11-28T01:02:03Z"},
     "source": {"port": "ssh"}, "EventID": 2**40, "user": {"name": ["a", "b"]}, "Channel": True},
    {"event": {"category": None}, "destination": {"port": 70000}, "process": {"pid": -5}, "host": {"hostname": 7}},
    {"@timestamp": "2026-11-28T10:00:00Z", "event": {"category": [1, "x", None]}, "url": {"domain": ""}},
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBEventStore]:
    opened = DuckDBEventStore(tmp_path / "events.duckdb")
    yield opened
    opened.close()


def typed_rows(store: DuckDBEventStore, source: str) -> list[tuple[Any, ...]]:
    return store._query(f"SELECT {TYPED} FROM events WHERE source = ? ORDER BY id", [source])


def test_json_lines_and_python_events_fill_the_same_typed_columns(store: DuckDBEventStore) -> None:
    store.append([dict(event) for event in ODD_EVENTS], unit_id=1, source="python")
    store.append_json([orjson.dumps(event) for event in ODD_EVENTS], unit_id=1, source="json")
    python, json = typed_rows(store, "python"), typed_rows(store, "json")
    # ts differs only where the event has none (each append's own ingest time): compare the rest.
    assert [row[1:] for row in python[:1]] != []
    for mine, theirs in zip(python, json, strict=True):
        assert mine[2:] == theirs[2:]
    first = json[0]
    names = [name.strip() for name in TYPED.split(",")]
    value = dict(zip(names, first, strict=True))
    assert value["ts"] == datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
    assert value["event_category"] == ["authentication", "iam"]
    assert (value["event_code"], value["event_severity"], value["source_port"]) == ("4625", 7, 22)
    assert value["user_name"] == '{"first":"ann"}'  # an object in a text column keeps its JSON text
    assert value["win_event_id"] == 4625 and value["process_pid"] == 99999999999
    assert value["process_command_line"] == "a\u00e9\u4e2d \"quoted\"\nnext"
    second = dict(zip(names, json[1], strict=True))
    assert second["ts"] == datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)  # no usable @timestamp: the ingest time
    assert second["event_category"] == ["authentication"]
    assert (second["source_port"], second["win_event_id"], second["win_channel"]) == (None, None, "true")
    assert second["user_name"] == '["a","b"]'
    third = dict(zip(names, json[2], strict=True))
    assert (third["event_category"], third["destination_port"], third["process_pid"]) == (None, 70000, -5)
    assert third["host_hostname"] == "7"
    fourth = dict(zip(names, json[3], strict=True))
    assert fourth["event_category"] == ["1", "x"] and fourth["url_domain"] == ""


def test_a_big_json_batch_is_stored_whole_and_searchable(store: DuckDBEventStore) -> None:
    lines = [orjson.dumps({"@timestamp": f"2026-11-28T10:{n // 60 % 60:02d}:{n % 60:02d}Z",
                           "user": {"name": f"user{n % 7}"}, "message": f"line {n}"}) for n in range(25_000)]
    result = store.append_json(lines, unit_id=4, source="big", spool_position=(3, 300))
    assert (result.stored, result.skipped) == (25_000, False)
    assert store.count() == 25_000 and store.last_position() == (3, 300)
    assert store.count("user_name = ?", ["user3"]) == len([n for n in range(25_000) if n % 7 == 3])
    assert store.search(limit=1)[0].doc["message"].startswith("line ")


@pytest.mark.parametrize("junk", [b"not json", b"[1, 2]", b'"text"', b"null", b"", b"{", b'{"a": 1} {"b": 2}'])
def test_one_bad_document_refuses_the_whole_json_batch_and_says_how_many(store: DuckDBEventStore,
                                                                           junk: bytes) -> None:
    lines = [orjson.dumps({"n": n}) for n in range(3_000)]
    with pytest.raises(BadInput, match=r"^1 of 3,?001 documents are not JSON objects"):
        store.append_json([*lines[:1500], junk, *lines[1500:]], unit_id=1, source="t", spool_position=(1, 1))
    assert store.count() == 0 and store.last_position() is None
    assert store.append_json(lines, unit_id=1, source="t", spool_position=(1, 1)).stored == 3_000


def test_documents_with_leading_space_line_breaks_or_bad_utf8_are_kept(store: DuckDBEventStore) -> None:
    pretty = b'{\n  "message": "pretty",\n  "user": {"name": "ann"}\n}'
    lines = [b'  \t{"message": "indented"}', pretty, b'{"message": "caf\xe9"}', "{\"message\": \"str\"}"]
    assert store.append_json(lines, unit_id=1, source="t").stored == 4
    messages = sorted(event.doc["message"] for event in store.search())
    assert messages == ["caf\ufffd", "indented", "pretty", "str"]
    assert store.count("user_name = ?", ["ann"]) == 1


def test_a_memory_limit_is_set_or_refused(tmp_path: Path) -> None:
    limited = DuckDBEventStore(tmp_path / "a.duckdb", memory_limit="256MB")
    try:
        assert limited._query("SELECT current_setting('memory_limit')", [])[0][0] == "244.1 MiB"
    finally:
        limited.close()
    for bad in ("lots", "1GB'; DROP TABLE events; --", "-5GB", "0MB"):
        with pytest.raises(BadInput):
            DuckDBEventStore(tmp_path / "b.duckdb", memory_limit=bad)


def test_a_count_can_stop_early(store: DuckDBEventStore) -> None:
    store.append([{"@timestamp": RECEIVED, "message": f"word {n}"} for n in range(500)], unit_id=1, source="t")
    assert store.count("message ILIKE ?", ["%word%"], at_most=100) == 100
    assert store.count("message ILIKE ?", ["%word 1%"], at_most=1000) == 111
    assert store.count(at_most=0) == 0 and store.count(unit_ids=[2], at_most=10) == 0
    with pytest.raises(BadInput):
        store.count(at_most=-1)


# -- the pipeline's grouping of spool batches -------------------------------------------------------------------


def json_configs(source: str) -> SourceConfig:
    return SourceConfig(format="json")


def meta(source: str = "http:shipper", unit_id: int = 1) -> BatchMeta:
    return BatchMeta(source=source, unit_id=unit_id, format="json", transport="http", received_at=RECEIVED)


def batch_lines(first: int, count: int) -> list[bytes]:
    return [orjson.dumps({"@timestamp": "2026-11-28T10:00:00Z", "message": f"event {n}", "seq": n})
            for n in range(first, first + count)]


def stored_sequence(store: DuckDBEventStore) -> list[int]:
    return sorted(event.doc["seq"] for event in store.search(limit=10_000) if "seq" in event.doc)


def test_consecutive_batches_are_stored_once_in_one_transaction(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    spool = Spool(tmp_path / "spool", quota_bytes=64 * 1024**2)
    try:
        positions = [spool.append(batch_lines(n * 100, 100), meta()) for n in range(5)]
        calls: list[int] = []
        append_json = store.append_json

        def counting(documents: Any, **kwargs: Any) -> Any:
            calls.append(len(documents))
            return append_json(documents, **kwargs)

        store.append_json = counting  # type: ignore[method-assign]
        pipeline = Pipeline(spool, store, configs=json_configs)
        assert pipeline.run_once() == 5
        assert calls == [500]  # one transaction for the five batches
        assert stored_sequence(store) == list(range(500))
        assert store.last_position() == positions[-1] == pipeline.status.position
        assert (pipeline.status.batches, pipeline.status.events) == (5, 500)
        # After a restart nothing is stored twice: the spool replays from the store's position.
        again = Pipeline(spool, store, configs=json_configs)
        assert again.run_once() == 0 and store.count() == 500
    finally:
        spool.close()
        store.close()


def test_groups_stop_at_a_row_group_of_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_module, "GROUP_RECORDS", 250)
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    spool = Spool(tmp_path / "spool", quota_bytes=64 * 1024**2)
    try:
        for n in range(5):
            spool.append(batch_lines(n * 100, 100), meta())
        spool.append(batch_lines(500, 400), meta())  # bigger than a group: a transaction of its own
        calls: list[int] = []
        append_json = store.append_json

        def counting(documents: Any, **kwargs: Any) -> Any:
            calls.append(len(documents))
            return append_json(documents, **kwargs)

        store.append_json = counting  # type: ignore[method-assign]
        Pipeline(spool, store, configs=json_configs).run_once()
        assert calls == [200, 200, 100, 400]
        assert stored_sequence(store) == list(range(900)) and store.last_position() == spool.end()
    finally:
        spool.close()
        store.close()


def test_a_bad_line_in_a_group_becomes_a_failure_event_and_loses_nothing(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    spool = Spool(tmp_path / "spool", quota_bytes=64 * 1024**2)
    try:
        spool.append(batch_lines(0, 50), meta())
        spool.append([*batch_lines(50, 25), b"{broken", *batch_lines(75, 25)], meta())
        spool.append(batch_lines(100, 50), meta(source="other", unit_id=2))  # another source: its own transaction
        spool.append(batch_lines(150, 50), meta(source="other", unit_id=2))
        pipeline = Pipeline(spool, store, configs=json_configs)
        pipeline.run_once()
        assert stored_sequence(store) == list(range(200))
        assert store.count() == 201 and pipeline.status.failures == 1
        failure = store.search("json_extract_string(doc, '$.event.kind') = ?", ["pipeline_error"])
        assert [event.doc["event"]["original"] for event in failure] == ["{broken"]
        assert store.count(unit_ids=[2]) == 100
        assert store.last_position() == spool.end()
    finally:
        spool.close()
        store.close()


def test_a_failing_store_keeps_the_group_in_the_spool(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    spool = Spool(tmp_path / "spool", quota_bytes=64 * 1024**2)
    try:
        for n in range(3):
            spool.append(batch_lines(n * 10, 10), meta())
        append_json = store.append_json

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise OSError("disk gone")

        store.append_json = broken  # type: ignore[method-assign]
        pipeline = Pipeline(spool, store, configs=json_configs)
        with pytest.raises(OSError):
            pipeline.run_once()
        assert store.count() == 0 and store.last_position() is None and pipeline.status.position is None
        store.append_json = append_json  # type: ignore[method-assign]
        pipeline.run_once()
        assert stored_sequence(store) == list(range(30))
    finally:
        spool.close()
        store.close()


def test_spool_records_come_back_byte_for_byte(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", quota_bytes=64 * 1024**2)
    try:
        records = [b"", b"\x00\xff\x1f\n", b"x" * 70_000, "\u4e2d".encode(), b"{}"]
        position = spool.append(records, meta())
        [batch] = spool.read(None)
        assert batch.records == records and batch.position == position
    finally:
        spool.close()


def test_parsed_batches_of_one_source_share_a_transaction_too(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    spool = Spool(tmp_path / "spool", quota_bytes=64 * 1024**2)
    try:
        syslog = BatchMeta(source="syslog", unit_id=1, format="syslog", peer="10.0.0.9")
        lines = [[f"<13>1 2026-11-28T10:00:00Z fw01 app - - - message {n * 10 + i}".encode() for i in range(10)]
                 for n in range(4)]
        positions = [spool.append(batch, syslog) for batch in lines]
        spool.append(batch_lines(0, 3), meta())  # another kind of batch: a transaction of its own
        calls: list[int] = []
        append = store.append

        def counting(events: Any, **kwargs: Any) -> Any:
            calls.append(len(events))
            return append(events, **kwargs)

        store.append = counting  # type: ignore[method-assign]
        pipeline = Pipeline(spool, store, configs=json_configs)
        assert pipeline.run_once() == 5
        assert calls == [40]  # the four syslog batches in one transaction; the JSON batch went on its own
        assert store.count("source = 'syslog'") == 40 and store.count() == 43
        assert store.last_position() == pipeline.status.position > positions[-1]
        assert Pipeline(spool, store, configs=json_configs).run_once() == 0 and store.count() == 43
    finally:
        spool.close()
        store.close()
