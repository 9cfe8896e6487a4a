"""The search service over a real DuckDB store: time ranges, paging, histograms with empty buckets, top
values, field summaries, export streams (CSV with formula protection, NDJSON) and unit scoping."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.core.errors import BadInput, NotFound
from vigil.siem import search as service
from vigil.siem.query import QuerySyntaxError
from vigil.siem.store.base import StoredEvent
from vigil.siem.store.duckdb import DuckDBEventStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
START = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
HOUR = service.TimeRange(START, START + timedelta(hours=1))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBEventStore]:
    opened = DuckDBEventStore(tmp_path / "events.duckdb")
    opened.append([{"@timestamp": (START + timedelta(minutes=m)).isoformat(), "message": f"event {m}",
                    "host": {"name": "web1" if m % 2 else "web2"}, "event": {"category": ["web", "network"]}}
                   for m in range(0, 60, 3)], unit_id=1, source="web")
    opened.append([{"@timestamp": (START + timedelta(minutes=7)).isoformat(), "message": "branch event",
                    "host": {"name": "b1"}}], unit_id=2, source="branch")
    yield opened
    opened.close()


# --- time ranges ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("24h", 86400), ("7d", 7 * 86400), ("2w", 14 * 86400),
                                               ("30s", 30), (" 1h ", 3600)])
def test_relative_ranges_end_now(text: str, seconds: int) -> None:
    window = service.time_range(text, now=NOW)
    assert window.end == NOW and window.seconds == seconds


def test_absolute_and_mixed_ranges() -> None:
    window = service.time_range("2026-11-28T08:00:00+08:00/2026-11-28T01:00:00Z", now=NOW)
    assert window == service.TimeRange(datetime(2026, 11, 28, 0, 0, tzinfo=UTC),
                                       datetime(2026, 11, 28, 1, 0, tzinfo=UTC))
    assert service.time_range("now-2h/now", now=NOW) == service.TimeRange(NOW - timedelta(hours=2), NOW)
    assert service.time_range("2026-11-28T00:00:00/", now=NOW).end == NOW  # an empty end is now


@pytest.mark.parametrize("text", ["", "24", "1y", "yesterday", "now/now-1h", "junk/now", "9999999d",
                                  "2026-11-28T01:00:00Z/2026-11-28T00:00:00Z", "2000-01-01T00:00:00Z/now"])
def test_bad_ranges_say_how_to_write_them(text: str) -> None:
    with pytest.raises(BadInput):
        service.time_range(text, now=NOW)


@given(st.text(max_size=40))
def test_any_range_text_is_a_range_or_bad_input(text: str) -> None:
    try:
        window = service.time_range(text, now=NOW)
    except BadInput:
        return
    assert window.start < window.end


# --- search, paging, scoping -------------------------------------------------------------------------------


def test_search_pages_and_totals(store: DuckDBEventStore) -> None:
    first = service.search(store, units=None, query="", window=HOUR, limit=5)
    assert first.total == 21 and len(first.events) == 5
    assert first.events[0].doc["message"] == "event 57"
    ascending = service.search(store, units=None, query="", window=HOUR, limit=5, offset=5, order="asc")
    assert [e.doc["message"] for e in ascending.events] == ["event 12", "event 15", "event 18", "event 21",
                                                            "event 24"]
    assert service.count(store, units=[2], query="", window=HOUR) == 1
    assert service.count(store, units=[], query="", window=HOUR) == 0  # no unit: nothing, never everything


def test_get_event_outside_the_units_is_not_found(store: DuckDBEventStore) -> None:
    branch = service.search(store, units=[2], query="", window=HOUR).events[0]
    assert service.get_event(store, units=[2], event_id=branch.id).doc["message"] == "branch event"
    with pytest.raises(NotFound) as other:
        service.get_event(store, units=[1], event_id=branch.id)
    with pytest.raises(NotFound) as missing:
        service.get_event(store, units=[1], event_id=10**9)
    assert str(other.value).replace(str(branch.id), "N") == str(missing.value).replace(str(10**9), "N")


def test_iter_events_crosses_pages(store: DuckDBEventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "EXPORT_PAGE", 4)
    every = list(service.iter_events(store, units=None, query="host.name:web*", window=HOUR, max_events=100))
    assert len(every) == 20 and len({e.id for e in every}) == 20
    assert [e.ts for e in every] == sorted((e.ts for e in every), reverse=True)
    capped = list(service.iter_events(store, units=None, query="", window=HOUR, max_events=9, order="asc",
                                      offset=2))
    assert [e.doc["message"] for e in capped[:2]] == ["event 6", "branch event"]
    assert len(capped) == 9


def test_events_stored_during_an_export_do_not_shift_its_pages(store: DuckDBEventStore,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "EXPORT_PAGE", 4)
    exported: list[StoredEvent] = []
    for event in service.iter_events(store, units=None, query="", window=HOUR, max_events=1000):
        exported.append(event)
        if len(exported) == 4:  # newer events arrive after the first page
            store.append([{"@timestamp": (START + timedelta(minutes=59)).isoformat(), "message": "late"}] * 3,
                         unit_id=1, source="web")
    ids = [e.id for e in exported]
    assert len(ids) == len(set(ids)) == 21  # nothing twice, nothing skipped


def test_bad_queries_are_refused_before_anything_runs(store: DuckDBEventStore) -> None:
    with pytest.raises(QuerySyntaxError) as syntax:
        service.search(store, units=None, query="host.name:(web1", window=HOUR)
    assert (syntax.value.line, syntax.value.column) == (1, 16)
    with pytest.raises(BadInput):
        service.search(store, units=None, query="destination.port:https", window=HOUR)
    with pytest.raises(QuerySyntaxError):
        list(service.iter_events(store, units=None, query="a:", window=HOUR, max_events=1))


def test_canonical_query() -> None:
    assert service.canonical("") == "*"
    assert service.canonical("user.name:(root OR admin) -x") == "(user.name:root OR user.name:admin) AND NOT x"


# --- histogram and top values ----------------------------------------------------------------------------------


def test_interval_is_a_round_size() -> None:
    assert service.interval_for(HOUR, 60) == 60
    assert service.interval_for(HOUR, 7) == 600
    assert service.interval_for(service.TimeRange(START, START + timedelta(days=3660)), 10) == 30 * 86400
    assert service.interval_for(service.TimeRange(START, START + timedelta(seconds=5)), 60) == 1


def test_filled_histogram_lists_empty_buckets(store: DuckDBEventStore) -> None:
    window = service.TimeRange(START - timedelta(minutes=30), START + timedelta(minutes=90))
    interval, buckets = service.filled_histogram(store, units=[1], query="", window=window, buckets=4)
    assert interval == 1800
    assert [(b.start - START).total_seconds() / 60 for b in buckets] == [-30, 0, 30, 60]
    assert [b.count for b in buckets] == [0, 10, 10, 0]
    odd = service.TimeRange(START + timedelta(minutes=7), START + timedelta(minutes=37))
    interval, buckets = service.filled_histogram(store, units=None, query="", window=odd, buckets=3)
    assert interval == 600 and buckets[0].start == START  # buckets align to the interval, not to the range
    assert sum(b.count for b in buckets) == service.count(store, units=None, query="", window=odd)


def test_top_values_count_list_items(store: DuckDBEventStore) -> None:
    top = service.top_values(store, units=None, query="", window=HOUR, field="event.category")
    assert [(t.value, t.count) for t in top] == [("network", 20), ("web", 20)]
    hosts = service.top_values(store, units=[2], query="", window=HOUR, field="host.name")
    assert [(t.value, t.count) for t in hosts] == [("b1", 1)]
    with pytest.raises(BadInput):
        service.top_values(store, units=None, query="", window=HOUR, field="host.name'); --")


# --- documents and export ------------------------------------------------------------------------------------


def stored(doc: dict[str, Any], event_id: int = 1) -> StoredEvent:
    return StoredEvent(id=event_id, ts=START, source="src", unit_id=1, doc=doc)


def test_flatten_and_field_summary() -> None:
    doc = {"a": {"b": 1, "c": {"d": "x"}}, "e": [1, 2], "f": {}, "g": None}
    assert service.flatten(doc) == {"a.b": 1, "a.c.d": "x", "e": [1, 2], "f": {}, "g": None}
    summary = service.field_summary([stored({"a": {"b": 1}, "m": "x"}), stored({"m": "y", "g": None})])
    assert [(f.field, f.count) for f in summary] == [("m", 2), ("a.b", 1)]


@pytest.mark.parametrize(("value", "cell"), [
    ("=1+2", "'=1+2"), ("+cmd", "'+cmd"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("\r=x", "'\r=x"), ("plain", "plain"), ("a=b", "a=b"), (None, ""), (True, "true"), (42, "42"), (-1, "-1"),
    ("-2.5", "-2.5"), ("+86", "+86"), ("-1e3", "-1e3"), ("-1+1", "'-1+1"), ("-", "'-"), ("+1 ", "'+1 "),
    ({"k": "v"}, '{"k":"v"}'), (["a", "b"], '["a","b"]'), ("", ""),
])
def test_cells_never_start_a_formula(value: Any, cell: str) -> None:
    assert service.cell_text(value) == cell


def test_csv_chunks_stream_rows_in_chunks() -> None:
    events = [stored({"message": f"m{i}", "host": {"name": "h"}, "event": {"action": "=evil()"}}, i)
              for i in range(7)]
    chunks = list(service.csv_chunks(events, ["@timestamp", "host.name", "event.action", "message", "missing"],
                                     rows_per_chunk=3))
    assert len(chunks) == 3
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert rows[0] == ["@timestamp", "host.name", "event.action", "message", "missing"]
    assert rows[1] == [START.isoformat(), "h", "'=evil()", "m0", ""]
    assert len(rows) == 8
    assert list(service.csv_chunks([], ["a"])) == ["a\r\n"]


def test_export_fields() -> None:
    assert service.export_fields("") == list(service.DEFAULT_EXPORT_FIELDS)
    assert service.export_fields(" host.name , ,message ") == ["host.name", "message"]
    assert service.export_fields(["a.b"]) == ["a.b"]
    for bad in ("a b", "x,=cmd()", ",".join(f"f{i}" for i in range(101))):
        with pytest.raises(BadInput):
            service.export_fields(bad)


def test_ndjson_lines_keep_every_value() -> None:
    big = 2**70
    line = service.ndjson_line(stored({"n": big, "vigil": {"source": "src"}, "t": "中文"}, event_id=9))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert orjson.loads(line.replace(str(big).encode(), b"0"))["vigil"] == {"source": "src", "event_id": 9}
    assert str(big).encode() in line and "中文".encode() in line
    chunks = list(service.ndjson_chunks([stored({"m": i}, i) for i in range(5)], lines_per_chunk=2))
    assert [c.count(b"\n") for c in chunks] == [2, 2, 1]


def test_original_record() -> None:
    assert service.original_record(stored({"event": {"original": "<13>raw"}})) == "<13>raw"
    assert service.original_record(stored({"message": "x"})) is None


def test_summary_is_the_message_else_who_talked_to_whom_else_the_original() -> None:
    def stored(doc: dict[str, Any]) -> StoredEvent:
        return StoredEvent(id=1, ts=datetime(2026, 11, 28, tzinfo=UTC), source="zeek", unit_id=1, doc=doc)

    assert service.summary(stored({"message": "Accepted password for deploy", "source": {"ip": "1.2.3.4"}})) == (
        "Accepted password for deploy")
    conn = {"event": {"dataset": "zeek.conn", "original": "{...}"}, "network": {"transport": "tcp"},
            "source": {"ip": "203.0.113.66", "port": 46622}, "destination": {"ip": "10.10.0.5", "port": 22}}
    assert service.summary(stored(conn)) == "zeek.conn 203.0.113.66:46622 → 10.10.0.5:22 tcp"
    dns = {"event": {"dataset": "zeek.dns"}, "network": {"protocol": "dns"}, "source": {"ip": "fe80::1", "port": 53},
           "dns": {"question": {"name": "evil.example"}}}
    assert service.summary(stored(dns)) == "zeek.dns [fe80::1]:53 → ? dns evil.example"
    assert service.summary(stored({"event": {"original": "raw line"}})) == "raw line"
    assert service.summary(stored({})) == ""
