"""`vigil sources list|set|remove` and `vigil retention status|run` against a real records store and a
real DuckDB event store (and one held by another process, as a running server holds it)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.api.support import audit_records
from typer.testing import CliRunner, Result

from vigil.cli.main import app
from vigil.core.config import load_settings
from vigil.siem.store.duckdb import DuckDBEventStore


class Vigil:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args), env=self.env)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, f"vigil {' '.join(args)} -> {result.exit_code}\n{result.output}"
        return result


@pytest.fixture
def vigil(world: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vigil:
    monkeypatch.chdir(tmp_path)
    return Vigil({"VIGIL_DATABASE_URL": database_url, "VIGIL_DATA_DIR": str(tmp_path / "var")})


def events_path(tmp_path: Path) -> Path:
    return load_settings(data_dir=tmp_path / "var", database_url="sqlite://").events_path


def seed(tmp_path: Path, world: Any) -> None:
    now = datetime.now(UTC)
    store = DuckDBEventStore(events_path(tmp_path))
    try:
        store.append([{"@timestamp": now - timedelta(days=age), "host": {"name": "fw01"}} for age in (1, 40, 200)],
                     unit_id=world.hq, source="firewall")
        store.append([{"@timestamp": now - timedelta(days=age)} for age in (1, 300)], unit_id=world.branch_a,
                     source="app")
    finally:
        store.close()


def test_sources_set_creates_updates_and_validates(vigil: Vigil, world: Any) -> None:
    created = vigil("sources", "set", "firewall", "--timezone", "Asia/Tokyo", "--format", "syslog",
                    "--retention-days", "30", "--expected-interval", "10", "--no-keep-original",
                    "--unit", "Shanghai branch")
    assert created.exit_code == 0, created.output
    assert "log source firewall configured (retention 30 days)" in created.output
    assert "below the 180 days the Cybersecurity Law (Art. 21) requires" in created.output
    vigil.ok("sources", "set", "firewall", "--retention-days", "0", "--description", "edge")
    listed = orjson.loads(vigil.ok("sources", "list", "--json").stdout)
    firewall = listed["items"][0]
    assert (firewall["name"], firewall["timezone"], firewall["format"], firewall["keep_original"]) == (
        "firewall", "Asia/Tokyo", "syslog", False)
    assert firewall["retention_days"] == 180 and firewall["unit_id"] == world.branch_a
    assert firewall["silent"] is True  # expected every 10 minutes, never sent
    bad = vigil("sources", "set", "firewall", "--timezone", "Moon/Crater")
    assert bad.exit_code == 1 and "unknown time zone 'Moon/Crater'" in bad.output
    bad = vigil("sources", "set", "other", "--format", "nope")
    assert bad.exit_code == 1 and "unknown log format 'nope'" in bad.output
    assert vigil("sources", "set", "other", "--unit", "Atlantis").exit_code == 1
    vigil.ok("sources", "remove", "firewall")
    assert vigil("sources", "remove", "firewall").exit_code == 1
    actions = [r.action for r in audit_records(world.database) if r.action.startswith("siem.source.")]
    assert actions == ["siem.source.create", "siem.source.update", "siem.source.delete"]
    assert {r.actor for r in audit_records(world.database) if r.action.startswith("siem.source.")} == {
        next(r.actor for r in audit_records(world.database) if r.action == "siem.source.create")}


def test_sources_list_shows_figures_from_the_event_store(vigil: Vigil, world: Any, tmp_path: Path) -> None:
    seed(tmp_path, world)
    vigil.ok("sources", "set", "firewall", "--retention-days", "365")
    text = vigil.ok("sources", "list").stdout
    assert "SOURCE" in text and "firewall" in text and "app (observed)" in text
    listed = {item["name"]: item for item in orjson.loads(vigil.ok("sources", "list", "--json").stdout)["items"]}
    assert listed["firewall"]["events"] == 3 and listed["firewall"]["hosts"][0]["host"] == "fw01"
    assert listed["firewall"]["events_24h"] == 3  # all just received (the time stamps are older)
    assert listed["app"]["configured"] is False and listed["app"]["unit_id"] == world.branch_a


def test_retention_status_and_run(vigil: Vigil, world: Any, tmp_path: Path) -> None:
    seed(tmp_path, world)
    vigil.ok("sources", "set", "firewall", "--retention-days", "30")
    status = orjson.loads(vigil.ok("retention", "status", "--json").stdout)
    policies = {p["source"]: p for p in status["policies"]}
    assert policies["firewall"]["days"] == 30 and policies["firewall"]["due"] and policies["firewall"]["met"]
    assert policies["app"]["days"] == 180 and policies["app"]["default"] and policies["app"]["due"]
    assert policies["firewall"]["below_legal_minimum"] is True
    text = vigil.ok("retention", "status").stdout
    assert "below legal minimum" in text and "default: 180 days" in text

    ran = vigil.ok("retention", "run")
    assert "firewall: 2 events older than 30 days deleted" in ran.stdout
    assert "app: 1 events older than 180 days deleted" in ran.stdout
    assert "3 events deleted, 2 sources checked" in ran.stdout
    after = {p["source"]: p for p in orjson.loads(vigil.ok("retention", "status", "--json").stdout)["policies"]}
    assert not after["firewall"]["due"] and not after["app"]["due"] and after["firewall"]["held_days"] == 1
    assert after["firewall"]["met"]
    runs = audit_records(world.database, action="siem.retention.run")
    assert len(runs) == 1 and runs[0].actor.startswith("cli:") and runs[0].details["deleted"] == 3
    # Raising the days now cannot bring back what the 30-day policy deleted: not met.
    vigil.ok("sources", "set", "firewall", "--retention-days", "365")
    raised = {p["source"]: p for p in orjson.loads(vigil.ok("retention", "status", "--json").stdout)["policies"]}
    assert raised["firewall"]["met"] is False
    assert "NOT MET" in vigil.ok("retention", "status").stdout


def test_a_store_held_by_a_running_server(vigil: Vigil, world: Any, tmp_path: Path) -> None:
    seed(tmp_path, world)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
         "sys.stdin.read()", str(events_path(tmp_path))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        listed = vigil("sources", "list", "--json")
        assert listed.exit_code == 0 and "in use by a running `vigil serve`" in listed.stderr
        assert orjson.loads(listed.stdout)["items"] == []
        ran = vigil("retention", "run")
        assert ran.exit_code == 1 and "POST /api/v1/siem/retention/run" in ran.stderr
    finally:
        holder.communicate("", timeout=30)
    assert vigil.ok("retention", "run")
