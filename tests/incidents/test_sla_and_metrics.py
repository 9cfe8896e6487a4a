"""SLA figures of stored incidents, the scheduler's once-only warnings and breaches, and MTTA/MTTC/MTTR
recomputed from the status-change history at known times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from vigil.core.auth import Permission
from vigil.core.db import Scope
from vigil.core.events import bus
from vigil.core.pagination import PageParams
from vigil.incidents import metrics, service, settings_service, sla
from vigil.incidents.events import SlaBreached, SlaWarning
from vigil.incidents.models import Incident, SlaRecord, TimelineEntry
from vigil.incidents.schemas import IncidentFilter, SlaTargetUpdate

from .support import acting, open_one, walk_to

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai


def figures(world: Any, incident_id: int, now: datetime) -> dict[str, sla.SlaFigure]:
    with world.database.transaction(Scope.system()) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return {f.metric: f for f in sla.figures_of(session, incident, now)}


def test_figures_follow_the_severitys_targets_and_the_recorded_times(world: Any) -> None:
    incident_id = open_one(world.database, severity="P1", at=T0)  # 15 / 240 / 1440 minutes, 24x7
    with acting(world.database, "analyst") as ctx:
        service.acknowledge(ctx, incident_id=incident_id, at=T0 + timedelta(minutes=20))
    found = figures(world, incident_id, T0 + timedelta(minutes=200))
    assert found["acknowledge"].state == "breached" and found["acknowledge"].done_at == T0 + timedelta(minutes=20)
    assert found["acknowledge"].due_at == T0 + timedelta(minutes=15)
    contain = found["contain"]
    assert (contain.state, contain.elapsed_minutes, contain.remaining_minutes) == ("warning", 200, 40)
    assert found["resolve"].state == "ok"


def test_business_hours_targets_stop_the_clock_at_night(world: Any) -> None:
    with acting(world.database, "analyst") as ctx:
        settings_service.set_target(ctx, severity="P3", data=SlaTargetUpdate(
            acknowledge_minutes=60, contain_minutes=600, resolve_minutes=6000, clock="business"))
    opened = T0 + timedelta(hours=8, minutes=30)  # Monday 17:30 Shanghai: 30 working minutes left that day
    incident_id = open_one(world.database, severity="P3", at=opened)
    found = figures(world, incident_id, opened + timedelta(hours=12))  # Tuesday 05:30: still before 09:00
    assert found["acknowledge"].elapsed_minutes == 30 and found["acknowledge"].state == "ok"
    assert found["acknowledge"].due_at == T0 + timedelta(days=1, minutes=30)  # Tuesday 09:30 Shanghai


def test_the_scheduler_records_each_warning_and_breach_once(world: Any) -> None:
    incident_id = open_one(world.database, severity="P1", at=T0)
    heard: list[Any] = []
    undo = [bus.subscribe(SlaWarning, heard.append), bus.subscribe(SlaBreached, heard.append)]
    try:
        with world.database.transaction(Scope.system()) as session:
            assert sla.record_sla(session, now=T0 + timedelta(minutes=13)) != []  # 13 of 15 minutes: a warning
        with world.database.transaction(Scope.system()) as session:
            first = sla.record_sla(session, now=T0 + timedelta(minutes=30))
            assert [(r.metric, r.kind) for r in first] == [("acknowledge", "breach")]
        with world.database.transaction(Scope.system()) as session:
            assert sla.record_sla(session, now=T0 + timedelta(minutes=31)) == []
            entries = session.scalars(select(TimelineEntry.summary).where(
                TimelineEntry.incident_id == incident_id, TimelineEntry.kind == "sla")).all()
            assert len(entries) == 2 and "SLA to acknowledge breached" in entries[1]
            assert session.scalar(select(SlaRecord.due_at).where(SlaRecord.kind == "breach")) == T0 + timedelta(
                minutes=15)
    finally:
        for unsubscribe in undo:
            unsubscribe()
    assert [type(e).__name__ for e in heard] == ["SlaWarning", "SlaBreached"]
    with acting(world.database, "viewer", Permission.INCIDENTS_READ) as ctx:
        items, _ = service.list_incidents(ctx.session, filters=IncidentFilter(sla="breached"), params=PageParams())
        assert [i.id for i in items] == [incident_id]
        assert service.list_incidents(ctx.session, filters=IncidentFilter(sla="ok"), params=PageParams())[1] == 0


def test_mtta_mttc_mttr_are_recomputed_from_the_history(world: Any) -> None:
    # Two malware incidents (P1, team red) and one phishing (P2, team blue), at known times.
    plans = [("malware", "P1", "red", T0, [10, 60, 180]),
             ("malware", "P1", "red", T0 + timedelta(days=1), [20, 120, 300]),
             ("phishing", "P2", "blue", T0 + timedelta(days=40), [30, None, None])]
    for kind, severity, team, opened, (ack, contained, resolved) in plans:
        incident_id = open_one(world.database, type=kind, severity=severity, team=team, at=opened)
        with acting(world.database, "analyst") as ctx:
            service.acknowledge(ctx, incident_id=incident_id, at=opened + timedelta(minutes=ack))
        if contained is not None:
            walk_to(world.database, incident_id, "contain", at=opened + timedelta(minutes=ack + 1))
            walk_to(world.database, incident_id, "eradicate", at=opened + timedelta(minutes=contained))
            walk_to(world.database, incident_id, "recover", at=opened + timedelta(minutes=contained + 1))
            walk_to(world.database, incident_id, "review", at=opened + timedelta(minutes=resolved))
    window = {"since": T0 - timedelta(days=1), "until": T0 + timedelta(days=90)}
    with acting(world.database, "viewer", Permission.INCIDENTS_READ) as ctx:
        by_type = {row.key: row for row in metrics.compute(ctx.session, group_by=metrics.GroupBy.TYPE, **window)}
        by_month = [row.key for row in metrics.compute(ctx.session, **window)]
        by_team = {row.key: row for row in metrics.compute(ctx.session, group_by=metrics.GroupBy.TEAM, **window)}
    assert (by_type["malware"].mtta_minutes, by_type["malware"].mttc_minutes, by_type["malware"].mttr_minutes) == (
        15, 90, 240)
    assert (by_type["phishing"].incidents, by_type["phishing"].mtta_minutes, by_type["phishing"].mttr_minutes) == (
        1, 30, None)
    assert by_month == ["2026-11", "2026-12"]
    assert by_team["blue"].contained == 0 and by_team["red"].resolved == 2
    # The same figures from the incidents' own milestone columns: the history and the record agree.
    with world.database.transaction(Scope.system()) as session:
        rows = session.scalars(select(Incident).where(Incident.team == "red")).all()
        mtta = sum((i.acknowledged_at - i.created_at).total_seconds() / 60 for i in rows if i.acknowledged_at) / 2
    assert mtta == by_type["malware"].mtta_minutes
