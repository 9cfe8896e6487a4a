"""The alert queue's service: filters, the workflow with its audit records and false-positive counts, bulk
steps (all or none), assignment, suppressions and the tuning loop, per-rule statistics, and unit scoping
(another unit's alert or suppression is "not found", as everywhere in Vigil).

Alerts are raised the way the live pipeline raises them: a real Sigma rule matched by the engine, recorded
by ``record_matches``. The helpers at the top are shared with the API, page and CLI tests.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from vigil.accounts import service as accounts
from vigil.accounts import signin
from vigil.core.audit import AuditRecord
from vigil.core.auth import Permission, Role
from vigil.core.context import Context
from vigil.core.db import Database, Scope, set_scope
from vigil.core.errors import BadInput, InvalidTransition, NotFound
from vigil.core.pagination import PageParams
from vigil.detection import alerts_service as service
from vigil.detection.alerts import SUPPRESSION_OPS, Match, RecordResult, record_matches
from vigil.detection.models import Alert, DetectionRule, RulePack, Suppression
from vigil.detection.schemas_alerts import (
    AlertAssign,
    AlertBulk,
    AlertFilter,
    AlertTransition,
    Condition,
    SuppressionCreate,
    SuppressionOp,
    SuppressionUpdate,
)
from vigil.detection.sigma import Engine, Rule, rule_from_yaml
from vigil.detection.workflow import AlertAction, Resolution

# --- helpers shared by the alert tests -------------------------------------------------------------

WHOAMI_YAML = r"""
title: Whoami run
id: 5f0b8c43-1b1e-4c41-9a53-1f0e7a9d6a01
status: test
description: whoami.exe run, as attackers do to learn which account they hold.
author: Jane Doe, John Roe
references:
  - https://attack.mitre.org/techniques/T1033/
level: medium
tags: [attack.discovery, attack.t1033]
logsource: {category: process_creation, product: windows}
detection:
  selection: {Image|endswith: '\whoami.exe'}
  condition: selection
falsepositives: [Inventory scripts]
"""
NET_YAML = r"""
title: Net user enumeration
id: 0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f
status: test
description: net.exe lists the domain's users.
author: Ann Analyst
level: high
tags: [attack.discovery, attack.t1087.002]
logsource: {category: process_creation, product: windows}
detection:
  selection:
    Image|endswith: '\net.exe'
    CommandLine|contains: ' user'
  condition: selection
"""
WHOAMI = r"C:\Windows\System32\whoami.exe"
NET = r"C:\Windows\System32\net.exe"


def install_rule(database: Database, text: str = WHOAMI_YAML) -> Rule:
    """The rule as an imported rule of a pack (a ``DetectionRule`` row), and the compiled rule."""
    rule = rule_from_yaml(text)
    with database.transaction(Scope.system()) as session:
        pack = session.scalar(select(RulePack).where(RulePack.name == "tests"))
        if pack is None:
            pack = RulePack(name="tests", source="tests")
            session.add(pack)
            session.flush()
        session.add(DetectionRule(
            pack_id=pack.id, rule_uid=rule.id, title=rule.title, level=rule.level, status=rule.status,
            product=rule.product, category=rule.category, service=rule.service, tags=list(rule.tags),
            author=rule.author, references=list(rule.references), description=rule.description,
            falsepositives=list(rule.falsepositives), path="tests.yml", yaml=rule.yaml))
    return rule


def process_event(image: str = WHOAMI, *, host: str = "WS01", user: str = r"CORP\alice",
                  at: datetime | None = None, command_line: str = "") -> dict[str, Any]:
    """A Sysmon process creation, as Vigil's Windows parser flattens it."""
    moment = at or datetime.now(UTC)
    return {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": image,
            "CommandLine": command_line or image, "ParentImage": r"C:\Windows\explorer.exe", "Computer": host,
            "User": user, "@timestamp": moment.isoformat().replace("+00:00", "Z")}


def raise_alerts(database: Database, rules: Sequence[Rule], unit_id: int, *events: dict[str, Any]) -> RecordResult:
    """Match the events with the engine, as the pipeline does, and record the matches."""
    engine = Engine(list(rules))
    matches = [Match(rule=rule, event=event, unit_id=unit_id, source="sysmon")
               for event in events for rule in engine.match(event)]
    return record_matches(database, matches)


