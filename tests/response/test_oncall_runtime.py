"""The engine inside the server: the app's lifespan starts the escalation runner (as `vigil serve` does), which
moves an escalation whose acknowledgement timed out to its next level without anyone calling it."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from tests.conftest import World, cli_context

from vigil.core.config import load_settings
from vigil.core.db import Scope, utcnow
from vigil.response import escalation as engine
from vigil.response import oncall_service
from vigil.response.oncall_models import Escalation
from vigil.response.oncall_runtime import EscalationRunner
from vigil.response.oncall_schemas import LevelIn, PolicyCreate, TargetIn
from vigil.web.app import create_app


def test_the_server_escalates_on_its_own(world: World, database_url: str, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "var", database_url=database_url, escalation_tick_seconds=1)
    app = create_app(settings, world.database)
    runner: EscalationRunner = app.state.escalations
    with world.database.transaction(Scope.system()) as session:
        ctx = cli_context(session)
        policy = oncall_service.create_policy(ctx, data=PolicyCreate(name="fast", levels=[
            LevelIn(timeout_minutes=1, targets=[TargetIn(kind="user", id=world.users["viewer"])]),
            LevelIn(timeout_minutes=1, targets=[TargetIn(kind="user", id=world.users["responder"])])]))
        # Paged two minutes ago: level 1's minute has passed without an acknowledgement.
        escalation_id = engine.start(ctx, incident_id=5, title="Stale page", severity="P2", policy_id=policy.id,
                                     now=utcnow() - timedelta(minutes=2), pager=runner.pager).id
    level = 0
    with TestClient(app, base_url="https://testserver"):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and level == 0:
            time.sleep(0.2)
            with world.database.transaction(Scope.system()) as session:
                found = session.get(Escalation, escalation_id)
                assert found is not None
                level = found.level
    assert level == 1
    with world.database.transaction(Scope.system()) as session:
        steps = [(s.kind, s.username, s.channel) for s in engine.steps_of(session, escalation_id)]
    # `vigil serve` wires the channels; this policy names none, so the step says nothing was sent.
    assert ("notified", "responder", "no channel on this level (nothing sent)") in steps
