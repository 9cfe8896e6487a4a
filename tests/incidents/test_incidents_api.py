"""/api/v1/incidents over HTTP: the whole response walked through the API, 409 problems with the reason, the
post-mortem's separation of duties, settings, metrics, bad input, and another unit's incident as 404.
The helpers at the top are shared with the role matrix and the unit-scope test."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.api.support import assert_problem
from tests.detection.test_alerts_service import fresh_alert_id

from vigil.accounts import service as accounts
from vigil.core import audit
from vigil.core.context import Context
from vigil.core.db import Scope
from vigil.incidents import activity, intake, postmortem, service, settings_service, tasks
from vigil.incidents.models import Task
from vigil.incidents.schemas import (
    FieldDefinitionCreate,
    GroupingRuleCreate,
    IncidentCreate,
    ObservableCreate,
    TaskCreate,
    TaskTemplateCreate,
)
from vigil.incidents.workflow import ReviewAction


def _system(session: Any) -> Context:
    return Context(session=session, actor=audit.Actor(None, "tests", accounts.root_unit_id(session)))


def fresh_incident_id(world: Any, unit_id: int | None = None) -> int:
    """A new open incident of ``unit_id`` (default Payments, line_a, below branch_a)."""
    with world.database.transaction(Scope.system()) as session:
        return service.open_incident(_system(session), data=IncidentCreate(
            title="Matrix incident", type="malware", severity="P3", unit_id=unit_id or world.line_a)).id


def fresh_task_ids(world: Any, unit_id: int | None = None) -> tuple[int, int]:
    """(incident id, task id) of a new incident with a task of its own."""
    incident_id = fresh_incident_id(world, unit_id)
    with world.database.transaction(Scope.system()) as session:
        task = tasks.create_task(_system(session), incident_id=incident_id, data=TaskCreate(title="Matrix task"))
        return incident_id, task.id


def fresh_observable_ids(world: Any, unit_id: int | None = None) -> tuple[int, int]:
    incident_id = fresh_incident_id(world, unit_id)
    with world.database.transaction(Scope.system()) as session:
        item = activity.add_observable(_system(session), incident_id=incident_id,
                                       data=ObservableCreate(value="198.51.100.7"))
        return incident_id, item.id


def fresh_linked_alert_ids(world: Any, unit_id: int | None = None) -> tuple[int, int]:
    unit = unit_id or world.line_a
    incident_id = fresh_incident_id(world, unit)
    alert_id = fresh_alert_id(world, unit)
    with world.database.transaction(Scope.system()) as session:
        activity.add_alerts(_system(session), incident_id=incident_id, alert_ids=[alert_id])
    return incident_id, alert_id


def fresh_postmortem_incident(world: Any, status: str = "draft", unit_id: int | None = None) -> int:
    """An incident whose post-mortem (written by 'tests') is ``status`` (draft or in_review)."""
    incident_id = fresh_incident_id(world, unit_id)
    with world.database.transaction(Scope.system()) as session:
        postmortem.draft(_system(session), incident_id=incident_id)
        if status == "in_review":
            postmortem.review(_system(session), incident_id=incident_id, action=ReviewAction.SUBMIT)
    return incident_id


def fresh_ready_incident(world: Any, unit_id: int | None = None) -> int:
    """A new incident whose identify tasks are done, so it may move to contain."""
    incident_id = fresh_incident_id(world, unit_id)
    with world.database.transaction(Scope.system()) as session:
        for task_id in session.scalars(select(Task.id).where(Task.incident_id == incident_id)):
            tasks.complete_task(_system(session), incident_id=incident_id, task_id=task_id)
    return incident_id


def fresh_done_task_ids(world: Any, unit_id: int | None = None) -> tuple[int, int]:
    incident_id, task_id = fresh_task_ids(world, unit_id)
    with world.database.transaction(Scope.system()) as session:
        tasks.complete_task(_system(session), incident_id=incident_id, task_id=task_id)
    return incident_id, task_id


def fresh_field_id(world: Any) -> int:
    with world.database.transaction(Scope.system()) as session:
        return settings_service.create_field(_system(session), data=FieldDefinitionCreate(
            key=f"f_{uuid.uuid4().hex[:12]}", label="Matrix field", kind="text")).id


def fresh_grouping_rule_id(world: Any) -> int:
    with world.database.transaction(Scope.system()) as session:
        return intake.create_rule(_system(session), data=GroupingRuleCreate(
            name=f"matrix {uuid.uuid4().hex[:8]}", match_on="user", window_minutes=30)).id


def fresh_template_id(world: Any) -> int:
    with world.database.transaction(Scope.system()) as session:
        return tasks.create_template(_system(session), data=TaskTemplateCreate(phase="contain",
                                                                              title="Matrix template")).id


def incident_targets(world: Any) -> dict[str, int]:
    """For the unit-scope test: an incident of branch_b with a task, an observable and a linked alert."""
    incident_id, task_id = fresh_task_ids(world, world.branch_b)
    alert_id = fresh_alert_id(world, world.branch_b)
    with world.database.transaction(Scope.system()) as session:
        observable = activity.add_observable(_system(session), incident_id=incident_id,
                                             data=ObservableCreate(value="203.0.113.99"))
        activity.add_alerts(_system(session), incident_id=incident_id, alert_ids=[alert_id])
        return {"incident": incident_id, "task": task_id, "observable": observable.id, "incident_alert": alert_id}


def finish_phase(client: TestClient, headers: dict[str, str], incident: dict[str, Any]) -> dict[str, Any]:
    for task in incident["tasks"]:
        if task["phase"] == incident["phase"] and task["status"] == "open":
            assert client.post(f"/api/v1/incidents/{incident['id']}/tasks/{task['id']}/complete",
                               headers=headers).status_code == 200
    return client.get(f"/api/v1/incidents/{incident['id']}", headers=headers).json()


def test_a_responder_walks_an_incident_through_the_five_steps(world: Any, client: TestClient) -> None:
    h = world.headers("analyst")
    alert_id = fresh_alert_id(world, world.hq)
    created = client.post("/api/v1/incidents", headers=h, json={
        "title": "Phishing wave", "type": "phishing", "severity": "P2", "team": "CSIRT",
        "scope": {"affected_users": ["alice", "bob"], "business_lines": ["Payments"]}, "tags": ["mail"]})
    assert created.status_code == 201, created.text
    incident = created.json()
    assert incident["ref"].startswith("INC-") and incident["phase"] == "identify"
    assert [f["metric"] for f in incident["sla"]] == ["acknowledge", "contain", "resolve"]
    path = f"/api/v1/incidents/{incident['id']}"
    linked = client.post(f"{path}/alerts", headers=h, json={"alert_ids": [alert_id]})
    assert linked.json()["alerts"][0]["id"] == alert_id
    refused = client.post(f"{path}/transition", headers=h, json={"phase": "contain"})
    body = assert_problem(refused, 409, "invalid-transition")
    assert "Classify the incident" in body["detail"] and body["open_tasks"]
    assert_problem(client.post(f"{path}/transition", headers=h, json={"phase": "recover"}), 409, "invalid-transition")
    for phase in ("contain", "eradicate", "recover", "review"):
        incident = finish_phase(client, h, incident)
        moved = client.post(f"{path}/transition", headers=h, json={"phase": phase})
        assert moved.status_code == 200, moved.text
        incident = moved.json()
    comment = client.post(f"{path}/comments", headers=h, json={"body": "@responder please review the post-mortem"})
    assert comment.json()["mentions"] == [world.users["responder"]]
    assert client.post(f"{path}/postmortem", headers=h).status_code == 201
    assert client.patch(f"{path}/postmortem", headers=h, json={
        "root_cause": "no mail filtering of look-alike domains", "five_whys": ["a", "b", "c"]}).status_code == 200
    assert client.post(f"{path}/postmortem/submit", headers=h).json()["status"] == "in_review"
    assert_problem(client.post(f"{path}/postmortem/approve", headers=h), 403, "permission-denied")
    assert client.post(f"{path}/postmortem/approve", headers=world.headers("responder")).json()["status"] == "approved"
    incident = finish_phase(client, h, client.get(path, headers=h).json())
    closed = client.post(f"{path}/transition", headers=h, json={"phase": "closed"}).json()
    assert (closed["status"], closed["allowed_phases"]) == ("closed", ["identify", "contain", "eradicate", "recover",
                                                                       "review"])
    assert [p["phase"] for p in closed["phase_times"]] == ["identify", "contain", "eradicate", "recover", "review",
                                                           "closed"]
    kinds = {entry["kind"] for entry in closed["timeline"]}
    assert {"alert", "state_change", "task", "comment"} <= kinds
    listed = client.get("/api/v1/incidents", headers=world.headers("viewer"), params={"status": "closed"}).json()
    assert [i["ref"] for i in listed["items"]] == [closed["ref"]]


def test_bad_input_is_a_clear_422_and_nothing_is_stored(world: Any, client: TestClient) -> None:
    h = world.headers("analyst")
    assert_problem(client.post("/api/v1/incidents", headers=h, json={"title": "x", "type": "malware",
                                                                     "severity": "P9"}), 422, "bad-input")
    body = assert_problem(client.post("/api/v1/incidents", headers=h, json={"title": "x", "type": "nope",
                                                                            "severity": "P1"}), 422, "bad-input")
    assert body["errors"][0]["field"] == "type"
    assert client.get("/api/v1/incidents", headers=h).json()["total"] == 0
    assert_problem(client.post("/api/v1/incidents", headers=world.headers("viewer"), json={
        "title": "x", "type": "malware", "severity": "P1"}), 403, "permission-denied")


def test_another_units_incident_is_not_found(world: Any, client: TestClient) -> None:
    world.add_user("responder_b", None, world.branch_b)
    hq_incident = fresh_incident_id(world, world.hq)
    response = client.get(f"/api/v1/incidents/{hq_incident}", headers=world.headers("staff_a"))
    assert_problem(response, 404, "not-found")
    assert client.get("/api/v1/incidents", headers=world.headers("staff_a")).json()["total"] == 0
    assert client.get(f"/api/v1/incidents/{hq_incident}", headers=world.headers("viewer")).status_code == 200


def test_sla_settings_are_platform_wide_and_checked(world: Any, client: TestClient) -> None:
    h = world.headers("analyst")
    changed = client.put("/api/v1/incident-settings/sla/P1", headers=h, json={
        "acknowledge_minutes": 10, "contain_minutes": 120, "resolve_minutes": 600, "clock": "24x7"})
    assert changed.status_code == 200 and changed.json()["updated_by"] == "analyst"
    assert_problem(client.put("/api/v1/incident-settings/calendar", headers=h, json={
        "timezone": "Nowhere/Land", "weekdays": [0], "day_start": "09:00", "day_end": "18:00", "warn_ratio": 0.8}),
        422, "bad-input")
    assert client.get("/api/v1/incident-settings/calendar", headers=h).json()["timezone"] == "Asia/Shanghai"
    types = client.get("/api/v1/incident-settings/types", headers=h).json()["items"]
    assert {t["key"]: t["names"]["zh_CN"] for t in types}["data_leak"] == "数据泄露"
    metrics = client.get("/api/v1/incidents/metrics", headers=h, params={"group_by": "severity"})
    assert metrics.status_code == 200 and metrics.json()["items"] == []


def test_removing_a_task_of_the_template_is_refused_but_own_tasks_go(world: Any, client: TestClient) -> None:
    h = world.headers("analyst")
    incident_id, task_id = fresh_task_ids(world, world.hq)
    with world.database.transaction(Scope.system()) as session:
        template_task = session.scalar(select(Task.id).where(Task.incident_id == incident_id,
                                                             Task.template_id.is_not(None)))
    assert_problem(client.delete(f"/api/v1/incidents/{incident_id}/tasks/{template_task}", headers=h), 409)
    assert client.delete(f"/api/v1/incidents/{incident_id}/tasks/{task_id}", headers=h).status_code == 204