def alert_ids(database: Database, **where: Any) -> list[int]:
    with database.transaction(Scope.system()) as session:
        statement = select(Alert.id).order_by(Alert.id)
        for column, value in where.items():
            statement = statement.where(getattr(Alert, column) == value)
        return list(session.scalars(statement))


def stored_alert(database: Database, alert_id: int) -> Alert:
    with database.transaction(Scope.system()) as session:
        found = session.get(Alert, alert_id)
        assert found is not None
        return found


def rule_row(database: Database, rule_uid: str) -> DetectionRule:
    with database.transaction(Scope.system()) as session:
        found = session.scalar(select(DetectionRule).where(DetectionRule.rule_uid == rule_uid))
        assert found is not None
        return found


def audit_of(database: Database, action: str) -> list[AuditRecord]:
    with database.transaction(Scope.system()) as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.action == action)
                                    .order_by(AuditRecord.seq)))


@contextmanager
def acting(database: Database, username: str, permission: Permission = Permission.ALERTS_WRITE) -> Iterator[Context]:
    """A transaction as the signed-in user, scoped as the API's guard scopes it for ``permission``."""
    with database.transaction(Scope.system()) as session:
        user = accounts.find_user(session, username)
        principal = signin.principal_for(user, tree=accounts.load_unit_tree(session))
        set_scope(session, Scope(principal.units_for(permission)))
        yield Context.of(session, principal, "203.0.113.7")


def with_branch_analysts(world: Any) -> None:
    """An analyst in each branch: analyst_a (Shanghai, with Payments below it) and analyst_b (Beijing)."""
    world.add_user("analyst_a", Role.ANALYST, world.branch_a)
    world.add_user("analyst_b", Role.ANALYST, world.branch_b)


def fresh_alert_id(world: Any, unit_id: int | None = None) -> int:
    """A new alert of ``unit_id`` (default Payments, line_a, below branch_a), stored directly (for the role
    matrix and the unit-scope test)."""
    with world.database.transaction(Scope.system()) as session:
        now = datetime.now(UTC)
        row = Alert(unit_id=unit_id or world.line_a, rule_uid="matrix-rule", title="Matrix alert", level="low",
                    dedup_key=uuid.uuid4().hex, first_seen=now, last_seen=now, event={"Computer": "WS01"})
        session.add(row)
        session.flush()
        return row.id


def fresh_suppression_id(world: Any, unit_id: int | None = None) -> int:
    """A new suppression for every rule of ``unit_id`` (default line_a), stored directly (as fresh_alert_id)."""
    with world.database.transaction(Scope.system()) as session:
        row = Suppression(unit_id=unit_id or world.line_a, rule_uid=None, reason="matrix", author="tests",
                          conditions=[{"field": "Computer", "op": "equals", "value": "WS01"}])
        session.add(row)
        session.flush()
        return row.id


def step(action: AlertAction, resolution: Resolution | None = None, comment: str = "") -> AlertTransition:
    return AlertTransition(action=action, resolution=resolution, comment=comment)


# --- the queue ---------------------------------------------------------------------------------------


