"""Notification channels as the security administrator meets them, in Debian's Chromium against a real server.

The administrator opens Notification channels from the navigation, picks DingTalk, pastes the robot's webhook
address (with its access token) and the 加签 secret, saves, and sends a test: the stand-in DingTalk robot on
loopback checks the message format and recomputes the signature, and the page says the message was delivered.
The robot then breaks (HTTP 500): the next test shows the failure with its reason after every attempt. The
page never shows the token or the secret. An analyst then reads both in the delivery log, in 简体中文.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.e2e.harness import Server, serve, store
from tests.response import platforms

from vigil.accounts import service
from vigil.accounts.schemas import GrantCreate, UserCreate
from vigil.core import audit
from vigil.core.auth import Role
from vigil.core.context import Context
from vigil.core.db import Scope
from vigil.web.app import create_app

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-42!"
TOKEN, SECRET = "e2e-ding-token-5d21", "SECe2e-ding-secret-88f0"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings, database = store(tmp_path_factory, "e2e-notify")
    settings = settings.model_copy(update={"notify_retry_seconds": 0.0})
    with database.transaction(Scope.system()) as session:
        hq = service.root_unit_id(session)
        ctx = Context(session=session, actor=audit.Actor(None, "e2e-setup", hq))
        for username, display, role in (("sec", "Sun Security", Role.SECURITY_ADMIN),
                                        ("ana", "Ana Analyst", Role.ANALYST)):
            user = service.create_user(ctx, data=UserCreate(
                username=username, display_name=display, password=PASSWORD, unit_id=hq,
                grants=[GrantCreate(role=role, unit_id=hq)]))
            user.must_change_password = False
    try:
        with serve(create_app(settings, database)) as running:
            yield running
    finally:
        database.dispose()


def sign_in(page: Page, server: Server, username: str = "sec", display: str = "Sun Security") -> None:
    page.goto(server.url + "/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {display}")).to_be_visible()


def test_add_a_dingtalk_robot_and_send_a_test(browser: Browser, server: Server) -> None:
    page = browser.new_page()
    sign_in(page, server)
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Notification channels").click()
    expect(page.get_by_role("heading", name="Notification channels", exact=True)).to_be_visible()
    page.get_by_role("link", name="DingTalk robot").click()
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as robot:
        form = page.locator("#channel-form")
        form.get_by_label("Name").fill("SOC duty group")
        form.get_by_label("Language of the messages").select_option("en")
        form.get_by_label("Webhook address").fill(f"{robot.url}/robot/send?access_token={TOKEN}")
        form.get_by_label("Signing secret").fill(SECRET)
        form.get_by_role("button", name="Save").click()
        expect(page.get_by_text("The channel is added. Send a test to check it.")).to_be_visible()
        row = page.locator("tr", has_text="SOC duty group")
        expect(row).to_contain_text("access_token: set")
        row.get_by_role("button", name="Send a test").click()
        outcome = page.locator("#tested")
        expect(outcome.get_by_role("heading", name="Test message to SOC duty group")).to_be_visible()
        expect(outcome).to_contain_text("Delivered after 1 attempt(s).")
        assert robot.received[-1].json()["markdown"]["title"] == "Test message from Vigil"

        robot.always_fail = True
        page.locator("tr", has_text="SOC duty group").get_by_role("button", name="Send a test").click()
        expect(page.locator("#tested")).to_contain_text("Not delivered after 3 attempt(s): HTTP 500")
        expect(page.locator("#recent-tests tbody tr")).to_have_count(2)
    html = page.content()
    assert TOKEN not in html and SECRET not in html
    page.close()


def test_an_analyst_reads_the_delivery_log_in_chinese(browser: Browser, server: Server) -> None:
    """Runs after the test above: its two test messages are in the log."""
    page = browser.new_page()
    sign_in(page, server, "ana", "Ana Analyst")
    page.goto(server.url + "/response/notifications/deliveries")
    page.get_by_role("button", name="简体中文").click()
    expect(page.get_by_role("heading", name="投递记录")).to_be_visible()
    rows = page.locator("table.deliveries tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("失败")
    expect(rows.nth(1)).to_contain_text("已送达")
    page.get_by_label("状态").select_option("failed")
    page.get_by_role("button", name="筛选").click()
    expect(page.locator("table.deliveries tbody tr")).to_have_count(1)
    page.close()
