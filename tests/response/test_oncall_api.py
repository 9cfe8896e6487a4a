"""/api/v1/oncall, /api/v1/escalation-policies, /api/v1/escalations and the signed link /ack/{token}: what a
responder, a viewer and another branch's user get; bad input refused whole; every change audited."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from tests.conftest import World, cli_context
from tests.web.support import audit_actions

from vigil.core.auth import Role
from vigil.core.db import Scope
from vigil.response import escalation as engine
from vigil.response import oncall_service
from vigil.response.escalation import Recipient
from vigil.response.oncall_runtime import EscalationRunner
from vigil.response.oncall_schemas import LayerIn, LevelIn, OverrideCreate, PolicyCreate, ScheduleCreate, TargetIn

TODAY = datetime.now(UTC).date()


@dataclass
class Inbox:
    name: str = "test-inbox"
    sent: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, user: Recipient, message_kind: str, title: str, body: str, ack_url: str) -> None:
        self.sent.append((user.username, message_kind, ack_url))


def schedule_body(world: World, **extra: Any) -> dict[str, Any]:
    return {"name": "SOC primary", "time_zone": "Europe/Berlin", "layers": [
        {"name": "primary", "participants": [world.users["responder"], world.users["analyst"]], "rotation": "daily",
         "handoff": "00:00", "start": (TODAY - timedelta(days=10)).isoformat()}], **extra}


def make_schedule(client: TestClient, world: World) -> dict[str, Any]:
    answer = client.post("/api/v1/oncall/schedules", json=schedule_body(world), headers=world.headers("responder"))
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_schedules_overrides_and_who_is_on_call(client: TestClient, world: World) -> None:
    responder, viewer = world.headers("responder"), world.headers("viewer")
    schedule = make_schedule(client, world)
    sid = schedule["id"]
    assert schedule["layers"][0]["handoff"] == "00:00:00" and schedule["unit_id"] == world.hq

    now = client.get(f"/api/v1/oncall/schedules/{sid}/now", headers=viewer).json()
    assert now["shift"]["username"] in {"responder", "analyst"}
    on_duty = now["shift"]["username"]
    shifts = client.get(f"/api/v1/oncall/schedules/{sid}/shifts", headers=viewer).json()
    assert shifts["total"] in (14, 15)  # daily hand-offs over two weeks, the first one cut at now
    assert [s["username"] for s in shifts["items"][:3]] == [on_duty, *(
        ["analyst", "responder"] if on_duty == "responder" else ["responder", "analyst"])]

    # The viewer stands in for the next two hours.
    start = datetime.now(UTC) - timedelta(minutes=1)
    answer = client.post(f"/api/v1/oncall/schedules/{sid}/overrides", headers=responder, json={
        "user_id": world.users["viewer"], "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(), "note": "swap"})
    assert answer.status_code == 201, answer.text
    override_id = answer.json()["id"]
    now = client.get("/api/v1/oncall/now", headers=viewer).json()
    assert [(o["schedule_name"], o["shift"]["username"], o["shift"]["layer"]) for o in now["items"]] == [
        ("SOC primary", "viewer", "override")]
    later = client.get(f"/api/v1/oncall/schedules/{sid}/now", headers=viewer,
                       params={"at": (start + timedelta(hours=3)).isoformat()}).json()
    assert later["shift"]["layer"] == "primary"
    assert client.delete(f"/api/v1/oncall/schedules/{sid}/overrides/{override_id}",
                         headers=responder).status_code == 204
    assert client.get(f"/api/v1/oncall/schedules/{sid}/now", headers=viewer).json()["shift"]["username"] == on_duty

    # Layers replaced: only the analyst now.
    layer = {**schedule_body(world)["layers"][0], "participants": [world.users["analyst"]]}
    answer = client.put(f"/api/v1/oncall/schedules/{sid}/layers", headers=responder, json=[layer])
    assert answer.status_code == 200, answer.text
    assert client.get(f"/api/v1/oncall/schedules/{sid}/now", headers=viewer).json()["shift"]["username"] == "analyst"
    assert client.patch(f"/api/v1/oncall/schedules/{sid}", headers=responder,
                        json={"time_zone": "Asia/Shanghai"}).json()["time_zone"] == "Asia/Shanghai"
    actions = [r.action for r in audit_actions(world.database) if r.action.startswith("oncall.")]
    assert actions == ["oncall.schedule.create", "oncall.override.create", "oncall.override.delete",
                       "oncall.schedule.update", "oncall.schedule.update"]


def test_bad_schedule_input_is_refused_whole(client: TestClient, world: World) -> None:
    responder = world.headers("responder")
    cases = [
        (schedule_body(world, time_zone="Mars/Olympus"), "time_zone"),
        (schedule_body(world, layers=[{**schedule_body(world)["layers"][0], "participants": [999999]}]), "999999"),
        (schedule_body(world, layers=[{**schedule_body(world)["layers"][0], "rotation": "monthly"}]), "rotation"),
        (schedule_body(world, layers=[{**schedule_body(world)["layers"][0],
                                       "restrictions": [{"days": [8], "start": "09:00", "end": "18:00"}]}]), "days"),
    ]
    for body, mentioned in cases:
        answer = client.post("/api/v1/oncall/schedules", json=body, headers=responder)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert mentioned in answer.text
    assert client.get("/api/v1/oncall/schedules", headers=responder).json()["total"] == 0
    sid = make_schedule(client, world)["id"]
    assert client.post("/api/v1/oncall/schedules", json=schedule_body(world), headers=responder).status_code == 409
    start = datetime.now(UTC)
    answer = client.post(f"/api/v1/oncall/schedules/{sid}/overrides", headers=responder, json={
        "user_id": world.users["viewer"], "starts_at": start.isoformat(), "ends_at": start.isoformat()})
    assert answer.status_code == 422
    answer = client.get(f"/api/v1/oncall/schedules/{sid}/shifts", headers=responder,
                        params={"start": start.isoformat(), "end": (start + timedelta(days=200)).isoformat()})
    assert answer.status_code == 422 and "92 days" in answer.text


def test_permissions_and_unit_scope(client: TestClient, world: World) -> None:
    sid = make_schedule(client, world)["id"]
    body = schedule_body(world, name="other")
    assert client.post("/api/v1/oncall/schedules", json=body, headers=world.headers("viewer")).status_code == 403
    assert client.post("/api/v1/oncall/schedules", json=body, headers=world.headers("secadmin")).status_code == 403
    assert client.get("/api/v1/oncall/schedules", headers=world.headers("sysadmin")).status_code == 403
    # A viewer of the Beijing branch sees nothing of headquarters' rota.
    staff_b = world.headers("staff_b")
    assert client.get("/api/v1/oncall/schedules", headers=staff_b).json()["total"] == 0
    assert client.get(f"/api/v1/oncall/schedules/{sid}", headers=staff_b).status_code == 404
    assert client.get(f"/api/v1/oncall/schedules/{sid}/now", headers=staff_b).status_code == 404
    assert client.get("/api/v1/oncall/now", headers=staff_b).json()["items"] == []


def test_a_schedule_paged_by_another_units_policy_cannot_be_deleted(client: TestClient, world: World) -> None:
    world.add_user("analyst_a", Role.ANALYST, world.branch_a)
    schedule_id = fresh_schedule_id(world, world.branch_a)
    fresh = fresh_policy_id(world)  # headquarters' policy, paging nobody yet
    answer = client.patch(f"/api/v1/escalation-policies/{fresh}", headers=world.headers("responder"), json={
        "levels": [{"timeout_minutes": 5, "targets": [{"kind": "schedule", "id": schedule_id}]}]})
    assert answer.status_code == 200, answer.text
    refused = client.delete(f"/api/v1/oncall/schedules/{schedule_id}", headers=world.headers("analyst_a"))
    assert refused.status_code == 409 and "1 outside your units" in refused.json()["detail"]
    assert client.get(f"/api/v1/oncall/schedules/{schedule_id}", headers=world.headers("analyst_a")).status_code == 200


def test_policy_escalation_and_acknowledgement(client: TestClient, world: World) -> None:
    inbox = Inbox()
    client.app.state.escalations.notify = inbox  # type: ignore[attr-defined]
    responder = world.headers("responder")
    sid = make_schedule(client, world)["id"]
    answer = client.post("/api/v1/escalation-policies", headers=responder, json={
        "name": "P1", "repeat": 1, "levels": [
            {"timeout_minutes": 5, "targets": [{"kind": "schedule", "id": sid}]},
            {"timeout_minutes": 10, "targets": [{"kind": "user", "id": world.users["viewer"]}]}]})
    assert answer.status_code == 201, answer.text
    pid = answer.json()["id"]
    bad = client.post("/api/v1/escalation-policies", headers=responder, json={
        "name": "broken", "levels": [{"timeout_minutes": 5, "targets": [{"kind": "schedule", "id": 4242}]}]})
    assert bad.status_code == 422 and "4242" in bad.text
    assert client.delete(f"/api/v1/oncall/schedules/{sid}", headers=responder).status_code == 409

    answer = client.post("/api/v1/escalations", headers=responder,
                         json={"incident_id": 17, "title": "Webshell on portal", "severity": "P1", "policy_id": pid})
    assert answer.status_code == 201, answer.text
    escalation = answer.json()
    assert escalation["status"] == "active" and escalation["level"] == 0
    assert [s["kind"] for s in escalation["steps"]] == ["started", "level", "notified"]
    assert escalation["steps"][2]["channel"] == "test-inbox"
    assert len(inbox.sent) == 1 and inbox.sent[0][1] == "page"
    eid = escalation["id"]
    listed = client.get("/api/v1/escalations", headers=world.headers("viewer"), params={"status": "active"}).json()
    assert [e["id"] for e in listed["items"]] == [eid]
    assert client.get(f"/api/v1/escalations/{eid}", headers=world.headers("staff_b")).status_code == 404
    assert client.post(f"/api/v1/escalations/{eid}/acknowledge", headers=world.headers("viewer")).status_code == 403

    answer = client.post(f"/api/v1/escalations/{eid}/acknowledge", headers=responder, json={"note": "on it"})
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert (done["status"], done["acknowledged_by"], done["acknowledged_via"]) == ("acknowledged", "responder", "api")
    again = client.post(f"/api/v1/escalations/{eid}/acknowledge", headers=responder)
    assert again.status_code == 409 and "acknowledged by responder" in again.json()["detail"]
    actions = {r.action for r in audit_actions(world.database)}
    assert {"escalation.policy.create", "escalation.start", "escalation.acknowledge"} <= actions


def test_signed_link_works_without_a_session_and_refuses_tampering(client: TestClient, world: World) -> None:
    inbox = Inbox()
    client.app.state.escalations.notify = inbox  # type: ignore[attr-defined]
    responder = world.headers("responder")
    pid = client.post("/api/v1/escalation-policies", headers=responder, json={
        "name": "direct",
        "levels": [{"timeout_minutes": 5, "targets": [{"kind": "user", "id": world.users["analyst"]}]}],
    }).json()["id"]
    eid = client.post("/api/v1/escalations", headers=responder,
                      json={"incident_id": 3, "title": "Brute force", "policy_id": pid}).json()["id"]
    link = inbox.sent[0][2]
    assert link.startswith("/ack/")  # no public_url set: a path
    token = link.removeprefix("/ack/")
    anonymous = TestClient(client.app, base_url="https://testserver")
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    refused = anonymous.get(f"/ack/{tampered}")
    assert refused.status_code == 403 and "not valid" in refused.text
    assert anonymous.post(f"/ack/{tampered}").status_code == 403
    page = anonymous.get(link)
    assert page.status_code == 200 and "Brute force" in page.text and f'action="/ack/{token}"' in page.text
    # Looking at the page acknowledged nothing.
    assert client.get(f"/api/v1/escalations/{eid}", headers=responder).json()["status"] == "active"
    answer = anonymous.post(link)
    assert answer.status_code == 200 and "analyst" in answer.text
    done = client.get(f"/api/v1/escalations/{eid}", headers=responder).json()
    assert (done["status"], done["acknowledged_by"], done["acknowledged_via"]) == ("acknowledged", "analyst", "link")
    assert anonymous.post(link).status_code == 409
    record = next(r for r in audit_actions(world.database) if r.action == "escalation.acknowledge")
    assert record.actor == "analyst"


# --- fresh records for the role matrix (tests/api/test_role_matrix.py) ------------------------------------


def fresh_schedule_id(world: World, unit_id: int | None = None) -> int:
    """A new schedule (default: at headquarters) with the responder on call, and no policy paging it."""
    with world.database.transaction(Scope.system()) as session:
        ctx = cli_context(session)
        return oncall_service.create_schedule(ctx, data=ScheduleCreate(
            name=f"matrix {uuid.uuid4().hex[:10]}", unit_id=unit_id or world.hq, layers=[LayerIn(
                name="primary", participants=[world.users["responder"]], rotation="weekly",
                start=TODAY - timedelta(days=3))])).id


def fresh_override_id(world: World, schedule_id: int) -> int:
    start = datetime.now(UTC)
    with world.database.transaction(Scope.system()) as session:
        return oncall_service.add_override(cli_context(session), schedule_id=schedule_id, data=OverrideCreate(
            user_id=world.users["viewer"], starts_at=start, ends_at=start + timedelta(hours=1))).id


def fresh_override_path(world: World) -> str:
    """/oncall/schedules/{id}/overrides/{id} of a new override on a new schedule."""
    schedule_id = fresh_schedule_id(world)
    return f"/oncall/schedules/{schedule_id}/overrides/{fresh_override_id(world, schedule_id)}"


def fresh_policy_id(world: World, unit_id: int | None = None) -> int:
    """A new policy (default: at headquarters) paging the viewer."""
    with world.database.transaction(Scope.system()) as session:
        return oncall_service.create_policy(cli_context(session), data=PolicyCreate(
            name=f"matrix {uuid.uuid4().hex[:10]}", unit_id=unit_id or world.hq,
            levels=[LevelIn(targets=[TargetIn(kind="user", id=world.users["viewer"])])])).id


def fresh_escalation_id(world: World, app: Any, unit_id: int | None = None) -> int:
    """A new escalation paging the viewer, not yet acknowledged (in the unit of its policy)."""
    policy_id = fresh_policy_id(world, unit_id)
    runner: EscalationRunner = app.state.escalations
    with world.database.transaction(Scope.system()) as session:
        return engine.start(cli_context(session), incident_id=secrets.randbelow(10**6) + 1, title="matrix",
                            severity="P3", policy_id=policy_id, now=datetime.now(UTC), pager=runner.pager).id


def fresh_ack_path(world: World, app: Any) -> str:
    """The signed link the viewer was sent for a new escalation."""
    escalation_id = fresh_escalation_id(world, app)
    runner: EscalationRunner = app.state.escalations
    token = runner.links.sign(escalation_id=escalation_id, user_id=world.users["viewer"],
                              expires=datetime.now(UTC) + timedelta(hours=1))
    return f"/ack/{token}"
