"""/api/v1/kb over HTTP: create, read, search, edit as versions, history, export, delete, publish to a real
git remote; who may read and write; another unit's pages are out of reach; bad input is a clear 4xx."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pypdf import PdfReader
from tests.api.support import assert_problem, audit_records

from vigil.core.auth import Role
from vigil.core.db import Scope
from vigil.kb import service
from vigil.kb.schemas import PageCreate

from .support import acting, bare_remote, checkout, git


def fresh_kb_slug(world: Any, unit_id: int | None = None) -> str:
    """A page of ``unit_id`` (default line_a, below branch_a) with one version."""
    with acting(world.database, Scope.system()) as ctx:
        page = service.create_page(ctx, data=PageCreate(
            title=f"Matrix page {uuid.uuid4().hex[:8]}", slug=f"matrix-{uuid.uuid4().hex[:12]}",
            body="# Matrix\n\ntext", tags=["matrix"], unit_id=unit_id or world.line_a))
        return page.slug


def with_git_wiki(app: Any, tmp_path: Path | None = None) -> Path:
    """Configure the app's git wiki on a throw-away bare repository (once per app; by default in the app's data
    folder, a test's temporary folder); the remote's path."""
    settings = app.state.settings
    tmp_path = tmp_path or settings.data_dir
    tmp_path.mkdir(parents=True, exist_ok=True)
    if settings.kb_git_remote is None:
        remote = bare_remote(tmp_path, f"wiki-{uuid.uuid4().hex[:8]}.git")
        app.state.settings = settings.model_copy(update={"kb_git_path": tmp_path / f"clone-{remote.stem}",
                                                         "kb_git_remote": str(remote)})
    return Path(app.state.settings.kb_git_remote)


def kb_target_slug(world: Any) -> int:
    """A page of branch_b whose slug is all digits, so that the unit-scope test's answers for it and for a slug
    that does not exist read alike once digits are masked."""
    with acting(world.database, Scope.system()) as ctx:
        service.create_page(ctx, data=PageCreate(title="Beijing runbook", slug="424242", body="branch b only",
                                                 unit_id=world.branch_b))
    return 424242


def test_pages_through_the_api(world: Any, client: TestClient, tmp_path: Path) -> None:
    analyst, viewer = world.headers("analyst"), world.headers("viewer")
    created = client.post("/api/v1/kb/pages", headers=analyst, json={
        "title": "事件复盘：VPN 暴力破解", "slug": "pm-vpn", "body": "## 概要\n\n攻击者对 VPN 暴力破解。",
        "tags": ["postmortem", "vpn", "VPN", " "], "comment": "first draft"})
    assert created.status_code == 201, created.text
    page = created.json()
    assert page["version"] == 1 and page["tags"] == ["postmortem", "vpn"] and page["unit_id"] == world.hq
    again = client.post("/api/v1/kb/pages", headers=analyst, json={"title": "again", "slug": "pm-vpn"})
    assert_problem(again, 409, "conflict")

    # Edit as a new version, then a stale edit is refused.
    edited = client.patch("/api/v1/kb/pages/pm-vpn", headers=world.headers("responder"), json={
        "body": "## 概要\n\n攻击者对 VPN 暴力破解，已封禁来源。", "base_version": 1, "comment": "contained"})
    assert edited.status_code == 200 and edited.json()["version"] == 2 and edited.json()["updated_by"] == "responder"
    assert_problem(client.patch("/api/v1/kb/pages/pm-vpn", headers=analyst, json={"title": "x", "base_version": 1}),
                   409, "conflict")

    # Everyone with a business role reads and searches; the viewer cannot write.
    found = client.get("/api/v1/kb/pages", headers=viewer, params={"q": "暴力"}).json()
    assert found["total"] == 1 and found["items"][0]["slug"] == "pm-vpn"
    item = found["items"][0]
    start, end = item["highlights"][0]
    assert item["snippet"][start:end] == "暴力" and item["score"] == 11  # in the title and in the body
    assert client.get("/api/v1/kb/pages", headers=viewer, params={"tag": "vpn"}).json()["total"] == 1
    assert client.get("/api/v1/kb/pages", headers=viewer, params={"tag": "vp"}).json()["total"] == 0
    assert_problem(client.post("/api/v1/kb/pages", headers=viewer, json={"title": "x"}), 403, "permission-denied")
    for refused in ("sysadmin", "auditor"):  # separation of duties: no business data
        assert_problem(client.get("/api/v1/kb/pages", headers=world.headers(refused)), 403, "permission-denied")

    versions = client.get("/api/v1/kb/pages/pm-vpn/versions", headers=viewer).json()
    assert [v["number"] for v in versions["items"]] == [2, 1] and versions["items"][1]["comment"] == "first draft"
    old = client.get("/api/v1/kb/pages/pm-vpn/versions/1", headers=viewer).json()
    assert old["body"] == "## 概要\n\n攻击者对 VPN 暴力破解。" and old["author"] == "analyst"
    assert_problem(client.get("/api/v1/kb/pages/pm-vpn/versions/9", headers=viewer), 404, "not-found")
    diff = client.get("/api/v1/kb/pages/pm-vpn/versions/2/diff", headers=viewer).json()
    assert diff["against"] == 1 and diff["title_before"] == diff["title_after"]
    assert "-攻击者对 VPN 暴力破解。" in diff["diff"].splitlines()
    assert "+攻击者对 VPN 暴力破解，已封禁来源。" in diff["diff"].splitlines()
    first = client.get("/api/v1/kb/pages/pm-vpn/versions/1/diff", headers=viewer).json()
    assert first["against"] == 0 and "+## 概要" in first["diff"].splitlines()

    exported = client.get("/api/v1/kb/pages/pm-vpn/export.md", headers=viewer)
    assert exported.headers["content-type"].startswith("text/markdown")
    assert 'filename="pm-vpn.md"' in exported.headers["content-disposition"]
    assert exported.text.startswith("---\ntitle: 事件复盘：VPN 暴力破解\n") and exported.text.endswith("已封禁来源。\n")
    assert "version: 1" in client.get("/api/v1/kb/pages/pm-vpn/export.md?version=1", headers=viewer).text
    pdf = client.get("/api/v1/kb/pages/pm-vpn/export.pdf", headers=viewer)
    assert pdf.headers["content-type"] == "application/pdf" and 'filename="pm-vpn.pdf"' in pdf.headers[
        "content-disposition"]
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "事件复盘：VPN 暴力破解" in text and "已封禁来源。" in text and "pm-vpn" in text
    first_pdf = client.get("/api/v1/kb/pages/pm-vpn/export.pdf?version=1", headers=viewer)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(first_pdf.content)).pages)
    assert "pm-vpn v1" in text and "已封禁来源。" not in text

    # Publishing: 503 until a wiki is configured, then the commit lands in the remote and on the page.
    assert_problem(client.post("/api/v1/kb/pages/pm-vpn/publish", headers=analyst), 503, "unavailable")
    remote = with_git_wiki(client.app, tmp_path)
    published = client.post("/api/v1/kb/pages/pm-vpn/publish", headers=analyst)
    assert published.status_code == 200, published.text
    commit = published.json()["commit"]
    assert published.json() | {"commit": ""} == {"slug": "pm-vpn", "version": 2, "commit": "", "path": "pm-vpn.md",
                                                  "branch": "main", "changed": True, "pushed": True}
    reader = checkout(remote, tmp_path / "reader")
    assert git("log", "--format=%H", cwd=reader).split() == [commit]
    assert "已封禁来源" in (reader / "pm-vpn.md").read_text(encoding="utf-8")
    assert client.get("/api/v1/kb/pages/pm-vpn", headers=viewer).json()["git_commit"] == commit
    assert client.get("/api/v1/kb/pages/pm-vpn/versions/2", headers=viewer).json()["git_commit"] == commit

    deleted = client.delete("/api/v1/kb/pages/pm-vpn", headers=analyst)
    assert deleted.status_code == 200 and deleted.json()["slug"] == "pm-vpn"
    assert_problem(client.get("/api/v1/kb/pages/pm-vpn", headers=viewer), 404, "not-found")
    actions = [record.action for record in audit_records(world.database, target_type="kb_page")]
    assert actions == ["kb.page.create", "kb.page.update", "kb.page.publish", "kb.page.delete"]


def test_bad_input_is_refused_whole(world: Any, client: TestClient) -> None:
    analyst = world.headers("analyst")
    for body, field in [({"title": ""}, "title"), ({"title": "x", "slug": "Not A Slug"}, "slug"),
                        ({"title": "x", "slug": "../etc"}, "slug"), ({"title": "x", "tags": ["t" * 51]}, "tags"),
                        ({"title": "x", "body": "a\x00b"}, "body"), ({"title": "x", "extra": 1}, "extra"),
                        ({"title": "x", "unit_id": 0}, "unit_id")]:
        problem = assert_problem(client.post("/api/v1/kb/pages", headers=analyst, json=body), 422, "bad-input")
        assert problem["detail"].startswith(f"{field}:"), (body, problem)
    assert_problem(client.get("/api/v1/kb/pages", headers=analyst, params={"q": " ".join("abcdefghijk")}), 422)
    assert client.get("/api/v1/kb/pages", headers=analyst).json()["total"] == 0  # nothing was stored


def test_a_branch_reaches_only_its_own_pages(world: Any, client: TestClient) -> None:
    world.add_user("analyst_a", Role.ANALYST, world.branch_a)
    theirs = fresh_kb_slug(world, world.branch_b)
    ours = fresh_kb_slug(world, world.line_a)
    h = world.headers("analyst_a")
    assert [item["slug"] for item in client.get("/api/v1/kb/pages", headers=h).json()["items"]] == [ours]
    for method, path, body in [("GET", f"/api/v1/kb/pages/{theirs}", None),
                               ("PATCH", f"/api/v1/kb/pages/{theirs}", {"title": "mine"}),
                               ("DELETE", f"/api/v1/kb/pages/{theirs}", None),
                               ("GET", f"/api/v1/kb/pages/{theirs}/versions", None),
                               ("GET", f"/api/v1/kb/pages/{theirs}/versions/1", None),
                               ("GET", f"/api/v1/kb/pages/{theirs}/versions/1/diff", None),
                               ("GET", f"/api/v1/kb/pages/{theirs}/export.md", None),
                               ("POST", f"/api/v1/kb/pages/{theirs}/publish", None)]:
        assert_problem(client.request(method, path, headers=h, json=body), 404, "not-found")
    assert_problem(client.post("/api/v1/kb/pages", headers=h, json={"title": "x", "unit_id": world.branch_b}), 404)
    created = client.post("/api/v1/kb/pages", headers=h, json={"title": "Shanghai runbook"})
    assert created.status_code == 201 and created.json()["unit_id"] == world.branch_a
