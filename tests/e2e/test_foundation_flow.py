"""The foundation as a user meets it, in Debian's Chromium against a real server on loopback.

The system administrator signs in, switches to 简体中文 and back, and creates an account, which has no
role; the security administrator grants it the analyst role; the analyst signs in, sets a new password
as forced, and is refused the user administration; the audit administrator then finds the creation, the
grant and the refusal on the audit page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

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
ANALYST_FIRST = "Initial-Pass-77#"
ANALYST_OWN = "Own-Choice-Pass-93$"




def seed(database: Database) -> None:
    """The three administrators of this story, through the services, with passwords they chose themselves."""
    with database.transaction(Scope.system()) as session:
        hq = service.root_unit_id(session)
        ctx = Context(session=session, actor=audit.Actor(None, "e2e-setup", hq))
        for username, role in (("admin", Role.SYSTEM_ADMIN), ("secadmin", Role.SECURITY_ADMIN),
                               ("auditor", Role.AUDIT_ADMIN)):
            user = service.create_user(ctx, data=UserCreate(
                username=username, display_name=username.title(), password=PASSWORD, unit_id=hq,
                grants=[GrantCreate(role=role, unit_id=hq)]))
            user.must_change_password = False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings, database = store(tmp_path_factory, "e2e")
    seed(database)
    with serve(create_app(settings, database)) as running:
        yield running
    database.dispose()


def sign_in(page: Page, server: Server, username: str, password: str) -> None:
    page.goto(server.url + "/")
    assert "/login" in page.url
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Vigil")).to_be_visible()


def test_foundation_flow(server: Server, browser: Browser) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()

    # The administrator signs in; the session cookie is HttpOnly, SameSite=Lax and Secure.
    sign_in(page, server, "admin", PASSWORD)
    expect(page.get_by_role("heading", name="Hello, Admin")).to_be_visible()
    cookie = next(c for c in context.cookies() if c["name"] == "vigil_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    nav = page.get_by_role("navigation", name="Main navigation")
    expect(nav.get_by_role("link", name="Users")).to_be_visible()
    expect(nav.get_by_text("Threat detection")).to_be_visible()  # a planned domain: shown, not linked
    expect(nav.get_by_role("link", name="Threat detection")).to_have_count(0)

    # 简体中文 and back.
    page.get_by_role("button", name="简体中文").click()
    expect(page.get_by_role("heading", name="您好，Admin")).to_be_visible()
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    expect(page.get_by_role("navigation", name="主导航").get_by_role("link", name="用户管理")).to_be_visible()
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Hello, Admin")).to_be_visible()

    # The system administrator creates the account; its role is not theirs to give.
    nav.get_by_role("link", name="Users").click()
    create = page.locator("#create")
    expect(create.get_by_label("Role")).to_have_count(0)
    create.get_by_label("User name").fill("ana")
    create.get_by_label("Display name").fill("Ana Analyst")
    create.get_by_label("Initial password").fill(ANALYST_FIRST)
    create.get_by_role("button", name="Create user").click()
    expect(page.get_by_text("The user is created.")).to_be_visible()
    expect(page.get_by_text("No roles.")).to_be_visible()
    expect(page.get_by_text("Roles are granted and revoked by the security administrator.")).to_be_visible()
    expect(page.get_by_role("button", name="Grant role")).to_have_count(0)
    sign_out(page)

    # The security administrator grants it the analyst role.
    sign_in(page, server, "secadmin", PASSWORD)
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Users").click()
    expect(page.locator("#create")).to_have_count(0)  # makes no account
    page.get_by_role("link", name="ana", exact=True).click()
    expect(page.get_by_role("heading", name="Ana Analyst")).to_be_visible()
    expect(page.get_by_role("button", name="Reset password")).to_have_count(0)  # sets no password
    grant = page.locator("form[action$='/grants']")
    grant.get_by_label("Role").select_option("analyst")
    grant.get_by_role("button", name="Grant role").click()
    expect(page.get_by_text("The role is granted.")).to_be_visible()
    expect(page.get_by_role("cell", name="Security analyst")).to_be_visible()
    sign_out(page)

    # The analyst signs in, must choose a new password first, and is refused the user administration.
    sign_in(page, server, "ana", ANALYST_FIRST)
    expect(page.get_by_text("You must choose a new password before you continue.")).to_be_visible()
    page.get_by_label("Current password").fill(ANALYST_FIRST)
    page.get_by_label("New password", exact=True).fill(ANALYST_OWN)
    page.get_by_label("New password again").fill(ANALYST_OWN)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("heading", name="Hello, Ana Analyst")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Users")).to_have_count(0)
    response = page.goto(server.url + "/admin/users")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    sign_out(page)

    # The audit administrator sees the creation, the grant and the refusal.
    sign_in(page, server, "auditor", PASSWORD)
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Audit log").click()
    rows = page.locator("table.audit tbody tr")
    created = rows.filter(has_text="user.create").filter(has_text="admin").filter(has_text='"username":"ana"')
    expect(created).to_have_count(1)
    granted = rows.filter(has_text="user.role.grant").filter(has_text="secadmin").filter(has_text='"role":"analyst"')
    expect(granted).to_have_count(1)
    refused = rows.filter(has_text="auth.denied").filter(has_text="ana").filter(has_text="GET /admin/users")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("Denied")

    # The chain verifies in place (HTMX swaps the result in when htmx is served, else a result page).
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.get_by_text(re.compile(r"The chain is intact: \d+ records checked\."))).to_be_visible()
    context.close()
