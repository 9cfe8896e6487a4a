"""The detection tuning loop as its users meet it, in Debian's Chromium against a real server on loopback.

The security administrator imports a Sigma rule file on the rule packs page. A shipper sends the demo's
kind of Winlogbeat documents to ``POST /api/v1/ingest``: the file server's backup agent deletes old
backups with wbadmin, and live detection raises an alert. The analyst finds it in the queue, reads the
matching event and the rule's author and references, suppresses similar alerts ("backup agent") and
closes it as a false positive. The backup agent runs again and a workstation deletes the backup catalog:
only the workstation gets a new alert, and the suppression counts the match it swallowed. The queue and
an alert's page are read in 简体中文 too.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from tests.e2e.harness import Server, serve, store

from vigil.accounts import service, signin
from vigil.accounts.schemas import GrantCreate, TokenCreate, UserCreate
from vigil.core import audit
from vigil.core.auth import Role
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.detection.rules_import import install_starter_pack
from vigil.siem import demo_windows
from vigil.web.app import create_app

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-42!"
RULE_ID = "5d0f3c1e-2b7a-4e9b-9c51-7e2f0a6b1d42"
RULE_TITLE = "E2E wbadmin deleted backups or the backup catalog"
RULE_AUTHOR = "Vigil browser tests"
RULE_REFERENCE = "https://learn.microsoft.com/en-us/windows-server/administration/windows-commands/wbadmin-delete-catalog"
RULE = f"""\
title: {RULE_TITLE}
id: {RULE_ID}
status: test
description: wbadmin deleted backups or the backup catalog, as ransomware does before encrypting.
references:
    - {RULE_REFERENCE}
author: {RULE_AUTHOR}
date: 2026-11-28
tags:
    - attack.impact
    - attack.t1490
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\\wbadmin.exe'
        CommandLine|contains:
            - 'delete catalog'
            - 'delete backup'
    condition: selection
falsepositives:
    - A backup agent rotating its own backups
level: high
"""
WBADMIN = "C:\\Windows\\System32\\wbadmin.exe"
# Host A: the file server's backup agent rotating its backups (the false positive); host B: a workstation.
BACKUP_RUN = ("FS01", "svc-backup", "wbadmin delete backup -keepVersions:3 -quiet",
              "C:\\Windows\\System32\\svchost.exe")
CATALOG_WIPE = ("WS-FIN-07", "administrator", "wbadmin delete catalog -quiet", "C:\\Windows\\System32\\cmd.exe")
# Generous: live detection looks the enabled rules up every few seconds; the pipeline drains in batches.
ALERT_TIMEOUT_S = 45.0


@dataclass(frozen=True)
class Running:
    server: Server
    shipper_token: str


def seed(database: Database) -> str:
    """The security administrator, the analyst and a shipper at headquarters; the shipper's API token."""
    with database.transaction(Scope.system()) as session:
        hq = service.root_unit_id(session)
        ctx = Context(session=session, actor=audit.Actor(None, "e2e-setup", hq))
        for username, display, role in (("secadmin", "Sam Secadmin", Role.SECURITY_ADMIN),
                                        ("ana", "Ana Analyst", Role.ANALYST),
                                        ("shipper", "Winlogbeat", Role.SHIPPER)):
            user = service.create_user(ctx, data=UserCreate(
                username=username, display_name=display, password=PASSWORD, unit_id=hq,
                grants=[GrantCreate(role=role, unit_id=hq)]))
            user.must_change_password = False
        secret, _ = signin.create_token(ctx, user=user, data=TokenCreate(name="winlogbeat"))
        return secret


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    settings, database = store(tmp_path_factory, "e2e-detection")
    token = seed(database)
    install_starter_pack(database)  # as `vigil init` does
    app = create_app(settings, database)
    # The harness serves without the app's lifespan; the pipeline (and live detection in it) is what this
    # story is about, so it runs as under `vigil serve`.
    app.state.siem.start()
    try:
        with serve(app) as server:
            yield Running(server, token)
    finally:
        app.state.siem.stop()
        database.dispose()


# --- the shipper -----------------------------------------------------------------------------------


