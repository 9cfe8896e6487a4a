"""Threat intelligence as its users meet it, in Debian's Chromium against a real server on loopback.

A shipper sends firewall events (ECS) to ``POST /api/v1/ingest``: a workstation talks to a C2 address and a
client asks Google's public resolver. Then the analyst imports a blocklist on the import page (the C2 address
and the resolver's network): the retro-hunt finds both in the stored events. The analyst looks the C2 address
up from the intelligence header's search box, sees its indicator and its sighting, opens the sighting and
reads its provenance (the import it came from) and its alert. The resolver's sighting raised no alert, and
its page names the warninglist that held it back, in English and in 简体中文.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, Page, expect
from tests.e2e.harness import Server, serve, store

from vigil.accounts import service, signin
from vigil.accounts.schemas import GrantCreate, TokenCreate, UserCreate
from vigil.core import audit
from vigil.core.auth import Role
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.siem.store.base import EventStore
from vigil.web.app import create_app

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-42!"
C2 = "91.92.109.44"
RESOLVER = "8.8.8.8"
STORED_TIMEOUT_S = 45.0  # the pipeline drains the spool in the background, in batches


@dataclass(frozen=True)
class Running:
    server: Server
    shipper_token: str
    events: EventStore


def seed(database: Database) -> str:
    """The analyst and a shipper at headquarters; the shipper's API token."""
    with database.transaction(Scope.system()) as session:
        hq = service.root_unit_id(session)
        ctx = Context(session=session, actor=audit.Actor(None, "e2e-setup", hq))
        for username, display, role in (("ana", "Ana Analyst", Role.ANALYST), ("shipper", "Firewall", Role.SHIPPER)):
            user = service.create_user(ctx, data=UserCreate(
                username=username, display_name=display, password=PASSWORD, unit_id=hq,
                grants=[GrantCreate(role=role, unit_id=hq)]))
            user.must_change_password = False
        secret, _ = signin.create_token(ctx, user=user, data=TokenCreate(name="firewall"))
        return secret


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    settings, database = store(tmp_path_factory, "e2e-intel")
    token = seed(database)
    app = create_app(settings, database)
    app.state.siem.start()  # the pipeline stores what is ingested, as under `vigil serve`
    try:
        with serve(app) as server:
            yield Running(server, token, app.state.siem.store)
    finally:
        app.state.siem.stop()
        app.state.intel.close()
        database.dispose()


def ship(running: Running) -> None:
    """An hour ago: a workstation's connection to the C2 address, and a client's DNS query to the resolver."""
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    documents = [
        {"@timestamp": when, "event": {"category": ["network"]}, "host": {"hostname": "ws-fin-07"},
         "source": {"ip": "10.20.1.7"}, "destination": {"ip": C2, "port": 443}, "message": f"allowed to {C2}:443"},
        {"@timestamp": when, "event": {"category": ["network"]}, "host": {"hostname": "ws-hr-02"},
         "source": {"ip": "10.20.2.9"}, "destination": {"ip": RESOLVER, "port": 53},
         "message": f"allowed to {RESOLVER}:53"},
    ]
    body = b"\n".join(orjson.dumps(document) for document in documents) + b"\n"
    response = httpx.post(f"{running.server.url}/api/v1/ingest", params={"source": "firewall"}, content=body,
                          timeout=30, headers={"Authorization": f"Bearer {running.shipper_token}",
                                               "Content-Type": "application/x-ndjson"})
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + STORED_TIMEOUT_S
    while len(running.events.search("message LIKE ?", ["allowed to %"], limit=10)) < len(documents):
        assert time.monotonic() < deadline, "gave up waiting for the events to be stored"
        time.sleep(0.25)


def sign_in(page: Page, server: Server) -> None:
    page.goto(server.url + "/")
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hello, Ana Analyst")).to_be_visible()


def look_up(page: Page, value: str) -> None:
    """The search box in the header of every intelligence page."""
    page.get_by_label("Observable to look up").fill(value)
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("heading", name="Look up an observable")).to_be_visible()


