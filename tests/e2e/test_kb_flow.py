"""The knowledge base as an analyst meets it, in Debian's Chromium against a real server on loopback: write a
post-mortem page in the form (a script in it stays text and never runs), edit it, find it with a Chinese search
term, read the history and the first version, publish it to a git wiki (a bare repository on disk) and see the
commit, in the wiki's log too; then the same page in 简体中文."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect
from tests.e2e.harness import Server, serve, store

from vigil.accounts import service
from vigil.accounts.schemas import GrantCreate, UserCreate
from vigil.core import audit
from vigil.core.auth import Role
from vigil.core.context import Context
from vigil.core.db import Scope
from vigil.web.app import create_app

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-42!"
BODY = ("## 概要\n\n员工收到钓鱼邮件，输入了 VPN 密码。\n\n<script>alert('stored xss')</script>\n\n"
        "| 阶段 | 用时 |\n|---|---|\n| 遏制 | 15 分钟 |\n")


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30).stdout


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    settings, database = store(tmp_path_factory, "e2e-kb")
    remote = settings.data_dir.parent / "wiki.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote), cwd=settings.data_dir.parent)
    settings = settings.model_copy(update={"kb_git_path": settings.data_dir / "wiki", "kb_git_remote": str(remote)})
    with database.transaction(Scope.system()) as session:
        hq = service.root_unit_id(session)
        ctx = Context(session=session, actor=audit.Actor(None, "e2e-setup", hq))
        user = service.create_user(ctx, data=UserCreate(
            username="ana", display_name="Ana Analyst", password=PASSWORD, unit_id=hq,
            grants=[GrantCreate(role=Role.ANALYST, unit_id=hq)]))
        user.must_change_password = False
    app = create_app(settings, database)
    try:
        with serve(app) as server:
            yield server, remote
    finally:
        app.state.intel.close()
        database.dispose()


def test_write_find_and_publish_a_post_mortem(browser: Browser, running: tuple[Server, Path],
                                             tmp_path: Path) -> None:
    server, remote = running
    page: Page = browser.new_page()
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    page.goto(server.url + "/")
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Knowledge base").click()
    expect(page.get_by_role("heading", name="Knowledge base")).to_be_visible()

    page.get_by_role("link", name="New page").click()
    page.get_by_label("Title").fill("事件复盘：钓鱼邮件")
    page.get_by_label("Slug").fill("pm-phishing")
    page.get_by_label("Tags").fill("postmortem, 钓鱼")
    page.get_by_label("Text (Markdown)").fill(BODY)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("The page is created.")
    body = page.locator("#kb-body")
    expect(body.get_by_role("heading", name="概要")).to_be_visible()
    expect(body.get_by_role("cell", name="遏制")).to_be_visible()
    expect(body).to_contain_text("<script>alert('stored xss')</script>")  # shown as text

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Text (Markdown)").fill(BODY + "\n## 根本原因\n\n邮件网关未拦截新注册域名。\n")
    page.get_by_label("What changed").fill("加入根本原因")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("The page is saved as a new version.")

    page.get_by_role("link", name="Knowledge base", exact=True).first.click()
    page.get_by_label("Search titles, tags and text").fill("网关")
    page.get_by_role("button", name="Search").click()
    result = page.locator("li[data-slug='pm-phishing']")
    expect(result.locator("mark")).to_have_text("网关")
    result.get_by_role("link", name="事件复盘：钓鱼邮件").click()

    page.get_by_role("link", name="History").click()
    history = page.locator("#kb-history")
    expect(history.locator("tr[data-version='2']")).to_contain_text("加入根本原因")
    history.get_by_role("link", name="1", exact=True).click()
    expect(page.get_by_role("note")).to_contain_text("You are reading version 1 of 2")
    expect(page.locator("#kb-body")).not_to_contain_text("根本原因")
    page.get_by_role("link", name="Read the current version").click()

    page.get_by_role("button", name="Publish to git").click()
    expect(page.get_by_role("status")).to_have_text("The page is committed to the git wiki.")
    commit = page.locator("#kb-commit").inner_text()
    assert re.fullmatch(r"[0-9a-f]{40}", commit)
    assert git("log", "--format=%H %s", "main", cwd=remote).strip() == f"{commit} Add pm-phishing: 事件复盘：钓鱼邮件"
    reader = tmp_path / "reader"
    git("clone", "--quiet", str(remote), str(reader), cwd=tmp_path)
    assert "邮件网关未拦截新注册域名。" in (reader / "pm-phishing.md").read_text(encoding="utf-8")

    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("link", name="历史版本")).to_be_visible()
    expect(page.get_by_role("button", name="发布到 Git")).to_be_visible()
    assert dialogs == []  # the stored <script> never ran
    page.close()