class Shipper:
    """Winlogbeat documents shaped by the demo day's generator, sent to the real ingestion API."""

    def __init__(self, running: Running) -> None:
        self.running = running
        now = datetime.now(UTC)
        self.documents: list[bytes] = []
        self.day = demo_windows.WindowsDay(random.Random(20261128), now - timedelta(hours=1), now + timedelta(hours=1),
                                           lambda _when, document: self.documents.append(document))

    def process(self, computer: str, user: str, command: str, parent: str, image: str = WBADMIN) -> None:
        """A 4688 process creation on ``computer`` (the Security log; no Sysmon copy, so one match each)."""
        self.day.process(datetime.now(UTC), computer, user, "0x3e7", image, command, parent, sysmon=False)

    def background(self) -> None:
        """A few of the demo's ordinary process starts, which no rule should mind."""
        for image, command, parent in demo_windows.NORMAL_PROCESSES[:4]:
            self.process("WS-HR-02", "li.na", command, parent, image=image)

    def send(self) -> None:
        body = b"\n".join(self.documents) + b"\n"
        self.documents.clear()
        response = httpx.post(f"{self.running.server.url}/api/v1/ingest", params={"source": "winlogbeat"},
                              content=body, timeout=30,
                              headers={"Authorization": f"Bearer {self.running.shipper_token}",
                                       "Content-Type": "application/x-ndjson"})
        assert response.status_code == 202, response.text
        assert response.json()["format"] == "winlogbeat", response.json()


# --- the browser -----------------------------------------------------------------------------------


def sign_in(page: Page, server: Server, username: str, display_name: str) -> None:
    page.goto(server.url + "/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {display_name}")).to_be_visible()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Vigil")).to_be_visible()


def alert_rows(page: Page, host: str) -> Locator:
    """The queue's rows of this test's rule for one host (the Host column holds the host name alone)."""
    return (page.locator("table.alerts tbody tr")
            .filter(has=page.get_by_role("link", name=RULE_TITLE, exact=True))
            .filter(has=page.locator("td", has_text=re.compile(f"^{re.escape(host)}$"))))


def reload_until(page: Page, ready: Callable[[], bool], what: str) -> None:
    """Reload the page until ``ready`` holds: the pipeline works in the background, on its own time."""
    deadline = time.monotonic() + ALERT_TIMEOUT_S
    while not ready():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        page.wait_for_timeout(250)
        page.reload()


