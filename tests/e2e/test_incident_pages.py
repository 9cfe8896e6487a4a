"""Incidents as a responder reads them, in Debian's Chromium against a real server on loopback.

An alert of a workstation is escalated through the API into a new incident; the responder finds it in the
queue (with its SLA badge), opens it and sees the phase stepper at identify with the linked alert and the
identify task; the task is done and the incident moves to contain through the API, and the page, reloaded,
shows contain as the current step, the move in the timeline and the acknowledgement SLA met.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from tests.e2e.harness import Server, serve, store

from vigil.accounts import service, signin
from vigil.accounts.schemas import GrantCreate, TokenCreate, UserCreate
from vigil.core import audit
from vigil.core.auth import Role
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.detection.models import Alert
from vigil.web.app import create_app

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-42!"


@dataclass(frozen=True)
class Running:
    server: Server
    token: str
    alert_id: int


def seed(database: Database) -> tuple[str, int]:
    """The responder at headquarters (with an API token) and one high alert of a workstation."""
    with database.transaction(Scope.system()) as session:
        hq = service.root_unit_id(session)
        ctx = Context(session=session, actor=audit.Actor(None, "e2e-setup", hq))
        user = service.create_user(ctx, data=UserCreate(
            username="rita", display_name="Rita Responder", password=PASSWORD, unit_id=hq,
            grants=[GrantCreate(role=Role.RESPONDER, unit_id=hq)]))
        user.must_change_password = False
        secret, _ = signin.create_token(ctx, user=user, data=TokenCreate(name="e2e"))
        now = datetime.now(UTC)
        alert = Alert(unit_id=hq, rule_uid="e2e-rule", title="Mimikatz on WS-FIN-07", level="critical",
                      dedup_key="e2e", first_seen=now, last_seen=now, host="WS-FIN-07", event={})
        session.add(alert)
        session.flush()
        return secret, alert.id


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    settings, database = store(tmp_path_factory, "e2e-incidents")
    token, alert_id = seed(database)
    app = create_app(settings, database)
    try:
        with serve(app) as server:
            yield Running(server, token, alert_id)
    finally:
        app.state.intel.close()
        database.dispose()


def api(running: Running, method: str, path: str, **body: object) -> dict[str, object]:
    response = httpx.request(method, running.server.url + path, json=body or None, timeout=30,
                             headers={"Authorization": f"Bearer {running.token}"})
    assert response.status_code < 300, response.text
    result: dict[str, object] = response.json()
    return result


def sign_in(page: Page, server: Server) -> None:
    page.goto(server.url + "/")
    page.get_by_label("User name").fill("rita")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hello, Rita Responder")).to_be_visible()


def test_an_escalated_alert_is_followed_through_the_incident_pages(running: Running, browser: Browser) -> None:
    incident = api(running, "POST", "/api/v1/incidents/escalate", alert_ids=[running.alert_id], type="intrusion",
                   severity="P1")
    ref, incident_id = str(incident["ref"]), incident["id"]
    page = browser.new_context(locale="en-US").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, running.server)

    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Incidents").click()
    row = page.locator(f'tr[data-incident="{incident_id}"]')
    expect(row).to_contain_text("Mimikatz on WS-FIN-07")
    expect(row).to_contain_text("SLA on track")
    row.get_by_role("link", name=ref).click()
    expect(page.get_by_role("heading", name=f"{ref} Mimikatz on WS-FIN-07")).to_be_visible()
    expect(page.locator('.stepper [aria-current="step"]')).to_have_text("Identify")
    expect(page.get_by_role("link", name="Mimikatz on WS-FIN-07")).to_be_visible()
    expect(page.locator("table.tasks")).to_contain_text("Classify the incident")

    tasks = incident["tasks"]
    assert isinstance(tasks, list)
    task_id = tasks[0]["id"]
    api(running, "POST", f"/api/v1/incidents/{incident_id}/tasks/{task_id}/complete")
    api(running, "POST", f"/api/v1/incidents/{incident_id}/transition", phase="contain")
    page.reload()
    expect(page.locator('.stepper [aria-current="step"]')).to_have_text("Contain")
    expect(page.locator("table.timeline")).to_contain_text("Incident moved to Contain")
    expect(page.locator('tr[data-metric="acknowledge"]')).to_contain_text("SLA met")

    assert errors == []
