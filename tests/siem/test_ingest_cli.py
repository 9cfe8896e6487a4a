"""`vigil ingest PATH... [--format F] [--source NAME] [--json]`: what it prints, its exit codes, and the
events it leaves in the store; and its message when a running server holds the event store."""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.e2e.harness import serve
from typer.testing import CliRunner, Result

from vigil.cli.main import app
from vigil.core.auth import Role
from vigil.core.config import Settings
from vigil.core.db import Database
from vigil.siem.runtime import Siem
from vigil.siem.search import compile_text
from vigil.siem.store.duckdb import DuckDBEventStore
from vigil.web.app import create_app

EVTX_SET = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "evtx" / "EVTX-ATTACK-SAMPLES"

NGINX = (
    '203.0.113.9 - - [28/Nov/2026:10:00:00 +0800] "GET / HTTP/1.1" 200 512 "-" "Mozilla/5.0"\n'
    '203.0.113.9 - - [28/Nov/2026:10:00:01 +0800] "GET /wp-login.php HTTP/1.1" 404 162 "-" "Nikto"\n'
)
SYSLOG = "<86>Nov 28 10:00:00 jump01 sshd[812]: Failed password for root from 203.0.113.66 port 40022 ssh2\n"


class Vigil:
    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.env = {"VIGIL_DATABASE_URL": database_url, "VIGIL_DATA_DIR": str(data_dir)}
        self.data_dir = data_dir
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args), env=self.env)

    def count(self, query: str = "") -> int:
        store = DuckDBEventStore(self.data_dir / "events.duckdb")
        try:
            compiled = compile_text(query)
            return store.count(compiled.sql, compiled.params)
        finally:
            store.close()


@pytest.fixture
def vigil(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vigil:
    monkeypatch.chdir(tmp_path)
    return Vigil(database_url, tmp_path / "var")


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "access.log").write_text(NGINX)
    (folder / "messages.1.gz").write_bytes(gzip.compress(SYSLOG.encode()))
    (folder / "events.ndjson").write_text('{"message": "ok"}\n{"message": \n')
    return folder


def test_ingest_prints_each_file_and_a_total(vigil: Vigil, logs: Path) -> None:
    result = vigil("ingest", str(logs))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"{logs / 'access.log'}: 2 records, 2 events stored, 0 parse failures, "
                               "format web_access, source file:access.log") for line in lines)
    assert any(f"{logs / 'events.ndjson'}: 2 records, 2 events stored, 1 parse failures" in line for line in lines)
    assert any(f"{logs / 'messages.1.gz'}: 1 records" in line and "source file:messages" in line for line in lines)
    assert lines[-1] == "total: 3 files, 5 records, 5 events stored, 1 parse failures, 0 errors"
    assert vigil.count() == 5
    assert vigil.count('url.original:"/wp-login.php"') == 1
    assert vigil.count("source.ip:203.0.113.66 AND event.outcome:failure") == 1


def test_a_missing_path_fails_the_run_but_not_the_other_paths(vigil: Vigil, logs: Path, tmp_path: Path) -> None:
    result = vigil("ingest", str(tmp_path / "nowhere.log"), str(logs / "access.log"))
    assert result.exit_code == 1
    assert f"error: {tmp_path / 'nowhere.log'}: no such file or folder" in result.stderr
    assert "total: 2 files, 2 records, 2 events stored, 0 parse failures, 1 errors" in result.stdout
    assert vigil.count() == 2


def test_format_and_source_options(vigil: Vigil, logs: Path) -> None:
    result = vigil("ingest", "--format", "syslog", "--source", "edge-router", str(logs / "access.log"))
    assert result.exit_code == 0, result.output
    assert "format syslog, source edge-router" in result.stdout
    assert vigil.count("event.kind:pipeline_error") == 2  # nginx lines are not syslog: kept as failures
    assert vigil.count("vigil.source:edge-router") == 2


def test_json_output(vigil: Vigil, logs: Path) -> None:
    result = vigil("ingest", "--json", str(logs / "events.ndjson"), str(logs / "gone"))
    assert result.exit_code == 1
    report = orjson.loads(result.stdout)
    assert report["total"] == {"files": 2, "records": 2, "stored": 2, "failures": 1, "errors": 1}
    assert report["files"][0]["format"] == "json"
    assert report["files"][1] == {"path": str(logs / "gone"), "format": None, "source": None, "records": 0,
                                  "stored": 0, "failures": 0, "cut_lines": 0, "error": "no such file or folder",
                                  "skipped": True}


