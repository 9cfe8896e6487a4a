"""The knowledge-base pages as a browser uses them: write a page in the form (Markdown rendered, a script shown as
text), edit it, find it with the search box (Chinese and English), read its history and an old version, export it,
publish it to a real git remote, print it, delete it; in both languages; a viewer reads but cannot write."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.web.support import audit_actions, csrf_of, post_form, signed_in, text_of

from .support import checkout, git
from .test_kb_api import with_git_wiki

BODY = ("## 概要\n\n员工收到**钓鱼邮件**并输入了 VPN 密码。\n\n<script>alert('x')</script>\n\n"
        "[click](javascript:alert(1))\n\n| 阶段 | 用时 |\n|---|---|\n| 遏制 | 15 min |\n")


def test_write_search_edit_publish_and_delete_a_page(world: Any, app: Any, tmp_path: Path) -> None:
    browser = signed_in(app, "analyst")
    form = browser.get("/kb/new")
    assert form.status_code == 200 and 'name="body"' in form.text
    created = post_form(browser, "/kb/new", {"title": "事件复盘：钓鱼邮件", "slug": "pm-phish", "body": BODY,
                                             "tags": "postmortem，钓鱼", "comment": "初稿", "unit_id": str(world.hq)})
    assert created.status_code == 303 and created.headers["location"] == "/kb/pages/pm-phish?done=created"
    page = browser.get(created.headers["location"])
    assert "The page is created." in page.text
    assert "<strong>钓鱼邮件</strong>" in page.text and "<td>遏制</td>" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;alert" in page.text
    assert 'href="javascript' not in page.text
    assert re.search(r'<a class="badge" href="/kb\?tag=%E9%92%93%E9%B1%BC">钓鱼</a>', page.text)

    # A slug already taken comes back to the form with the reason, and nothing is stored.
    taken = post_form(browser, "/kb/new", {"title": "x", "slug": "pm-phish", "body": "", "unit_id": str(world.hq)},
                      page="/kb/new")
    assert taken.status_code == 409 and "is taken" in taken.text

    edit = browser.get("/kb/pages/pm-phish/edit")
    assert 'aria-describedby="body-note">\n## 概要' in edit.text  # the browser drops that first newline only
    saved = browser.post("/kb/pages/pm-phish/edit", data={
        "csrf_token": csrf_of(edit), "title": "事件复盘：钓鱼邮件", "tags": "postmortem, 钓鱼", "comment": "加入根因",
        "base_version": "1", "body": BODY + "\n## 根本原因\n\n邮件网关未拦截。\n"}, follow_redirects=False)
    assert saved.headers["location"] == "/kb/pages/pm-phish?done=saved"
    stale = browser.post("/kb/pages/pm-phish/edit", data={
        "csrf_token": csrf_of(edit), "title": "stale", "tags": "", "comment": "", "base_version": "1", "body": "x"},
        follow_redirects=False)
    assert stale.status_code == 409 and "reload it" in stale.text

    found = browser.get("/kb", params={"q": "网关"})
    assert "<mark>网关</mark>" in found.text and "/kb/pages/pm-phish" in found.text
    assert "/kb/pages/pm-phish" not in browser.get("/kb", params={"q": "ransomware"}).text

    history = browser.get("/kb/pages/pm-phish/history")
    assert "加入根因" in history.text and "初稿" in history.text
    changes = browser.get("/kb/pages/pm-phish/versions/2/diff")
    assert '<span class="add">+## 根本原因</span>' in changes.text and "Compared with version 1." in changes.text
    old = browser.get("/kb/pages/pm-phish/versions/1")
    assert "You are reading version 1 of 2" in text_of(old) and "根本原因" not in old.text

    markdown = browser.get("/kb/pages/pm-phish/export.md")
    assert markdown.text.startswith("---\ntitle: 事件复盘：钓鱼邮件\n") and "邮件网关未拦截。" in markdown.text
    printable = browser.get("/kb/pages/pm-phish/print")
    assert "data-print" in printable.text and "/static/kb/kb.css" in printable.text
    assert "Main navigation" not in printable.text and "<td>遏制</td>" in printable.text

    # Publishing without a configured wiki says so on the page; with one, the commit is shown.
    refused = post_form(browser, "/kb/pages/pm-phish/publish", page="/kb/pages/pm-phish")
    assert refused.status_code == 503 and "kb_git_path" in refused.text
    remote = with_git_wiki(app, tmp_path)
    published = post_form(browser, "/kb/pages/pm-phish/publish", page="/kb/pages/pm-phish")
    assert published.headers["location"] == "/kb/pages/pm-phish?done=published"
    shown = browser.get("/kb/pages/pm-phish")
    commit = re.search(r'<code id="kb-commit">([0-9a-f]{40})</code>', shown.text)
    assert commit is not None
    reader = checkout(remote, tmp_path / "reader")
    assert git("log", "--format=%H", cwd=reader).split() == [commit.group(1)]

    # The same pages in Chinese.
    chinese = signed_in(app, "viewer", **{"Accept-Language": "zh-CN"})
    listing = chinese.get("/kb")
    assert "知识库" in listing.text
    viewed = chinese.get("/kb/pages/pm-phish")
    assert "历史版本" in viewed.text and "发布到 Git" not in viewed.text
    assert "/kb/pages/pm-phish/edit" not in viewed.text
    assert chinese.get("/kb/new").status_code == 403

    deleted = post_form(browser, "/kb/pages/pm-phish/delete", page="/kb/pages/pm-phish")
    assert deleted.headers["location"] == "/kb?done=deleted"
    assert browser.get("/kb/pages/pm-phish").status_code == 404
    actions = [r.action for r in audit_actions(world.database, target_type="kb_page")]
    assert actions == ["kb.page.create", "kb.page.update", "kb.page.publish", "kb.page.delete"]
