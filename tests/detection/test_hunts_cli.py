"""`vigil hunts run|list|show` against a real records store and event store file, as the local operator, and
through a running server (a real uvicorn on 127.0.0.1) with an analyst's token and units."""

from __future__ import annotations

from collections.abc import Iterator
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
from vigil.detection.rules_import import install_starter_pack
from vigil.siem.store.duckdb import DuckDBEventStore
from vigil.web.app import create_app

from .test_hunts_api import START, WHOAMI, whoami

WINDOW = ("--from", START.isoformat(), "--to", START.replace(hour=11).isoformat())


def fill(data_dir: Path, *, hq: int, branch: int) -> None:
    store = DuckDBEventStore(data_dir / "events.duckdb")
    try:
        store.append([whoami("HQ-WS01", 5), whoami("HQ-WS02", 10), whoami("HQ-WS01", 20, flags="/user")],
                     unit_id=hq, source="sysmon-hq")
        store.append([whoami("BR-WS01", 15)], unit_id=branch, source="sysmon-a")
    finally:
        store.close()


@pytest.fixture
def hunts_cli(world: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    install_starter_pack(world.database)
    fill(tmp_path / "var", hq=world.hq, branch=world.branch_a)
    return Cli(store_env(database_url, tmp_path))


def test_run_list_and_show_locally(hunts_cli: Cli, world: Any) -> None:
    ran = hunts_cli.ok("hunts", "run", *WINDOW, "--rule", WHOAMI, "--name", "sweep")
    assert "done" in ran.stdout and "events scanned: 4; hits: 3" in ran.stdout
    assert "Whoami Listing Privileges Or Groups" in ran.stdout
    body = orjson.loads(hunts_cli.ok("hunts", "run", *WINDOW, "--query", "host.name:HQ-WS01", "--json").stdout)
    assert body["status"] == "done" and body["rule_uids"] == [] and body["events_scanned"] == 2
    assert [(rule["uid"], rule["count"]) for rule in body["rules"]] == [(WHOAMI, 1)]
    listed = hunts_cli.ok("hunts", "list").stdout
    assert "sweep" in listed and "all enabled" in listed and listed.index(str(body["id"])) < listed.index("sweep")
    shown = orjson.loads(hunts_cli.ok("hunts", "show", "1", "--json").stdout)
    assert shown["name"] == "sweep" and shown["hits"] == 3 and shown["created_by"].startswith("cli:")
    assert len(audit_records(world.database, action="hunt.start")) == 2


def test_refusals_have_exit_codes(hunts_cli: Cli) -> None:
    bad_query = hunts_cli("hunts", "run", *WINDOW, "--query", "host.name:(a")
    assert bad_query.exit_code == 1 and "column 13: expected ')'" in bad_query.stderr
    unknown = hunts_cli("hunts", "run", *WINDOW, "--rule", "no-such-rule")
    assert unknown.exit_code == 1 and "no such rule" in unknown.stderr
    both = hunts_cli("hunts", "run", "--since", "1h", "--from", "now-2h")
    assert both.exit_code == 2
    assert hunts_cli("hunts", "run", "--since", "forever").exit_code == 2
    assert hunts_cli("hunts", "show", "99").exit_code == 1
    assert "no hunts yet" in hunts_cli.ok("hunts", "list").stderr


@pytest.fixture
def server(world: Any, tmp_path: Path, database_url: str) -> Iterator[str]:
    settings = load_settings(data_dir=tmp_path / "var", database_url=database_url, log_level="WARNING")
    install_starter_pack(world.database)
    fill(settings.data_dir, hq=world.hq, branch=world.branch_a)
    world.add_user("analyst_a", Role.ANALYST, world.branch_a)
    database = Database(database_url)
    with serve(create_app(settings, database), lifespan=True) as running:
        yield running.url
    database.dispose()


def test_through_the_server_with_the_users_units(server: str, world: Any, database_url: str,
                                                 tmp_path: Path) -> None:
    env = store_env(database_url, tmp_path)
    branch = Cli({**env, "VIGIL_TOKEN": world.tokens["analyst_a"]})
    body = orjson.loads(branch.ok("hunts", "run", *WINDOW, "--rule", WHOAMI, "--server", server, "--json").stdout)
    assert body["status"] == "done" and body["events_scanned"] == 1 and body["hits"] == 1
    assert body["created_by"] == "analyst_a"
    hq = Cli({**env, "VIGIL_TOKEN": world.tokens["analyst"]})
    assert "events scanned: 4; hits: 3" in hq.ok("hunts", "run", *WINDOW, "--server", server).stdout
    assert len(orjson.loads(hq.ok("hunts", "list", "--server", server, "--json").stdout)) == 2
    assert len(orjson.loads(branch.ok("hunts", "list", "--server", server, "--json").stdout)) == 1
    hidden = branch("hunts", "show", "2", "--server", server)
    assert hidden.exit_code == 1 and "404" in hidden.stderr
    assert branch("hunts", "list", "--server", server, env={"VIGIL_TOKEN": ""}).exit_code == 2