def test_the_queue_filters_by_state_level_rule_host_user_time_and_text(world: Any) -> None:
    whoami, net = install_rule(world.database), install_rule(world.database, NET_YAML)
    now = datetime.now(UTC)
    raise_alerts(world.database, [whoami, net], world.hq,
                 process_event(host="WS01", user=r"CORP\alice", at=now - timedelta(days=3)),
                 process_event(host="WS02", user=r"CORP\bob", at=now - timedelta(hours=2)),
                 process_event(NET, host="DC01", user=r"CORP\eve", command_line="net user /domain", at=now))
    first = alert_ids(world.database, host="WS01")[0]
    with acting(world.database, "analyst") as ctx:
        service.transition(ctx, alert_id=first, data=step(AlertAction.ACKNOWLEDGE))

    def titles(**given: Any) -> list[str]:
        with acting(world.database, "analyst", Permission.ALERTS_READ) as ctx:
            found, total = service.list_alerts(ctx.session, filters=AlertFilter(**given), params=PageParams())
            assert total == len(found)
            return [f"{alert.title}@{alert.host}" for alert in found]

    assert titles() == ["Net user enumeration@DC01", "Whoami run@WS02", "Whoami run@WS01"]  # newest first
    assert titles(status=["acknowledged"]) == ["Whoami run@WS01"]
    assert titles(status=["new"], level=["medium"]) == ["Whoami run@WS02"]
    assert titles(level=["high", "critical"]) == ["Net user enumeration@DC01"]
    assert titles(rule=net.id) == ["Net user enumeration@DC01"]
    assert titles(host="ws02") == ["Whoami run@WS02"]
    assert titles(user=r"corp\EVE") == ["Net user enumeration@DC01"]
    assert titles(since=now - timedelta(days=1)) == ["Net user enumeration@DC01", "Whoami run@WS02"]
    assert titles(until=now - timedelta(days=1)) == ["Whoami run@WS01"]
    assert titles(q="ENUMERATION") == ["Net user enumeration@DC01"]
    assert titles(q="bob") == ["Whoami run@WS02"]
    assert titles(q="100%_") == []  # LIKE wildcards in the text are taken literally
    assert titles(origin="ioc") == []
    with acting(world.database, "analyst", Permission.ALERTS_READ) as ctx:
        page, total = service.list_alerts(ctx.session, filters=AlertFilter(), params=PageParams(limit=2, offset=2))
        assert total == 3 and [alert.host for alert in page] == ["WS01"]


def test_an_analyst_of_one_unit_never_sees_or_changes_another_units_alerts(world: Any) -> None:
    with_branch_analysts(world)
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.line_a, process_event(host="PAY01"))
    raise_alerts(world.database, [rule], world.branch_b, process_event(host="BJ01"))
    payments, beijing = alert_ids(world.database, host="PAY01")[0], alert_ids(world.database, host="BJ01")[0]
    with acting(world.database, "analyst_a", Permission.ALERTS_READ) as ctx:
        found, total = service.list_alerts(ctx.session, filters=AlertFilter(), params=PageParams())
        assert [alert.host for alert in found] == ["PAY01"] and total == 1  # Payments lies below Shanghai
        with pytest.raises(NotFound):
            service.get_alert(ctx.session, beijing)
        assert [s.alerts for s in service.rule_stats(ctx.session)] == [1]
    with acting(world.database, "analyst_a") as ctx, pytest.raises(NotFound):
        service.transition(ctx, alert_id=beijing, data=step(AlertAction.CLOSE, Resolution.FALSE_POSITIVE))
    with acting(world.database, "analyst_a") as ctx, pytest.raises(NotFound):
        service.bulk_transition(ctx, data=AlertBulk(ids=[payments, beijing], action=AlertAction.ACKNOWLEDGE))
    assert stored_alert(world.database, beijing).status == "new"
    assert stored_alert(world.database, payments).status == "new"  # all or none
    with acting(world.database, "analyst_b") as ctx:
        service.transition(ctx, alert_id=beijing, data=step(AlertAction.ACKNOWLEDGE))
    assert stored_alert(world.database, beijing).status == "acknowledged"


# --- the workflow ------------------------------------------------------------------------------------