@pytest.mark.parametrize("args", [("ingest",), ("ingest", "--format", "no_such_format", "x.log")])
def test_usage_errors_exit_2(vigil: Vigil, args: tuple[str, ...]) -> None:
    result = vigil(*args)
    assert result.exit_code == 2
    if "--format" in args:
        assert "unknown log format 'no_such_format'" in result.stderr
        assert "web_access" in result.stderr  # names the known ones


@pytest.fixture
def server_holding_the_store(vigil: Vigil) -> Iterator[None]:
    """Another process with the event store open, as `vigil serve` keeps it."""
    vigil.data_dir.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; db = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
                               "sys.stdin.read()", str(vigil.data_dir / "events.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield
        assert holder.stdin is not None
        holder.stdin.close()


@pytest.mark.usefixtures("server_holding_the_store")
def test_a_running_server_is_named_with_what_to_do(vigil: Vigil, logs: Path) -> None:
    result = vigil("ingest", str(logs / "access.log"))
    assert result.exit_code == 1
    assert "held by another process (normally `vigil serve`)" in result.stderr
    assert "vigil ingest --server URL" in result.stderr
    assert "Traceback" not in result.output


# --- --server: the files go to a running server's /api/v1/ingest --------------------------------------


@dataclass
class RunningServer:
    url: str
    siem: Siem
    token: str

    def count(self, query: str = "") -> int:
        self.siem.drain()
        compiled = compile_text(query)
        return self.siem.store.count(compiled.sql, compiled.params)


@pytest.fixture
def running_server(settings: Settings, database: Database, world: Any) -> Iterator[RunningServer]:
    """A real server on 127.0.0.1; its pipeline is drained by the test (no lifespan thread)."""
    world.add_user("shipper", Role.SHIPPER, world.hq)
    app = create_app(settings, database)
    try:
        with serve(app) as running:
            yield RunningServer(running.url, app.state.siem, world.tokens["shipper"])
    finally:
        app.state.siem.stop()


def test_server_option_posts_the_files_to_a_running_server(vigil: Vigil, logs: Path,
                                                           running_server: RunningServer) -> None:
    files = [str(logs)]
    evtx = min(EVTX_SET.rglob("*.evtx"), key=lambda path: (path.stat().st_size, str(path))) if EVTX_SET.is_dir() \
        else None
    if evtx is not None:
        files.append(str(evtx))
    result = vigil.runner.invoke(app, ["ingest", "--server", running_server.url, *files],
                                 env={**vigil.env, "VIGIL_TOKEN": running_server.token})
    assert result.exit_code == 0, result.output
    assert (f"{logs / 'access.log'}: 2 records, 2 accepted by the server, format web_access, "
            "source http:file:access.log") in result.stdout
    assert running_server.count('vigil.source:"http:file:access.log" AND url.original:"/wp-login.php"') == 1
    assert running_server.count('vigil.source:"http:file:messages" AND source.ip:203.0.113.66') == 1
    assert running_server.count('vigil.source:"http:file:events.ndjson" AND event.kind:pipeline_error') == 1
    if evtx is not None:
        records = int(result.stdout.split(f"{evtx}: ")[1].split(" records")[0].replace(",", ""))
        assert running_server.count(f'vigil.source:"http:file:{evtx.name}" AND EventID:*') == records > 0


def test_server_option_needs_a_token_the_server_takes(vigil: Vigil, logs: Path,
                                                      running_server: RunningServer) -> None:
    missing = vigil("ingest", "--server", running_server.url, str(logs))
    assert missing.exit_code == 2 and "VIGIL_TOKEN" in missing.stderr
    refused = vigil.runner.invoke(app, ["ingest", "--server", running_server.url, str(logs)],
                                  env={**vigil.env, "VIGIL_TOKEN": "vgl_not-a-token"})
    assert refused.exit_code == 1
    assert "the server answered 401" in refused.stderr
    assert running_server.count() == 0
