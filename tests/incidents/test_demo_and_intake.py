"""The demo incidents (each phase, idempotent), escalating alerts by hand, and the grouping rules the incident
clock runs over new alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from tests.detection.test_alerts_service import stored_alert

from vigil.core.db import Scope
from vigil.core.errors import NotFound
from vigil.detection.models import Alert
from vigil.incidents import demo, intake
from vigil.incidents.clock import IncidentClock
from vigil.incidents.models import Incident, IncidentAlert
from vigil.incidents.schemas import EscalateAlerts, GroupingRuleCreate

from .support import acting
from .test_incidents_api import _system


def new_alert(world: Any, *, host: str, level: str = "high", seen: datetime, unit_id: int | None = None,
              indicator: str | None = None) -> int:
    with world.database.transaction(Scope.system()) as session:
        event: dict[str, Any] = {"Computer": host}
        if indicator:
            event["vigil.intel"] = {"indicator": {"id": 1, "type": "domain", "value": indicator}}
        row = Alert(unit_id=unit_id or world.hq, rule_uid=f"rule-{level}", title=f"{level} on {host}", level=level,
                    dedup_key=f"{host}-{seen.isoformat()}-{level}", first_seen=seen, last_seen=seen, host=host,
                    event=event, origin="ioc" if indicator else "sigma", created_at=seen)
        session.add(row)
        session.flush()
        return row.id


def test_the_demo_loads_incidents_in_each_phase_once(world: Any) -> None:
    with world.database.transaction(Scope.system()) as session:
        loaded = demo.load(_system(session))
    assert loaded == {"incidents (identify, contain, eradicate, closed)": 4, "alert grouping rules": 1}
    with world.database.transaction(Scope.system()) as session:
        assert demo.load(_system(session)) == {}
        phases = sorted(session.scalars(select(Incident.phase)))
    assert phases == ["closed", "contain", "eradicate", "identify"]


def test_an_analyst_escalates_alerts_into_a_new_or_an_open_incident(world: Any) -> None:
    now = datetime.now(UTC)
    first, second = new_alert(world, host="WS01", seen=now), new_alert(world, host="WS02", seen=now)
    with acting(world.database, "analyst") as ctx:
        incident = intake.escalate(ctx, data=EscalateAlerts(alert_ids=[first], type="intrusion", severity="P2"))
        assert (incident.title, incident.source) == ("high on WS01", "alerts")
        again = intake.escalate(ctx, data=EscalateAlerts(alert_ids=[second], incident_id=incident.id))
        assert again.id == incident.id
    assert stored_alert(world.database, second).incident_id == incident.id
    with pytest.raises(NotFound), acting(world.database, "analyst") as ctx:
        intake.escalate(ctx, data=EscalateAlerts(alert_ids=[987654]))


def test_grouping_rules_put_alerts_of_one_host_within_the_window_together(world: Any) -> None:
    with acting(world.database, "analyst") as ctx:
        intake.create_rule(ctx, data=GroupingRuleCreate(name="host", match_on="host", window_minutes=60,
                                                        min_level="high", type="intrusion", severity="P2"))
    t0 = datetime.now(UTC) - timedelta(hours=3)
    a = new_alert(world, host="WS01", seen=t0)
    b = new_alert(world, host="ws01", seen=t0 + timedelta(minutes=30))
    c = new_alert(world, host="WS01", seen=t0 + timedelta(minutes=150))  # past the window: a new incident
    low = new_alert(world, host="WS01", level="low", seen=t0 + timedelta(minutes=31))  # below the rule's level
    clock = IncidentClock(world.database)
    assert clock.tick().grouped == 3
    with world.database.transaction(Scope.system()) as session:
        links = {row.alert_id: row.incident_id for row in session.scalars(select(IncidentAlert))}
        sources = set(session.scalars(select(Incident.source)))
    assert links[a] == links[b] != links[c]
    assert low not in links and sources == {"grouping"}
    assert clock.tick().grouped == 0  # nothing twice


def test_grouping_by_indicator_joins_ioc_alerts_of_the_same_value(world: Any) -> None:
    with acting(world.database, "analyst") as ctx:
        intake.create_rule(ctx, data=GroupingRuleCreate(name="ioc", match_on="indicator", window_minutes=1440,
                                                        min_level="medium", type="malware", severity="P1"))
    now = datetime.now(UTC)
    x = new_alert(world, host="WS01", seen=now, indicator="evil.example.net")
    y = new_alert(world, host="WS09", seen=now + timedelta(minutes=5), indicator="evil.example.net")
    z = new_alert(world, host="WS01", seen=now + timedelta(minutes=6), indicator="other.example.org")
    with acting(world.database, "analyst") as ctx:
        placed = dict(intake.sweep(ctx, now=now + timedelta(minutes=10)))
    assert placed[x] == placed[y] != placed[z]
