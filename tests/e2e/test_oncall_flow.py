"""On-call as a responder meets it, in Debian's Chromium against a real server on loopback.

The responder makes a schedule through its form (two people, weekly), sees who is on call now and the
calendar's timeline drawn, makes an escalation policy (the schedule, then the analyst). An incident is paged
through it; nobody acknowledges level 1 in time, and the server's engine pages level 2 on its own. The analyst
opens the signed link from the notification without signing in and acknowledges; the responder sees the
escalation acknowledged, with every step, in English and in 简体中文.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.e2e.harness import Server, serve, store

from vigil.accounts import service
from vigil.accounts.schemas import GrantCreate, UserCreate
from vigil.core import audit
from vigil.core.auth import Role
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.response import escalation as engine
from vigil.response import oncall_service
from vigil.response.escalation import Recipient
from vigil.response.oncall_runtime import EscalationRunner
from vigil.web.app import create_app

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-42!"
ESCALATED_TIMEOUT_S = 20.0


@dataclass
class Inbox:
    """Stands in for the notification channels: keeps each page with its signed link."""

    name: str = "e2e-inbox"
    sent: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, user: Recipient, message_kind: str, title: str, body: str, ack_url: str) -> None:
        self.sent.append((user.username, message_kind, ack_url))


@dataclass(frozen=True)
class Running:
    server: Server
    database: Database
    runner: EscalationRunner
    inbox: Inbox


def seed(database: Database) -> None:
    with database.transaction(Scope.system()) as session:
        hq = service.root_unit_id(session)
        ctx = Context(session=session, actor=audit.Actor(None, "e2e-setup", hq))
        for username, display, role in (("rui", "Rui Responder", Role.RESPONDER), ("ana", "Ana Analyst", Role.ANALYST)):
            user = service.create_user(ctx, data=UserCreate(
                username=username, display_name=display, password=PASSWORD, unit_id=hq,
                grants=[GrantCreate(role=role, unit_id=hq)]))
            user.must_change_password = False


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    settings, database = store(tmp_path_factory, "e2e-oncall")
    settings = settings.model_copy(update={"escalation_tick_seconds": 0.5})
    seed(database)
    app = create_app(settings, database)
    runner: EscalationRunner = app.state.escalations
    inbox = Inbox()
    runner.notify = inbox
    runner.start()  # the engine's thread, as under `vigil serve`
    try:
        with serve(app) as server:
            yield Running(server, database, runner, inbox)
    finally:
        runner.stop()
        app.state.intel.close()
        database.dispose()


def sign_in(page: Page, server: Server) -> None:
    page.goto(server.url + "/")
    page.get_by_label("User name").fill("rui")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hello, Rui Responder")).to_be_visible()


def page_incident(running: Running) -> int:
    """Incident 42 paged through the policy two minutes ago: level 1's minute has passed unacknowledged."""
    with running.database.transaction(Scope.system()) as session:
        ctx = Context(session=session, actor=audit.Actor(None, "incidents", service.root_unit_id(session)))
        policy = oncall_service.policy_by_name(session, "P1 paging")
        return engine.start(ctx, incident_id=42, title="Ransomware on FS01", severity="P1", policy_id=policy.id,
                            now=datetime.now(UTC) - timedelta(minutes=2), pager=running.runner.pager).id