def test_each_step_is_audited_and_false_positives_count_on_the_rule(world: Any) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.line_a, process_event())
    alert_id = alert_ids(world.database)[0]
    with acting(world.database, "analyst") as ctx:
        service.transition(ctx, alert_id=alert_id, data=step(AlertAction.ACKNOWLEDGE, comment="looking"))
    with acting(world.database, "analyst") as ctx:
        service.transition(ctx, alert_id=alert_id, data=step(AlertAction.CLOSE, Resolution.FALSE_POSITIVE))
    closed = stored_alert(world.database, alert_id)
    assert (closed.status, closed.resolution, closed.closed_by) == ("closed", "false_positive", "analyst")
    assert closed.closed_at is not None
    assert rule_row(world.database, rule.id).false_positives == 1

    acknowledged = audit_of(world.database, "alert.acknowledge")[-1]
    assert (acknowledged.actor, acknowledged.target_type, acknowledged.target_id) == ("analyst", "alert",
                                                                                       str(alert_id))
    assert acknowledged.unit_id == world.line_a and acknowledged.source_ip == "203.0.113.7"
    assert acknowledged.details == {"rule_uid": rule.id, "title": "Whoami run", "from": "new",
                                    "to": "acknowledged", "comment": "looking"}
    assert audit_of(world.database, "alert.close")[-1].details["resolution"] == "false_positive"

    with acting(world.database, "analyst") as ctx:  # reopening takes the false positive back, on the record
        service.transition(ctx, alert_id=alert_id, data=step(AlertAction.REOPEN))
    reopened = stored_alert(world.database, alert_id)
    assert (reopened.status, reopened.resolution, reopened.closed_at) == ("acknowledged", None, None)
    assert rule_row(world.database, rule.id).false_positives == 0
    assert audit_of(world.database, "alert.reopen")[-1].details["previous_resolution"] == "false_positive"

    with acting(world.database, "analyst") as ctx:
        service.transition(ctx, alert_id=alert_id, data=step(AlertAction.CLOSE, Resolution.TRUE_POSITIVE))
    assert rule_row(world.database, rule.id).false_positives == 0


def test_a_refused_step_changes_nothing_and_says_why(world: Any) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.hq, process_event())
    alert_id = alert_ids(world.database)[0]
    with acting(world.database, "analyst") as ctx:
        service.transition(ctx, alert_id=alert_id, data=step(AlertAction.CLOSE, Resolution.TRUE_POSITIVE))
    records = len(audit_of(world.database, "alert.acknowledge"))
    with acting(world.database, "analyst") as ctx, pytest.raises(InvalidTransition, match="closed cannot be"):
        service.transition(ctx, alert_id=alert_id, data=step(AlertAction.ACKNOWLEDGE))
    with acting(world.database, "analyst") as ctx, pytest.raises(BadInput, match="resolution"):
        service.transition(ctx, alert_id=alert_id, data=step(AlertAction.REOPEN, Resolution.TRUE_POSITIVE))
    assert stored_alert(world.database, alert_id).status == "closed"
    assert len(audit_of(world.database, "alert.acknowledge")) == records


def test_escalating_marks_the_alert_for_an_incident(world: Any) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.hq, process_event())
    alert_id = alert_ids(world.database)[0]
    with acting(world.database, "analyst") as ctx:
        service.escalate(ctx, alert_id=alert_id, comment="ransomware precursor")
    assert stored_alert(world.database, alert_id).status == "escalated"
    assert audit_of(world.database, "alert.escalate")[-1].details["comment"] == "ransomware precursor"


def test_bulk_steps_are_all_or_none_and_skip_alerts_already_there(world: Any) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.hq, *(process_event(host=f"WS0{n}") for n in range(1, 5)))
    one, two, three, four = alert_ids(world.database)
    with acting(world.database, "analyst") as ctx:
        service.transition(ctx, alert_id=two, data=step(AlertAction.ACKNOWLEDGE))
        service.transition(ctx, alert_id=four, data=step(AlertAction.CLOSE, Resolution.TRUE_POSITIVE))
    with acting(world.database, "analyst") as ctx, pytest.raises(InvalidTransition) as refused:
        service.bulk_transition(ctx, data=AlertBulk(ids=[one, two, four], action=AlertAction.ACKNOWLEDGE))
    assert f"alert {four}:" in refused.value.detail and "nothing was changed" in refused.value.detail
    assert stored_alert(world.database, one).status == "new"
    with acting(world.database, "analyst") as ctx:
        result = service.bulk_transition(ctx, data=AlertBulk(
            ids=[one, two, three, one], action=AlertAction.CLOSE, resolution=Resolution.FALSE_POSITIVE))
    assert (result.changed, result.unchanged) == ([one, two, three], [])
    assert rule_row(world.database, rule.id).false_positives == 3
    assert [r.target_id for r in audit_of(world.database, "alert.close")][-3:] == [str(one), str(two), str(three)]
    with acting(world.database, "analyst") as ctx:
        again = service.bulk_transition(ctx, data=AlertBulk(
            ids=[one, two], action=AlertAction.CLOSE, resolution=Resolution.FALSE_POSITIVE))
    assert (again.changed, again.unchanged) == ([], [one, two])
    assert rule_row(world.database, rule.id).false_positives == 3


