"""The escalation engine on both records stores, driven by explicit times (no sleeping)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select
from tests.conftest import World, cli_context

from vigil.core.audit import AuditRecord
from vigil.core.db import Scope
from vigil.core.errors import Conflict
from vigil.response import escalation as engine
from vigil.response import oncall_service
from vigil.response.escalation import AckLinks, LinkRefused, Pager, Recipient
from vigil.response.oncall_models import Escalation, EscalationStep
from vigil.response.oncall_schemas import LayerIn, LevelIn, PolicyCreate, ScheduleCreate, TargetIn

T0 = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Shanghai


@dataclass
class Inbox:
    """A notifier that keeps what it was asked to send, and can be told to fail."""

    name: str = "test-inbox"
    sent: list[tuple[str, str, str, str]] = field(default_factory=list)
    failing: bool = False

    def __call__(self, user: Recipient, message_kind: str, title: str, body: str, ack_url: str) -> None:
        if self.failing:
            raise ConnectionError("robot endpoint answered 502")
        self.sent.append((user.username, message_kind, title, ack_url))

    def take(self) -> list[tuple[str, str]]:
        taken = [(s[0], s[1]) for s in self.sent]
        self.sent.clear()
        return taken


def make_policy(world: World, *, repeat: int = 0) -> int:
    """Level 1: whoever is on call in a daily analyst/responder rota (10 min); level 2: the viewer, as the
    manager (5 min)."""
    with world.database.transaction(Scope.system()) as session:
        ctx = cli_context(session)
        schedule = oncall_service.create_schedule(ctx, data=ScheduleCreate(
            name="SOC primary", time_zone="Asia/Shanghai",
            layers=[LayerIn(name="primary", participants=[world.users["responder"], world.users["analyst"]],
                            rotation="daily", handoff=time(9), start=date(2026, 3, 4))]))
        policy = oncall_service.create_policy(ctx, data=PolicyCreate(name="P1 paging", repeat=repeat, levels=[
            LevelIn(timeout_minutes=10, targets=[TargetIn(kind="schedule", id=schedule.id)]),
            LevelIn(timeout_minutes=5, targets=[TargetIn(kind="user", id=world.users["viewer"])]),
        ]))
        return policy.id


def start(world: World, pager: Pager, policy_id: int, incident_id: int = 41) -> int:
    with world.database.transaction(Scope.system()) as session:
        return engine.start(cli_context(session), incident_id=incident_id, title="Ransomware on FS01", severity="P1",
                            policy_id=policy_id, now=T0, pager=pager).id


def status(world: World, escalation_id: int) -> tuple[str, int, int]:
    with world.database.transaction(Scope.system()) as session:
        found = session.get(Escalation, escalation_id)
        assert found is not None
        return found.status, found.level, found.round


def steps(world: World, escalation_id: int) -> list[tuple[str, str]]:
    with world.database.transaction(Scope.system()) as session:
        return [(s.kind, s.username) for s in engine.steps_of(session, escalation_id)]


@pytest.fixture
def pager() -> Pager:
    return Pager(links=AckLinks("test-secret-key"), notify=Inbox(), base_url="https://soc.example.com")


def test_levels_escalate_on_timeout_and_acknowledgement_stops_them(world: World, pager: Pager) -> None:
    inbox = pager.notify
    assert isinstance(inbox, Inbox)
    escalation_id = start(world, pager, make_policy(world))
    # Level 1 at once: the responder holds the first day of the rota.
    assert inbox.take() == [("responder", "page")]
    assert inbox.sent == [] and status(world, escalation_id) == ("active", 0, 0)
    # Nine minutes later nothing is due yet.
    assert engine.tick(world.database, now=T0 + timedelta(minutes=9), pager=pager) == 0
    assert inbox.take() == []
    # Ten minutes without an acknowledgement: level 2, the manager.
    assert engine.tick(world.database, now=T0 + timedelta(minutes=10), pager=pager) == 1
    assert inbox.take() == [("viewer", "escalated")]
    # The manager acknowledges through the API path; nothing more is sent.
    with world.database.transaction(Scope.system()) as session:
        ctx = cli_context(session)
        engine.acknowledge(ctx, escalation_id=escalation_id, via="api", now=T0 + timedelta(minutes=11))
    assert engine.tick(world.database, now=T0 + timedelta(hours=3), pager=pager) == 0
    assert inbox.take() == []
    assert status(world, escalation_id) == ("acknowledged", 1, 0)
    assert steps(world, escalation_id) == [
        ("started", ""), ("level", ""), ("notified", "responder"), ("level", ""), ("notified", "viewer"),
        ("acknowledged", "test-setup"),
    ]
    with world.database.transaction(Scope.system()) as session, pytest.raises(Conflict, match="acknowledged by"):
        engine.acknowledge(cli_context(session), escalation_id=escalation_id, via="ui", now=T0 + timedelta(hours=4))
    with world.database.transaction(Scope.system()) as session:
        timeline = [(s.kind, s.level) for s in engine.steps_for_incident(session, 41)]
        assert timeline == [("started", None), ("level", 0), ("notified", 0), ("level", 1), ("notified", 1),
                            ("acknowledged", 1)]
        assert engine.steps_for_incident(session, 40) == []
        actions = set(session.scalars(select(AuditRecord.action)))
    assert {"escalation.start", "escalation.escalate", "escalation.acknowledge"} <= actions


def test_repeat_count_is_honoured_then_the_escalation_runs_out(world: World, pager: Pager) -> None:
    inbox = pager.notify
    assert isinstance(inbox, Inbox)
    escalation_id = start(world, pager, make_policy(world, repeat=1))
    now = T0
    for minutes in (10, 5, 10, 5):  # level 1, level 2, round 2 level 1, level 2
        now += timedelta(minutes=minutes)
        engine.tick(world.database, now=now, pager=pager)
    assert inbox.take() == [("responder", "page"), ("viewer", "escalated"), ("responder", "escalated"),
                            ("viewer", "escalated")]
    assert status(world, escalation_id) == ("exhausted", 1, 1)
    assert engine.tick(world.database, now=now + timedelta(hours=1), pager=pager) == 0
    assert inbox.take() == []
    # A late acknowledgement of an exhausted escalation still counts.
    with world.database.transaction(Scope.system()) as session:
        engine.acknowledge(cli_context(session), escalation_id=escalation_id, via="cli", now=now + timedelta(hours=2))
    assert status(world, escalation_id)[0] == "acknowledged"


def test_the_on_call_person_is_paged_at_the_time_of_the_level(world: World, pager: Pager) -> None:
    inbox = pager.notify
    assert isinstance(inbox, Inbox)
    policy_id = make_policy(world)
    later = T0 + timedelta(days=1)  # the analyst's day
    with world.database.transaction(Scope.system()) as session:
        engine.start(cli_context(session), incident_id=7, title="Phishing wave", severity="P2", policy_id=policy_id,
                     now=later, pager=pager)
    assert inbox.take() == [("analyst", "page")]


def test_a_failing_channel_is_recorded_and_the_escalation_goes_on(world: World, pager: Pager) -> None:
    inbox = pager.notify
    assert isinstance(inbox, Inbox)
    inbox.failing = True
    escalation_id = start(world, pager, make_policy(world))
    assert ("notify-failed", "responder") in steps(world, escalation_id)
    with world.database.transaction(Scope.system()) as session:
        failed = session.scalars(select(EscalationStep).where(EscalationStep.kind == "notify-failed")).one()
        assert "502" in failed.detail and failed.channel == "test-inbox"
    inbox.failing = False
    engine.tick(world.database, now=T0 + timedelta(minutes=10), pager=pager)
    assert inbox.take() == [("viewer", "escalated")]


def test_one_incident_is_paged_once_at_a_time(world: World, pager: Pager) -> None:
    policy_id = make_policy(world)
    start(world, pager, policy_id)
    with pytest.raises(Conflict, match="already being paged"):
        start(world, pager, policy_id)


def test_signed_link_acknowledges_once_and_refuses_tampering_and_expiry(world: World, pager: Pager) -> None:
    inbox = pager.notify
    assert isinstance(inbox, Inbox)
    escalation_id = start(world, pager, make_policy(world))
    url = inbox.sent[0][3]
    assert url.startswith("https://soc.example.com/ack/")
    token = url.rsplit("/", 1)[1]
    links = pager.links
    assert links.verify(token, now=T0) == (escalation_id, world.users["responder"])
    payload, mac = token.split(".")
    forged = engine._b64(engine._unb64(payload).replace(b'"u":', b'"u":1'))  # another user id
    for bad in (f"{forged}.{mac}", f"{payload}.{mac[:-2]}AA", "garbage", f"{payload}.{mac}.x"):
        with pytest.raises(LinkRefused):
            links.verify(bad, now=T0)
    with pytest.raises(LinkRefused, match="expired"):
        links.verify(token, now=T0 + timedelta(hours=24))
    with pytest.raises(LinkRefused, match="not valid"):
        AckLinks("another-key").verify(token, now=T0)
    # A valid signature for a user this escalation never paged is refused too.
    stranger = links.sign(escalation_id=escalation_id, user_id=world.users["viewer"], expires=T0 + timedelta(hours=1))
    with world.database.transaction(Scope.system()) as session, pytest.raises(LinkRefused, match="not sent"):
        engine.acknowledge_by_link(session, links, stranger, now=T0)
    with world.database.transaction(Scope.system()) as session:
        done = engine.acknowledge_by_link(session, links, token, now=T0 + timedelta(minutes=3))
        assert (done.status, done.acknowledged_by, done.acknowledged_via) == ("acknowledged", "responder", "link")
    with world.database.transaction(Scope.system()) as session, pytest.raises(Conflict):
        engine.acknowledge_by_link(session, links, token, now=T0 + timedelta(minutes=4))
