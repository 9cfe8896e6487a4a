"""`vigil search`: the local operator searching the real DuckDB event store from the terminal, and through a
running server (a real uvicorn on 127.0.0.1) when the server holds the store."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.api.support import audit_records
from tests.cli.conftest import Cli, store_env
from tests.e2e.harness import serve

from vigil.core.auth import Role
from vigil.core.config import load_settings
from vigil.core.db import Database
from vigil.siem.store.duckdb import DuckDBEventStore
from vigil.web.app import create_app

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
WINDOW = ["--from", START.isoformat(), "--to", (START + timedelta(hours=1)).isoformat()]
LONG = "x" * 400


def at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


def fill(data_dir: Path, hq: int = 1, branch: int = 2) -> None:
    store = DuckDBEventStore(data_dir / "events.duckdb")
    try:
        store.append([
            {"@timestamp": at(0), "host": {"name": "fw01"}, "event": {"action": "deny"},
             "message": "connection denied from 10.0.0.1"},
            {"@timestamp": at(10), "host": {"name": "fw02"}, "event": {"action": "allow"},
             "message": "connection allowed from 10.0.0.2 " + LONG},
            {"@timestamp": at(20), "host": {"name": "fw01"}, "event": {"action": "note"},
             "message": "=cmd|' /C calc'!A0"},
        ], unit_id=hq, source="fw")
        store.append([{"@timestamp": at(5), "host": {"hostname": "web-a"}, "user": {"name": "root"},
                       "message": "Failed password for root"}], unit_id=branch, source="auth-a")
    finally:
        store.close()


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    return Cli(store_env(database_url, tmp_path))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def search_cli(cli: Cli, data_dir: Path) -> Cli:
    fill(data_dir)
    return cli


def test_table_in_the_display_time_zone_newest_first(search_cli: Cli) -> None:
    result = search_cli.ok("search", "", *WINDOW)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TIME", "SOURCE", "HOST", "MESSAGE"]
    # 10:20 UTC is 18:20 in Asia/Shanghai, the default display zone.
    assert lines[1].startswith("2026-11-20 18:20:00") and "fw01" in lines[1]
    assert "web-a" in lines[3] and "auth-a" in lines[3]
    assert len(lines) == 5
    allowed = next(line for line in lines if "allowed" in line)
    assert allowed.endswith("…") and LONG not in allowed  # long messages are cut to the terminal
    assert "4 of 4 events" in result.stderr


def test_wide_characters_are_cut_to_the_terminal(search_cli: Cli, data_dir: Path) -> None:
    store = DuckDBEventStore(data_dir / "events.duckdb")
    try:
        store.append([{"@timestamp": at(120), "host": {"name": "oa-服务器"}, "message": "用户登录失败，" * 40}],
                     unit_id=1, source="oa")
    finally:
        store.close()
    result = search_cli("search", "", "--from", at(119), "--to", at(121), env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    row = result.stdout.splitlines()[1]
    assert row.endswith("…") and "oa-服务器" in row
    assert sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in row) <= 100


def test_terminal_escape_sequences_in_logs_are_shown_not_run(search_cli: Cli, data_dir: Path) -> None:
    store = DuckDBEventStore(data_dir / "events.duckdb")
    try:
        store.append([{"@timestamp": at(200), "host": {"name": "evil\x1b[31m"},
                       "message": "ok\x1b[2J\x1b]0;owned\x07 \x9b1;1H done"}], unit_id=1, source="x")
    finally:
        store.close()
    result = search_cli.ok("search", "", "--from", at(199), "--to", at(201))
    assert not any(c in result.stdout for c in "\x1b\x07\x9b")
    assert "ok\\x1b[2J\\x1b]0;owned\\x07 \\x9b1;1H done" in result.stdout
    assert "evil\\x1b[31m" in result.stdout


def test_query_limit_and_ascending_order(search_cli: Cli) -> None:
    result = search_cli.ok("search", "vigil.source:fw", *WINDOW, "--limit", "2", "--sort", "asc")
    lines = result.stdout.splitlines()[1:]
    assert len(lines) == 2
    assert "denied" in lines[0] and "allowed" in lines[1]
    assert "2 of 3 events" in result.stderr
    shown = search_cli.ok("search", "vigil.source:fw", *WINDOW, "--fields", "host.name,event.action")
    assert shown.stdout.splitlines()[0].split() == ["TIME", "HOST.NAME", "EVENT.ACTION"]


def test_json_count_and_nothing_found(search_cli: Cli) -> None:
    body = orjson.loads(search_cli.ok("search", "user.name:root", *WINDOW, "--json").stdout)
    assert body["total"] == 1 and body["query"] == "user.name:root"
    assert body["events"][0]["source"] == "auth-a"
    assert body["events"][0]["document"]["message"] == "Failed password for root"
    second = orjson.loads(search_cli.ok("search", "", *WINDOW, "--json", "--offset", "1", "--limit", "1").stdout)
    assert second["total"] == 4 and [e["document"]["message"][:22] for e in second["events"]] == [
        "connection allowed fro"]
    assert search_cli.ok("search", "host.name:fw01", *WINDOW, "--count").stdout.strip() == "2"
    assert orjson.loads(search_cli.ok("search", "*", *WINDOW, "--count", "--json").stdout) == {"total": 4}
    none = search_cli.ok("search", "user.name:nobody-here", *WINDOW)
    assert none.stdout == "" and "no events" in none.stderr
    assert search_cli.ok("search", "", "--since", "15m").stderr.strip() == "no events"


def test_csv_with_formula_protection_and_ndjson(search_cli: Cli, database: Database) -> None:
    result = search_cli.ok("search", "vigil.source:fw", *WINDOW, "--csv")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["@timestamp", "vigil.source", "host.name", "event.action", "message"]
    assert rows[1][4] == "'=cmd|' /C calc'!A0"
    assert len(rows) == 4
    chosen = list(csv.reader(io.StringIO(search_cli.ok("search", "", *WINDOW, "--csv", "--fields",
                                                       "user.name,host.hostname").stdout)))
    assert ["root", "web-a"] in chosen
    lines = search_cli.ok("search", "", *WINDOW, "--ndjson", "--limit", "3").stdout.splitlines()
    assert len(lines) == 3
    assert [orjson.loads(line)["vigil"]["source"] for line in lines] == ["fw", "fw", "auth-a"]
    exports = audit_records(database, action="events.exported")
    assert [r.details["count"] for r in exports] == [3, 4, 3]
    assert exports[0].actor.startswith("cli:")


def test_syntax_error_points_at_the_column(search_cli: Cli) -> None:
    result = search_cli("search", "user.name:root AND (host.name:fw01", *WINDOW)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: line 1, column 35")
    assert lines[1] == "  user.name:root AND (host.name:fw01"
    assert lines[2] == "  " + " " * 34 + "^"
    assert result.stdout == ""


@pytest.mark.parametrize("args", [["--since", "yesterday"], ["--since", "1h", "--from", "now-2h"],
                                  ["--to", "now"], ["--json", "--csv"], ["--sort", "up"],
                                  ["--csv", "--fields", "a b"]])
def test_wrong_options_are_usage_errors(search_cli: Cli, args: list[str]) -> None:
    result = search_cli("search", "", *args)
    assert result.exit_code == 2, result.output


def test_an_empty_data_folder_has_no_events(cli: Cli, data_dir: Path) -> None:
    result = cli.ok("search", "anything")
    assert "no events" in result.stderr
    assert not (data_dir / "events.duckdb").exists()  # looking did not create the store


def test_a_damaged_store_is_a_message_not_a_traceback(cli: Cli, data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "events.duckdb").write_bytes(b"not a database at all" * 100)
    result = cli("search", "")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot open the event store") and "Traceback" not in result.output


def test_a_store_held_by_another_process_says_how_to_search(search_cli: Cli, data_dir: Path) -> None:
    script = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(120)"
    with subprocess.Popen([sys.executable, "-c", script, str(data_dir / "events.duckdb")],
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
            result = search_cli("search", "", *WINDOW)
        finally:
            holder.kill()
    assert result.exit_code == 1
    assert "held by another process" in result.stderr
    assert "--server http://127.0.0.1:8000" in result.stderr and "VIGIL_TOKEN" in result.stderr


# --- through a running server ------------------------------------------------------------------------------


@pytest.fixture
def server(world: Any, tmp_path: Path, database_url: str) -> Iterator[str]:
    settings = load_settings(data_dir=tmp_path / "var", database_url=database_url, log_level="WARNING")
    fill(settings.data_dir, hq=world.hq, branch=world.branch_a)
    world.add_user("analyst_a", Role.ANALYST, world.branch_a)
    database = Database(database_url)
    with serve(create_app(settings, database), lifespan=True) as running:
        yield running.url
    database.dispose()


def test_through_the_server_with_the_users_units(server: str, world: Any, database_url: str,
                                                 tmp_path: Path) -> None:
    cli = Cli({**store_env(database_url, tmp_path), "VIGIL_TOKEN": world.tokens["analyst"]})
    table = cli.ok("search", "", *WINDOW, "--server", server)
    assert len(table.stdout.splitlines()) == 5 and "4 of 4 events" in table.stderr
    body = orjson.loads(cli.ok("search", "host.name:fw01", *WINDOW, "--server", server, "--json").stdout)
    assert body["total"] == 2 and body["query"] == "host.name:fw01"
    rows = list(csv.reader(io.StringIO(cli.ok("search", "", *WINDOW, "--server", server, "--csv").stdout)))
    assert rows[0][0] == "@timestamp" and len(rows) == 5  # no BOM on a pipe
    branch = Cli({**store_env(database_url, tmp_path), "VIGIL_TOKEN": world.tokens["analyst_a"]})
    assert branch.ok("search", "", *WINDOW, "--server", server, "--count").stdout.strip() == "1"
    broken = cli("search", "host.name:(fw01", *WINDOW, "--server", server)
    assert broken.exit_code == 1 and broken.stderr.splitlines()[-1] == "  " + " " * 15 + "^"
    refused = Cli({**store_env(database_url, tmp_path), "VIGIL_TOKEN": world.tokens["viewer"]})
    denied = refused("search", "", "--server", server)
    assert denied.exit_code == 1 and "events:read" in denied.stderr
    assert cli("search", "", "--server", server, env={"VIGIL_TOKEN": ""}).exit_code == 2