def watch_for_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def test_import_a_rule_see_it_fire_suppress_a_false_positive(running: Running, browser: Browser,
                                                            tmp_path: Path) -> None:
    server = running.server
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    errors = watch_for_errors(page)
    nav = page.get_by_role("navigation", name="Main navigation")

    # 1. The security administrator imports the rule file from the rule packs page.
    rule_file = tmp_path / "wbadmin_delete_backups.yml"
    rule_file.write_text(RULE, encoding="utf-8")
    sign_in(page, server, "secadmin", "Sam Secadmin")
    nav.get_by_role("link", name="Detection rules").click()
    expect(page.get_by_role("heading", name="Detection rules", exact=True)).to_be_visible()
    page.get_by_role("link", name="Rule packs and import").click()
    expect(page.get_by_role("heading", name="Rule packs", exact=True)).to_be_visible()
    importing = page.locator("#import")
    importing.get_by_label("File").set_input_files(rule_file)
    importing.get_by_label("Pack name").fill("e2e-backups")
    importing.get_by_role("button", name="Import").click()
    result = page.locator("#import-result")
    expect(result.get_by_role("heading", name="Pack e2e-backups imported")).to_be_visible()
    expect(result.get_by_role("status")).to_have_text(
        "1 added, 0 updated, 0 removed, 0 unchanged, 0 not loadable.")
    expect(page.locator("#packs tbody tr").filter(has_text="e2e-backups")).to_contain_text("1")
    # The rule starts enabled (status test, the default policy).
    result.get_by_role("link", name=RULE_TITLE).click()
    expect(page.get_by_role("heading", name=RULE_TITLE)).to_contain_text("on")
    sign_out(page)

    # 2. The backup agent on FS01 deletes old backups; shipped with some of the day's ordinary events.
    shipper = Shipper(running)
    shipper.background()
    shipper.process(*BACKUP_RUN)
    shipper.send()

    # 3. The analyst finds the alert in the queue (live detection raised it; the page is reloaded until then).
    sign_in(page, server, "ana", "Ana Analyst")
    nav.get_by_role("link", name="Threat detection: alerts").click()
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    reload_until(page, lambda: alert_rows(page, "fs01").count() > 0, "the alert for FS01")
    first = alert_rows(page, "fs01")
    expect(first).to_have_count(1)
    expect(first).to_contain_text("svc-backup")
    expect(first).to_contain_text("high")
    expect(first).to_contain_text("New")
    expect(alert_rows(page, "ws-hr-02")).to_have_count(0)  # the ordinary process starts raised nothing

    # The alert's page: the matching event, and the rule with its author and references (DRL attribution).
    first.get_by_role("link", name=RULE_TITLE).click()
    expect(page.get_by_role("heading", name=RULE_TITLE, level=1)).to_be_visible()
    alert_url = page.url
    expect(page.locator("#alert-status")).to_have_attribute("data-status", "new")
    event = page.locator("#alert-event")
    expect(event).to_contain_text("wbadmin delete backup -keepVersions:3 -quiet")
    expect(event).to_contain_text("svc-backup")
    expect(event).to_contain_text("FS01.corp.example")
    expect(page.locator("#rule-author")).to_have_text(RULE_AUTHOR)
    expect(page.locator("#rule-references").get_by_role("link", name=RULE_REFERENCE)).to_have_attribute(
        "href", RULE_REFERENCE)

    # "Suppress similar": the draft ticks the host, the user and the program of the event.
    suppress = page.locator("#suppress")
    ticked = {row.get_by_label("Field").input_value(): row.get_by_label("Value").input_value()
              for row in suppress.locator("tbody tr").all() if row.get_by_label("Use this condition").is_checked()}
    assert ticked == {"Computer": "FS01.corp.example", "SubjectUserName": "svc-backup", "NewProcessName": WBADMIN}, \
        ticked
    suppress.get_by_label("Reason").fill("backup agent")
    suppress.get_by_role("button", name="Suppress", exact=True).click()
    expect(page.get_by_role("heading", name="Suppressions", exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(
        "The suppression is saved: the next matching event raises no alert.")
    suppression = page.locator("table.suppressions tbody tr").filter(has_text="backup agent")
    expect(suppression).to_have_count(1)
    expect(suppression).to_contain_text(RULE_ID)
    expect(suppression).to_contain_text("svc-backup")
    expect(suppression.locator("td").nth(5)).to_have_text("0")  # "Suppressed matches": none yet

    # The alert closed as a false positive: back to it through the suppression's rule (the queue, filtered).
    suppression.get_by_role("link", name=RULE_ID).click()
    expect(page.get_by_label("Rule id")).to_have_value(RULE_ID)
    alert_rows(page, "fs01").get_by_role("link", name=RULE_TITLE).click()
    assert page.url == alert_url
    page.get_by_role("button", name="Close as false positive").click()
    expect(page.get_by_role("status")).to_have_text("The alert is updated.")
    status = page.locator("#alert-status")
    expect(status).to_have_attribute("data-status", "closed")
    expect(status).to_contain_text("False positive")

    # 4. The backup agent runs again, then a workstation wipes the backup catalog (one batch, in that order).
    shipper.process(*BACKUP_RUN)
    shipper.process(*CATALOG_WIPE)
    shipper.send()
    page.get_by_role("link", name="Back to the alerts").click()
    reload_until(page, lambda: alert_rows(page, "ws-fin-07").count() > 0, "the alert for WS-FIN-07")
    second = alert_rows(page, "ws-fin-07")
    expect(second).to_have_count(1)
    expect(second).to_contain_text("administrator")
    expect(second).to_contain_text("New")
    # FS01 still has its one closed alert, seen once: the second backup run raised nothing.
    first = alert_rows(page, "fs01")
    expect(first).to_have_count(1)
    expect(first).to_contain_text("Closed")
    expect(first).to_contain_text("False positive")
    expect(first.locator("td").nth(6)).to_have_text("1")  # the Count column (after the checkbox)

    page.get_by_role("link", name="Suppressions", exact=True).click()
    suppression = page.locator("table.suppressions tbody tr").filter(has_text="backup agent")
    expect(suppression.locator("td").nth(5)).to_have_text("1")
    expect(suppression).to_contain_text("active")

    # The rule's figures: two alerts' hits, one false positive.
    nav.get_by_role("link", name="Detection rules").click()
    page.get_by_label("Title or Sigma id").fill(RULE_TITLE)
    page.get_by_role("button", name="Filter").click()
    row = page.locator("table.rules tbody tr").filter(has=page.get_by_role("link", name=RULE_TITLE))
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(7)).to_have_text("2")
    expect(row.locator("td").nth(8)).to_have_text("1")

    # The queue and the workstation's alert in 简体中文, then back.
    nav.get_by_role("link", name="Threat detection: alerts").click()
    page.get_by_role("button", name="简体中文").click()
    expect(page.get_by_role("heading", name="告警", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="告警抑制")).to_be_visible()
    second = alert_rows(page, "ws-fin-07")
    expect(second).to_contain_text("新建")
    second.get_by_role("link", name=RULE_TITLE).click()
    expect(page.get_by_role("heading", name=RULE_TITLE, level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="匹配的事件")).to_be_visible()
    expect(page.get_by_role("heading", name="抑制相似告警")).to_be_visible()
    expect(page.get_by_role("button", name="作为误报关闭")).to_be_visible()
    expect(page.get_by_role("link", name="返回告警列表")).to_be_visible()
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Matching event")).to_be_visible()

    assert not errors, errors
    context.close()