def test_import_look_up_and_read_a_sighting(running: Running, browser: Browser) -> None:
    ship(running)
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    sign_in(page, running.server)

    # 1. The analyst imports a blocklist (pasted, in the lines format) on the import page.
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="IOC detection").click()
    expect(page.get_by_role("heading", name="Threat intelligence", exact=True)).to_be_visible()
    page.get_by_role("navigation", name="Threat intelligence").get_by_role("link", name="Import").click()
    importing = page.locator("#import")
    importing.get_by_label("Format or preset").select_option("lines")
    importing.get_by_label("Name").fill("e2e-blocklist")
    importing.get_by_label("Or paste the content").fill(f"# C2 servers\n{C2}\n8.8.8.0/24\n")
    importing.get_by_role("button", name="Import", exact=True).click()
    result = page.locator("#import-result")
    expect(result.get_by_role("heading", name="Imported as import:e2e-blocklist")).to_be_visible()
    expect(result.locator("#import-counts")).to_contain_text("Indicators read: 2 (added 2, updated 0)")
    expect(result.locator("#retrohunt")).to_contain_text("matching events: 2; new sightings: 2")

    # 2. The C2 address looked up from the header: its indicator and its sighting.
    look_up(page, "91.92.109[.]44")
    indicators = page.locator("#lookup-indicators")
    expect(indicators.get_by_role("link", name=C2)).to_be_visible()
    expect(indicators).to_contain_text("import:e2e-blocklist")
    sightings = page.locator("#lookup-sightings tbody tr")
    expect(sightings).to_have_count(1)
    expect(sightings).to_contain_text("ws-fin-07")
    expect(sightings).to_contain_text("destination.ip")
    expect(page.locator("#lookup-events")).to_contain_text("firewall")

    # 3. The sighting: found by the retro-hunt, its provenance, and the alert it raised.
    sightings.get_by_role("link", name=re.compile(r"^Sighting \d+$")).click()
    expect(page.get_by_role("heading", name=re.compile(rf"^Sighting \d+: {re.escape(C2)}$"))).to_be_visible()
    facts = page.locator("#sighting-facts")
    expect(facts).to_contain_text("ws-fin-07")
    expect(facts).to_contain_text("by a retro-hunt")
    provenance = page.locator("#provenance")
    expect(provenance.get_by_role("heading", name="Provenance at match time")).to_be_visible()
    expect(provenance.locator("#provenance-sources")).to_contain_text("import:e2e-blocklist")
    expect(page.locator("#held-back")).to_have_count(0)
    page.locator("#raised").get_by_role("link", name=re.compile(r"^Alert \d+$")).click()
    expect(page.get_by_role("heading", name=f"Retro-hunt match: ipv4 {C2}", level=1)).to_be_visible()
    page.go_back()

    # 4. The resolver's sighting raised no alert: its page names the warninglist that held it back.
    look_up(page, RESOLVER)
    held = page.locator("#lookup-sightings tbody tr")
    expect(held).to_have_count(1)
    expect(held).to_contain_text("held back: warninglist")
    held.get_by_role("link", name=re.compile(r"^Sighting \d+$")).click()
    explained = page.locator("#held-back")
    expect(explained.get_by_role("heading", name="Held back by a warninglist: no alert was raised")).to_be_visible()
    expect(explained).to_contain_text(f"The observed value {RESOLVER} is on these warninglists")
    expect(explained.locator("#held-back-lists")).to_contain_text("DNS resolvers")
    expect(page.locator("#raised")).to_have_count(0)

    # The same page in 简体中文, then back.
    page.get_by_role("button", name="简体中文").click()
    expect(page.get_by_role("heading", name="被警告列表拦下：未产生告警")).to_be_visible()
    expect(page.get_by_role("heading", name="匹配时的来源依据")).to_be_visible()
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Provenance at match time")).to_be_visible()

    assert not errors, errors
    context.close()
