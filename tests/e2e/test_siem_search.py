"""Event search as an analyst meets it, in Debian's Chromium against a real server on loopback.

The analyst signs in, opens the search page from the navigation, types a query and submits it, sees
the count and the histogram drawn by ECharts, opens a field's top values (HTMX) and adds one to the
query, a syntax error pointed at, then clicks an event and reads its original record; saves the
search, finds it listed, opens it and deletes it; and sees the page in 简体中文.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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
from vigil.web.app import create_app

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-42!"
RAW = "<38>Nov 28 09:12:01 web-a sshd[4242]: Failed password for root from 203.0.113.9 port 52144 ssh2"



def seed(database: Database) -> int:
    """An analyst at headquarters with a password of their own; the id of headquarters."""
    with database.transaction(Scope.system()) as session:
        hq = service.root_unit_id(session)
        ctx = Context(session=session, actor=audit.Actor(None, "e2e-setup", hq))
        user = service.create_user(ctx, data=UserCreate(
            username="ana", display_name="Ana Analyst", password=PASSWORD, unit_id=hq,
            grants=[GrantCreate(role=Role.ANALYST, unit_id=hq)]))
        user.must_change_password = False
        return hq


def events(now: datetime) -> list[dict[str, object]]:
    """Three failed SSH logins (one with its original record) and four firewall events in the last hour."""
    def ago(minutes: int) -> str:
        return (now - timedelta(minutes=minutes)).isoformat()

    failed = [{"@timestamp": ago(5 + 10 * i), "host": {"name": "web-a"}, "user": {"name": "root" if i else "admin"},
               "event": {"action": "login-failed", "kind": "event"}, "source": {"ip": "203.0.113.9"},
               "message": f"Failed password for {'root' if i else 'admin'}"} for i in range(3)]
    failed[1]["event"] = {"action": "login-failed", "kind": "event", "original": RAW}
    firewall = [{"@timestamp": ago(7 + 9 * i), "host": {"name": "fw01"}, "event": {"action": "deny"},
                 "message": f"deny tcp 10.0.0.{i}"} for i in range(4)]
    return [*failed, *firewall]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings, database = store(tmp_path_factory, "e2e-siem")
    hq = seed(database)
    app = create_app(settings, database)
    app.state.siem.store.append(events(datetime.now(UTC)), unit_id=hq, source="syslog")
    with serve(app) as running:
        yield running
    app.state.siem.store.close()
    database.dispose()


def sign_in(page: Page, server: Server) -> None:
    page.goto(server.url + "/")
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hello, Ana Analyst")).to_be_visible()


def test_search_open_an_event_and_save_the_search(server: Server, browser: Browser) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Script errors fail the test; the 422 of the refused query is the page working as meant.
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" and "status of 422" not in message.text else None)
    sign_in(page, server)
    query_box = page.get_by_role("searchbox", name="Query")

    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="SIEM: log collection").click()
    expect(page.get_by_role("heading", name="Event search")).to_be_visible()
    expect(page.locator("#event-total")).to_have_text("7 events")

    # A query, submitted from the bar: the count, the time it took, and the histogram drawn on a canvas.
    query_box.fill("event.action:login-failed")
    page.get_by_label("Time range").select_option("1h")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#event-total")).to_have_text("3 events")
    expect(page.locator("#took")).to_contain_text(re.compile(r"found in \d+ ms"))
    expect(page.locator("#histogram canvas")).to_be_visible()
    expect(page.locator("table.events tbody tr")).to_have_count(3)

    # A click on a bar narrows the range to that bar's time (and back to the last hour after).
    bar = page.evaluate("""() => {
        const data = JSON.parse(document.getElementById("histogram-data").textContent);
        const index = data.counts.findIndex((count) => count > 0);
        const chart = echarts.getInstanceByDom(document.getElementById("histogram"));
        const [x, y] = chart.convertToPixel({seriesIndex: 0}, [index, data.counts[index] / 2]);
        const box = document.getElementById("histogram").getBoundingClientRect();
        return {x: box.left + x, y: box.top + y, count: data.counts[index], range: data.ranges[index]};
    }""")
    page.mouse.click(bar["x"], bar["y"])
    expect(page).to_have_url(re.compile(r"range=\d{4}-\d\d-\d\dT"))
    expect(page.locator("#event-total")).to_have_text("1 event" if bar["count"] == 1 else f"{bar['count']} events")
    expect(page.get_by_label("Time range")).to_have_value("custom")
    page.get_by_label("Time range").select_option("1h")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#event-total")).to_have_text("3 events")

    # A field's top values come in through HTMX; picking one adds it to the query.
    field = page.locator("details").filter(has=page.locator("summary code", has_text=re.compile(r"^user\.name$")))
    field.locator("summary").click()
    values = field.locator("ol.top-values")
    expect(values).to_contain_text("root")
    expect(values.locator("li").filter(has_text="root").locator(".count")).to_have_text("2")
    values.get_by_role("link", name="root").click()
    expect(page.get_by_role("searchbox", name="Query")).to_have_value('event.action:login-failed AND user.name:"root"')
    expect(page.locator("#event-total")).to_have_text("2 events")

    # A mistake in the query is pointed at, and nothing else breaks.
    query_box.fill("user.name:(root OR")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("The query could not be read:")
    expect(page.locator("pre.caret")).to_contain_text("^")
    query_box.fill('event.action:login-failed AND user.name:"root"')
    page.get_by_role("button", name="Search", exact=True).click()

    # A click on a row opens the event, with its original record.
    # (the newest row: 15 minutes ago, the event whose original record was kept)
    page.locator("table.events tbody tr").filter(has_text="web-a").first.locator("td.message").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Event \d+$"))).to_be_visible()
    expect(page.locator("#original-record")).to_have_text(RAW)
    expect(page.locator("table.event-fields")).to_contain_text("203.0.113.9")
    page.get_by_role("link", name="Back to the search").click()
    expect(page.locator("#event-total")).to_have_text("2 events")

    # Save the search; it is listed, opens again, and can be deleted.
    saving = page.locator("#save-search")
    saving.get_by_label("Name").fill("Root SSH failures")
    saving.get_by_role("button", name="Save this search").click()
    expect(page.get_by_text("The search is saved.")).to_be_visible()
    saved = page.locator(".saved-list")
    expect(saved.get_by_role("link", name="Root SSH failures")).to_be_visible()
    query_box.fill("")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#event-total")).to_have_text("7 events")
    saved.get_by_role("link", name="Root SSH failures").click()
    expect(page.get_by_role("searchbox", name="Query")).to_have_value('event.action:login-failed AND user.name:"root"')
    expect(page.locator("#event-total")).to_have_text("2 events")
    page.once("dialog", lambda dialog: dialog.accept())
    saved.get_by_role("button", name="Delete the saved search “Root SSH failures”").click()
    expect(page.get_by_text("The saved search is deleted.")).to_be_visible()
    expect(page.get_by_text("You have no saved searches yet.")).to_be_visible()

    # The same page in 简体中文.
    page.get_by_role("button", name="简体中文").click()
    expect(page.get_by_role("heading", name="事件搜索")).to_be_visible()
    expect(page.locator("#event-total")).to_have_text("7 条事件")
    expect(page.get_by_role("heading", name="保存的搜索")).to_be_visible()
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Event search")).to_be_visible()
    assert not errors, errors
    context.close()
