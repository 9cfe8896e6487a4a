"""`vigil kb` against a real store and a real git remote: put a Markdown file (front matter read), put it again
as a new version, list, search in Chinese, show (also as Markdown and an old version), publish; errors exit 1."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from tests.api.support import audit_records
from tests.cli.conftest import Cli, store_env

from vigil.core.db import Database

from .support import bare_remote, checkout, git

PAGE = """---
title: 事件复盘：勒索软件
tags: [postmortem, 勒索]
slug: pm-ransom
---

## 概要

文件服务器被加密，已从备份恢复。
"""


@pytest.fixture
def kb_cli(database: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    return Cli(store_env(database_url, tmp_path))


def test_put_list_search_show_and_publish(kb_cli: Cli, database: Database, tmp_path: Path) -> None:
    page = tmp_path / "pm.md"
    page.write_text(PAGE, encoding="utf-8")
    assert kb_cli.ok("kb", "put", str(page)).output.strip() == "pm-ransom: version 1 (事件复盘：勒索软件)"
    page.write_text(PAGE + "\n## 根本原因\n\n远程桌面弱口令。\n", encoding="utf-8")
    second = orjson.loads(kb_cli.ok("kb", "put", str(page), "-m", "root cause", "--json").output)
    assert second["version"] == 2 and second["tags"] == ["postmortem", "勒索"]

    plain = tmp_path / "runbook.md"
    plain.write_text("# VPN lockout runbook\n\nUnlock the account after checking the source IP.\n")
    assert "vpn-lockout-runbook: version 1" in kb_cli.ok("kb", "put", str(plain), "-t", "runbook").output

    listing = kb_cli.ok("kb", "list").output
    assert listing.splitlines()[0].split()[:3] == ["SLUG", "TITLE", "VERSION"]
    assert "pm-ransom" in listing and "vpn-lockout-runbook" in listing
    found = orjson.loads(kb_cli.ok("kb", "search", "弱口令", "--json").output)
    assert [item["slug"] for item in found] == ["pm-ransom"] and "弱口令" in found[0]["snippet"]
    assert "no page matches" in kb_cli("kb", "search", "ransomware").output

    shown = kb_cli.ok("kb", "show", "pm-ransom").output
    assert shown.startswith("事件复盘：勒索软件\n") and "version:    2" in shown and "远程桌面弱口令" in shown
    first = kb_cli.ok("kb", "show", "pm-ransom", "--version", "1", "--markdown").output
    assert first.startswith("---\ntitle: 事件复盘：勒索软件\n") and "version: 1" in first and "弱口令" not in first

    refused = kb_cli("kb", "publish", "pm-ransom")
    assert refused.exit_code == 1 and "kb_git_path" in refused.output
    remote = bare_remote(tmp_path)
    wiki = {"VIGIL_KB_GIT_PATH": str(tmp_path / "wiki"), "VIGIL_KB_GIT_REMOTE": str(remote)}
    published = kb_cli("kb", "publish", "pm-ransom", "--json", env=wiki)
    assert published.exit_code == 0, published.output
    commit = orjson.loads(published.output)["commit"]
    reader = checkout(remote, tmp_path / "reader")
    assert git("log", "--format=%H %s", cwd=reader).strip() == f"{commit} Add pm-ransom: 事件复盘：勒索软件"
    assert "远程桌面弱口令" in (reader / "pm-ransom.md").read_text(encoding="utf-8")

    missing = kb_cli("kb", "show", "no-such-page")
    assert missing.exit_code == 1 and "no knowledge-base page 'no-such-page'" in missing.output
    bad = tmp_path / "bad.md"
    bad.write_text("---\ntitle: [unclosed\n---\ntext\n")
    assert kb_cli("kb", "put", str(bad)).exit_code == 1
    actions = [record.action for record in audit_records(database, target_type="kb_page")]
    assert actions == ["kb.page.create", "kb.page.update", "kb.page.create", "kb.page.publish"]
    assert {record.actor for record in audit_records(database, target_type="kb_page")} == {
        audit_records(database, target_type="kb_page")[0].actor}
