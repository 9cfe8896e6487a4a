"""A small table of realistic events in an in-memory DuckDB, and a resolver over it, shared by the query tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from vigil.core.errors import BadInput
from vigil.siem.query import FIELD_NAME, FieldRef, compile_query, parse

duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed in this environment (the store adds it)")

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

COLUMNS: dict[str, tuple[str, Any]] = {
    "@timestamp": ('"@timestamp"', "timestamp"),
    "message": ("message", "text"),
    "event.original": ("event_original", "text"),
    "event.category": ("event_category", "list"),
    "event.code": ("event_code", "text"),
    "event.outcome": ("event_outcome", "text"),
    "user.name": ("user_name", "text"),
    "source.ip": ("source_ip", "text"),
    "host.name": ("host_name", "text"),
    "url.path": ("url_path", "text"),
    "http.response.status_code": ("status", "number"),
    "http.response.bytes": ("bytes", "number"),
}

# id, time, message, original, category, code, outcome, user, source ip, host, url path, status, bytes, extra
EVENTS: list[tuple[Any, ...]] = [
    (1, "2026-11-28T01:00:00Z", "Failed password for invalid user admin from 203.0.113.7 port 52211 ssh2",
     "<38>Nov 28 09:00:00 web01 sshd[811]: Failed password for invalid user admin from 203.0.113.7",
     ["authentication"], None, "failure", "admin", "203.0.113.7", "web01", None, None, None, {}),
    (2, "2026-11-28T01:00:05Z", "Failed password for root from 203.0.113.7 port 52212 ssh2",
     None, ["authentication"], None, "failure", "root", "203.0.113.7", "web01", None, None, None, {}),
    (3, "2026-11-28T01:02:00Z", "Accepted password for administrator from 203.0.113.7 port 52213 ssh2",
     None, ["authentication", "session"], None, "success", "administrator", "203.0.113.7", "web01",
     None, None, None, {}),
    (4, "2026-11-28T03:10:00Z", "GET /wp-login.php HTTP/1.1", None, ["web"], None, "failure", None,
     "198.51.100.20", "web01", "/wp-login.php", 404, 162, {}),
    (5, "2026-11-28T03:11:00Z", "GET /index.html HTTP/1.1", None, ["web"], None, "success", None,
     "192.0.2.10", "web01", "/index.html", 200, 5120, {}),
    (6, "2026-11-28T03:12:00Z", "POST /api/login HTTP/1.1", None, ["web"], None, "failure", None,
     "192.0.2.10", "web01", "/api/login", 500, 0, {}),
    (7, "2026-11-28T08:00:00Z", "An account failed to log on.", None, ["authentication"], "4625", "failure",
     "Administrator", "10.1.2.3", "DC01", None, None, None,
     {"winlog.event_data.LogonType": "10", "Channel": "Security"}),
    (8, "2026-11-28T08:05:00Z", "An account was successfully logged on.", None, ["authentication"], "4624",
     "success", "svc_backup", "10.1.2.4", "DC01", None, None, None,
     {"winlog.event_data.LogonType": "3", "Channel": "Security"}),
    (9, "2026-11-27T23:59:00Z", r"Process C:\Windows\System32\cmd.exe started by o'brien 100% _x", None,
     ["process"], "1", "success", "o'brien%_x", None, "WS7", None, None, None, {}),
    (10, "2026-11-26T10:00:00Z", "x' OR 1=1 -- is a note", None, None, None, None, None, None, "WS7",
     None, None, None, {}),
]

ALL_IDS = {row[0] for row in EVENTS}


class TableResolver:
    """Typed columns for the common fields; any other valid name is read from the ``extra`` JSON column."""

    def resolve(self, field: str) -> FieldRef:
        if not FIELD_NAME.fullmatch(field):
            raise BadInput(f"unknown field {field!r}")
        if field in COLUMNS:
            column, kind = COLUMNS[field]
            return FieldRef(column, kind, fulltext=field == "message")
        return FieldRef("json_extract_string(extra, ?)", "json", params=(f'$."{field}"',))


def make_table() -> Any:
    connection = duckdb.connect(":memory:")
    connection.execute(
        'CREATE TABLE events (id INTEGER, "@timestamp" TIMESTAMPTZ, message VARCHAR, event_original VARCHAR, '
        "event_category VARCHAR[], event_code VARCHAR, event_outcome VARCHAR, user_name VARCHAR, "
        "source_ip VARCHAR, host_name VARCHAR, url_path VARCHAR, status INTEGER, bytes BIGINT, extra JSON)"
    )
    for row in EVENTS:
        connection.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [*row[:-1], json.dumps(row[-1])],
        )
    return connection


def ids(connection: Any, query: str) -> set[int]:
    sql, params = compile_query(parse(query), TableResolver(), now=NOW)
    rows = connection.execute(f"SELECT id FROM events WHERE {sql}", params).fetchall()
    return {row[0] for row in rows}


def test_the_table_holds_every_event_and_the_empty_query_returns_them() -> None:
    connection = make_table()
    assert ids(connection, "") == ALL_IDS
    assert ids(connection, "*") == ALL_IDS
    assert ids(connection, "*:*") == ALL_IDS
