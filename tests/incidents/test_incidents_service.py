"""The incident service on both stores: opening (reference, templates, history), the five steps with their
guards, time per phase, reopening, tasks, comments with mentions, observables, alerts, custom fields,
post-mortem approval, events after commit, and the unit scope."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from tests.api.test_transactions import wait_until_blocked
from tests.detection.test_alerts_service import audit_of, fresh_alert_id, stored_alert

from vigil.core.auth import Role
from vigil.core.db import Scope
from vigil.core.errors import BadInput, Conflict, InvalidTransition, NotFound, PermissionDenied
from vigil.core.events import bus
from vigil.core.pagination import PageParams
from vigil.incidents import activity, postmortem, service, settings_service, tasks
from vigil.incidents.events import IncidentOpened, IncidentPhaseChanged, UsersMentioned
from vigil.incidents.models import PhaseSpan, StatusChange, Task
from vigil.incidents.schemas import (
    CommentCreate,
    FieldDefinitionCreate,
    IncidentCreate,
    IncidentFilter,
    IncidentTransition,
    IncidentUpdate,
    ObservableCreate,
    PostMortemUpdate,
    TaskCreate,
)
from vigil.incidents.workflow import ReviewAction

from .support import acting, approve_postmortem, finish_tasks, open_one, stored, walk_to

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def phase_step(phase: str, reason: str = "") -> IncidentTransition:
    return IncidentTransition.model_validate({"phase": phase, "reason": reason})


def test_an_incident_opens_with_a_reference_its_identify_tasks_and_its_history(world: Any) -> None:
    first = open_one(world.database, at=T0)
    second = open_one(world.database, at=T0 + timedelta(minutes=1), unit_id=world.line_a)
    assert stored(world.database, first).ref == "INC-2026-0001"
    assert stored(world.database, second).ref == "INC-2026-0002"  # numbered across units
    with world.database.transaction(Scope.system()) as session:
        titles = session.scalars(select(Task.title).where(Task.incident_id == first)).all()
        assert titles == ["Classify the incident: type, cause and scope of impact"]
        changes = session.scalars(select(StatusChange.kind).where(StatusChange.incident_id == first)).all()
        assert changes == ["opened"]
    assert [r.details["ref"] for r in audit_of(world.database, "incident.create")] == ["INC-2026-0001",
                                                                                     "INC-2026-0002"]


def test_bad_input_is_refused_and_nothing_is_stored(world: Any) -> None:
    with pytest.raises(BadInput, match="'worm' is no incident type"), acting(world.database, "analyst") as ctx:
        service.open_incident(ctx, data=IncidentCreate(title="x", type="worm", severity="P1"))
    with pytest.raises(BadInput, match="cannot read incidents"), acting(world.database, "analyst") as ctx:
        service.open_incident(ctx, data=IncidentCreate(title="x", type="malware", severity="P1",
                                                       owner_id=world.users["staff_b"]))
    with world.database.transaction(Scope.system()) as session:
        assert session.scalar(select(StatusChange.id)) is None


def test_walking_the_five_steps_keeps_time_per_phase_and_every_milestone(world: Any) -> None:
    incident_id = open_one(world.database, at=T0)
    walk_to(world.database, incident_id, "contain", at=T0 + timedelta(minutes=10))
    walk_to(world.database, incident_id, "eradicate", at=T0 + timedelta(minutes=70))
    walk_to(world.database, incident_id, "recover", at=T0 + timedelta(minutes=130))
    walk_to(world.database, incident_id, "review", at=T0 + timedelta(minutes=200))
    approve_postmortem(world.database, incident_id)
    with acting(world.database, "analyst") as ctx:
        finish_tasks(ctx, incident_id)
        service.transition(ctx, incident_id=incident_id, data=phase_step("closed"), at=T0 + timedelta(minutes=300))
    incident = stored(world.database, incident_id)
    assert (incident.phase, incident.status) == ("closed", "closed")
    assert incident.acknowledged_at == T0 + timedelta(minutes=10)  # the first move acknowledged it
    assert incident.contained_at == T0 + timedelta(minutes=70)
    assert incident.resolved_at == T0 + timedelta(minutes=200)
    assert incident.closed_at == T0 + timedelta(minutes=300)
    with world.database.transaction(Scope.system()) as session:
        spans = session.scalars(select(PhaseSpan).where(PhaseSpan.incident_id == incident_id)
                                .order_by(PhaseSpan.id)).all()
        spent = service.phase_minutes(list(spans), T0 + timedelta(minutes=300))
    assert spent == {"identify": 10, "contain": 60, "eradicate": 60, "recover": 70, "review": 100, "closed": 0}


def test_required_tasks_and_the_post_mortem_gate_the_moves_and_the_refusal_says_why(world: Any) -> None:
    incident_id = open_one(world.database)
    with pytest.raises(InvalidTransition, match="required tasks of identify are not done: Classify the incident"), \
            acting(world.database, "analyst") as ctx:
        service.transition(ctx, incident_id=incident_id, data=phase_step("contain"))
    assert stored(world.database, incident_id).phase == "identify"
    for phase in ("contain", "eradicate", "recover", "review"):
        walk_to(world.database, incident_id, phase)
    with pytest.raises(InvalidTransition, match=r"approved post-mortem .it is not written"), \
            acting(world.database, "analyst") as ctx:
        service.transition(ctx, incident_id=incident_id, data=phase_step("closed"))


def test_reopening_is_recorded_and_brings_the_phase_back(world: Any) -> None:
    incident_id = open_one(world.database)
    for phase in ("contain", "eradicate", "recover", "review"):
        walk_to(world.database, incident_id, phase)
    approve_postmortem(world.database, incident_id)
    walk_to(world.database, incident_id, "closed")
    with acting(world.database, "responder") as ctx:
        service.transition(ctx, incident_id=incident_id, data=phase_step("contain", "beacon seen again"))
    incident = stored(world.database, incident_id)
    assert (incident.phase, incident.status, incident.closed_at) == ("contain", "open", None)
    with world.database.transaction(Scope.system()) as session:
        last = session.scalars(select(StatusChange).where(StatusChange.incident_id == incident_id)
                               .order_by(StatusChange.id.desc())).first()
        assert last is not None
        assert (last.kind, last.from_phase, last.to_phase, last.reason, last.actor) == (
            "reopened", "closed", "contain", "beacon seen again", "responder")
    assert audit_of(world.database, "incident.reopen")[0].details["reason"] == "beacon seen again"


def test_the_author_cannot_approve_their_own_post_mortem(world: Any) -> None:
    incident_id = open_one(world.database)
    with acting(world.database, "analyst") as ctx:
        draft = postmortem.draft(ctx, incident_id=incident_id)
        assert draft.summary.startswith("INC-")
        assert "Incident opened" in draft.timeline
        postmortem.update(ctx, incident_id=incident_id, data=PostMortemUpdate(
            five_whys=["the macro ran", "macros were allowed"],
            action_items=[{"title": "Block Office macros from the internet", "owner_id": world.users["responder"]}]))
        postmortem.review(ctx, incident_id=incident_id, action=ReviewAction.SUBMIT)
    with pytest.raises(PermissionDenied, match="author"), acting(world.database, "analyst") as ctx:
        postmortem.review(ctx, incident_id=incident_id, action=ReviewAction.APPROVE)
    with acting(world.database, "responder") as ctx:
        record = postmortem.review(ctx, incident_id=incident_id, action=ReviewAction.APPROVE)
        assert record.approved_by == "responder"
        task = ctx.session.get(Task, record.action_items[0]["task_id"])
        assert task is not None and task.assignee_id == world.users["responder"]  # tracked as a task


def test_comments_store_mentions_of_users_who_may_read_and_announce_them_after_commit(world: Any) -> None:
    incident_id = open_one(world.database)
    seen: list[Any] = []
    unsubscribe = bus.subscribe(UsersMentioned, seen.append)
    try:
        with acting(world.database, "analyst") as ctx:
            comment = activity.add_comment(ctx, incident_id=incident_id, data=CommentCreate(
                body="@responder please isolate WS01; cc @viewer, @staff_b and @ghost. mail a@b.example"))
            assert seen == []  # not before the commit
        assert comment.mentions == [world.users["responder"], world.users["viewer"]]
        assert seen[0].user_ids == (world.users["responder"], world.users["viewer"])
    finally:
        unsubscribe()


def test_events_are_published_only_for_committed_changes(world: Any) -> None:
    opened: list[IncidentOpened] = []
    moved: list[IncidentPhaseChanged] = []
    unsubscribe = [bus.subscribe(IncidentOpened, opened.append), bus.subscribe(IncidentPhaseChanged, moved.append)]
    try:
        incident_id = open_one(world.database)
        with pytest.raises(RuntimeError), acting(world.database, "analyst") as ctx:
            finish_tasks(ctx, incident_id)
            service.transition(ctx, incident_id=incident_id, data=phase_step("contain"))
            raise RuntimeError("the request failed after the change")
        assert [e.incident_id for e in opened] == [incident_id]
        assert moved == []
        assert stored(world.database, incident_id).phase == "identify"
    finally:
        for undo in unsubscribe:
            undo()


def test_observables_are_normalised_and_unique_per_incident(world: Any) -> None:
    incident_id = open_one(world.database)
    with acting(world.database, "analyst") as ctx:
        first = activity.add_observable(ctx, incident_id=incident_id, data=ObservableCreate(value="EVIL[.]Example.COM"))
        assert (first.type, first.value) == ("domain", "evil.example.com")
    with pytest.raises(Conflict), acting(world.database, "analyst") as ctx:
        activity.add_observable(ctx, incident_id=incident_id, data=ObservableCreate(type="domain",
                                                                                      value="evil.example.com"))
    with pytest.raises(BadInput), acting(world.database, "analyst") as ctx:
        activity.add_observable(ctx, incident_id=incident_id, data=ObservableCreate(type="ipv4", value="999.1.1.1"))


def test_alerts_link_all_or_none_and_are_escalated(world: Any) -> None:
    incident_id = open_one(world.database, unit_id=world.line_a)
    mine, other_unit = fresh_alert_id(world), fresh_alert_id(world, world.branch_b)
    with pytest.raises(BadInput, match="another organisation unit"), acting(world.database, "analyst") as ctx:
        activity.add_alerts(ctx, incident_id=incident_id, alert_ids=[mine, other_unit])
    assert stored_alert(world.database, mine).status == "new"
    with acting(world.database, "analyst") as ctx:
        assert activity.add_alerts(ctx, incident_id=incident_id, alert_ids=[mine]) == [mine]
        assert activity.add_alerts(ctx, incident_id=incident_id, alert_ids=[mine]) == []  # already linked
    alert = stored_alert(world.database, mine)
    assert (alert.status, alert.incident_id) == ("escalated", incident_id)
    second = open_one(world.database, unit_id=world.line_a)
    with pytest.raises(Conflict, match="another incident"), acting(world.database, "analyst") as ctx:
        activity.add_alerts(ctx, incident_id=second, alert_ids=[mine])


def test_custom_fields_are_checked_against_their_definitions(world: Any) -> None:
    with acting(world.database, "analyst") as ctx:
        settings_service.create_field(ctx, data=FieldDefinitionCreate(key="ticket", label="Ticket", kind="text"))
        settings_service.create_field(ctx, data=FieldDefinitionCreate(key="regulator", label="Report to", kind="choice",
                                                                      choices=["CAC", "MPS"]))
    incident_id = open_one(world.database, custom_fields={"ticket": "SR-1"})
    with pytest.raises(BadInput) as refused, acting(world.database, "analyst") as ctx:
        service.update_incident(ctx, incident_id=incident_id, data=IncidentUpdate(
            custom_fields={"regulator": "FBI", "color": "red"}))
    assert {e["field"] for e in refused.value.extra["errors"]} == {"custom_fields.regulator", "custom_fields.color"}
    with acting(world.database, "analyst") as ctx:
        service.update_incident(ctx, incident_id=incident_id, data=IncidentUpdate(custom_fields={"regulator": "CAC"}))
    assert stored(world.database, incident_id).custom_fields == {"ticket": "SR-1", "regulator": "CAC"}


def test_tasks_on_a_closed_incident_are_refused_until_it_is_reopened(world: Any) -> None:
    incident_id = open_one(world.database)
    for phase in ("contain", "eradicate", "recover", "review"):
        walk_to(world.database, incident_id, phase)
    approve_postmortem(world.database, incident_id)
    walk_to(world.database, incident_id, "closed")
    with pytest.raises(Conflict, match="closed; reopen it first"), acting(world.database, "analyst") as ctx:
        tasks.create_task(ctx, incident_id=incident_id, data=TaskCreate(title="late"))


def test_a_branch_sees_only_its_own_incidents(world: Any) -> None:
    world.add_user("responder_a", Role.RESPONDER, world.branch_a)
    hq_incident = open_one(world.database)
    branch_incident = open_one(world.database, unit_id=world.line_a)
    with acting(world.database, "responder_a") as ctx:
        with pytest.raises(NotFound):
            service.get_incident(ctx.session, hq_incident)
        items, total = service.list_incidents(ctx.session, filters=IncidentFilter(), params=PageParams())
        assert [i.id for i in items] == [branch_incident] and total == 1


def test_incidents_opened_at_the_same_time_get_consecutive_references(world: Any, backend: str) -> None:
    """One transaction opens an incident and stays open while another opens one: the second waits for the
    numbering instead of taking the same number and failing on the unique reference."""
    outcome: list[Any] = []

    def second() -> None:
        try:
            with acting(world.database, "analyst") as ctx:
                outcome.append(service.open_incident(ctx, data=IncidentCreate(
                    title="Second", type="malware", severity="P3")).ref)
        except Exception as exc:
            outcome.append(exc)

    with acting(world.database, "analyst") as ctx:
        first = service.open_incident(ctx, data=IncidentCreate(title="First", type="malware", severity="P3")).ref
        racer = threading.Thread(target=second)
        racer.start()
        wait_until_blocked(backend, world.database)
    racer.join(timeout=30)
    assert not racer.is_alive() and len(outcome) == 1
    assert isinstance(outcome[0], str), outcome[0]
    number = int(first.rsplit("-", 1)[1])
    assert outcome[0] == f"{first.rsplit('-', 1)[0]}-{number + 1:04d}"