def test_schedule_policy_escalation_and_signed_link(running: Running, browser: Browser) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    sign_in(page, running.server)

    # 1. A schedule through its form: Rui and Ana, weekly from ten days ago.
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Response and on-call").click()
    expect(page.get_by_role("heading", name="On-call calendar", level=1)).to_be_visible()
    expect(page.locator("#now")).to_contain_text("No schedule yet.")
    page.get_by_role("link", name="New schedule").click()
    form = page.locator("#edit")
    form.get_by_label("Name", exact=True).fill("SOC primary")
    form.get_by_label("Layer name").fill("primary")
    form.get_by_label("Participants").fill("rui, ana")
    form.get_by_label("Rotation").select_option("weekly")
    form.get_by_label("Start date").fill((datetime.now(UTC).date() - timedelta(days=10)).isoformat())
    form.get_by_role("button", name="Save schedule").click()
    expect(page.get_by_role("status")).to_have_text("The schedule is saved.")
    expect(page.locator("#next-shifts tbody tr").first).to_contain_text("primary")

    # 2. The calendar: someone on call now, and the timeline drawn.
    page.get_by_role("navigation", name="On-call").get_by_role("link", name="On-call calendar").click()
    now_row = page.locator("#now tbody tr")
    expect(now_row).to_have_count(1)
    expect(now_row).to_contain_text("SOC primary")
    assert now_row.locator("strong").inner_text() in {"Rui Responder", "Ana Analyst"}
    expect(page.locator("#oncall-timeline canvas").first).to_be_visible()

    # 3. An escalation policy: the schedule for a minute, then Ana.
    page.get_by_role("navigation", name="On-call").get_by_role("link", name="Escalation policies").click()
    editing = page.locator("#edit-policy")
    editing.get_by_label("Name", exact=True).fill("P1 paging")
    editing.get_by_label("Targets").fill("schedule:SOC primary")
    editing.get_by_label("Wait for an acknowledgement (minutes)").fill("1")
    editing.get_by_role("button", name="Save policy").click()
    expect(page.get_by_role("status")).to_have_text("The escalation policy is saved.")
    second = page.locator("#edit-policy fieldset").nth(1)
    second.get_by_label("Targets").fill("ana")
    page.locator("#edit-policy").get_by_role("button", name="Save policy").click()
    expect(page.locator("#policies tbody tr")).to_contain_text("schedule:SOC primary")
    expect(page.locator("#policies tbody tr")).to_contain_text("ana")

    # 4. The incident is paged; level 1 times out and the server pages Ana on its own.
    escalation_id = page_incident(running)
    deadline = time.monotonic() + ESCALATED_TIMEOUT_S
    while not any(name == "ana" and kind == "escalated" for name, kind, _ in running.inbox.sent):
        assert time.monotonic() < deadline, f"level 2 was not paged: {running.inbox.sent}"
        time.sleep(0.2)
    page.get_by_role("navigation", name="On-call").get_by_role("link", name="Escalations").click()
    row = page.locator(f'tr[data-escalation="{escalation_id}"]')
    expect(row).to_contain_text("#42 Ransomware on FS01")
    expect(row).to_contain_text("2 / 2")
    expect(row).to_contain_text("waiting for acknowledgement")

    # 5. Ana opens the signed link from her notification, without signing in, and acknowledges.
    link = next(url for name, kind, url in running.inbox.sent if name == "ana")
    outsider = browser.new_context(locale="en-US")
    phone = outsider.new_page()
    phone.goto(running.server.url + link)
    expect(phone.get_by_role("heading", name="Acknowledge an escalation")).to_be_visible()
    expect(phone.get_by_text("Incident #42 (P1): Ransomware on FS01")).to_be_visible()
    phone.get_by_role("button", name="Acknowledge").click()
    expect(phone.get_by_role("status")).to_contain_text("Acknowledged by ana")
    tampered = phone.goto(running.server.url + link[:-4] + "AAAA")
    assert tampered is not None and tampered.status == 403
    expect(phone.get_by_role("alert")).to_contain_text("not valid")
    outsider.close()

    # 6. The responder sees it acknowledged, with every step.
    page.reload()
    expect(row).to_contain_text("acknowledged")
    expect(row.get_by_role("button", name="Acknowledge")).to_have_count(0)
    row.get_by_role("link").click()
    steps = page.locator("table.steps tbody tr")
    expect(steps.locator("td:nth-child(2)")).to_have_text(
        ["started", "level reached", "notified", "level reached", "notified", "acknowledged"])
    expect(steps.last).to_contain_text("link")
    page.get_by_role("button", name="简体中文").click()
    expect(steps.locator("td:nth-child(2)").last).to_have_text("已确认")
    page.get_by_role("button", name="English").click()

    assert not errors, errors
    context.close()
