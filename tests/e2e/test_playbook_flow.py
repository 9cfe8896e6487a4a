"""A playbook's IP block as a responder meets it, in Debian's Chromium against a real server (with its background
jobs, as `vigil serve` runs them).

A P1 intrusion incident opens with the attacker's address as an observable; the matching playbook starts by
itself and waits at its approval-gated block. The responder opens Playbook runs from the navigation, approves
the step, and sees the run succeed; the firewall stand-in (a script appending its arguments to a file) got
exactly ``add <ip>``. On the runs page the block waits for its rollback; its TTL is three seconds, and the
server's own scheduler rolls it back: the page shows "rolled back" and the script got ``delete <ip>``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.e2e.harness import Server, serve, store
from tests.response.action_endpoints import firewall_script

from vigil.accounts import service
from vigil.accounts.schemas import GrantCreate, UserCreate
from vigil.core import audit
from vigil.core.auth import Role
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.incidents import activity
from vigil.incidents import service as incidents
from vigil.incidents.schemas import IncidentCreate, ObservableCreate
from vigil.response.actions import service as actions
from vigil.response.actions.schemas import ActionCreate
from vigil.response.playbooks import service as playbooks
from vigil.response.playbooks.schemas import PlaybookCreate
from vigil.web.app import create_app

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-42!"
ATTACKER = "203.0.113.66"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Database, Path]]:
    settings, database = store(tmp_path_factory, "e2e-playbook")
    script, log = firewall_script(tmp_path_factory.mktemp("firewall"))
    with database.transaction(Scope.system()) as session:
        hq = service.root_unit_id(session)
        ctx = Context(session=session, actor=audit.Actor(None, "e2e-setup", hq))
        user = service.create_user(ctx, data=UserCreate(
            username="resp", display_name="Ren Responder", password=PASSWORD, unit_id=hq,
            grants=[GrantCreate(role=Role.RESPONDER, unit_id=hq)]))
        user.must_change_password = False
        action = actions.create_action(ctx, data=ActionCreate(
            name="Edge firewall", kind="block_ip", requires_approval=False, rollback_after_seconds=3,
            config={"mode": "command", "command": [str(script), "add", "{ip}"],
                    "undo_command": [str(script), "delete", "{ip}"]}))
        playbooks.create_playbook(ctx, data=PlaybookCreate.model_validate({
            "name": "Intrusion containment", "definition": {
                "trigger": {"incident_types": ["intrusion"], "min_severity": "P1"},
                "steps": [{"kind": "act", "action_id": action.id, "target": "{observable.ipv4}",
                           "requires_approval": True, "reason": "block the attacker"},
                          {"kind": "create_task", "title": "Confirm the block on the edge firewall",
                           "phase": "contain"}]}}))
    try:
        with serve(create_app(settings, database), lifespan=True) as running:
            yield running, database, log
    finally:
        database.dispose()


def sign_in(page: Page, server: Server) -> None:
    page.goto(server.url + "/")
    page.get_by_label("User name").fill("resp")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hello, Ren Responder")).to_be_visible()


def reload_until(page: Page, locator_text: str, selector: str, seconds: float = 30.0) -> None:
    """Reload until ``selector`` holds ``locator_text`` (the server's background jobs act on their own time)."""
    deadline = time.monotonic() + seconds
    while True:
        found = page.locator(selector)
        if found.count() and locator_text in (found.first.text_content() or ""):
            return
        if time.monotonic() > deadline:
            expect(page.locator(selector).first).to_contain_text(locator_text)  # fails, saying what it saw
            return
        time.sleep(0.5)
        page.reload()


def test_approve_a_playbooks_ip_block_and_see_it_rolled_back(browser: Browser,
                                                             world: tuple[Server, Database, Path]) -> None:
    server, database, log = world
    with database.transaction(Scope.system()) as session:  # the incident opens as the intake would open it
        ctx = Context(session=session, actor=audit.Actor(None, "e2e-intake", service.root_unit_id(session)))
        incident = incidents.open_incident(ctx, data=IncidentCreate(
            title="Web shell on web01", type="intrusion", severity="P1"))
        activity.add_observable(ctx, incident_id=incident.id, data=ObservableCreate(value=ATTACKER))
    page = browser.new_page()
    sign_in(page, server)
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Playbook runs").click()
    expect(page.get_by_role("heading", name="Playbook runs", exact=True)).to_be_visible()
    reload_until(page, "awaiting approval", "article.run")
    run = page.locator("article.run").first
    expect(run).to_contain_text("Intrusion containment v1")
    expect(run.locator("li[data-step='0']")).to_contain_text(f"{ATTACKER}: awaiting_approval")
    assert not log.exists()

    run.get_by_role("button", name="Approve step 1").click()
    run = page.locator("article.run").first
    expect(run).to_have_attribute("data-status", "succeeded")
    expect(run.locator("li[data-step='1']")).to_contain_text("Confirm the block on the edge firewall")
    assert log.read_text() == f"add|{ATTACKER}\n"

    page.get_by_role("link", name="Runs and approvals").click()
    row = page.locator("table.executions tbody tr").first
    expect(row).to_contain_text(ATTACKER)
    expect(row).to_contain_text("resp")  # who approved
    reload_until(page, "rolled back", "table.executions tbody tr")
    expect(page.locator("table.executions tbody tr").first).to_have_attribute("data-status", "rolled_back")
    assert log.read_text().splitlines() == [f"add|{ATTACKER}", f"delete|{ATTACKER}"]
    page.close()
