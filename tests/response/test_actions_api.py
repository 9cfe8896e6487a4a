"""The response-action and playbook API: configure (security administrator), run, approve, reject and roll back
(responders; never one's own request), dry-run, versions; secrets never in a reply; refusals as problem+json.

The ``fresh_*`` helpers make records for the role matrix and the unit-scope test."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from tests.conftest import World
from tests.incidents.test_incidents_api import fresh_incident_id

from vigil.core.auth import Role
from vigil.core.db import Scope
from vigil.response.actions.models import ActionConfig, ActionExecution
from vigil.response.playbooks.models import Playbook, PlaybookRun, PlaybookStepResult, PlaybookVersion

from .action_endpoints import endpoint, firewall_script

TOKEN = "api-token-5d1c"
TRUE = "/bin/true"


def fresh_action_id(world: Any, unit_id: int | None = None, *, approval: bool = True) -> int:
    """A block_ip action of ``unit_id`` (default line_a, below branch_a) running /bin/true, with an undo."""
    with world.database.transaction(Scope.system()) as session:
        row = ActionConfig(unit_id=unit_id or world.line_a, name=f"matrix-{uuid.uuid4().hex[:12]}", kind="block_ip",
                           config={"mode": "command", "command": [TRUE, "{ip}"], "undo_command": [TRUE, "{ip}"],
                                   "timeout_seconds": 10},
                           requires_approval=approval, rollback_after_seconds=600, created_by="tests",
                           updated_by="tests")
        session.add(row)
        session.flush()
        return row.id


def fresh_execution_id(world: Any, unit_id: int | None = None, *, status: str = "awaiting_approval") -> int:
    """An execution of a fresh action, requested by the system (so any responder may decide it)."""
    action_id = fresh_action_id(world, unit_id)
    with world.database.transaction(Scope.system()) as session:
        row = ActionExecution(unit_id=unit_id or world.line_a, action_id=action_id, action_name="matrix",
                              action_kind="block_ip", target="192.0.2.10", parameters={}, status=status,
                              requested_by="vigil", steps=[])
        session.add(row)
        session.flush()
        return row.id


def fresh_playbook_id(world: Any, unit_id: int | None = None) -> int:
    with world.database.transaction(Scope.system()) as session:
        # Disabled: it runs only by hand, never on the incidents other rows open.
        row = Playbook(unit_id=unit_id or world.line_a, name=f"matrix-{uuid.uuid4().hex[:12]}", version=1,
                       enabled=False, created_by="tests", updated_by="tests")
        session.add(row)
        session.flush()
        session.add(PlaybookVersion(playbook_id=row.id, version=1, created_by="tests", definition={
            "trigger": {"on": ["opened"]}, "steps": [{"kind": "create_task", "title": "Matrix task",
                                                      "requires_approval": True}]}))
        return row.id


def fresh_run_id(world: Any, unit_id: int | None = None) -> int:
    """A run of a fresh playbook on a fresh incident, waiting for approval of its one step (started by the
    system, so any responder may decide it)."""
    playbook_id = fresh_playbook_id(world, unit_id)
    incident_id = fresh_incident_id(world, unit_id)
    with world.database.transaction(Scope.system()) as session:
        run = PlaybookRun(unit_id=unit_id or world.line_a, playbook_id=playbook_id, playbook_name="matrix", version=1,
                          incident_id=incident_id, trigger="incident_opened", status="awaiting_approval",
                          started_by="vigil")
        session.add(run)
        session.flush()
        session.add(PlaybookStepResult(run_id=run.id, position=0, kind="create_task", status="awaiting_approval"))
        return run.id


def playbook_body(action_id: int, name: str = "Block the attacker") -> dict[str, Any]:
    return {"name": name, "definition": {
        "trigger": {"incident_types": ["intrusion"], "min_severity": "P2"},
        "steps": [{"kind": "act", "action_id": action_id, "target": "{observable.ipv4}", "requires_approval": True},
                  {"kind": "create_task", "title": "Check the block", "phase": "contain"}]}}


def test_actions_are_configured_by_the_security_administrator_and_run_by_responders(
        world: World, client: TestClient, tmp_path: Path) -> None:
    world.add_user("responder2", Role.RESPONDER, world.hq)
    script, log = firewall_script(tmp_path)
    sec = world.headers("secadmin")
    created = client.post("/api/v1/response-actions", headers=sec, json={
        "name": "Edge firewall", "kind": "block_ip", "rollback_after_seconds": 3600,
        "config": {"mode": "command", "command": f"{script} add element inet filter bl {{ip}}",
                   "undo_command": [str(script), "delete", "{ip}"]}})
    assert created.status_code == 201, created.text
    action = created.json()
    assert action["reversible"] is True and action["settings"]["command"][-1] == "{ip}"
    assert client.post("/api/v1/action-executions", headers=sec, json={
        "action_id": action["id"], "target": "203.0.113.5"}).status_code == 403  # configures, never fires

    dry = client.post(f"/api/v1/response-actions/{action['id']}/dry-run", headers=sec, json={"target": "203.0.113.5"})
    assert dry.status_code == 200 and dry.json()["steps"] == [f"{script} add element inet filter bl 203.0.113.5"]
    responder = world.headers("responder")
    dry = client.post("/api/v1/action-executions", headers=responder,
                      json={"action_id": action["id"], "target": "203.0.113.5", "dry_run": True})
    assert dry.status_code == 200 and dry.json()["undo_steps"] == [f"{script} delete 203.0.113.5"]
    assert not log.exists()

    hostile = client.post("/api/v1/action-executions", headers=responder,
                          json={"action_id": action["id"], "target": "1.2.3.4; rm -rf /"})
    assert hostile.status_code == 422 and hostile.json()["errors"][0]["field"] == "target"

    asked = client.post("/api/v1/action-executions", headers=responder,
                        json={"action_id": action["id"], "target": "203.0.113.5", "reason": "C2"})
    assert asked.status_code == 201 and asked.json()["status"] == "awaiting_approval"
    execution_id = asked.json()["id"]
    own = client.post(f"/api/v1/action-executions/{execution_id}/approve", headers=responder, json={})
    assert own.status_code == 403 and own.headers["content-type"] == "application/problem+json"
    approved = client.post(f"/api/v1/action-executions/{execution_id}/approve", headers=world.headers("responder2"),
                           json={"comment": "confirmed"})
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["approved_by"]) == ("succeeded", "responder2")
    again = client.post(f"/api/v1/action-executions/{execution_id}/approve", headers=world.headers("responder2"),
                        json={})
    assert again.status_code == 409
    rolled = client.post(f"/api/v1/action-executions/{execution_id}/rollback", headers=responder)
    assert rolled.status_code == 200 and rolled.json()["status"] == "rolled_back"
    assert log.read_text().splitlines() == ["add|element|inet|filter|bl|203.0.113.5", "delete|203.0.113.5"]
    listed = client.get("/api/v1/action-executions", headers=responder, params={"status": "rolled_back"}).json()
    assert [item["id"] for item in listed["items"]] == [execution_id]


def test_a_token_is_never_read_back(world: World, client: TestClient) -> None:
    with endpoint(TOKEN) as edr:
        sec = world.headers("secadmin")
        created = client.post("/api/v1/response-actions", headers=sec, json={
            "name": "EDR", "kind": "isolate_host", "requires_approval": False,
            "config": {"url": f"{edr.url}/isolate", "token": TOKEN}}).json()
        assert created["secrets"] == {"token": "set"} and TOKEN not in str(created)
        dry = client.post(f"/api/v1/response-actions/{created['id']}/dry-run", headers=sec, json={"target": "web01"})
        assert TOKEN not in dry.text and "Authorization: ***" in dry.json()["steps"][0]
        ran = client.post("/api/v1/action-executions", headers=world.headers("responder"),
                          json={"action_id": created["id"], "target": "web01"})
        assert ran.json()["status"] == "succeeded" and TOKEN not in ran.text
        kept = client.patch(f"/api/v1/response-actions/{created['id']}", headers=sec,
                            json={"config": {"token": ""}, "description": "EDR of the data centre"})
        assert kept.json()["secrets"] == {"token": "set"}
    assert edr.received[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_playbooks_are_versioned_and_a_run_waits_for_another_persons_approval(
        world: World, client: TestClient, tmp_path: Path) -> None:
    world.add_user("responder2", Role.RESPONDER, world.hq)
    script, log = firewall_script(tmp_path)
    sec = world.headers("secadmin")
    action = client.post("/api/v1/response-actions", headers=sec, json={
        "name": "Edge firewall", "kind": "block_ip", "requires_approval": False,
        "config": {"mode": "command", "command": [str(script), "add", "{ip}"]}}).json()
    created = client.post("/api/v1/playbooks", headers=sec, json=playbook_body(action["id"]))
    assert created.status_code == 201, created.text
    playbook = created.json()
    bad = client.post("/api/v1/playbooks", headers=sec, json={**playbook_body(987654), "name": "other"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "definition.steps.0"
    edited = client.patch(f"/api/v1/playbooks/{playbook['id']}", headers=sec, json={
        "definition": {**playbook_body(action["id"])["definition"], "trigger": {"min_severity": "P1"}},
        "comment": "only P1"})
    assert edited.json()["version"] == 2
    versions = client.get(f"/api/v1/playbooks/{playbook['id']}/versions", headers=sec).json()
    assert [(v["version"], v["comment"]) for v in versions["items"]] == [(2, "only P1"), (1, "created")]

    analyst = world.headers("analyst")
    incident = client.post("/api/v1/incidents", headers=analyst, json={
        "title": "Brute force from 203.0.113.80", "type": "intrusion", "severity": "P1"}).json()
    client.post(f"/api/v1/incidents/{incident['id']}/observables", headers=analyst, json={"value": "203.0.113.80"})
    started = client.post(f"/api/v1/playbooks/{playbook['id']}/runs", headers=world.headers("responder"),
                          json={"incident_id": incident["id"]})
    assert started.status_code == 201, started.text
    run = started.json()
    assert (run["status"], run["version"], run["steps"][0]["status"]) == ("awaiting_approval", 2,
                                                                          "awaiting_approval")
    own = client.post(f"/api/v1/playbook-runs/{run['id']}/approve", headers=world.headers("responder"), json={})
    assert own.status_code == 403
    approved = client.post(f"/api/v1/playbook-runs/{run['id']}/approve", headers=world.headers("responder2"),
                           json={"comment": "go"}).json()
    assert approved["status"] == "succeeded"
    assert [s["status"] for s in approved["steps"]] == ["succeeded", "succeeded"]
    assert log.read_text() == "add|203.0.113.80\n"
    direct = client.post(f"/api/v1/action-executions/{approved['steps'][0]['execution_ids'][0]}/approve",
                         headers=world.headers("responder2"), json={})
    assert direct.status_code == 409
