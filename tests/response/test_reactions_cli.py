"""An incident opened from the shell is treated as one opened in the server: the P1 paging pages the responder
in DingTalk (a local robot checking the format and signature), the intrusion playbook blocks the attacker
(a stand-in firewall script), and the escalation is in the store for the server's timeouts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.conftest import World, cli_context
from tests.response import platforms
from tests.response.action_endpoints import firewall_script
from typer.testing import CliRunner

from vigil.cli.main import app
from vigil.core.db import Scope
from vigil.detection.models import Alert
from vigil.response import oncall_service, paging_service
from vigil.response.actions import service as actions
from vigil.response.actions.schemas import ActionCreate
from vigil.response.notifications.models import NotificationChannel
from vigil.response.oncall_models import Escalation
from vigil.response.oncall_schemas import LevelIn, PolicyCreate, TargetIn
from vigil.response.playbooks import service as playbooks
from vigil.response.playbooks.schemas import PlaybookCreate

TOKEN, SECRET = "cli-robot-token", "SECcli-secret"
ATTACKER = "198.51.100.23"


@pytest.fixture
def robot() -> Iterator[platforms.Platform]:
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as platform:
        yield platform


def configure(world: World, robot_url: str, script: Path) -> int:
    """P1 paging to the responder through the robot; an intrusion playbook blocking alerts' source addresses;
    one critical alert from the attacker. Returns the alert's id."""
    with world.database.transaction(Scope.system()) as session:
        ctx = cli_context(session)
        channel = NotificationChannel(unit_id=world.hq, name="SOC DingTalk", kind="dingtalk", language="en",
                                      enabled=True, max_attempts=2,
                                      config={"url": robot_url + "/robot/send", "access_token": TOKEN,
                                              "secret": SECRET})
        session.add(channel)
        session.flush()
        policy = oncall_service.create_policy(ctx, data=PolicyCreate(name="P1 paging", levels=[LevelIn(
            timeout_minutes=10, targets=[TargetIn(kind="user", id=world.users["responder"])],
            channel_ids=[channel.id])]))
        paging_service.set_rule(ctx, severity="P1", data=paging_service.PagingSet(policy_id=policy.id,
                                                                                 channel_ids=[channel.id]))
        action = actions.create_action(ctx, data=ActionCreate(
            name="Edge firewall", kind="block_ip", requires_approval=False,
            config={"mode": "command", "command": [str(script), "add", "{ip}"]}))
        playbooks.create_playbook(ctx, data=PlaybookCreate.model_validate({
            "name": "Intrusion containment", "definition": {
                "trigger": {"incident_types": ["intrusion"], "min_severity": "P1"},
                "steps": [{"kind": "act", "action_id": action.id, "target": "{alert.source_ip}"}]}}))
        now = datetime.now(UTC)
        alert = Alert(unit_id=world.hq, rule_uid="win-mimikatz", title="Mimikatz on WS-FIN-07", level="critical",
                      dedup_key="cli-reactions", first_seen=now, last_seen=now, host="WS-FIN-07",
                      source_ip=ATTACKER, event={})
        session.add(alert)
        session.flush()
        return alert.id


def test_escalating_alerts_from_the_shell_pages_and_runs_the_playbook(
        world: World, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        robot: platforms.Platform) -> None:
    script, calls = firewall_script(tmp_path)
    alert_id = configure(world, robot.url, script)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["incident", "escalate", str(alert_id), "--type", "intrusion",
                                      "--severity", "P1"],
                                env={"VIGIL_DATABASE_URL": database_url, "VIGIL_DATA_DIR": str(tmp_path / "var"),
                                     "VIGIL_NOTIFY_RETRY_SECONDS": "0"})
    assert result.exit_code == 0, result.output
    titles = [r.json()["markdown"]["title"] for r in robot.received]
    texts = [r.json()["markdown"]["text"] for r in robot.received]
    assert len(robot.received) == 2 and "Incident opened" in titles[0]
    assert "@responder" in texts[1] and "Mimikatz on WS-FIN-07" in texts[1]
    assert calls.read_text() == f"add|{ATTACKER}\n"
    with world.database.transaction(Scope.system()) as session:
        escalation = session.scalar(select(Escalation))
        assert escalation is not None and escalation.status == "active"  # the server's tick takes it on


def test_a_command_that_changes_no_incident_sends_nothing(world: World, database_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           robot: platforms.Platform) -> None:
    script, calls = firewall_script(tmp_path)
    configure(world, robot.url, script)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["incident", "create", "--title", "Lost laptop", "--type", "other",
                                      "--severity", "P3"],
                                env={"VIGIL_DATABASE_URL": database_url, "VIGIL_DATA_DIR": str(tmp_path / "var")})
    assert result.exit_code == 0, result.output
    assert robot.received == [] and not calls.exists()
