"""Queries compiled over the real DuckDB event store's fields, on events from the real parsers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from vigil.core.errors import BadInput
from vigil.siem.parsers.access import WebAccessParser
from vigil.siem.parsers.base import ParseContext
from vigil.siem.parsers.linux_auth import LinuxAuthParser
from vigil.siem.parsers.windows import WindowsJsonParser
from vigil.siem.query import compile_query, parse
from vigil.siem.query.store import StoreResolver

from .test_query_fuzz import queries
from .windows_samples import SECURITY_4624

pytest.importorskip("duckdb", reason="duckdb is not installed in this environment (the store adds it)")

from vigil.siem.store.duckdb import DuckDBEventStore

RECEIVED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
AUTH = [
    b"Nov 28 10:00:01 web1 sshd[123]: Failed password for root from 10.0.0.5 port 5555 ssh2",
    b"Nov 28 10:00:05 web1 sshd[124]: Failed password for invalid user admin from 10.0.0.6 port 4242 ssh2",
    b"Nov 28 10:07:09 web1 sshd[125]: Accepted password for deploy from 10.0.0.5 port 5600 ssh2",
]
ACCESS = [
    b'198.51.100.20 - - [28/Nov/2026:03:10:00 +0000] "GET /wp-login.php HTTP/1.1" 404 162 "-" "curl/8.0"',
    b'192.0.2.10 - - [28/Nov/2026:03:11:00 +0000] "GET /index.html HTTP/1.1" 200 5120 "-" "Mozilla/5.0"',
    b'192.0.2.10 - - [28/Nov/2026:03:12:00 +0000] "POST /api/login HTTP/1.1" 500 0 "-" "Mozilla/5.0"',
]


@pytest.fixture(scope="module")
def store() -> Iterator[DuckDBEventStore]:
    opened = DuckDBEventStore(":memory:")
    auth_ctx = ParseContext(source="auth", received_at=RECEIVED)
    opened.append([LinuxAuthParser().parse_one(line, auth_ctx) for line in AUTH], unit_id=1, source="auth")
    web_ctx = ParseContext(source="nginx", received_at=RECEIVED)
    opened.append([WebAccessParser().parse_one(line, web_ctx) for line in ACCESS], unit_id=1, source="nginx")
    windows = WindowsJsonParser().parse_one(orjson.dumps(SECURITY_4624), ParseContext(source="dc01"))
    opened.append([windows], unit_id=1, source="dc01")
    yield opened
    opened.close()


def count(store: DuckDBEventStore, query: str) -> int:
    sql, params = compile_query(parse(query), StoreResolver(), now=RECEIVED)
    return store.count(sql, params)


def messages(store: DuckDBEventStore, query: str) -> list[Any]:
    sql, params = compile_query(parse(query), StoreResolver(), now=RECEIVED)
    return sorted(str(event.doc.get("message")) for event in store.search(sql, params))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", 7),
        ('message:"failed password"', 2),
        ("failed password", 2),
        ("user.name:ROOT", 1),
        ("source.ip:10.0.0.* AND NOT message:accepted", 2),
        ("http.response.status_code:>=400", 2),
        ("http.response.status_code:[200 TO 299]", 1),
        ("url.path:/wp-*", 1),
        ("event.category:authentication", 4),
        ("NOT event.category:authentication", 3),
        ("_exists_:http.response.status_code", 3),
        ("EventID:4624", 1),
        ("Channel:security", 1),
        ("LogonType:>=5", 1),
        ("LogonType:[2 TO 9]", 0),
        ("TargetUserName:BOB AND IpAddress:198.51.100.*", 1),
        ("source.port:>50000", 1),
        ("NOT EventID:4624", 6),
        ("@timestamp:>=2026-11-28T10:00:00Z", 3),
        ("\"x' OR 1=1 --\"", 0),
    ],
)
def test_queries_over_the_store(store: DuckDBEventStore, query: str, expected: int) -> None:
    assert count(store, query) == expected


def test_search_returns_the_matching_events(store: DuckDBEventStore) -> None:
    found = messages(store, "user.name:(root OR admin)")
    assert len(found) == 2
    assert all("Failed password" in message for message in found)


def test_the_store_refuses_a_hostile_field_and_keeps_its_events(store: DuckDBEventStore) -> None:
    with pytest.raises(BadInput):
        StoreResolver().resolve("a;DROP TABLE events")
    assert count(store, "user.name:\"x'); DROP TABLE events; --\"") == 0
    assert count(store, "") == 7


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=queries)
def test_grammar_queries_run_on_the_store(store: DuckDBEventStore, query: str) -> None:
    sql, params = compile_query(parse(query), StoreResolver(), now=RECEIVED)
    assert 0 <= store.count(sql, params) <= 7
