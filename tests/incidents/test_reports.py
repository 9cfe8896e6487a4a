"""Passive reports: any signed-in employee (a staff user with only a viewer role, or a user with no role at
all) reports a suspected incident, named or anonymous; analysts of the reporter's unit triage it (accept opens
an incident linked to the report, reject keeps the reason); the reporter follows the status, an anonymous one
only through the token. An anonymous report stores no user, name or address, and its audit record names
nobody. Another unit's report is not found. The helpers at the top serve the role matrix and the unit-scope
test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.api.support import assert_problem
from tests.web.support import csrf_of, signed_in

from vigil.core import audit
from vigil.core.audit import AuditRecord
from vigil.core.context import Context
from vigil.core.db import Scope
from vigil.incidents import evidence, reports
from vigil.incidents.evidence_models import IncidentReport
from vigil.incidents.evidence_schemas import ReportCreate
from vigil.incidents.models import Incident

from .test_incidents_api import _system, fresh_incident_id


def fresh_report_id(world: Any, unit_id: int | None = None) -> int:
    """A new named report of ``unit_id`` (default Payments, line_a), waiting for triage."""
    with world.database.transaction(Scope.system()) as session:
        row = IncidentReport(unit_id=unit_id or world.line_a, title="Odd e-mail", category="phishing",
                             reporter="staff_a", reporter_id=world.users["staff_a"])
        session.add(row)
        session.flush()
        return row.id


def fresh_follow_token(world: Any) -> str:
    """The follow-up token of a new anonymous report."""
    with world.database.transaction(Scope.system()) as session:
        ctx = Context(session=session, actor=audit.Actor(world.users["staff_a"], "staff_a", world.line_a, "10.0.0.9"))
        return reports.submit(ctx, data=ReportCreate(title="Anonymous tip", anonymous=True))[1] or ""


def fresh_evidence_ids(world: Any, folder: Path, unit_id: int | None = None) -> tuple[int, int]:
    """(incident id, evidence id) of a new incident with one stored evidence file."""
    incident_id = fresh_incident_id(world, unit_id)
    incoming = evidence.Incoming(folder, 1 << 20)
    incoming.write(b"matrix evidence")
    received = incoming.finish()
    with world.database.transaction(Scope.system()) as session:
        item = evidence.add_evidence(_system(session), incident_id=incident_id, received=received, folder=folder,
                                     name="matrix.txt")
        return incident_id, item.id


def work_targets(world: Any, app: Any) -> dict[str, int]:
    """For the unit-scope test: an evidence file of a branch_b incident, and a report of branch_b."""
    incident_id, evidence_id = fresh_evidence_ids(world, app.state.settings.evidence_dir, world.branch_b)
    return {"evidence_incident": incident_id, "evidence": evidence_id, "report": fresh_report_id(world, world.branch_b)}


def test_a_staff_user_and_a_user_without_roles_report_and_follow_their_reports(world: Any, client: TestClient
                                                                                 ) -> None:
    for username in ("staff_a", "nobody"):
        sent = client.post("/api/v1/incident-reports", headers=world.headers(username),
                           json={"title": f"Strange USB stick ({username})", "category": "malware"})
        assert sent.status_code == 201, sent.text
        assert sent.json()["status"] == "new" and sent.json()["follow_token"] is None
        mine = client.get("/api/v1/incident-reports/mine", headers=world.headers(username)).json()["items"]
        assert [r["title"] for r in mine] == [f"Strange USB stick ({username})"]
    assert client.get("/api/v1/incident-reports", headers=world.headers("staff_a")).status_code == 403
    queue = client.get("/api/v1/incident-reports", headers=world.headers("analyst")).json()
    assert {r["reporter"] for r in queue["items"]} == {"staff_a", "nobody"}
    bad = client.post("/api/v1/incident-reports", headers=world.headers("staff_a"), json={"title": ""})
    assert_problem(bad, 422, "bad-input")
    unknown = client.post("/api/v1/incident-reports", headers=world.headers("staff_a"),
                          json={"title": "x", "category": "no_such_type"})
    assert_problem(unknown, 422, "bad-input")


def test_an_anonymous_report_keeps_no_trace_of_its_reporter(world: Any, client: TestClient) -> None:
    sent = client.post("/api/v1/incident-reports", headers=world.headers("staff_a"),
                       json={"title": "My manager copies customer data", "anonymous": True, "category": "insider"})
    assert sent.status_code == 201
    token = sent.json()["follow_token"]
    assert token and len(token) >= 40
    with world.database.transaction(Scope.system()) as session:
        row = session.scalar(select(IncidentReport).where(IncidentReport.id == sent.json()["id"]))
        assert row is not None and row.reporter_id is None and row.reporter == "" and row.anonymous
        assert row.follow_digest and token not in row.follow_digest
        record = session.scalar(select(AuditRecord).where(AuditRecord.action == "incident.report.submit"))
        assert record is not None
        assert record.actor_id is None and record.actor == "anonymous" and record.source_ip == ""
        assert "staff_a" not in str(record.details)
    assert client.get("/api/v1/incident-reports/mine", headers=world.headers("staff_a")).json()["total"] == 0
    queue = client.get("/api/v1/incident-reports", headers=world.headers("analyst")).json()["items"]
    assert queue[0]["anonymous"] and queue[0]["reporter"] == ""
    followed = client.get(f"/api/v1/incident-reports/follow/{token}")  # no sign-in: the token is the credential
    assert followed.status_code == 200 and followed.json()["status"] == "new"
    assert client.get(f"/api/v1/incident-reports/follow/{'x' * 43}").status_code == 404


def test_triage_accepts_into_an_incident_or_rejects_with_a_reason(world: Any, client: TestClient) -> None:
    token = fresh_follow_token(world)
    queue = client.get("/api/v1/incident-reports", headers=world.headers("analyst"), params={"status": "new"})
    report_id = queue.json()["items"][0]["id"]
    accepted = client.post(f"/api/v1/incident-reports/{report_id}/accept", headers=world.headers("analyst"),
                           json={"type": "insider", "severity": "P2"})
    assert accepted.status_code == 201, accepted.text
    incident = accepted.json()
    assert incident["unit_id"] == world.line_a and incident["severity"] == "P2" and incident["type"] == "insider"
    assert any("Opened from report" in e["summary"] for e in incident["timeline"])
    again = client.post(f"/api/v1/incident-reports/{report_id}/accept", headers=world.headers("analyst"), json={})
    assert_problem(again, 409, "conflict")
    status = client.get(f"/api/v1/incident-reports/follow/{token}").json()
    assert status["status"] == "accepted" and status["incident_ref"] == incident["ref"]

    other = fresh_report_id(world)
    no_reason = client.post(f"/api/v1/incident-reports/{other}/reject", headers=world.headers("responder"),
                            json={"reason": " "})
    assert_problem(no_reason, 422, "bad-input")
    rejected = client.post(f"/api/v1/incident-reports/{other}/reject", headers=world.headers("responder"),
                           json={"reason": "A marketing mail, not phishing"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    mine = client.get("/api/v1/incident-reports/mine", headers=world.headers("staff_a")).json()["items"]
    assert [(r["status"], r["reason"]) for r in mine] == [("rejected", "A marketing mail, not phishing")]


def test_another_units_report_is_not_found(world: Any, client: TestClient) -> None:
    world.add_user("analyst_b", "analyst", world.branch_b)  # type: ignore[arg-type]
    report_a = fresh_report_id(world)  # line_a, below branch_a
    h = world.headers("analyst_b")
    assert client.get("/api/v1/incident-reports", headers=h).json()["total"] == 0
    for method, path, body in [("GET", f"/api/v1/incident-reports/{report_a}", None),
                               ("POST", f"/api/v1/incident-reports/{report_a}/accept", {}),
                               ("POST", f"/api/v1/incident-reports/{report_a}/reject", {"reason": "mine"})]:
        assert_problem(client.request(method, path, headers=h, json=body), 404, "not-found")
    with world.database.transaction(Scope.system()) as session:
        assert session.get(IncidentReport, report_a).status == "new"  # type: ignore[union-attr]
        assert session.scalar(select(Incident.id).where(Incident.source == "report")) is None


def test_the_report_pages_from_the_form_to_the_triage_queue(world: Any, app: FastAPI) -> None:
    staff = signed_in(app, "staff_a")
    home = staff.get("/")
    assert 'href="/reports/new"' in home.text
    form = staff.get("/reports/new")
    assert form.status_code == 200
    sent = staff.post("/reports/new", data={"csrf_token": csrf_of(form), "title": "Phone call asking for VPN codes",
                                            "category": "phishing", "description": "Caller said he was IT"})
    assert sent.status_code == 200 and "Phone call asking for VPN codes" in sent.text
    assert "Waiting for triage" in sent.text
    anonymous = staff.post("/reports/new", data={"csrf_token": csrf_of(form), "title": "Shared admin password",
                                                 "anonymous": "on"})
    link = anonymous.text.split('id="follow-link" href="')[1].split('"')[0]
    assert staff.get(link).status_code == 200 and "Shared admin password" in staff.get(link).text
    assert staff.get("/reports/triage").status_code == 403
    analyst = signed_in(app, "analyst")
    queue = analyst.get("/reports/triage")
    assert "Phone call asking for VPN codes" in queue.text and "Shared admin password" in queue.text
    with world.database.transaction(Scope.system()) as session:
        report_id = session.scalar(select(IncidentReport.id).where(IncidentReport.title == "Shared admin password"))
    rejected = analyst.post(f"/reports/triage/{report_id}/reject", data={"csrf_token": csrf_of(queue),
                                                                         "reason": "Already known"})
    assert rejected.status_code == 200 and "Already known" in rejected.text
    assert "Already known" in staff.get(link).text
