"""Playbooks on SQLite and PostgreSQL: versioned definitions checked before they are stored; a P1 intrusion
incident starts the matching playbook, which notifies (DingTalk format, checked by a local server), waits for
approval of its IP block, runs it when a second person approves, and adds a task; rejection stops a run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.conftest import World, cli_context

from vigil.core import audit
from vigil.core.audit import AuditRecord
from vigil.core.auth import Role
from vigil.core.config import Settings
from vigil.core.context import Context
from vigil.core.db import Scope, utcnow
from vigil.core.errors import BadInput, PermissionDenied
from vigil.incidents import activity, tasks
from vigil.incidents import service as incidents
from vigil.incidents.models import TimelineEntry
from vigil.incidents.schemas import IncidentCreate, IncidentUpdate, ObservableCreate
from vigil.intel.indicators import IndicatorType, ParsedIndicator
from vigil.intel.runtime import forget, intel_for
from vigil.response.actions import demo as actions_demo
from vigil.response.actions import executions
from vigil.response.actions import service as actions
from vigil.response.actions.schemas import ActionCreate
from vigil.response.notifications import service as notifications
from vigil.response.notifications.schemas import ChannelCreate
from vigil.response.playbooks import runs, service
from vigil.response.playbooks.schemas import PlaybookCreate, PlaybookUpdate

from . import platforms
from .action_endpoints import firewall_script

DING_TOKEN = "dingtalk-token-7f3a"


def as_user(session: object, world: World, name: str) -> Context:
    ctx = cli_context(session)
    return Context(session=ctx.session, actor=audit.Actor(world.users[name], name, world.hq))


def system(session: object) -> Context:
    ctx = cli_context(session)
    return Context(session=ctx.session, actor=executions.system_actor(ctx.session))


def setup(world: World, tmp_path: Path, ding_url: str) -> tuple[int, int, Path]:
    script, log = firewall_script(tmp_path)
    with world.database.transaction(Scope.system()) as session:
        ctx = cli_context(session)
        channel = notifications.create_channel(ctx, data=ChannelCreate(
            name="SOC DingTalk", kind="dingtalk", config={"url": f"{ding_url}/robot/send",
                                                          "access_token": DING_TOKEN}, max_attempts=1))
        action = actions.create_action(ctx, data=ActionCreate(
            name="Edge firewall", kind="block_ip", requires_approval=False, rollback_after_seconds=3600,
            config={"mode": "command", "command": [str(script), "add", "{ip}"],
                    "undo_command": [str(script), "delete", "{ip}"]}))
        playbook = service.create_playbook(ctx, data=PlaybookCreate.model_validate({
            "name": "Intrusion containment", "definition": {
                "trigger": {"on": ["opened", "severity_changed"], "incident_types": ["intrusion"],
                            "min_severity": "P1"},
                "steps": [{"kind": "notify", "channel_id": channel.id, "summary": "Intrusion playbook started"},
                          {"kind": "enrich"},
                          {"kind": "act", "action_id": action.id, "target": "{observable.ipv4}",
                           "requires_approval": True, "reason": "block the attacker"},
                          {"kind": "create_task", "title": "Confirm the block on the edge firewall",
                           "phase": "contain", "required": True}]}}))
        return playbook.id, action.id, log


def open_incident(world: World, severity: str = "P1", kind: str = "intrusion") -> int:
    with world.database.transaction(Scope.system()) as session:
        ctx = as_user(session, world, "analyst")
        incident = incidents.open_incident(ctx, data=IncidentCreate(title="Web shell on web01", type=kind,
                                                                    severity=severity))
        activity.add_observable(ctx, incident_id=incident.id, data=ObservableCreate(value="203.0.113.66"))
        return incident.id


def trigger(world: World, incident_id: int, event: str = "opened") -> list[int]:
    with world.database.transaction(Scope.system()) as session:
        started = runs.run_matching_playbooks(system(session), incident_id=incident_id, event=event,
                                              options=runs.Options(retry_delay=0))
        return [run.id for run in started]


def test_a_p1_intrusion_runs_notify_an_approved_block_and_a_task(world: World, tmp_path: Path) -> None:
    world.add_user("responder2", Role.RESPONDER, world.hq, token=False)
    with platforms.serve(platforms.dingtalk(DING_TOKEN)) as ding:
        _playbook_id, _action_id, log = setup(world, tmp_path, ding.url)
        incident_id = open_incident(world)
        [run_id] = trigger(world, incident_id)
        assert trigger(world, incident_id) == []  # by itself at most once per incident
    assert len(ding.received) == 1 and "Web shell on web01" in ding.received[0].json()["markdown"]["text"]
    with world.database.transaction(Scope.system()) as session:
        run = runs.run_read(session, runs.get_run(session, run_id))
    assert (run.status, run.version, run.current_step) == ("awaiting_approval", 1, 2)
    assert [s.status for s in run.steps] == ["succeeded", "skipped", "awaiting_approval", "pending"]
    assert not log.exists()  # nothing blocked before the approval

    with world.database.transaction(Scope.system()) as session:
        approved = runs.approve_step(as_user(session, world, "responder2"), run_id=run_id, comment="go")
        assert approved.status == "succeeded"
    assert log.read_text() == "add|203.0.113.66\n"
    with world.database.transaction(Scope.system()) as session:
        run = runs.run_read(session, runs.get_run(session, run_id))
        [execution] = session.scalars(executions.executions_query(playbook_run_id=run_id)).all()
        assert (execution.status, execution.requested_by, execution.approved_by) == ("succeeded", "vigil",
                                                                                     "responder2")
        assert [t.title for t in tasks.tasks_of(session, incident_id) if t.phase == "contain"] == [
            "Confirm the block on the edge firewall"]
        timeline = [e.summary for e in session.scalars(select(TimelineEntry).where(
            TimelineEntry.incident_id == incident_id).order_by(TimelineEntry.id))]
    assert [s.status for s in run.steps] == ["succeeded", "skipped", "succeeded", "succeeded"]
    assert "Playbook started: Intrusion containment v1 (incident_opened)" in timeline
    assert "Response action succeeded: Edge firewall on 203.0.113.66" in timeline
    assert timeline[-1] == "Playbook succeeded: Intrusion containment v1"
    # The block is rolled back after its TTL, like any execution.
    assert executions.tick(world.database, now=utcnow() + timedelta(hours=2)) == [execution.id]
    assert log.read_text().splitlines()[-1] == "delete|203.0.113.66"


def test_the_same_person_cannot_approve_and_a_rejection_stops_the_run(world: World, tmp_path: Path) -> None:
    with platforms.serve(platforms.dingtalk(DING_TOKEN)) as ding:
        playbook_id, _action_id, log = setup(world, tmp_path, ding.url)
        incident_id = open_incident(world)
        with world.database.transaction(Scope.system()) as session:
            run_id = runs.start_run(as_user(session, world, "responder"), playbook_id=playbook_id,
                                    incident_id=incident_id, options=runs.Options(retry_delay=0)).id
    with world.database.transaction(Scope.system()) as session, pytest.raises(PermissionDenied):
        runs.approve_step(as_user(session, world, "responder"), run_id=run_id)
    with world.database.transaction(Scope.system()) as session:
        rejected = runs.reject_step(as_user(session, world, "analyst"), run_id=run_id, comment="customer address")
        assert rejected.status == "rejected"
        [execution] = session.scalars(executions.executions_query(playbook_run_id=run_id)).all()
        assert execution.status == "rejected"
    assert not log.exists()


def test_the_trigger_decides(world: World, tmp_path: Path) -> None:
    with platforms.serve(platforms.dingtalk(DING_TOKEN)) as ding:
        setup(world, tmp_path, ding.url)
        p3 = open_incident(world, severity="P3")
        phishing = open_incident(world, kind="phishing")
        assert trigger(world, p3) == [] and trigger(world, phishing) == []
        with world.database.transaction(Scope.system()) as session:
            incidents.update_incident(as_user(session, world, "analyst"), incident_id=p3,
                                      data=IncidentUpdate(severity="P1"))
        assert len(trigger(world, p3, "severity_changed")) == 1


def test_every_edit_is_a_version_and_a_bad_definition_is_refused(world: World, tmp_path: Path) -> None:
    with platforms.serve(platforms.dingtalk(DING_TOKEN)) as ding:
        playbook_id, _action_id, _log = setup(world, tmp_path, ding.url)
    with world.database.transaction(Scope.system()) as session:
        ctx = cli_context(session)
        definition = service.parse_definition(
            "trigger: {incident_types: [malware]}\nsteps:\n  - kind: create_task\n    title: Reimage the host\n")
        service.update_playbook(ctx, playbook_id=playbook_id, data=PlaybookUpdate(definition=definition,
                                                                                  comment="malware too"))
        playbook = service.get_playbook(session, playbook_id)
        assert playbook.version == 2
        assert [v.version for v in service.versions_of(session, playbook)] == [2, 1]
        for text, field in (("{not json", "definition"), ("steps: []", "definition.steps"),
                            ('{"steps": [{"kind": "act", "action_id": 1, "target": "$(id) {x}"}]}',
                             "definition.steps.0.act.target")):
            with pytest.raises(BadInput) as refused:
                service.parse_definition(text)
            assert refused.value.extra["errors"][0]["field"] == field
        with pytest.raises(BadInput):
            service.update_playbook(ctx, playbook_id=playbook_id, data=PlaybookUpdate(
                definition=service.parse_definition('{"steps": [{"kind": "act", "action_id": 999, '
                                                    '"target": "1.2.3.4"}]}')))
        assert service.get_playbook(session, playbook_id).version == 2
        actions_logged = [r.action for r in session.scalars(select(AuditRecord).where(
            AuditRecord.action.like("playbook.%")))]
    assert actions_logged == ["playbook.create", "playbook.update"]


def test_enrichment_looks_the_observables_up_in_the_indicator_store(world: World, settings: Settings) -> None:
    intel = intel_for(settings, world.database)
    try:
        intel.store.merge([ParsedIndicator(IndicatorType.IPV4, "203.0.113.66", confidence=90, tags=("c2",))],
                          source="test-feed")
        incident_id = open_incident(world)
        with world.database.transaction(Scope.system()) as session:
            ctx = cli_context(session)
            activity.add_observable(ctx, incident_id=incident_id, data=ObservableCreate(value="198.51.100.1"))
            playbook = service.create_playbook(ctx, data=PlaybookCreate.model_validate({
                "name": "Enrich", "definition": {"steps": [{"kind": "enrich"}]}}))
            run = runs.start_run(as_user(session, world, "responder"), playbook_id=playbook.id,
                                 incident_id=incident_id, options=runs.Options(intel=intel))
            [step] = runs.steps_of(session, run.id)
            assert (run.status, step.status) == ("succeeded", "succeeded")
            assert step.output == "1 of 2 observable(s) known to threat intel: ipv4:203.0.113.66"
            assert step.detail["lookups"]["ipv4:198.51.100.1"] is None
            assert "c2" in step.detail["lookups"]["ipv4:203.0.113.66"]["tags"]
    finally:
        forget(settings)


def test_the_demo_loads_once_and_its_playbook_matches_a_p1_intrusion(world: World) -> None:
    with world.database.transaction(Scope.system()) as session:
        assert actions_demo.load(cli_context(session)) == {"response actions": 1, "playbooks": 1}
        assert actions_demo.load(cli_context(session)) == {}
    incident_id = open_incident(world)
    [run_id] = trigger(world, incident_id)
    with world.database.transaction(Scope.system()) as session:
        run = runs.run_read(session, runs.get_run(session, run_id))
    assert run.status == "awaiting_approval" and [s.status for s in run.steps][:2] == ["skipped", "awaiting_approval"]
