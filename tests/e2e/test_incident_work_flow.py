"""The incident pages as a working tool, in Debian's Chromium against a real server on loopback.

A responder opens an incident from the New incident form, tries to move it to contain and is told why not
(the open required task), completes the required task, moves it to contain, uploads an evidence file and
sees its SHA-256 and its first custody step; an employee without any business role reports a suspected
incident from the navigation's report form, and the report arrives in the responder's triage queue.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.e2e.harness import Server, serve, store

from vigil.accounts import service
from vigil.accounts.schemas import GrantCreate, UserCreate
from vigil.core import audit
from vigil.core.auth import Role
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.web.app import create_app

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-42!"


def seed(database: Database) -> None:
    """Rita, a responder at headquarters, and Sam, an employee with no business role."""
    with database.transaction(Scope.system()) as session:
        hq = service.root_unit_id(session)
        ctx = Context(session=session, actor=audit.Actor(None, "e2e-setup", hq))
        rita = service.create_user(ctx, data=UserCreate(
            username="rita", display_name="Rita Responder", password=PASSWORD, unit_id=hq,
            grants=[GrantCreate(role=Role.RESPONDER, unit_id=hq)]))
        sam = service.create_user(ctx, data=UserCreate(username="sam", display_name="Sam Staff", password=PASSWORD,
                                                       unit_id=hq))
        rita.must_change_password = sam.must_change_password = False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings, database = store(tmp_path_factory, "e2e-incident-work")
    seed(database)
    app = create_app(settings, database)
    try:
        with serve(app) as running:
            yield running
    finally:
        app.state.intel.close()
        database.dispose()


def sign_in(page: Page, server: Server, username: str, name: str) -> None:
    page.goto(server.url + "/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {name}")).to_be_visible()


def test_an_incident_is_opened_worked_and_a_report_reaches_triage(server: Server, browser: Browser,
                                                                   tmp_path: Path) -> None:
    page = browser.new_context(locale="en-US").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, server, "rita", "Rita Responder")

    page.goto(server.url + "/incidents")
    page.get_by_role("link", name="New incident").click()
    page.get_by_label("Title").fill("Web shell on the HR portal")
    page.get_by_label("Type").select_option("web_attack")
    page.get_by_label("Severity").select_option("P1")
    page.get_by_role("button", name="Open the incident").click()
    expect(page.get_by_role("status")).to_have_text("The incident is open.")
    expect(page.locator('.stepper [aria-current="step"]')).to_have_text("Identify")

    move = page.locator("form[action$='/transition']")
    move.get_by_label("Move to").select_option("contain")
    move.get_by_role("button", name="Move").click()
    expect(page.get_by_role("alert")).to_contain_text("required tasks")
    expect(page.locator('.stepper [aria-current="step"]')).to_have_text("Identify")

    required = page.locator("table.tasks tr.required")
    expect(required).to_have_count(1)
    required.get_by_role("button", name="Complete").click()
    expect(page.get_by_role("status")).to_have_text("The task is done.")
    page.locator("form[action$='/transition']").get_by_role("button", name="Move").click()
    expect(page.get_by_role("status")).to_have_text("The incident moved to its new phase.")
    expect(page.locator('.stepper [aria-current="step"]')).to_have_text("Contain")

    capture = tmp_path / "webshell.php"
    capture.write_bytes(b"<?php system($_GET['c']); ?>\n")
    upload = page.locator("form[action$='/evidence']")
    upload.locator("input[type=file]").set_input_files(str(capture))
    upload.get_by_label("Description").fill("found in /var/www/uploads")
    upload.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status")).to_have_text("The evidence file is stored.")
    row = page.locator("table.evidence tbody tr")
    expect(row.locator("code.sha256")).to_have_text(hashlib.sha256(capture.read_bytes()).hexdigest())
    expect(row.locator("ul.custody")).to_contain_text("uploaded · rita")

    staff = browser.new_context(locale="en-US").new_page()
    staff.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(staff, server, "sam", "Sam Staff")
    staff.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Report an incident").click()
    staff.get_by_label("What happened, in a line").fill("A caller asked for my VPN code")
    staff.get_by_label("What kind of incident").select_option("phishing")
    staff.get_by_role("button", name="Send the report").click()
    expect(staff.get_by_role("status")).to_have_text("Your report is in the triage queue.")
    expect(staff.locator("table.reports")).to_contain_text("Waiting for triage")

    page.goto(server.url + "/reports/triage")
    expect(page.locator("table.reports")).to_contain_text("A caller asked for my VPN code")
    expect(page.locator("table.reports")).to_contain_text("sam")

    assert errors == []
