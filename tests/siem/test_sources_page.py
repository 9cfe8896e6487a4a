"""The log-sources page and /api/v1/siem: figures per source and host, silence, settings forms with CSRF
and validation, retention status and runs, the status panel's falling-behind warning."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.api.support import assert_problem, audit_records
from tests.web.support import audit_actions, csrf_of, signed_in, text_of

from vigil.core.config import Settings, load_settings
from vigil.core.db import Database
from vigil.siem.spool import BatchMeta
from vigil.web.app import create_app


def store_of(client: TestClient) -> Any:
    app: Any = client.app
    return app.state.siem.store


def seed(client: TestClient, world: Any) -> None:
    """A busy firewall at headquarters (some records unparsable), an old branch_b source, a silent one."""
    now = datetime.now(UTC)
    fresh = {"@timestamp": now.isoformat(), "host": {"name": "fw01"}, "message": "accepted"}
    broken = {"@timestamp": now.isoformat(), "host": {"name": "fw01"},
              "event": {"kind": "pipeline_error"}, "error": {"message": "no parser recognises this record's format"}}
    store = store_of(client)
    store.append([fresh] * 30 + [broken] * 10, unit_id=world.hq, source="syslog")
    store.append([{"@timestamp": now - timedelta(days=400), "host": {"name": "old-b"}}],
                 unit_id=world.branch_b, source="branch-b")
    api = world.headers("secadmin")
    assert client.post("/api/v1/siem/sources", headers=api, json={
        "name": "http:quiet", "unit_id": world.hq, "expected_interval_minutes": 5}).status_code == 201


def test_api_lists_sources_with_figures_silence_and_scope(client: TestClient, world: Any) -> None:
    seed(client, world)
    listing = client.get("/api/v1/siem/sources", headers=world.headers("analyst"))
    assert listing.status_code == 200
    body = listing.json()
    by_name = {item["name"]: item for item in body["items"]}
    assert set(by_name) == {"syslog", "branch-b", "http:quiet"}
    syslog = by_name["syslog"]
    assert (syslog["events"], syslog["failures_24h"], syslog["configured"]) == (40, 10, False)
    assert syslog["failure_rate_24h"] == 0.25
    assert 40 / 360 - 1e-3 <= syslog["events_per_second"] <= 40 / 300 + 1e-3  # over the last 5 to 6 minutes
    assert syslog["hosts"][0]["host"] == "fw01"
    assert by_name["http:quiet"]["silent"] is True and by_name["syslog"]["silent"] is False
    silent = client.get("/api/v1/siem/sources", headers=world.headers("analyst"), params={"silent": "true"}).json()
    assert [item["name"] for item in silent["items"]] == ["http:quiet"] and silent["total"] == 1
    # A branch security administrator sees only the branch's events and sources.
    branch = client.get("/api/v1/siem/sources", headers=world.headers("secadmin_a")).json()
    assert branch["items"] == []
    assert_problem(client.get("/api/v1/siem/sources", headers=world.headers("viewer")), 403)


def test_api_manages_sources_with_validation_warnings_and_audit(client: TestClient, world: Any) -> None:
    h = world.headers("secadmin")
    created = client.post("/api/v1/siem/sources", headers=h, json={
        "name": "fw-shanghai", "unit_id": world.branch_a, "format": "syslog", "timezone": "Asia/Shanghai",
        "retention_days": 90, "keep_original": False})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["warnings"] == ["retention of 90 days is below the 180 days the Cybersecurity Law (Art. 21) "
                                "requires for network logs"]
    source_id = body["id"]
    # The pipeline's providers see it as soon as the change is committed.
    app: Any = client.app
    config = app.state.siem.source_configs("fw-shanghai")
    assert (config.format, config.timezone.key, config.keep_original) == ("syslog", "Asia/Shanghai", False)
    assert app.state.siem.unit_for("fw-shanghai") == world.branch_a

    bad = assert_problem(client.post("/api/v1/siem/sources", headers=h, json={
        "name": "x", "format": "klingon", "timezone": "Nowhere/Land", "retention_days": 0}), 422)
    assert {e["field"] for e in bad["errors"]} >= {"format", "timezone", "retention_days"}
    assert_problem(client.post("/api/v1/siem/sources", headers=h, json={"name": "fw-shanghai"}), 409)

    patched = client.patch(f"/api/v1/siem/sources/{source_id}", headers=h, json={"retention_days": 365,
                                                                                 "timezone": None})
    assert patched.status_code == 200 and patched.json()["warnings"] == []
    assert patched.json()["timezone"] is None
    assert app.state.siem.source_configs("fw-shanghai").timezone.key == app.state.settings.log_timezone
    assert client.get(f"/api/v1/siem/sources/{source_id}", headers=world.headers("analyst")).json()[
        "retention_days"] == 365
    assert_problem(client.patch(f"/api/v1/siem/sources/{source_id}", headers=world.headers("analyst"),
                                json={"retention_days": 1}), 403)
    assert client.delete(f"/api/v1/siem/sources/{source_id}", headers=h).status_code == 200
    assert_problem(client.get(f"/api/v1/siem/sources/{source_id}", headers=h), 404)
    actions = [r.action for r in audit_records(world.database) if r.action.startswith("siem.source.")]
    assert actions == ["siem.source.create", "siem.source.update", "siem.source.delete"]


def test_retention_api_reports_policies_and_runs(client: TestClient, world: Any) -> None:
    seed(client, world)
    h = world.headers("secadmin")
    before = client.get("/api/v1/siem/retention", headers=world.headers("analyst")).json()
    policies = {p["source"]: p for p in before["policies"]}
    assert policies["branch-b"]["due"] is True and policies["branch-b"]["days"] == 180
    assert before["default_days"] == 180 and before["legal_minimum_days"] == 180
    assert_problem(client.post("/api/v1/siem/retention/run", headers=world.headers("secadmin_a")), 403)
    ran = client.post("/api/v1/siem/retention/run", headers=h)
    assert ran.status_code == 200, ran.text
    assert ran.json()["summary"]["deleted"] == 1 and ran.json()["summary"]["actor"] == "secadmin"
    after = {p["source"]: p for p in client.get("/api/v1/siem/retention", headers=h).json()["policies"]}
    assert after["syslog"]["met"] and not after.get("branch-b", {"due": False})["due"]
    assert [r.actor for r in audit_records(world.database, action="siem.retention.run")] == ["secadmin"]


def test_page_shows_figures_silence_retention_and_status(client: TestClient, world: Any) -> None:
    seed(client, world)
    app: Any = client.app
    page = signed_in(app, "analyst").get("/siem/sources")
    assert page.status_code == 200
    text = text_of(page)
    assert "syslog" in text and "fw01" in text and "10 (25.0%)" in text
    assert "Silent sources (no event within their expected interval): 1" in text
    assert "Pipeline status" in text and "Retention" in text and "pruning due" in text
    assert "Configure a source" not in text and "Run retention now" not in text  # an analyst only reads
    assert 'data-source="http:quiet" class="silent"' in page.text


def test_page_form_creates_validates_and_warns(client: TestClient, world: Any) -> None:
    app: Any = client.app
    browser = signed_in(app, "secadmin")
    page = browser.get("/siem/sources")
    assert "Configure a source" in text_of(page) and "Run retention now" in text_of(page)
    token = csrf_of(page)
    refused = browser.post("/siem/sources", data={
        "csrf_token": token, "name": "fw01", "timezone": "Mars/Base", "format": "syslog", "retention_days": "0",
        "keep_original": "on"}, follow_redirects=False)
    assert refused.status_code == 422
    assert "Check the marked fields." in text_of(refused)
    assert "<small class=\"error\">unknown time zone &#39;Mars/Base&#39;; use an IANA name" in refused.text
    assert "Enter a number no smaller than 1." in text_of(refused)
    no_token = browser.post("/siem/sources", data={"name": "fw01"}, follow_redirects=False)
    assert no_token.status_code == 403
    saved = browser.post("/siem/sources", data={
        "csrf_token": token, "name": "fw01", "unit_id": str(world.branch_a), "timezone": "Asia/Tokyo",
        "format": "syslog", "retention_days": "30", "expected_interval_minutes": "15"}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/siem/sources?done=short"
    shown = browser.get(saved.headers["location"])
    assert "shorter than the 180 days" in text_of(shown) and "Asia/Tokyo" in text_of(shown)
    source_id = client.get("/api/v1/siem/sources", headers=world.headers("secadmin")).json()["items"][0]["id"]
    app.state.siem.source_configs("fw01")  # cached by the pipeline's provider...
    edited = browser.post(f"/siem/sources/{source_id}", data={
        "csrf_token": token, "unit_id": str(world.branch_a), "timezone": "", "format": "", "retention_days": "",
        "expected_interval_minutes": "", "description": "edge firewall"}, follow_redirects=False)
    assert edited.status_code == 303 and edited.headers["location"] == "/siem/sources?done=saved"
    config = app.state.siem.source_configs("fw01")  # ...and reloaded after the change
    assert (config.format, config.keep_original, config.timezone.key) == (None, False, app.state.settings.log_timezone)
    removed = browser.post(f"/siem/sources/{source_id}/delete", data={"csrf_token": token}, follow_redirects=False)
    assert removed.status_code == 303
    assert [r.action for r in audit_actions(world.database, actor="secadmin")
            if r.action.startswith("siem.source.")] == ["siem.source.create", "siem.source.update",
                                                        "siem.source.delete"]
    # A branch administrator reaches only the branch's sources: another branch's is "not found".
    other = client.post("/api/v1/siem/sources", headers=world.headers("secadmin"),
                        json={"name": "beijing-fw", "unit_id": world.branch_b}).json()["id"]
    branch = signed_in(app, "secadmin_a")
    branch_token = csrf_of(branch.get("/siem/sources"))
    assert "beijing-fw" not in text_of(branch.get("/siem/sources"))
    assert branch.post(f"/siem/sources/{other}/delete", data={"csrf_token": branch_token}).status_code == 404


@pytest.fixture
def small_spool_client(tmp_path: Any, database_url: str, database: Database, world: Any) -> Iterator[TestClient]:
    settings: Settings = load_settings(data_dir=tmp_path / "small", database_url=database_url,
                                       spool_quota_bytes=1024 * 1024, spool_segment_bytes=256 * 1024)
    app: FastAPI = create_app(settings, database)
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def test_status_says_when_ingestion_falls_behind(small_spool_client: TestClient, world: Any) -> None:
    client = small_spool_client
    app: Any = client.app
    h = world.headers("analyst")
    calm = client.get("/api/v1/siem/status", headers=h).json()
    assert calm["falling_behind"] is False and calm["spool"]["quota_bytes"] == 1024 * 1024
    assert calm["pipeline"]["state"] == "idle" and calm["warnings"] == []  # nothing received yet
    # Accepted input the pipeline has not stored: written to the spool behind the (idle) pipeline's back.
    record = b"x" * 4000
    for _ in range(220):
        app.state.siem.spool.append([record], BatchMeta(source="flood", unit_id=world.hq))
    behind = client.get("/api/v1/siem/status", headers=h).json()
    assert behind["falling_behind"] is True and behind["spool"]["used_share"] > 0.8
    assert any("quota" in warning for warning in behind["warnings"])
    assert behind["pipeline"]["state"] == "stopped" and behind["pipeline"]["pending_bytes"] > 800_000
    page = text_of(signed_in(app, "analyst").get("/siem/sources"))
    assert "Ingestion is falling behind" in page and "not running while accepted input waits" in page
    # Once the pipeline runs, it drains the spool and the warning goes.
    app.state.siem.pipeline.start()
    assert app.state.siem.drain()
    drained = client.get("/api/v1/siem/status", headers=h).json()
    assert drained["pipeline"]["state"] == "running" and drained["falling_behind"] is False
    assert drained["pipeline"]["pending_bytes"] == 0 and drained["pipeline"]["events"] == 220
    assert_problem(client.get("/api/v1/siem/status", headers=world.headers("viewer")), 403)


VALUES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=30),
                   st.sampled_from(["\x00", "UTC", "syslog", "Asia/Shanghai", "9" * 30, "../etc/passwd", "x" * 300]))
FIELDS = ["name", "unit_id", "description", "format", "timezone", "keep_original", "retention_days",
          "expected_interval_minutes"]


def test_random_bodies_get_a_clear_answer_never_a_server_error(client: TestClient, world: Any) -> None:
    h = world.headers("secadmin")
    source_id = client.post("/api/v1/siem/sources", headers=h, json={"name": "fuzzed"}).json()["id"]

    @settings(max_examples=80, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(body=st.fixed_dictionaries({}, optional={name: VALUES for name in FIELDS}), patch=st.booleans())
    def check(body: dict[str, Any], patch: bool) -> None:
        if patch:
            body.pop("name", None)
            answer = client.patch(f"/api/v1/siem/sources/{source_id}", headers=h, json=body)
        else:
            answer = client.post("/api/v1/siem/sources", headers=h, json=body)
        assert answer.status_code in (200, 201, 404, 409, 422), (body, answer.status_code, answer.text[:300])
        if answer.status_code >= 400:
            assert answer.headers["content-type"].startswith("application/problem+json")

    check()


def test_an_observed_source_is_configured_from_its_row(client: TestClient, world: Any) -> None:
    seed(client, world)
    app: Any = client.app
    browser = signed_in(app, "secadmin")
    token = csrf_of(browser.get("/siem/sources"))
    refused = browser.post("/siem/sources", data={
        "csrf_token": token, "name": "syslog", "origin": "observed", "unit_id": str(world.hq),
        "timezone": "Atlantis/Capital"}, follow_redirects=False)
    assert refused.status_code == 422
    row_form = refused.text.split('data-source="syslog"')[1].split('id="retention"')[0]  # the last row
    assert "<details class=\"edit\" open>" in row_form and "Atlantis/Capital" in row_form
    assert refused.text.count("Check the marked fields.") == 1  # shown at the row, not in the form below
    saved = browser.post("/siem/sources", data={
        "csrf_token": token, "name": "syslog", "origin": "observed", "unit_id": str(world.hq), "timezone": "UTC",
        "keep_original": "on"}, follow_redirects=False)
    assert saved.status_code == 303
    assert app.state.siem.source_configs("syslog").timezone.key == "UTC"
    listed = client.get("/api/v1/siem/sources", headers=world.headers("analyst")).json()["items"]
    assert next(item for item in listed if item["name"] == "syslog")["configured"] is True
