"""The incident pages: the queue with SLA badges and filters, one incident with its phase stepper and work,
in English and 简体中文, and another unit's incident as "not found"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.api.support import web_session

from vigil.accounts.models import User
from vigil.core.db import Scope
from vigil.incidents import sla

from .support import open_one, walk_to


def browse(client: TestClient, world: Any, username: str, path: str, **params: str) -> Any:
    secret, _ = web_session(world.database, username)
    client.cookies.clear()
    return client.get(path, params=params, headers={"Cookie": f"vigil_session={secret}"}, follow_redirects=False)


def test_the_queue_shows_sla_badges_and_filters_by_phase(world: Any, client: TestClient) -> None:
    late = open_one(world.database, title="Breached P1", severity="P1",
                    at=datetime.now(UTC) - timedelta(hours=3))
    fresh = open_one(world.database, title="Fresh P4", severity="P4")
    walk_to(world.database, fresh, "contain")
    with world.database.transaction(Scope.system()) as session:
        sla.record_sla(session, now=datetime.now(UTC))
    page = browse(client, world, "viewer", "/incidents")
    assert page.status_code == 200
    assert "Breached P1" in page.text and "SLA breached" in page.text and "Fresh P4" in page.text
    only_contain = browse(client, world, "viewer", "/incidents", phase="contain")
    assert "Fresh P4" in only_contain.text and "Breached P1" not in only_contain.text
    breached = browse(client, world, "viewer", "/incidents", sla="breached")
    assert f'data-incident="{late}"' in breached.text and f'data-incident="{fresh}"' not in breached.text


def test_an_incident_page_shows_its_phases_sla_tasks_and_timeline(world: Any, client: TestClient) -> None:
    incident_id = open_one(world.database, title="Ransomware on FS01", severity="P2")
    walk_to(world.database, incident_id, "contain")
    page = browse(client, world, "viewer", f"/incidents/{incident_id}")
    assert page.status_code == 200
    assert 'aria-current="step" class="current">Contain' in page.text
    assert 'data-metric="acknowledge"' in page.text and "Classify the incident" in page.text
    assert "Incident moved to Contain" in page.text and "Task done: Classify the incident" in page.text
    with world.database.transaction(Scope.system()) as session:
        viewer = session.scalar(select(User).where(User.username == "viewer"))
        assert viewer is not None
        viewer.language = "zh_CN"
    chinese = browse(client, world, "viewer", f"/incidents/{incident_id}")
    assert "遏制" in chinese.text and "时间线" in chinese.text
    # The timeline in the reader's language: the entries the system wrote, the phase as the stepper names it.
    assert "事件进入“遏制”阶段" in chinese.text and "完成任务：Classify the incident" in chinese.text
    assert "Incident moved to" not in chinese.text and "Task done:" not in chinese.text


def test_another_units_incident_page_is_not_found(world: Any, client: TestClient) -> None:
    hq_incident = open_one(world.database)
    assert browse(client, world, "staff_a", f"/incidents/{hq_incident}").status_code == 404
    assert "Ransomware" not in browse(client, world, "staff_a", "/incidents").text
