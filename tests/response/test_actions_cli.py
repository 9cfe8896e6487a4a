"""`vigil action` and `vigil playbook`: an action added with a command template, a dry-run that runs nothing, a
hostile target refused with exit 1, a run the operator requested that the same operator cannot approve, a
run approved from the command line when someone else requested it, `tick --now` rolling back after the TTL, and
a playbook added from a YAML file, edited into version 2 and run on an incident."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from vigil.cli.main import app
from vigil.core.db import Scope
from vigil.incidents import service as incidents
from vigil.incidents.schemas import IncidentCreate
from vigil.response.actions import executions
from vigil.response.actions import service as actions
from vigil.response.actions.schemas import ExecutionCreate

from .action_endpoints import firewall_script
from .test_playbooks_service import as_user


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
    return Vigil({"VIGIL_DATABASE_URL": database_url, "VIGIL_DATA_DIR": str(tmp_path / "var"),
                  "VIGIL_NOTIFY_RETRY_SECONDS": "0"})


def test_actions_from_the_command_line(vigil: Vigil, world: Any, tmp_path: Path) -> None:
    script, log = firewall_script(tmp_path)
    command = orjson.dumps([str(script), "add", "{ip}"]).decode()
    undo = orjson.dumps([str(script), "delete", "{ip}"]).decode()
    vigil.ok("action", "add", "Edge firewall", "--kind", "block_ip", "--set", "mode=command", "--set",
             f"command={command}", "--set", f"undo_command={undo}", "--rollback-after", "60")
    assert f"{script} add 203.0.113.4" in vigil.ok("action", "dry-run", "Edge firewall", "203.0.113.4").output
    assert not log.exists()
    refused = vigil("action", "run", "Edge firewall", "$(id)")
    assert refused.exit_code == 1 and "is not an IP address" in refused.output and not log.exists()
    waiting = vigil.ok("action", "run", "Edge firewall", "203.0.113.4", "--reason", "scanner", "--json")
    execution_id = orjson.loads(waiting.output)["id"]
    assert orjson.loads(waiting.output)["status"] == "awaiting_approval"
    own = vigil("action", "approve", str(execution_id))
    assert own.exit_code == 1 and "another person" in own.output and not log.exists()

    with world.database.transaction(Scope.system()) as session:  # a responder asks; the operator approves
        asked = executions.request_execution(as_user(session, world, "responder"), data=ExecutionCreate(
            action_id=actions.find_action(session, "Edge firewall").id, target="203.0.113.5"))
        asked_id = asked.id
    assert "succeeded" in vigil.ok("action", "approve", str(asked_id), "--comment", "ok").output
    assert log.read_text() == "add|203.0.113.5\n"
    assert "0 run(s) rolled back" in vigil.ok("action", "tick").output
    assert f"1 run(s) rolled back: {asked_id}" in vigil.ok("action", "tick", "--now", "2100-01-01T00:00:00Z").output
    assert log.read_text().splitlines()[-1] == "delete|203.0.113.5"
    listed = orjson.loads(vigil.ok("action", "runs", "--json").output)
    assert {(r["id"], r["status"]) for r in listed} == {(execution_id, "awaiting_approval"),
                                                        (asked_id, "rolled_back")}


def test_playbooks_from_the_command_line(vigil: Vigil, world: Any, tmp_path: Path) -> None:
    first = tmp_path / "playbook.yaml"
    first.write_text("trigger: {incident_types: [malware]}\nsteps:\n  - kind: create_task\n"
                     "    title: Reimage the host\n    phase: eradicate\n")
    vigil.ok("playbook", "add", "Malware", "--file", str(first))
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps:\n  - kind: teleport\n")
    refused = vigil("playbook", "edit", "Malware", "--file", str(broken))
    assert refused.exit_code == 1 and "definition.steps.0" in refused.output
    first.write_text(first.read_text().replace("Reimage the host", "Reimage the host and rotate its keys"))
    assert "version 2" in vigil.ok("playbook", "edit", "Malware", "--file", str(first), "--comment", "keys").output
    assert "keys" in vigil.ok("playbook", "versions", "Malware").output
    with world.database.transaction(Scope.system()) as session:
        ref = incidents.open_incident(as_user(session, world, "analyst"), data=IncidentCreate(
            title="Emotet on pc-17", type="malware", severity="P2")).ref
    ran = vigil.ok("playbook", "run", "Malware", "--incident", ref)
    assert "v2" in ran.output and "succeeded" in ran.output and "create_task: succeeded" in ran.output