def test_an_alert_is_assigned_only_to_someone_who_can_read_it(world: Any) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.line_a, process_event())
    alert_id = alert_ids(world.database)[0]
    with acting(world.database, "analyst") as ctx:
        service.assign(ctx, alert_id=alert_id, data=AlertAssign(assignee_id=world.users["staff_a"]))
    assert stored_alert(world.database, alert_id).assignee_id == world.users["staff_a"]  # a viewer in Payments
    record = audit_of(world.database, "alert.assign")[-1]
    assert record.details["assignee"] == "staff_a" and record.details["from"] is None
    for stranger in ("staff_b", "sysadmin"):  # a viewer of another branch; an account without alerts:read
        with acting(world.database, "analyst") as ctx, pytest.raises(BadInput, match="cannot read alerts"):
            service.assign(ctx, alert_id=alert_id, data=AlertAssign(assignee_id=world.users[stranger]))
    with acting(world.database, "analyst") as ctx, pytest.raises(BadInput, match="does not exist"):
        service.assign(ctx, alert_id=alert_id, data=AlertAssign(assignee_id=999_999))
    with acting(world.database, "analyst") as ctx:
        service.assign(ctx, alert_id=alert_id, data=AlertAssign(assignee_id=None))
    assert stored_alert(world.database, alert_id).assignee_id is None
    assert len(audit_of(world.database, "alert.assign")) == 2


# --- suppressions and the tuning loop ----------------------------------------------------------------


def test_the_schema_offers_exactly_the_operators_the_matcher_knows() -> None:
    assert typing.get_args(SuppressionOp) == SUPPRESSION_OPS


def test_a_suppression_drafted_from_an_alert_stops_the_next_matching_event(world: Any) -> None:
    rule = install_rule(world.database)
    first = raise_alerts(world.database, [rule], world.line_a, process_event(host="PAY01", user=r"CORP\svc_inv"))
    assert first.raised == 1
    alert_id = alert_ids(world.database)[0]
    with acting(world.database, "analyst") as ctx:
        proposal = service.suppression_from_alert(service.get_alert(ctx.session, alert_id))
        assert proposal.rule_uid == rule.id and proposal.unit_id == world.line_a
        assert [(c.field, c.op, c.value) for c in proposal.conditions] == [
            ("Computer", "equals", "PAY01"), ("User", "equals", r"CORP\svc_inv"), ("Image", "equals", WHOAMI)]
        created = service.create_suppression(ctx, data=SuppressionCreate(
            rule_uid=proposal.rule_uid, unit_id=proposal.unit_id, conditions=proposal.conditions[:2],
            reason="inventory job runs whoami nightly", expires_at=datetime.now(UTC) + timedelta(days=30)))
        service.transition(ctx, alert_id=alert_id, data=step(AlertAction.CLOSE, Resolution.FALSE_POSITIVE))

    later = datetime.now(UTC) + timedelta(hours=3)  # past the dedup window: without it, a new alert
    again = raise_alerts(world.database, [rule], world.line_a,
                         process_event(host="pay01", user=r"corp\SVC_INV", at=later))
    assert (again.raised, again.deduplicated, again.suppressed) == (0, 0, 1)
    assert alert_ids(world.database) == [alert_id]
    with acting(world.database, "analyst") as ctx:
        assert service.get_suppression(ctx.session, created.id).hits == 1
    other_host = raise_alerts(world.database, [rule], world.line_a, process_event(host="PAY02", at=later))
    assert other_host.raised == 1  # only what the conditions describe is silenced
    elsewhere = raise_alerts(world.database, [rule], world.branch_b,
                             process_event(host="PAY01", user=r"CORP\svc_inv", at=later))
    assert elsewhere.raised == 1  # the suppression belongs to Payments, not to other units

    record = audit_of(world.database, "suppression.create")[-1]
    assert record.actor == "analyst" and record.unit_id == world.line_a
    assert record.details["reason"] == "inventory job runs whoami nightly"
    assert record.details["conditions"][0] == {"field": "Computer", "op": "equals", "value": "PAY01"}


