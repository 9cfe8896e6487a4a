"""The on-call demo: a rota and a policy over the demo's users, loaded once; someone is on call at any time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from tests.conftest import cli_context

from vigil.accounts import demo as accounts_demo
from vigil.core.db import Database, Scope
from vigil.response import oncall_demo, oncall_service


def test_demo_rota_covers_every_hour_and_loads_once(database: Database) -> None:
    with database.transaction(Scope.system()) as session:
        accounts_demo.load(cli_context(session))
    with database.transaction(Scope.system()) as session:
        assert oncall_demo.load(cli_context(session)) == {"on-call schedules": 1, "escalation policies": 1}
    with database.transaction(Scope.system()) as session:
        assert oncall_demo.load(cli_context(session)) == {}
        schedule = oncall_service.schedule_by_name(session, oncall_demo.SCHEDULE)
        start = datetime(2026, 3, 2, tzinfo=UTC)
        shifts = oncall_service.shifts(session, schedule=schedule, start=start, end=start + timedelta(days=14))
        assert shifts[0].start == start and shifts[-1].end == start + timedelta(days=14)
        assert all(a.end == b.start for a, b in itertools.pairwise(shifts))  # no gap: 7x24
        assert {s.username for s in shifts} == {"analyst", "responder", "analyst.sh"}
        policy = oncall_service.policy_by_name(session, oncall_demo.POLICY)
        assert [lv["targets"][0]["kind"] for lv in policy.levels] == ["schedule", "user", "user"]
