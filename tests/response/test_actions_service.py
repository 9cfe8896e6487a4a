"""Response actions on SQLite and PostgreSQL: a block_ip command template run as an argument list, hostile
targets refused before anything runs, HTTP actions checked by a local endpoint, approval by a second person,
rollback after the TTL, failures recorded with their output, secrets never read back."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select
from tests.conftest import World, cli_context

from vigil.core import audit
from vigil.core.audit import AuditRecord
from vigil.core.auth import Role
from vigil.core.context import Context
from vigil.core.db import Scope, utcnow
from vigil.core.errors import BadInput, Conflict, InvalidTransition, PermissionDenied
from vigil.incidents import activity
from vigil.incidents import service as incidents
from vigil.incidents.schemas import IncidentCreate
from vigil.response.actions import executions, service
from vigil.response.actions.models import ActionExecution
from vigil.response.actions.schemas import ActionCreate, ExecutionCreate

from .action_endpoints import endpoint, failing_script, firewall_script

TOKEN = "api-token-5d1c"


def as_user(session: object, world: World, name: str) -> Context:
    ctx = cli_context(session)
    return Context(session=ctx.session, actor=audit.Actor(world.users[name], name, world.hq))


def add_action(world: World, **fields: object) -> int:
    with world.database.transaction(Scope.system()) as session:
        data = ActionCreate.model_validate({"name": "Edge firewall", "kind": "block_ip", **fields})
        return service.create_action(cli_context(session), data=data).id


def request(world: World, user: str, action_id: int, target: str, **extra: object) -> ActionExecution:
    with world.database.transaction(Scope.system()) as session:
        execution = executions.request_execution(
            as_user(session, world, user), data=ExecutionCreate(action_id=action_id, target=target, **extra))
        session.refresh(execution)
        return execution


def script_action(world: World, tmp_path: Path, **fields: object) -> tuple[int, Path]:
    script, log = firewall_script(tmp_path)
    config = {"mode": "command", "command": [str(script), "add", "element", "inet", "filter", "blocklist", "{ip}"],
              "undo_command": [str(script), "delete", "element", "inet", "filter", "blocklist", "{ip}"]}
    return add_action(world, **{"config": config, "requires_approval": False, **fields}), log


def audit_rows(world: World) -> list[tuple[str, str, dict[str, object]]]:
    with world.database.transaction(Scope.system()) as session:
        rows = session.scalars(select(AuditRecord).where(AuditRecord.action.like("response.%"))
                               .order_by(AuditRecord.id)).all()
        return [(r.action, r.outcome, r.details) for r in rows]


def test_block_ip_runs_the_template_as_an_argument_list(world: World, tmp_path: Path) -> None:
    action_id, log = script_action(world, tmp_path)
    execution = request(world, "responder", action_id, " 203.0.113.7 ", reason="C2 beacon")
    assert execution.status == "succeeded" and execution.exit_code == 0
    assert log.read_text() == "add|element|inet|filter|blocklist|203.0.113.7\n"  # one argument per template item
    assert "rule changed" in execution.output
    assert [step["phase"] for step in execution.steps] == ["do"]
    assert ("response.execution.run", "success") in [(a, o) for a, o, _ in audit_rows(world)]


@pytest.mark.parametrize("hostile", ["1.2.3.4; rm -rf /", "$(id)", "1.2.3.4 --flush", "`id`", "127.0.0.1",
                                     "10.1.2.3"])
def test_a_hostile_target_is_refused_before_anything_runs(world: World, tmp_path: Path, hostile: str) -> None:
    action_id, log = script_action(world, tmp_path, config={
        "mode": "command", "command": [str(firewall_script(tmp_path)[0]), "add", "{ip}"],
        "protected_networks": "10.0.0.0/8"})
    with pytest.raises(BadInput) as refused:
        request(world, "responder", action_id, hostile)
    assert refused.value.extra["errors"][0]["field"] == "target"
    assert not log.exists()
    with world.database.transaction(Scope.system()) as session:
        assert session.scalar(select(func.count()).select_from(ActionExecution)) == 0


def test_a_dry_run_shows_the_exact_command_and_runs_nothing(world: World, tmp_path: Path) -> None:
    action_id, log = script_action(world, tmp_path)
    with world.database.transaction(Scope.system()) as session:
        shown = service.dry_run(as_user(session, world, "responder"), action_id=action_id, target="2001:db8::1")
    assert shown.steps == [f"{tmp_path}/fake-nft add element inet filter blocklist 2001:db8::1"]
    assert shown.undo_steps == [f"{tmp_path}/fake-nft delete element inet filter blocklist 2001:db8::1"]
    assert not log.exists()
    with world.database.transaction(Scope.system()) as session:
        assert session.scalar(select(func.count()).select_from(ActionExecution)) == 0
    assert audit_rows(world)[-1][0] == "response.execution.dry_run"


def test_approval_by_another_person_then_it_runs(world: World, tmp_path: Path) -> None:
    world.add_user("responder2", Role.RESPONDER, world.hq, token=False)
    script, log = firewall_script(tmp_path)
    action_id = add_action(world, config={"mode": "command", "command": [str(script), "add", "{ip}"]},
                           requires_approval=True)
    execution = request(world, "responder", action_id, "198.51.100.9")
    assert execution.status == "awaiting_approval" and not log.exists()
    with world.database.transaction(Scope.system()) as session, pytest.raises(PermissionDenied):
        executions.approve_execution(as_user(session, world, "responder"), execution_id=execution.id)
    assert not log.exists()
    with world.database.transaction(Scope.system()) as session:
        done = executions.approve_execution(as_user(session, world, "responder2"), execution_id=execution.id,
                                            comment="confirmed C2")
        assert (done.status, done.approved_by) == ("succeeded", "responder2")
    assert log.read_text() == "add|198.51.100.9\n"
    with world.database.transaction(Scope.system()) as session, pytest.raises(InvalidTransition):
        executions.approve_execution(as_user(session, world, "responder2"), execution_id=execution.id)
    actions = [a for a, _, _ in audit_rows(world)]
    assert actions[-3:] == ["response.execution.request", "response.execution.approve", "response.execution.run"]


def test_a_rejected_run_never_runs(world: World, tmp_path: Path) -> None:
    script, log = firewall_script(tmp_path)
    action_id = add_action(world, config={"mode": "command", "command": [str(script), "add", "{ip}"]})
    execution = request(world, "analyst", action_id, "198.51.100.9")
    with world.database.transaction(Scope.system()) as session:
        rejected = executions.reject_execution(as_user(session, world, "responder"), execution_id=execution.id,
                                               comment="a customer's address")
        assert rejected.status == "rejected"
    assert not log.exists()


def test_rollback_runs_when_the_ttl_has_passed(world: World, tmp_path: Path) -> None:
    action_id, log = script_action(world, tmp_path, rollback_after_seconds=600)
    execution = request(world, "responder", action_id, "203.0.113.7")
    assert execution.rollback_due_at is not None
    assert executions.tick(world.database, now=utcnow() + timedelta(seconds=300)) == []
    assert executions.tick(world.database, now=utcnow() + timedelta(seconds=601)) == [execution.id]
    assert log.read_text().splitlines() == ["add|element|inet|filter|blocklist|203.0.113.7",
                                            "delete|element|inet|filter|blocklist|203.0.113.7"]
    with world.database.transaction(Scope.system()) as session:
        done = executions.get_execution(session, execution.id)
        assert done.status == "rolled_back" and done.rolled_back_at is not None
        assert [step["phase"] for step in done.steps] == ["do", "undo"]
    assert executions.tick(world.database, now=utcnow() + timedelta(days=1)) == []  # once only
    assert audit_rows(world)[-1][0] == "response.execution.rollback"


def test_a_failing_command_is_recorded_with_its_output(world: World, tmp_path: Path) -> None:
    action_id = add_action(world, requires_approval=False, rollback_after_seconds=60,
                           config={"mode": "command", "command": [str(failing_script(tmp_path)), "add", "{ip}"]})
    execution = request(world, "responder", action_id, "203.0.113.7")
    assert (execution.status, execution.exit_code) == ("failed", 1)
    assert "Could not process rule" in execution.output
    assert execution.rollback_due_at is None
    assert ("response.execution.run", "failure") in [(a, o) for a, o, _ in audit_rows(world)]


def test_block_ip_through_a_firewall_api_and_its_rollback(world: World) -> None:
    with endpoint(TOKEN) as firewall:
        action_id = add_action(world, requires_approval=False, rollback_after_seconds=60, config={
            "mode": "http", "url": f"{firewall.url}/api/blocklist", "undo_url": f"{firewall.url}/api/blocklist/remove",
            "undo_method": "POST", "token": TOKEN})
        execution = request(world, "responder", action_id, "203.0.113.7", reason="scanner")
        assert (execution.status, execution.http_status) == ("succeeded", 200)
        executions.tick(world.database, now=utcnow() + timedelta(seconds=61))
    first, second = firewall.received
    assert (first.method, first.path, first.body) == ("POST", "/api/blocklist",
                                                      {"ip": "203.0.113.7", "action": "block", "reason": "scanner"})
    assert (second.path, second.body["action"]) == ("/api/blocklist/remove", "unblock")
    assert TOKEN not in orjson.dumps(audit_rows(world)).decode()
    assert TOKEN not in execution.output and all(TOKEN not in step["describe"] for step in execution.steps)


def test_disable_account_and_isolate_host_call_their_webhooks(world: World) -> None:
    with endpoint(TOKEN) as bridge:
        account = add_action(world, name="AD bridge", kind="disable_account", requires_approval=False,
                             config={"url": f"{bridge.url}/accounts/disable", "token": TOKEN})
        edr = add_action(world, name="EDR", kind="isolate_host", requires_approval=False,
                         config={"url": f"{bridge.url}/edr/isolate", "token": TOKEN})
        assert request(world, "responder", account, "zhang.wei@corp.example").status == "succeeded"
        assert request(world, "responder", edr, "web01.corp.example").status == "succeeded"
        with pytest.raises(BadInput):
            request(world, "responder", account, "bob; drop table users")
    assert [(r.path, r.body) for r in bridge.received] == [
        ("/accounts/disable", {"account": "zhang.wei@corp.example", "action": "disable"}),
        ("/edr/isolate", {"host": "web01.corp.example", "action": "isolate"})]


def test_a_failing_endpoint_is_recorded_as_failed_with_its_answer(world: World) -> None:
    with endpoint(TOKEN) as edr:
        edr.failing = True
        action_id = add_action(world, name="EDR", kind="isolate_host", requires_approval=False,
                               config={"url": f"{edr.url}/isolate", "token": TOKEN})
        execution = request(world, "responder", action_id, "web01")
    assert (execution.status, execution.http_status) == ("failed", 500)
    assert "rule table locked" in execution.output


def test_run_script_checks_its_argument(world: World, tmp_path: Path) -> None:
    script, log = firewall_script(tmp_path)
    action_id = add_action(world, name="Quarantine mailbox", kind="run_script", requires_approval=False,
                           config={"command": [str(script), "quarantine", "--mailbox", "{target}"],
                                   "timeout_seconds": 5})
    assert request(world, "responder", action_id, "li.na@corp.example").status == "succeeded"
    for hostile in ("--all", "a b", "$(id)"):
        with pytest.raises(BadInput):
            request(world, "responder", action_id, hostile)
    assert log.read_text() == "quarantine|--mailbox|li.na@corp.example\n"


def test_a_configuration_is_checked_and_its_secret_never_read_back(world: World) -> None:
    with world.database.transaction(Scope.system()) as session:
        for bad in ({"mode": "command"}, {"mode": "command", "command": "nft add {ip} {cmd}"},
                    {"mode": "command", "command": "nft add element {ip}"}, {"mode": "http"}):
            with pytest.raises(BadInput):
                service.create_action(cli_context(session), data=ActionCreate(name="x", kind="block_ip", config=bad))
        with pytest.raises(BadInput):
            service.create_action(cli_context(session), data=ActionCreate(name="x", kind="nope"))
    action_id = add_action(world, config={"mode": "http", "url": "https://fw.example/api", "token": TOKEN})
    with world.database.transaction(Scope.system()) as session:
        read = service.action_read(service.get_action(session, action_id))
    assert read.secrets == {"token": "set"} and TOKEN not in read.model_dump_json()
    with world.database.transaction(Scope.system()) as session, pytest.raises(Conflict):
        service.create_action(cli_context(session), data=ActionCreate(name="Edge firewall", kind="block_ip",
                                                                       config={"mode": "http", "url": "https://x"}))


def test_the_built_in_kinds_load_through_the_plugin_path() -> None:
    assert {"block_ip", "disable_account", "isolate_host", "run_script"} <= set(service.actions())


def test_a_run_for_an_incident_belongs_to_the_incidents_unit(world: World, tmp_path: Path) -> None:
    action_id, _log = script_action(world, tmp_path)  # an action of headquarters
    with world.database.transaction(Scope.system()) as session:
        incident = incidents.open_incident(cli_context(session), data=IncidentCreate(
            title="Phishing in Payments", type="phishing", severity="P2", unit_id=world.line_a))
        incident_id = incident.id
    execution = request(world, "responder", action_id, "203.0.113.8", incident_id=incident_id)
    assert (execution.unit_id, execution.status) == (world.line_a, "succeeded")
    with world.database.transaction(Scope.system()) as session:
        summaries = [entry.summary for entry in activity.timeline_of(session, incident_id)]
    assert summaries[-2:] == ["Response action requested: Edge firewall on 203.0.113.8",
                              "Response action succeeded: Edge firewall on 203.0.113.8"]
