"""A post-mortem filled from the incident, approved, and published on its own to the knowledge base and to a
git wiki (a bare repository in tmp_path); the incident report as Markdown and as a print-ready page. Runs on
SQLite and PostgreSQL."""

from __future__ import annotations

import io
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pypdf import PdfReader
from tests.conftest import World
from tests.incidents.test_incidents_api import fresh_postmortem_incident
from tests.kb.support import bare_remote

from vigil.accounts.service import root_unit_id
from vigil.core import audit
from vigil.core.config import Settings, load_settings
from vigil.core.context import Context
from vigil.core.db import Scope, utcnow
from vigil.core.events import PENDING_KEY
from vigil.incidents import postmortem
from vigil.incidents.workflow import ReviewAction
from vigil.response.oncall_runtime import EscalationRunner


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    remote = bare_remote(tmp_path)
    return load_settings(data_dir=tmp_path / "var", database_url=database_url, kb_git_path=tmp_path / "wiki",
                         kb_git_remote=str(remote))


def approved_incident(client: TestClient, world: World) -> int:
    analyst = world.headers("analyst")
    incident = client.post("/api/v1/incidents", headers=analyst, json={
        "title": "Phishing wave", "type": "phishing", "severity": "P2", "cause": "A lookalike domain",
        "scope": {"affected_users": ["alice", "bob"]}}).json()
    incident_id = int(incident["id"])
    filled = client.post(f"/api/v1/incidents/{incident_id}/postmortem/prefill", headers=analyst)
    assert filled.status_code == 200, filled.text
    assert "Affected users: alice, bob" in filled.json()["impact"]
    assert "Incident opened" in filled.json()["timeline"]
    due = (utcnow() + timedelta(days=7)).isoformat()
    answer = client.patch(f"/api/v1/incidents/{incident_id}/postmortem", headers=analyst, json={
        "five_whys": ["the mail passed the filter", "the domain was new"], "went_badly": "slow block",
        "action_items": [{"title": "Block lookalike domains", "owner_id": world.users["responder"], "due_at": due}]})
    assert answer.status_code == 200, answer.text
    assert client.post(f"/api/v1/incidents/{incident_id}/postmortem/submit", headers=analyst).status_code == 200
    return incident_id


def test_an_approved_post_mortem_is_published_to_the_knowledge_base_and_the_git_wiki(
        world: World, client: TestClient, app: FastAPI, settings: Settings) -> None:
    incident_id = approved_incident(client, world)
    early = client.post(f"/api/v1/incidents/{incident_id}/postmortem/publish", headers=world.headers("responder"))
    assert early.status_code == 409  # in review: not published yet
    assert client.post(f"/api/v1/incidents/{incident_id}/postmortem/approve",
                       headers=world.headers("responder")).status_code == 200
    runner: EscalationRunner = app.state.escalations
    runner.work()

    incident = client.get(f"/api/v1/incidents/{incident_id}", headers=world.headers("viewer")).json()
    record = incident["postmortem"]
    slug = f"postmortem-{incident['ref'].lower()}"
    assert record["kb_slug"] == slug and record["kb_version"] == 1 and record["git_commit"]
    assert any(e["summary"].startswith("Post-mortem published") for e in incident["timeline"])
    # The action item is a task, owned by the responder.
    assert [(t["title"], t["assignee_id"]) for t in incident["tasks"] if t["phase"] == "review"
            and t["title"] == "Block lookalike domains"] == [("Block lookalike domains", world.users["responder"])]

    page = client.get(f"/api/v1/kb/pages/{slug}", headers=world.headers("viewer")).json()
    assert "## Root cause" in page["body"] and "1. the mail passed the filter" in page["body"]
    assert "| Block lookalike domains | responder |" in page["body"] and "| open |" in page["body"]
    log = subprocess.run(["git", "--git-dir", str(settings.kb_git_remote), "log", "--format=%H %s"],
                         capture_output=True, text=True, check=True).stdout
    assert record["git_commit"] in log and f"Add {slug}" in log

    shown = client.get(f"/incidents/{incident_id}", headers=world.headers("viewer")).text
    assert f'href="/kb/pages/{slug}"' in shown and record["git_commit"][:12] in shown

    # Publishing again after approval gives the same version (nothing changed) and the same commit.
    again = client.post(f"/api/v1/incidents/{incident_id}/postmortem/publish", headers=world.headers("responder"))
    assert again.status_code == 200 and again.json()["git_error"] == ""


def test_a_git_refusal_keeps_the_knowledge_base_page_and_says_why(
        world: World, client: TestClient, app: FastAPI, tmp_path: Path) -> None:
    incident_id = approved_incident(client, world)
    app.state.settings = app.state.settings.model_copy(update={"kb_git_remote": str(tmp_path / "missing.git"),
                                                               "kb_git_path": tmp_path / "other"})
    app.state.escalations.settings = app.state.settings
    assert client.post(f"/api/v1/incidents/{incident_id}/postmortem/approve",
                       headers=world.headers("responder")).status_code == 200
    app.state.escalations.work()
    record = client.get(f"/api/v1/incidents/{incident_id}", headers=world.headers("viewer")).json()["postmortem"]
    assert record["kb_slug"] and record["git_commit"] is None
    answer = client.post(f"/api/v1/incidents/{incident_id}/postmortem/publish", headers=world.headers("responder"))
    assert answer.status_code == 200 and "missing.git" in answer.json()["git_error"]


def test_the_incident_report_downloads_as_markdown_and_pdf_and_prints(world: World, client: TestClient) -> None:
    incident_id = approved_incident(client, world)
    answer = client.get(f"/api/v1/incidents/{incident_id}/report.md", headers=world.headers("viewer"))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/markdown")
    assert "attachment" in answer.headers["content-disposition"]
    assert answer.text.startswith("# INC-") and "## Impact and scope" in answer.text
    assert "| Severity | P2 |" in answer.text
    assert client.get(f"/api/v1/incidents/{incident_id}/report.md",
                      headers=world.headers("staff_b")).status_code == 404
    printed = client.get(f"/incidents/{incident_id}/report", headers=world.headers("viewer"))
    assert printed.status_code == 200 and "Phishing wave" in printed.text and "data-print" in printed.text
    assert f'href="/incidents/{incident_id}/report.pdf"' in printed.text
    pdf = client.get(f"/api/v1/incidents/{incident_id}/report.pdf", headers=world.headers("viewer"))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="{answer.text[2:].split(":")[0]}.pdf"'
    reader = PdfReader(io.BytesIO(pdf.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert answer.text[2:].split("\n")[0] in text  # "INC-…: Phishing wave…", the report's title
    assert "Severity" in text and "P2" in text and "Impact and scope" in text and "incident report" in text
    assert client.get(f"/api/v1/incidents/{incident_id}/report.pdf",
                      headers=world.headers("staff_b")).status_code == 404
    assert client.post(f"/api/v1/incidents/{incident_id}/postmortem/publish",
                       headers=world.headers("viewer")).status_code == 403


def fresh_approved_incident(world: World) -> int:
    """An incident (of Payments) whose post-mortem, written by 'tests', another reviewer approved."""
    incident_id = fresh_postmortem_incident(world, "in_review")
    with world.database.transaction(Scope.system()) as session:
        reviewer = Context(session=session, actor=audit.Actor(None, "matrix-reviewer", root_unit_id(session)))
        postmortem.review(reviewer, incident_id=incident_id, action=ReviewAction.APPROVE)
        # Without its event: the running app would publish it in the background, racing the caller's request.
        session.info.pop(PENDING_KEY, None)
    return incident_id