def test_a_proposal_takes_the_fields_asked_for_and_skips_what_the_event_lacks(world: Any) -> None:
    rule = install_rule(world.database)
    long_command = "whoami " + "/all " * 400
    raise_alerts(world.database, [rule], world.hq, process_event(command_line=long_command))
    alert_id = alert_ids(world.database)[0]
    with acting(world.database, "analyst") as ctx:
        alert = service.get_alert(ctx.session, alert_id)
        proposal = service.suppression_from_alert(alert, ["ParentImage", "NoSuchField", "EventID", "CommandLine"])
    assert [(c.field, c.op) for c in proposal.conditions] == [
        ("ParentImage", "equals"), ("EventID", "equals"), ("CommandLine", "startswith")]
    assert proposal.conditions[1].value == "1"
    assert long_command.startswith(proposal.conditions[2].value) and len(proposal.conditions[2].value) == 1000


def test_a_proposal_for_an_ecs_event_takes_its_host_user_process_and_source() -> None:
    ssh = {"@timestamp": "2026-11-28T20:17:07+00:00", "host": {"hostname": "jump01"}, "user": {"name": "admin"},
           "process": {"name": "sshd", "pid": 13244}, "source": {"ip": "203.0.113.229", "port": 55113},
           "message": "Failed password for invalid user admin from 203.0.113.229 port 55113 ssh2"}
    alert = Alert(rule_uid="af25ce65-3d3d-4388-8003-c4878bb6a96a", unit_id=3, event=ssh)
    proposal = service.suppression_from_alert(alert)
    assert [(c.field, c.value) for c in proposal.conditions] == [
        ("host.hostname", "jump01"), ("user.name", "admin"), ("process.name", "sshd"), ("source.ip", "203.0.113.229")]
    network = {"source": {"ip": "10.20.3.47"}, "destination": {"ip": "198.51.100.77"}, "host": {"os": "linux"}}
    assert [c.field for c in service.suppression_from_alert(Alert(rule_uid="x", unit_id=3, event=network))
            .conditions] == ["source.ip"]  # an object is no value to compare


def test_suppressions_are_changed_and_removed_on_the_record_within_ones_units(world: Any) -> None:
    with_branch_analysts(world)
    rule = install_rule(world.database)
    condition = Condition(field="Computer", op="equals", value="BJ01")
    with acting(world.database, "analyst_b") as ctx:
        created = service.create_suppression(ctx, data=SuppressionCreate(
            rule_uid=rule.id, conditions=[condition], reason="lab host"))
    assert created.unit_id == world.branch_b and created.author == "analyst_b" and created.expires_at is None
    with acting(world.database, "analyst_a") as ctx:
        assert service.list_suppressions(ctx.session, params=PageParams())[1] == 0
        with pytest.raises(NotFound):
            service.update_suppression(ctx, suppression_id=created.id, data=SuppressionUpdate(enabled=False))
        with pytest.raises(NotFound):
            service.delete_suppression(ctx, suppression_id=created.id)
        with pytest.raises(NotFound, match="outside your scope"):
            service.create_suppression(ctx, data=SuppressionCreate(
                conditions=[condition], reason="x", unit_id=world.branch_b))
    with acting(world.database, "analyst_b") as ctx:
        service.update_suppression(ctx, suppression_id=created.id, data=SuppressionUpdate(enabled=False))
        assert not service.is_active(service.get_suppression(ctx.session, created.id))
    update = audit_of(world.database, "suppression.update")[-1]
    assert update.details == {"rule_uid": rule.id, "enabled": [True, False]} and update.actor == "analyst_b"
    with acting(world.database, "analyst_b") as ctx:
        service.delete_suppression(ctx, suppression_id=created.id)
    assert audit_of(world.database, "suppression.delete")[-1].details["reason"] == "lab host"
    with world.database.transaction(Scope.system()) as session:
        assert session.scalar(select(Suppression.id)) is None


