"""`vigil init`, `serve`, `config show`, `version`, and how settings and store errors reach the operator."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from vigil import __version__
from vigil.accounts.bootstrap import alembic_config

VIGIL = Path(sys.executable).parent / "vigil"
HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_console_script_prints_the_version(tmp_path: Path) -> None:
    done = subprocess.run([str(VIGIL), "version"], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"vigil {__version__}"


def test_help_documents_the_exit_codes(cli) -> None:
    for command in (["--help"], ["init", "--help"], ["user", "add", "--help"], ["token", "create", "--help"],
                    ["audit", "verify", "--help"], ["demo", "--help"]):
        result = cli.ok(*command)
        assert "Exit codes" in result.stdout, command


def test_init_creates_then_reuses_the_store(blank_cli, blank_url: str, tmp_path: Path) -> None:
    first = blank_cli.ok("init")
    assert f"schema: created at revision {HEAD}" in first.stdout
    assert (tmp_path / "var").is_dir()
    assert (tmp_path / "var" / "secret.key").is_file()
    second = blank_cli.ok("init")
    assert f"already at revision {HEAD}; nothing to migrate" in second.stdout
    assert "(exists)" in second.stdout
    # The store works: the root unit exists and the listing commands answer.
    units = orjson.loads(blank_cli.ok("unit", "list", "--json").stdout)
    assert [unit["kind"] for unit in units] == ["headquarters"]
    assert orjson.loads(blank_cli.ok("user", "list", "--json").stdout) == []


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.postgres
def test_init_and_config_show_mask_the_database_password(blank_cli, blank_url: str) -> None:
    # The test server trusts loopback, so it accepts a password in the URL: one that must never be printed.
    with_password = make_url(blank_url).set(password="pg-S3cret-pw").render_as_string(hide_password=False)
    env = {"VIGIL_DATABASE_URL": with_password}
    result = blank_cli("init", env=env)
    assert result.exit_code == 0, result.output
    assert "pg-S3cret-pw" not in result.output
    assert "postgres:********@127.0.0.1" in result.stdout
    shown = blank_cli("config", "show", "--json", env=env)
    assert "pg-S3cret-pw" not in shown.output
    assert orjson.loads(shown.stdout)["database_url"].startswith("postgresql+psycopg://postgres:********@")


def test_commands_refuse_a_store_never_initialised(blank_cli, blank_url: str) -> None:
    for command in (["serve"], ["user", "list"], ["token", "list"], ["audit", "verify"], ["demo"]):
        result = blank_cli(*command)
        assert result.exit_code == 2, (command, result.output)
        assert "run `vigil init` first" in result.stderr
    if blank_url.startswith("sqlite"):
        assert not Path(blank_url.removeprefix("sqlite:///")).exists()  # looking created nothing


def test_unreachable_store_fails_with_exit_1(cli) -> None:
    result = cli("user", "list", env={"VIGIL_DATABASE_URL": "postgresql+psycopg://vigil:pw@127.0.0.1:1/vigil"})
    assert result.exit_code == 1
    assert "cannot reach the records store at postgresql+psycopg://vigil:********@127.0.0.1:1/vigil" in result.stderr


@pytest.mark.parametrize("command", [["config", "show"], ["serve"], ["user", "list"], ["init"]])
def test_a_bad_setting_exits_2_naming_it(cli, command: list[str]) -> None:
    result = cli(*command, env={"VIGIL_PORT": "abc"})
    assert result.exit_code == 2
    assert "VIGIL_PORT" in result.stderr
    assert result.stdout == ""


def test_init_reports_an_unusable_data_folder(cli, tmp_path: Path) -> None:
    (tmp_path / "occupied").write_text("a file, not a folder")
    result = cli("init", env={"VIGIL_DATA_DIR": str(tmp_path / "occupied" / "var")})
    assert result.exit_code == 1
    assert "cannot create the data folder" in result.stderr


def test_a_bad_database_url_exits_2_naming_it(cli) -> None:
    result = cli("init", env={"VIGIL_DATABASE_URL": "mysql://root@localhost/vigil"})
    assert result.exit_code == 2
    assert "VIGIL_DATABASE_URL" in result.stderr


def test_config_show_masks_secrets(cli) -> None:
    env = {"VIGIL_SECRET_KEY": "do-not-print-this-key", "VIGIL_TIMEZONE": "Europe/Berlin"}
    table = cli("config", "show", env=env)
    assert table.exit_code == 0
    assert "do-not-print-this-key" not in table.output
    assert "Europe/Berlin" in table.stdout
    assert "VIGIL_SESSION_IDLE_MINUTES" in table.stdout
    shown = orjson.loads(cli("config", "show", "--json", env=env).stdout)
    assert shown["secret_key"] == "********"
    assert shown["timezone"] == "Europe/Berlin"
    assert shown["port"] == 8000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize("backend", ["sqlite"])
def test_serve_answers_over_real_http(cli, tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(VIGIL), "serve", "--port", str(port)], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **cli.env},
        )
        try:
            status = None
            deadline = time.monotonic() + 60  # a bound on waiting for start-up, not a speed check
            while status != 200 and server.poll() is None and time.monotonic() < deadline:
                try:
                    status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
                except httpx.TransportError:
                    time.sleep(0.1)
            assert status == 200, log.read_text()
            response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            assert response.json()["version"] == __version__
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    assert server.returncode == 0, log.read_text()
    assert f"serving http://127.0.0.1:{port}" in log.read_text()
