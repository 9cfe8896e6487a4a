"""Channels and sending on SQLite and PostgreSQL: secrets kept out of every read and audit record, a bad
configuration refused with nothing stored, retries recorded attempt by attempt, a failure never raised."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import func, select
from tests.conftest import World, cli_context

from vigil.core import audit
from vigil.core.audit import AuditRecord
from vigil.core.db import Scope
from vigil.core.errors import BadInput, Conflict
from vigil.response.notifications import service
from vigil.response.notifications.messages import Message, MessageKind
from vigil.response.notifications.models import NotificationChannel, NotificationDelivery
from vigil.response.notifications.schemas import ChannelCreate, ChannelUpdate

from . import platforms

TOKEN, SECRET = "dingtalk-token-7f3a", "SECdingtalk-secret-9b2c"
ESCALATION = Message(MessageKind.ESCALATION, subject="Ransomware on web01", severity="P1", incident_id=7,
                     link="https://vigil.example.cn/incidents/7", recipient="bob", level=2)


def add_dingtalk(world: World, url: str, **extra: object) -> int:
    with world.database.transaction(Scope.system()) as session:
        data = ChannelCreate.model_validate({"name": "SOC DingTalk", "kind": "dingtalk", "language": "zh_CN",
                                             "config": {"url": f"{url}/robot/send", "access_token": TOKEN,
                                                        "secret": SECRET}, **extra})
        return service.create_channel(cli_context(session), data=data).id


def send(world: World, channel_id: int, message: Message = ESCALATION) -> NotificationDelivery:
    waits: list[float] = []
    with world.database.transaction(Scope.system()) as session:
        delivery = service.send(cli_context(session), channel_id=channel_id, message=message, retry_delay=0.5,
                                timeout=5, sleep=waits.append)
        delivery.attempt_log  # noqa: B018 - loaded before the session closes
    delivery.waits = waits  # type: ignore[attr-defined]
    return delivery


def audit_text(world: World) -> str:
    with world.database.transaction(Scope.system()) as session:
        rows = session.scalars(select(AuditRecord).where(AuditRecord.action.like("notification.%"))).all()
        return orjson.dumps([{"action": r.action, "details": r.details} for r in rows]).decode()


def test_a_channel_is_read_without_its_secrets(world: World) -> None:
    channel_id = add_dingtalk(world, "https://oapi.dingtalk.com")
    with world.database.transaction(Scope.system()) as session:
        read = service.channel_read(service.get_channel(session, channel_id))
    shown = read.model_dump_json()
    assert TOKEN not in shown and SECRET not in shown
    assert read.secrets == {"access_token": "set", "secret": "set"}
    assert read.settings == {"url": "https://oapi.dingtalk.com/robot/send", "at_all": False}
    assert TOKEN not in audit_text(world) and SECRET not in audit_text(world)
    assert '"notification.channel.create"' in audit_text(world)


def test_a_bad_configuration_is_refused_and_nothing_is_stored(world: World) -> None:
    with pytest.raises(BadInput) as refused, world.database.transaction(Scope.system()) as session:
        service.create_channel(cli_context(session), data=ChannelCreate(
            name="broken", kind="dingtalk", config={"url": "ftp://x.example/robot"}))
    assert {e["field"] for e in refused.value.extra["errors"]} == {"config.url", "config.access_token"}
    with pytest.raises(BadInput, match="unknown channel kind 'pager'"), \
            world.database.transaction(Scope.system()) as session:
        service.create_channel(cli_context(session), data=ChannelCreate(name="x", kind="pager"))
    with world.database.transaction(Scope.system()) as session:
        assert session.scalar(select(func.count()).select_from(NotificationChannel)) == 0


def test_names_are_unique(world: World) -> None:
    add_dingtalk(world, "https://oapi.dingtalk.com")
    with pytest.raises(Conflict), world.database.transaction(Scope.system()) as session:
        service.create_channel(cli_context(session), data=ChannelCreate(
            name="SOC DingTalk", kind="wecom", config={"key": "k"}))


def test_an_update_keeps_secrets_it_is_not_given_and_audits_only_that_they_changed(world: World) -> None:
    channel_id = add_dingtalk(world, "https://oapi.dingtalk.com")
    with world.database.transaction(Scope.system()) as session:
        service.update_channel(cli_context(session), channel_id=channel_id, data=ChannelUpdate(
            language="en", config={"access_token": "", "at_all": True}))
    with world.database.transaction(Scope.system()) as session:
        channel = service.get_channel(session, channel_id)
        assert channel.config["access_token"] == TOKEN and channel.config["at_all"] is True
        assert channel.language == "en"
        service.update_channel(cli_context(session), channel_id=channel_id, data=ChannelUpdate(
            config={"access_token": "a-new-token-0001", "secret": None}))
    with world.database.transaction(Scope.system()) as session:
        channel = service.get_channel(session, channel_id)
        assert channel.config["access_token"] == "a-new-token-0001" and "secret" not in channel.config
    trail = audit_text(world)
    assert "a-new-token-0001" not in trail and TOKEN not in trail
    assert '"secrets_changed":["access_token","secret"]' in trail


def test_a_failed_attempt_is_retried_and_both_are_logged(world: World) -> None:
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as server:
        server.fail_first = 1
        channel_id = add_dingtalk(world, server.url)
        delivery = send(world, channel_id)
    assert delivery.status == "sent" and delivery.attempts == 2 and delivery.http_status == 200
    assert [a["ok"] for a in delivery.attempt_log] == [False, True]
    assert delivery.attempt_log[0]["http_status"] == 500 and "HTTP 500" in delivery.attempt_log[0]["error"]
    assert delivery.last_error == "" and delivery.sent_at is not None
    assert delivery.waits == [0.5]  # type: ignore[attr-defined]
    assert delivery.subject == "[P1] 已升级：Ransomware on web01" and delivery.incident_id == 7
    assert len(server.received) == 2


def test_an_endpoint_that_keeps_failing_gives_a_failed_delivery_and_no_error(world: World) -> None:
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as server:
        server.always_fail = True
        channel_id = add_dingtalk(world, server.url, max_attempts=4)
        delivery = send(world, channel_id)
    assert delivery.status == "failed" and delivery.attempts == 4 and len(server.received) == 4
    assert delivery.last_error.startswith("HTTP 500 from http://127.0.0.1:")
    assert delivery.waits == [0.5, 1.0, 2.0]  # type: ignore[attr-defined]
    assert TOKEN not in delivery.last_error
    assert '"outcome"' not in audit_text(world)  # details only; the outcome is the record's own column
    with world.database.transaction(Scope.system()) as session:
        record = session.scalars(select(AuditRecord).where(AuditRecord.action == "notification.send")).one()
        assert record.outcome == "failure" and record.details["status"] == "failed"


def test_a_refusal_is_not_retried(world: World) -> None:
    with platforms.serve(platforms.dingtalk(TOKEN, "another-secret")) as server:
        delivery = send(world, add_dingtalk(world, server.url))
    assert delivery.status == "failed" and delivery.attempts == 1
    assert "errcode 310000: sign not match" in delivery.last_error


def test_a_closed_port_fails_without_raising(world: World) -> None:
    port = platforms.free_port()
    delivery = send(world, add_dingtalk(world, f"http://127.0.0.1:{port}", max_attempts=2))
    assert delivery.status == "failed" and delivery.attempts == 2 and "ConnectError" in delivery.last_error


def test_a_disabled_channel_is_not_tried_but_a_test_goes_through(world: World) -> None:
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as server:
        channel_id = add_dingtalk(world, server.url, enabled=False)
        delivery = send(world, channel_id)
        with world.database.transaction(Scope.system()) as session:
            tested = service.send_test(cli_context(session), channel_id=channel_id, retry_delay=0)
            assert tested.status == "sent" and tested.message_kind == "test"
            assert service.get_channel(session, channel_id).enabled is False
    assert delivery.status == "failed" and delivery.last_error == "the channel is disabled" and delivery.attempts == 0
    assert len(server.received) == 1
    assert server.received[0].json()["markdown"]["title"] == "Vigil 测试消息"


def test_send_many_reaches_each_channel_and_a_removed_channel_keeps_its_log(world: World) -> None:
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as ding, platforms.serve(platforms.wecom("K1")) as wecom:
        first = add_dingtalk(world, ding.url)
        with world.database.transaction(Scope.system()) as session:
            second = service.create_channel(cli_context(session), data=ChannelCreate(
                name="WeCom", kind="wecom", language="en",
                config={"url": f"{wecom.url}/cgi-bin/webhook/send", "key": "K1"})).id
            sent = service.send_many(cli_context(session), channel_ids=[first, second], message=ESCALATION,
                                     retry_delay=0)
            assert [d.status for d in sent] == ["sent", "sent"]
        assert wecom.received[0].json()["markdown"]["content"].startswith("## [P1] Escalated: Ransomware on web01")
    with world.database.transaction(Scope.system()) as session:
        service.delete_channel(cli_context(session), channel_id=first)
    with world.database.transaction(Scope.system()) as session:
        kept = session.scalars(service.deliveries_query(incident_id=7)).all()
        assert sorted((d.channel_name, d.channel_id is None) for d in kept) == [("SOC DingTalk", True),
                                                                               ("WeCom", False)]


def test_a_delivery_belongs_to_the_unit_it_is_sent_for(world: World) -> None:
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as server:
        channel_id = add_dingtalk(world, server.url)
        with world.database.transaction(Scope.system()) as session:
            delivery = service.send(cli_context(session), channel_id=channel_id, message=ESCALATION,
                                    unit_id=world.branch_b, retry_delay=0)
            delivery_id = delivery.id
    with world.database.transaction(Scope(frozenset({world.branch_a}))) as session:
        assert session.scalars(service.deliveries_query()).all() == []
    with world.database.transaction(Scope(frozenset({world.branch_b}))) as session:
        assert [d.id for d in session.scalars(service.deliveries_query())] == [delivery_id]


def test_a_detached_send_holds_no_transaction_while_it_tries(world: World) -> None:
    """While the robot is being called, the delivery is already in the log as pending, and another writer
    gets through at once (on SQLite a transaction left open would hold the write lock)."""
    seen: list[tuple[str, int]] = []
    robot = platforms.dingtalk(TOKEN, SECRET)

    def check(request: platforms.Received) -> platforms.Answer:
        with world.database.transaction(Scope.system()) as session:
            statuses = [d.status for d in session.scalars(service.deliveries_query())]
            session.add(NotificationChannel(unit_id=world.hq, name=f"written meanwhile {len(seen)}", kind="wecom",
                                            config={"key": "k"}))
        seen.append((statuses[0], len(statuses)))
        return robot(request)

    with platforms.serve(check) as server:
        server.fail_first = 1
        channel_id = add_dingtalk(world, server.url)
        delivery = service.send_detached(world.database, actor=audit.Actor(None, "escalation", world.hq),
                                         channel_id=channel_id, message=ESCALATION, unit_id=world.branch_a,
                                         retry_delay=0)
    assert seen == [("pending", 1)] and len(server.received) == 2  # the first answer was a 500
    assert delivery.status == "sent" and delivery.attempts == 2 and delivery.unit_id == world.branch_a
    with world.database.transaction(Scope.system()) as session:
        stored = service.get_delivery(session, delivery.id)
        assert stored.status == "sent" and [a["ok"] for a in stored.attempt_log] == [False, True]
        assert session.scalar(select(func.count()).select_from(NotificationChannel)) == 2
        record = session.scalars(select(AuditRecord).where(AuditRecord.action == "notification.send")).one()
        assert record.actor == "escalation" and record.outcome == "success"
