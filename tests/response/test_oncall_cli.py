"""`vigil oncall` and `vigil escalation` against a real records store: who is on call, shifts in the
schedule's zone, an override from the shell, policies, escalations listed and acknowledged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.conftest import World, cli_context
from tests.response.test_oncall_api import fresh_escalation_id, fresh_policy_id
from typer.testing import CliRunner, Result

from vigil.cli.main import app
from vigil.core.db import Scope
from vigil.response import oncall_service
from vigil.response.oncall_schemas import LayerIn, ScheduleCreate
from vigil.web.app import create_app


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
def vigil(world: World, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vigil:
    monkeypatch.chdir(tmp_path)
    today = datetime.now(UTC).date()
    with world.database.transaction(Scope.system()) as session:
        oncall_service.create_schedule(cli_context(session), data=ScheduleCreate(
            name="Berlin desk", time_zone="Europe/Berlin", layers=[LayerIn(
                name="primary", participants=[world.users["analyst"]], rotation="weekly",
                start=today - timedelta(days=2))]))
    return Vigil({"VIGIL_DATABASE_URL": database_url, "VIGIL_DATA_DIR": str(tmp_path / "var")})


def test_now_shifts_and_override(vigil: Vigil, world: World) -> None:
    assert "Berlin desk  analyst  primary" in vigil.ok("oncall", "now").output
    assert "primary: analyst (weekly, 09:00)" in vigil.ok("oncall", "schedules").output
    shifts = orjson.loads(vigil.ok("oncall", "shifts", "Berlin desk", "--days", "3", "--json").output)
    assert {s["username"] for s in shifts} == {"analyst"}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    made = vigil.ok("oncall", "override", "Berlin desk", "viewer", "--from", f"{tomorrow}T18:00",
                    "--to", f"{tomorrow}T23:00", "-m", "covering")
    assert f"viewer on call in Berlin desk from {tomorrow} 18:00 to {tomorrow} 23:00 (Europe/Berlin)" in made.output
    table = vigil.ok("oncall", "shifts", "Berlin desk", "--days", "3").output
    assert [str(tomorrow), "18:00", str(tomorrow), "23:00", "viewer", "override"] in [
        line.split() for line in table.splitlines()]
    refused = vigil("oncall", "override", "Berlin desk", "ghost", "--from", f"{tomorrow}T18:00",
                    "--to", f"{tomorrow}T19:00")
    assert refused.exit_code == 1 and "ghost" in refused.output
    assert vigil("oncall", "shifts", "No such desk").exit_code == 1


def test_policies_list_and_ack(vigil: Vigil, world: World, settings: Any, database: Any) -> None:
    fresh_policy_id(world)
    assert "viewer (15 min)" in vigil.ok("escalation", "policies").output
    escalation_id = fresh_escalation_id(world, create_app(settings, database))
    active = orjson.loads(vigil.ok("escalation", "list", "--status", "active", "--json").output)
    assert [e["id"] for e in active] == [escalation_id]
    done = vigil.ok("escalation", "ack", str(escalation_id), "-m", "seen")
    assert f"escalation {escalation_id}" in done.output and "acknowledged by cli:" in done.output
    again = vigil("escalation", "ack", str(escalation_id))
    assert again.exit_code == 1 and "acknowledged by cli:" in again.output
    assert vigil.ok("escalation", "list", "--status", "active", "--json").output.strip() == "[]"
