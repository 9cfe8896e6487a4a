"""Escalations and incidents wired to the notification channels: pages reach a DingTalk robot on 127.0.0.1
(which checks the format and the signature), a failing channel is recorded while the escalation goes on, and
a new incident starts the policy configured for its severity. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import World, cli_context
from tests.response import platforms
from tests.web.support import audit_actions, post_form, signed_in, text_of

from vigil.core.audit import AuditRecord
from vigil.core.config import Settings, load_settings
from vigil.core.db import Scope, utcnow
from vigil.response import escalation as engine
from vigil.response import paging_service
from vigil.response.notifications.models import NotificationChannel, NotificationDelivery
from vigil.response.oncall_models import Escalation, EscalationPolicy, EscalationStep
from vigil.response.oncall_runtime import EscalationRunner

TOKEN, SECRET = "robot-token-1", "SECabc123"
PUBLIC = "https://soc.example.cn"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(data_dir=tmp_path / "var", database_url=database_url, notify_retry_seconds=0.0,
                         notify_timeout_seconds=5.0, public_url=PUBLIC)


@pytest.fixture
def robot() -> Iterator[platforms.Platform]:
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as platform:
        yield platform


def add_channel(world: World, url: str, name: str = "SOC DingTalk") -> int:
    with world.database.transaction(Scope.system()) as session:
        channel = NotificationChannel(unit_id=world.hq, name=name, kind="dingtalk", language="en", enabled=True,
                                      config={"url": url + "/robot/send", "access_token": TOKEN, "secret": SECRET},
                                      max_attempts=2)
        session.add(channel)
        session.flush()
        return channel.id


def add_policy(client: TestClient, world: World, channel_id: int) -> int:
    answer = client.post("/api/v1/escalation-policies", headers=world.headers("responder"), json={
        "name": "P1 paging", "levels": [
            {"timeout_minutes": 10, "targets": [{"kind": "user", "id": world.users["responder"]}],
             "channel_ids": [channel_id]},
            {"timeout_minutes": 10, "targets": [{"kind": "user", "id": world.users["analyst"]}],
             "channel_ids": [channel_id]}]})
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def open_incident(client: TestClient, world: World, severity: str = "P1") -> int:
    answer = client.post("/api/v1/incidents", headers=world.headers("analyst"), json={
        "title": "Web shell on portal", "type": "web_attack", "severity": severity})
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def steps(world: World, incident_id: int) -> list[EscalationStep]:
    with world.database.transaction(Scope.system()) as session:
        found = engine.steps_for_incident(session, incident_id)
        session.expunge_all()
        return found


def runner_of(app: FastAPI) -> EscalationRunner:
    runner: EscalationRunner = app.state.escalations
    return runner


def test_a_new_p1_incident_pages_the_responder_in_dingtalk_and_escalates_on_timeout(
        world: World, client: TestClient, app: FastAPI, robot: platforms.Platform) -> None:
    channel_id = add_channel(world, robot.url)
    policy_id = add_policy(client, world, channel_id)
    answer = client.put("/api/v1/incident-paging/P1", headers=world.headers("responder"),
                        json={"policy_id": policy_id, "channel_ids": [channel_id]})
    assert answer.status_code == 200, answer.text

    incident_id = open_incident(client, world)
    runner = runner_of(app)
    runner.work()

    # "Incident opened" to the channel, then the page of level 1 to the responder, both in DingTalk's format
    # with a valid signature (the robot refuses anything else, which would make the deliveries fail).
    texts = [r.json()["markdown"]["text"] for r in robot.received]
    assert len(texts) == 2, texts
    assert "Incident opened" in robot.received[0].json()["markdown"]["title"]
    page = texts[1]
    assert "@responder" in page and "Web shell on portal" in page and "P1" in page
    assert f"{PUBLIC}/ack/" in page and f"{PUBLIC}/incidents/{incident_id}" in page
    notified = [s for s in steps(world, incident_id) if s.kind == "notified"]
    assert [(s.username, s.channel, s.level) for s in notified] == [("responder", "SOC DingTalk", 0)]
    with world.database.transaction(Scope.system()) as session:
        deliveries = list(session.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id)))
        assert [(d.message_kind, d.status, d.incident_id) for d in deliveries] == [
            ("incident_opened", "sent", incident_id), ("escalation", "sent", incident_id)]
        assert notified[0].delivery_id == deliveries[1].id

    # Nobody acknowledges within ten minutes: the analyst (level 2) is paged.
    assert runner.tick(now=utcnow() + timedelta(minutes=11)) == 1
    assert len(robot.received) == 3
    assert "@analyst" in robot.received[2].json()["markdown"]["text"]
    with world.database.transaction(Scope.system()) as session:
        escalation = session.scalar(select(Escalation).where(Escalation.incident_id == incident_id))
        assert escalation is not None and escalation.level == 1 and escalation.status == "active"

    # The incident's readers see the paging and the messages on its timeline, in order.
    shown = client.get(f"/api/v1/incidents/{incident_id}", headers=world.headers("viewer")).json()["timeline"]
    kinds = [entry["kind"] for entry in shown]
    assert kinds.count("notification") == 3 and "escalation" in kinds
    assert [e["at"] for e in shown] == sorted(e["at"] for e in shown)
    assert any("analyst" in e["summary"] and e["kind"] == "escalation" for e in shown)

    # Acknowledging the incident stops the paging.
    assert client.post(f"/api/v1/incidents/{incident_id}/acknowledge",
                       headers=world.headers("responder")).status_code == 200
    runner.work()
    with world.database.transaction(Scope.system()) as session:
        escalation = session.scalar(select(Escalation).where(Escalation.incident_id == incident_id))
        assert escalation is not None and escalation.status == "acknowledged"
        assert escalation.acknowledged_via == "incident"


def test_a_failing_channel_shows_on_the_step_and_the_escalation_goes_on(
        world: World, client: TestClient, app: FastAPI, robot: platforms.Platform) -> None:
    robot.always_fail = True
    channel_id = add_channel(world, robot.url)
    policy_id = add_policy(client, world, channel_id)
    client.put("/api/v1/incident-paging/P2", headers=world.headers("responder"), json={"policy_id": policy_id})
    incident_id = open_incident(client, world, severity="P2")
    runner = runner_of(app)
    runner.work()
    failed = [s for s in steps(world, incident_id) if s.kind == "notify-failed"]
    assert len(failed) == 1 and failed[0].delivery_id is not None
    assert "500" in failed[0].detail or "upstream" in failed[0].detail
    assert len(robot.received) == 2  # two attempts (max_attempts), no incident_opened (no channels for it)
    robot.always_fail = False
    assert runner.tick(now=utcnow() + timedelta(minutes=11)) == 1
    assert [s.username for s in steps(world, incident_id) if s.kind == "notified"] == ["analyst"]


def test_a_page_interrupted_mid_send_is_sent_again(world: World, client: TestClient, app: FastAPI,
                                                   robot: platforms.Platform) -> None:
    channel_id = add_channel(world, robot.url)
    policy_id = add_policy(client, world, channel_id)
    client.put("/api/v1/incident-paging/P1", headers=world.headers("responder"), json={"policy_id": policy_id})
    incident_id = open_incident(client, world)
    runner = runner_of(app)
    runner.work()
    # Two more pages claimed ("sending"): one by a server that then stopped (queued 20 minutes ago), one that
    # another dispatcher is sending right now (queued a minute ago).
    with world.database.transaction(Scope.system()) as session:
        sent = session.scalar(select(EscalationStep).join(Escalation).where(
            Escalation.incident_id == incident_id, EscalationStep.kind == "notified"))
        assert sent is not None
        copies = {}
        for age in (20, 1):
            copy = EscalationStep(escalation_id=sent.escalation_id, incident_id=incident_id, unit_id=sent.unit_id,
                                  kind="sending",
                                  at=utcnow() - timedelta(minutes=age), level=sent.level, round=sent.round,
                                  user_id=sent.user_id, username=sent.username, channel_id=sent.channel_id)
            session.add(copy)
            session.flush()
            copies[age] = copy.id
    before = len(robot.received)
    runner.work()
    assert len(robot.received) == before + 1 and "@responder" in robot.received[-1].json()["markdown"]["text"]
    with world.database.transaction(Scope.system()) as session:
        kinds = {age: session.get(EscalationStep, step_id).kind for age, step_id in copies.items()}
    assert kinds == {20: "notified", 1: "sending"}


def test_a_level_without_channels_sends_nothing_and_says_so(world: World, client: TestClient, app: FastAPI) -> None:
    answer = client.post("/api/v1/escalation-policies", headers=world.headers("responder"), json={
        "name": "quiet", "levels": [{"timeout_minutes": 5,
                                     "targets": [{"kind": "user", "id": world.users["responder"]}]}]})
    policy_id = answer.json()["id"]
    client.put("/api/v1/incident-paging/P3", headers=world.headers("responder"), json={"policy_id": policy_id})
    incident_id = open_incident(client, world, severity="P3")
    runner_of(app).work()
    paged = [s for s in steps(world, incident_id) if s.user_id is not None]
    assert [(s.kind, s.channel) for s in paged] == [("notified", "no channel on this level (nothing sent)")]


def test_no_paging_configured_pages_nobody(world: World, client: TestClient, app: FastAPI) -> None:
    incident_id = open_incident(client, world)
    runner_of(app).work()
    assert steps(world, incident_id) == []


def test_a_severity_rise_starts_the_policy_of_the_new_severity(
        world: World, client: TestClient, app: FastAPI, robot: platforms.Platform) -> None:
    channel_id = add_channel(world, robot.url)
    policy_id = add_policy(client, world, channel_id)
    client.put("/api/v1/incident-paging/P1", headers=world.headers("responder"), json={"policy_id": policy_id})
    incident_id = open_incident(client, world, severity="P3")
    runner_of(app).work()
    assert steps(world, incident_id) == []
    assert client.patch(f"/api/v1/incidents/{incident_id}", headers=world.headers("analyst"),
                        json={"severity": "P1"}).status_code == 200
    runner_of(app).work()
    assert [s.username for s in steps(world, incident_id) if s.kind == "notified"] == ["responder"]


def test_paging_settings_are_checked_scoped_and_audited(world: World, client: TestClient) -> None:
    headers = world.headers("responder")
    bad = client.put("/api/v1/incident-paging/P1", headers=headers, json={"policy_id": 999})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "policy_id"
    assert client.put("/api/v1/incident-paging/P9", headers=headers, json={}).status_code == 422
    assert client.put("/api/v1/incident-paging/P1", headers=world.headers("viewer"), json={}).status_code == 403
    assert client.put("/api/v1/incident-paging/P1", headers=headers, json={"channel_ids": [77]}).status_code == 422
    assert client.put("/api/v1/incident-paging/P2", headers=headers, json={}).status_code == 200
    assert [r["severity"] for r in client.get("/api/v1/incident-paging", headers=headers).json()["items"]] == ["P2"]
    assert client.delete("/api/v1/incident-paging/P2", headers=headers).status_code == 204
    assert client.delete("/api/v1/incident-paging/P2", headers=headers).status_code == 404
    assert client.put("/api/v1/incident-paging/P3", headers=headers, json={}).status_code == 200
    # Another branch's reader sees nothing of headquarters' paging.
    assert client.get("/api/v1/incident-paging", headers=world.headers("staff_b")).json()["items"] == []
    with world.database.transaction(Scope.system()) as session:
        actions = list(session.scalars(select(AuditRecord.action).where(AuditRecord.action.like("incident.paging%"))
                                       .order_by(AuditRecord.id)))
        assert actions == ["incident.paging.set", "incident.paging.delete", "incident.paging.set"]


def test_the_policies_page_names_channels_and_sets_the_paging(world: World, client: TestClient,
                                                              robot: platforms.Platform) -> None:
    channel_id = add_channel(world, robot.url)
    browser = signed_in(client.app, "responder")  # type: ignore[arg-type]
    answer = post_form(browser, "/oncall/policies", {
        "name": "Paged", "description": "", "repeat": "0", "level_count": "1",
        "level0_targets": "responder, channel:SOC DingTalk", "level0_timeout": "10"}, page="/oncall/policies")
    assert answer.status_code == 303, text_of(answer)[:500]
    with world.database.transaction(Scope.system()) as session:
        policy = session.scalars(select(EscalationPolicy)).one()
        assert policy.levels[0]["channel_ids"] == [channel_id]
        policy_id = policy.id
    assert "channel:SOC DingTalk" in text_of(browser.get(f"/oncall/policies/{policy_id}"))
    unknown = post_form(browser, "/oncall/policies", {
        "name": "Broken", "repeat": "0", "level_count": "1", "level0_targets": "responder, channel:nope",
        "level0_timeout": "10"}, page="/oncall/policies")
    assert unknown.status_code == 404  # the channel is named in the error, nothing saved

    saved = post_form(browser, "/oncall/paging", {"severity": "P1", "policy_id": str(policy_id),
                                                  "channel_ids": str(channel_id)}, page="/oncall/policies")
    assert saved.status_code == 303 and "paging=saved" in saved.headers["location"]
    page = text_of(browser.get("/oncall/policies?paging=saved"))
    assert "The paging is saved." in page and "Paged" in page
    assert client.get("/api/v1/incident-paging", headers=world.headers("viewer")).json()["items"][0]["channel_ids"] == [
        channel_id]
    viewer = signed_in(client.app, "viewer")  # type: ignore[arg-type]
    assert post_form(viewer, "/oncall/paging", {"severity": "P2"}, page="/oncall/policies").status_code == 403
    removed = post_form(browser, "/oncall/paging/P1/delete", page="/oncall/policies")
    assert removed.status_code == 303
    assert client.get("/api/v1/incident-paging", headers=world.headers("viewer")).json()["items"] == []


def fresh_paging(world: World, severity: str = "P3") -> str:
    """A paging row of headquarters for ``severity`` (nobody paged, no channel): the severity."""
    with world.database.transaction(Scope.system()) as session:
        paging_service.set_rule(cli_context(session), severity=severity,  # type: ignore[arg-type]
                                data=paging_service.PagingSet(unit_id=world.hq))
    return severity


def test_acknowledging_the_page_by_its_signed_link_acknowledges_the_incident(
        world: World, client: TestClient, app: FastAPI, robot: platforms.Platform) -> None:
    channel_id = add_channel(world, robot.url)
    policy_id = add_policy(client, world, channel_id)
    assert client.put("/api/v1/incident-paging/P1", headers=world.headers("responder"),
                      json={"policy_id": policy_id, "channel_ids": []}).status_code == 200
    incident_id = open_incident(client, world)
    runner = runner_of(app)
    runner.work()
    [page] = [r.json()["markdown"]["text"] for r in robot.received]
    link = re.search(rf"{re.escape(PUBLIC)}(/ack/[A-Za-z0-9_\-.=]+)", page)
    assert link is not None, page
    before = client.get(f"/api/v1/incidents/{incident_id}", headers=world.headers("viewer")).json()
    assert before["acknowledged_at"] is None

    anonymous = TestClient(app, base_url="https://testserver")
    assert anonymous.post(link.group(1)).status_code == 200
    runner.work()

    after = client.get(f"/api/v1/incidents/{incident_id}", headers=world.headers("viewer")).json()
    assert after["acknowledged_at"] is not None  # the time-to-acknowledge clock stopped with the page
    with world.database.transaction(Scope.system()) as session:
        escalation = session.scalar(select(Escalation).where(Escalation.incident_id == incident_id))
        assert escalation is not None and (escalation.status, escalation.acknowledged_via) == ("acknowledged", "link")
    record = next(r for r in audit_actions(world.database) if r.action == "incident.acknowledge")
    assert record.actor == "responder"  # who followed the link, not the system