@pytest.mark.parametrize(("given", "message"), [
    ({"conditions": [Condition(field="IpAddress", op="cidr", value="10.0.0.300/8")]}, "not an address"),
    ({"conditions": [Condition(field="Computer", op="equals", value="")]}, "needs a value"),
    ({"expires_at": datetime(2020, 1, 1, tzinfo=UTC)}, "in the past"),
    ({"rule_uid": "no-such-rule"}, "no rule with the id"),
])
def test_a_suppression_that_could_not_work_is_refused(world: Any, given: dict[str, Any], message: str) -> None:
    install_rule(world.database)
    data = {"conditions": [Condition(field="Computer", op="exists")], "reason": "noise", **given}
    with acting(world.database, "analyst") as ctx, pytest.raises(BadInput, match=message):
        service.create_suppression(ctx, data=SuppressionCreate(**data))
    with world.database.transaction(Scope.system()) as session:
        assert session.scalar(select(Suppression.id)) is None


def test_an_expired_or_disabled_suppression_lets_alerts_through(world: Any) -> None:
    rule = install_rule(world.database)
    with acting(world.database, "analyst") as ctx:
        row = service.create_suppression(ctx, data=SuppressionCreate(
            rule_uid=rule.id, conditions=[Condition(field="Computer", op="equals", value="WS01")], reason="noise",
            expires_at=datetime.now(UTC) + timedelta(minutes=5), unit_id=world.hq))
    assert raise_alerts(world.database, [rule], world.hq, process_event()).suppressed == 1
    matches = [Match(rule=rule, event=process_event(), unit_id=world.hq, source="sysmon")]
    after_expiry = record_matches(world.database, matches, now=datetime.now(UTC) + timedelta(minutes=10))
    assert after_expiry.raised == 1
    with acting(world.database, "analyst") as ctx:
        service.update_suppression(ctx, suppression_id=row.id, data=SuppressionUpdate(expires_at=None, enabled=False))
    assert raise_alerts(world.database, [rule], world.hq, process_event(host="ws01")).suppressed == 0


# --- statistics --------------------------------------------------------------------------------------


def test_rule_statistics_count_hits_alerts_outcomes_and_false_positive_rate(world: Any) -> None:
    whoami, net = install_rule(world.database), install_rule(world.database, NET_YAML)
    now = datetime.now(UTC)
    raise_alerts(world.database, [whoami, net], world.hq,
                 *(process_event(host=f"WS{n:02}", at=now - timedelta(hours=n)) for n in range(1, 5)),
                 process_event(host="WS01", at=now - timedelta(minutes=50)),  # folded into WS01's alert
                 process_event(NET, host="DC01", command_line="net user", at=now - timedelta(days=20)))
    ws = {alert.host: alert.id for alert in (stored_alert(world.database, i) for i in alert_ids(world.database))}
    with acting(world.database, "analyst") as ctx:
        service.bulk_transition(ctx, data=AlertBulk(ids=[ws["WS01"], ws["WS02"], ws["WS03"]],
                                                    action=AlertAction.CLOSE, resolution=Resolution.FALSE_POSITIVE))
        service.transition(ctx, alert_id=ws["WS04"], data=step(AlertAction.CLOSE, Resolution.TRUE_POSITIVE))
    with acting(world.database, "analyst", Permission.ALERTS_READ) as ctx:
        stats = {s.rule_uid: s for s in service.rule_stats(ctx.session)}
        noisy = service.noisiest_rules(ctx.session, days=7)
    mine = stats[whoami.id]
    assert (mine.alerts, mine.events, mine.open, mine.true_positives, mine.false_positives) == (4, 5, 0, 1, 3)
    assert mine.false_positive_rate == 0.75 and mine.title == "Whoami run" and mine.level == "medium"
    assert mine.hits == rule_row(world.database, whoami.id).hits >= 4
    assert mine.last_hit_at is not None and mine.last_seen is not None
    assert stats[net.id].false_positive_rate is None and stats[net.id].open == 1  # nothing resolved yet
    assert list(stats) == [whoami.id, net.id]  # most alerts first
    assert [(n.rule_uid, n.alerts, n.days) for n in noisy] == [(whoami.id, 4, 7)]  # the net alert is 20 days old
    with acting(world.database, "analyst", Permission.ALERTS_READ) as ctx:
        assert [n.rule_uid for n in service.noisiest_rules(ctx.session, days=30)] == [whoami.id, net.id]
        assert [s.rule_uid for s in service.rule_stats(ctx.session, rule_uid=net.id)] == [net.id]
