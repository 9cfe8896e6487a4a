"""The DuckDB event store with events from the real parsers: typed and JSON-only fields, unit scoping,
aggregations, pruning, exactly-once appends with spool positions, injection attempts, concurrent readers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from vigil.core.errors import BadInput
from vigil.siem.fields import COLUMNS, FieldResolver, Kind, column_for
from vigil.siem.parsers.base import ParseContext
from vigil.siem.parsers.linux_auth import LinuxAuthParser
from vigil.siem.parsers.syslog import SyslogParser
from vigil.siem.parsers.windows import WindowsJsonParser
from vigil.siem.store.base import EventStore
from vigil.siem.store.duckdb import DuckDBEventStore, StoreClosed

from .windows_samples import SECURITY_4624, SYSMON_1

RECEIVED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
AUTH_CTX = ParseContext(source="auth", received_at=RECEIVED)
AUTH_LINES = [
    b"Nov 28 10:00:01 web1 sshd[123]: Failed password for root from 10.0.0.5 port 5555 ssh2",
    b"Nov 28 10:00:03 web1 sshd[123]: Failed password for root from 10.0.0.5 port 5556 ssh2",
    b"Nov 28 10:00:05 web1 sshd[124]: Failed password for invalid user admin from 10.0.0.6 port 4242 ssh2",
    b"Nov 28 10:07:09 web1 sshd[125]: Accepted password for deploy from 10.0.0.5 port 5600 ssh2",
]
SYSLOG_LINE = b"<34>1 2026-11-28T09:30:00Z fw01 kernel - - - link eth0 down"
resolver = FieldResolver()


def auth_events() -> list[dict[str, Any]]:
    parser = LinuxAuthParser()
    return [parser.parse_one(line, AUTH_CTX) for line in AUTH_LINES]


def windows_events() -> list[dict[str, Any]]:
    parser = WindowsJsonParser()
    ctx = ParseContext(source="dc01")
    return [parser.parse_one(orjson.dumps(document), ctx) for document in (SYSMON_1, SECURITY_4624)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBEventStore]:
    opened = DuckDBEventStore(tmp_path / "events.duckdb")
    yield opened
    opened.close()


@pytest.fixture
def loaded(store: DuckDBEventStore) -> DuckDBEventStore:
    store.append(auth_events(), unit_id=2, source="auth")
    store.append([SyslogParser().parse_one(SYSLOG_LINE, ParseContext(source="fw"))], unit_id=3, source="fw")
    store.append(windows_events(), unit_id=3, source="dc01")
    return store


def where(field: str) -> str:
    return f"{resolver.resolve(field)} = ?"


def test_the_store_satisfies_the_interface(store: DuckDBEventStore) -> None:
    typed: EventStore = store
    assert typed.count() == 0


def test_typed_column_search_returns_the_parsed_events(loaded: DuckDBEventStore) -> None:
    assert loaded.count() == 7
    failed = loaded.search(where("event.outcome"), ["failure"], order="asc")
    assert [e.doc["source"]["port"] for e in failed] == [5555, 5556, 4242]
    assert {e.source for e in failed} == {"auth"} and {e.unit_id for e in failed} == {2}
    first = failed[0]
    assert first.ts == datetime(2026, 11, 28, 10, 0, 1, tzinfo=UTC)
    assert first.doc["@timestamp"] == "2026-11-28T10:00:01+00:00"
    assert first.doc["event"]["original"] == AUTH_LINES[0].decode()
    assert first.doc["vigil"] == {"source": "auth", "unit_id": 2}
    assert "ingested" in first.doc["event"]
    assert loaded.count(where("source.ip"), ["10.0.0.5"]) == 3
    assert loaded.count(f"{resolver.resolve('source.port')} > ?", [5000], unit_ids=[2]) == 3
    assert loaded.count(where("EventID"), [4624]) == 1
    assert loaded.count(f"list_contains({resolver.resolve('event.category')}, ?)", ["authentication"]) >= 4


def test_json_only_fields_are_searchable_and_case_kept_apart(loaded: DuckDBEventStore) -> None:
    # EventData fields of Windows events have no column: they are read from the document.
    assert column_for("TargetUserName") is None
    found = loaded.search(where("TargetUserName"), ["bob"])
    assert [e.doc["EventID"] for e in found] == [4624]
    assert loaded.count(where("LogonType"), ["10"]) == 1
    # Native `User` (Sysmon) and ECS `user.name` are different fields.
    assert loaded.count(where("User"), ["CORP\\alice"]) == 1
    assert loaded.count(where("user"), ["CORP\\alice"]) == 0
    assert loaded.count(where("system.auth.ssh.method"), ["password"]) == 4


def test_column_names_are_distinct_ignoring_case() -> None:
    names = [column.name.lower() for column in COLUMNS]
    assert len(names) == len(set(names))
    assert "doc" not in names and "id" not in names


def test_resolver_kinds() -> None:
    assert resolver.kind("@timestamp") is Kind.TIMESTAMP
    assert resolver.kind("source.port") is Kind.NUMBER
    assert resolver.kind("event.category") is Kind.LIST
    assert resolver.kind("message") is Kind.TEXT
    assert resolver.kind("winlog.event_data.SubjectUserName") is Kind.JSON


@pytest.mark.parametrize("name", [
    "a'b", "x) OR 1=1 --", "user.name; DROP TABLE events", 'a"b', "", "a..b", ".a", "a b", "$.x", "a\\b",
    "ünïcode", "a\nb",
])
def test_field_names_with_sql_are_refused(loaded: DuckDBEventStore, name: str) -> None:
    with pytest.raises(BadInput):
        resolver.resolve(name)
    with pytest.raises(BadInput):
        loaded.top_values(name)
    assert loaded.count() == 7


def test_values_with_quotes_are_data(store: DuckDBEventStore) -> None:
    nasty = "x'; DROP TABLE events; --"
    store.append([{"@timestamp": RECEIVED, "user": {"name": nasty}, "message": 'say "hi" \\ \'there\''},
                  {"@timestamp": RECEIVED, "Odd": {"Key'; DROP": nasty}}], unit_id=1, source="t")
    assert store.count(where("user.name"), [nasty]) == 1
    assert store.count(where("message"), ['say "hi" \\ \'there\'']) == 1
    assert store.search()[0].doc["Odd"] == {"Key'; DROP": nasty}
    assert store.count() == 2


def test_top_values_and_histogram(loaded: DuckDBEventStore) -> None:
    top = loaded.top_values("source.ip", unit_ids=[2])
    assert [(t.value, t.count) for t in top] == [("10.0.0.5", 3), ("10.0.0.6", 1)]
    users = loaded.top_values("user.name", where("event.outcome"), ["failure"], limit=1)
    assert [(t.value, t.count) for t in users] == [("root", 2)]
    categories = {t.value: t.count for t in loaded.top_values("event.category", unit_ids=[2])}
    assert categories["authentication"] == 4
    assert [(t.value, t.count) for t in loaded.top_values("TargetUserName")] == [("bob", 1)]
    buckets = loaded.histogram(interval_seconds=300, unit_ids=[2])
    assert [(b.start, b.count) for b in buckets] == [
        (datetime(2026, 11, 28, 10, 0, tzinfo=UTC), 3),
        (datetime(2026, 11, 28, 10, 5, tzinfo=UTC), 1),
    ]
    day = loaded.histogram(interval_seconds=86400, start=datetime(2026, 11, 28, tzinfo=UTC),
                           end=datetime(2026, 11, 29, tzinfo=UTC))
    assert [(b.start, b.count) for b in day] == [(datetime(2026, 11, 28, tzinfo=UTC), 5)]


def test_unit_scoping(loaded: DuckDBEventStore) -> None:
    assert loaded.count(unit_ids=[3]) == 3
    assert loaded.count(where("source.ip"), ["10.0.0.5"], unit_ids=[3]) == 0
    assert loaded.search(unit_ids=[3], limit=100) and all(e.unit_id == 3 for e in loaded.search(unit_ids=[3]))
    assert [t.value for t in loaded.top_values("source.ip", unit_ids=[3])] == ["198.51.100.23"]
    assert loaded.histogram(interval_seconds=60, unit_ids=[3, 4]) != []
    assert loaded.count(unit_ids=[]) == 0
    assert loaded.count(unit_ids=[2, 3]) == 7


def test_time_range_order_and_paging(loaded: DuckDBEventStore) -> None:
    start, end = datetime(2026, 11, 28, 10, tzinfo=UTC), datetime(2026, 11, 28, 10, 5, tzinfo=UTC)
    assert loaded.count(start=start, end=end) == 3
    newest = loaded.search(unit_ids=[2], limit=2)
    assert [e.ts.minute for e in newest] == [7, 0]
    page = loaded.search(unit_ids=[2], limit=2, offset=2, order="asc")
    assert [e.doc["source"]["port"] for e in page] == [4242, 5600]
    with pytest.raises(BadInput):
        loaded.search(order="sideways")  # type: ignore[arg-type]


def test_prune_by_age_and_oldest(store: DuckDBEventStore) -> None:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    old = [{"@timestamp": now - timedelta(days=200 + n), "message": f"old {n}"} for n in range(3)]
    recent = [{"@timestamp": now - timedelta(days=n), "message": f"recent {n}"} for n in range(4)]
    store.append(old + recent[:2], unit_id=1, source="a")
    store.append(recent[2:], unit_id=1, source="b")
    assert store.oldest() == now - timedelta(days=202)
    assert store.oldest("b") == now - timedelta(days=3)
    assert store.prune(now - timedelta(days=180), source="b") == 0
    assert store.prune(now - timedelta(days=180)) == 3
    assert store.count() == 4
    assert store.oldest() == now - timedelta(days=3)
    assert store.oldest("a") == now - timedelta(days=1)
    assert store.prune(now, source="a") == 1
    assert store.count(where("vigil.source"), ["a"]) == 1
    assert store.oldest("nothing") is None


def test_same_spool_position_is_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    store = DuckDBEventStore(path)
    assert store.last_position() is None
    first = store.append(auth_events()[:2], unit_id=2, source="auth", spool_position=(1, 100))
    again = store.append(auth_events()[:2], unit_id=2, source="auth", spool_position=(1, 100))
    assert (first.stored, first.skipped, again.stored, again.skipped) == (2, False, 0, True)
    assert store.count() == 2
    store.close()
    # After a restart (the process died between two batches) the position is that of the last commit.
    reopened = DuckDBEventStore(path)
    try:
        assert reopened.last_position() == (1, 100)
        assert reopened.append(auth_events()[:2], unit_id=2, source="auth", spool_position=(1, 100)).skipped
        assert reopened.append(auth_events()[:1], unit_id=2, source="auth", spool_position=(0, 900)).skipped
        assert not reopened.append(auth_events()[2:], unit_id=2, source="auth", spool_position=(2, 0)).skipped
        assert reopened.last_position() == (2, 0)
        assert reopened.count() == 4
        assert reopened.last_position("other") is None
    finally:
        reopened.close()


def test_a_failing_batch_leaves_nothing_behind(store: DuckDBEventStore) -> None:
    store.append(auth_events()[:1], unit_id=2, source="auth", spool_position=(1, 10))
    # A batch the database refuses (no source name: NOT NULL) is rolled back whole, position included.
    with pytest.raises(duckdb.Error):
        store.append(auth_events()[1:], unit_id=2, source=None, spool_position=(1, 20))  # type: ignore[arg-type]
    assert store.count() == 1 and store.last_position() == (1, 10)
    assert store.append(auth_events()[1:], unit_id=2, source="auth", spool_position=(1, 20)).stored == 3
    with pytest.raises(BadInput):
        store.prune(datetime(2026, 1, 1))  # a time without a zone is ambiguous


def test_closed_store_refuses(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "e.duckdb")
    store.close()
    store.close()
    with pytest.raises(StoreClosed):
        store.count()
    with pytest.raises(StoreClosed):
        store.append([], unit_id=1, source="x")


def test_concurrent_readers_while_one_writer_appends(store: DuckDBEventStore) -> None:
    batch, batches = 500, 20
    errors: list[BaseException] = []
    seen: list[int] = []
    done = threading.Event()

    def write() -> None:
        try:
            for n in range(batches):
                events = [{"@timestamp": RECEIVED + timedelta(seconds=n), "message": f"b{n} e{i}",
                           "source": {"ip": f"10.1.{n}.{i % 250}"}} for i in range(batch)]
                store.append(events, unit_id=1 + n % 2, source="w", spool_position=(n, 0))
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def read() -> None:
        try:
            while True:
                finished = done.is_set()
                total = store.count()
                # Whole batches only: a reader never sees half a transaction.
                assert total % batch == 0
                assert store.count(unit_ids=[1]) + store.count(unit_ids=[2]) >= total
                store.search(limit=10)
                store.top_values("source.ip", limit=3)
                seen.append(total)
                if finished:
                    break
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count() == batch * batches
    assert seen and seen[-1] == batch * batches
    assert store.last_position() == (batches - 1, 0)


def test_values_that_do_not_fit_their_column_stay_in_the_document(store: DuckDBEventStore) -> None:
    store.append([
        {"@timestamp": "2026-11-28T08:00:00+08:00", "source": {"port": "ssh"}, "EventID": "4625",
         "event": {"category": "authentication"}, "process": {"pid": 99999999999}},
        {"message": "no time at all", "EventID": 2**40, "event": {"ingested": "2026-11-28T01:02:03Z"}},
    ], unit_id=1, source="odd")
    assert store.count(where("EventID"), [4625]) == 1
    assert store.count(f"{resolver.resolve('source.port')} IS NULL") == 2
    assert store.count(f"{resolver.resolve('EventID')} IS NULL") == 1
    assert store.count(where("process.pid"), [99999999999]) == 1
    assert store.count(f"list_contains({resolver.resolve('event.category')}, ?)", ["authentication"]) == 1
    odd = store.search(f"{resolver.resolve('source.port')} IS NULL AND {resolver.resolve('message')} IS NULL")[0]
    assert odd.ts == datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
    assert odd.doc["source"]["port"] == "ssh"
    timeless = store.search(where("message"), ["no time at all"])[0]
    assert timeless.ts == datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)
    assert timeless.doc["@timestamp"] == "2026-11-28T01:02:03+00:00" and timeless.doc["EventID"] == 2**40


def test_documents_given_as_json_text(store: DuckDBEventStore) -> None:
    lines = [orjson.dumps(event) for event in auth_events()]
    lines.append(b'{"message": "late", "event": {"ingested": "2026-11-28T11:00:00Z"}, "vigil": {"note": 1}}')
    result = store.append_json(lines, unit_id=2, source="auth", spool_position=(4, 40))
    assert (result.stored, result.skipped) == (5, False)
    assert store.append_json(lines, unit_id=2, source="auth", spool_position=(4, 40)).skipped
    assert store.count(where("source.ip"), ["10.0.0.5"]) == 3
    assert [(t.value, t.count) for t in store.top_values("user.name", limit=1)] == [("root", 2)]
    first = store.search(order="asc")[0]
    assert first.ts == datetime(2026, 11, 28, 10, 0, 1, tzinfo=UTC)
    assert first.doc["vigil"] == {"source": "auth", "unit_id": 2}
    assert datetime.fromisoformat(first.doc["@timestamp"]) == first.ts
    assert "ingested" in first.doc["event"] and first.doc["event"]["original"] == AUTH_LINES[0].decode()
    late = store.search(where("message"), ["late"])[0]
    assert late.ts == datetime(2026, 11, 28, 11, 0, tzinfo=UTC)  # no @timestamp: the ingest time
    assert late.doc["vigil"] == {"note": 1, "source": "auth", "unit_id": 2}


@pytest.mark.parametrize("junk", [b"not json", b"[1, 2]", b'"text"', b"{"])
def test_a_json_batch_with_junk_is_refused_whole(store: DuckDBEventStore, junk: bytes) -> None:
    lines = [orjson.dumps(event) for event in auth_events()]
    with pytest.raises(BadInput):
        store.append_json([*lines, junk], unit_id=2, source="auth", spool_position=(1, 1))
    assert store.count() == 0 and store.last_position() is None
    assert store.append_json(lines, unit_id=2, source="auth", spool_position=(1, 1)).stored == 4


def test_huge_integers_are_kept(store: DuckDBEventStore) -> None:
    store.append([{"@timestamp": RECEIVED, "suricata": {"flow_id": 2**70}, "EventRecordID": 2**70}],
                 unit_id=1, source="t")
    stored = store.search()[0]
    assert stored.doc["suricata"]["flow_id"] == 2**70 and stored.ts == RECEIVED
    assert store.count(f"{resolver.resolve('EventRecordID')} IS NULL") == 1


def test_documents_holding_listed_hash_or_e_mail_tokens(store: DuckDBEventStore) -> None:
    """Whole tokens only (not inside a longer hex run or another address), any case, a trailing dot dropped,
    within the window, oldest first, in chunks."""
    md5, other = "42893adbc36605ec79b5bd610759947e", "b4e581f173f782a2f1da5d29c95946ee500eb2d0"
    docs = [
        (1, {"Hashes": f"MD5={md5.upper()},SHA1={other}"}),
        (2, {"process": {"hash": {"md5": md5 + "aa"}}}),
        (3, {"email": {"from": {"address": "Boss@CEO-Fraud.example."}}}),
        (4, {"email": {"from": {"address": "not.boss@ceo-fraud.example.org"}}}),
        (5, {"message": f"seen {md5}"}),
        (40, {"Hashes": f"MD5={md5}"}),
        *((hours, {"file": {"hash": {"md5": md5}}}) for hours in (17, 6, 12, 8, 23, 7, 15, 9, 20, 11)),
    ]
    for hours, doc in docs:
        store.append([{"@timestamp": (RECEIVED - timedelta(hours=hours)).isoformat(), "n": hours, **doc}],
                      unit_id=2, source="edr")
    chunks = list(store.documents_with_tokens({"hash": [md5], "email": ["boss@ceo-fraud.example"]},
                                              start=RECEIVED - timedelta(days=1), end=RECEIVED, chunk=2))
    assert [len(chunk) for chunk in chunks] == [2, 2, 2, 2, 2, 2, 1]
    rows = [row for chunk in chunks for row in chunk]
    assert [orjson.loads(row[4])["n"] for row in rows] == [23, 20, 17, 15, 12, 11, 9, 8, 7, 6, 5, 3, 1]  # oldest first
    assert {(row[1], row[2]) for row in rows} == {(2, "edr")}
    assert list(store.documents_with_tokens({"hash": [], "email": []}, start=RECEIVED - timedelta(days=1),
                                            end=RECEIVED)) == []
