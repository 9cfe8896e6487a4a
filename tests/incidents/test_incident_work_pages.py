"""The incident page as a working tool: open an incident from the form, acknowledge, assign, complete tasks,
move through a phase (and see the workflow's 409 reason when it refuses), edit, comment with a mention, add a
timeline entry and an observable, upload evidence, walk the post-mortem (the author's approval refused), and
escalate alerts from the alerts page; a viewer gets no forms and may not post them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select
from tests.web.support import csrf_of, signed_in

from vigil.core.db import Scope
from vigil.incidents.models import Comment, Incident, Task

from .support import approve_postmortem, open_one, walk_to
from .test_demo_and_intake import new_alert


def incident_of(world: Any, incident_id: int) -> Incident:
    with world.database.transaction(Scope.system()) as session:
        found = session.get(Incident, incident_id)
        assert found is not None
        session.expunge(found)
        return found


def incident_count(world: Any) -> int:
    with world.database.transaction(Scope.system()) as session:
        return len(session.scalars(select(Incident.id)).all())


def open_tasks(world: Any, incident_id: int, phase: str) -> list[int]:
    with world.database.transaction(Scope.system()) as session:
        return list(session.scalars(select(Task.id).where(Task.incident_id == incident_id, Task.phase == phase,
                                                          Task.status == "open", Task.required)))


def test_an_analyst_opens_an_incident_and_walks_it_through_a_phase(world: Any, app: FastAPI) -> None:
    browser = signed_in(app, "analyst")
    form = browser.get("/incidents/new")
    assert form.status_code == 200
    opened = browser.post("/incidents/new", data={"csrf_token": csrf_of(form), "title": "Phishing wave at HR",
                                                  "type": "phishing", "severity": "P2", "owner": "responder"},
                          follow_redirects=False)
    assert opened.status_code == 303, opened.text[:500]
    path = opened.headers["location"].split("?")[0]
    incident_id = int(path.rsplit("/", 1)[1])
    page = browser.get(opened.headers["location"])
    token = csrf_of(page)
    assert "The incident is open." in page.text and "Phishing wave at HR" in page.text

    assert browser.post(f"{path}/acknowledge", data={"csrf_token": token}).status_code == 200
    assert incident_of(world, incident_id).acknowledged_at is not None

    refused = browser.post(f"{path}/transition", data={"csrf_token": token, "phase": "contain"})
    assert refused.status_code == 409
    assert 'role="alert"' in refused.text and "required tasks" in refused.text
    assert incident_of(world, incident_id).phase == "identify"

    required = open_tasks(world, incident_id, "identify")
    assert required and 'class="required"' in page.text
    for task_id in required:
        done = browser.post(f"{path}/tasks/{task_id}/complete", data={"csrf_token": token})
        assert done.status_code == 200 and "The task is done." in done.text
    moved = browser.post(f"{path}/transition", data={"csrf_token": token, "phase": "contain"})
    assert moved.status_code == 200 and 'aria-current="step" class="current">Contain' in moved.text
    assert incident_of(world, incident_id).phase == "contain"


def test_the_work_forms_change_the_incident(world: Any, app: FastAPI) -> None:
    incident_id = open_one(world.database, title="Web shell on portal", type="web_attack")
    browser = signed_in(app, "analyst")
    path = f"/incidents/{incident_id}"
    token = csrf_of(browser.get(path))
    post = lambda suffix, **data: browser.post(f"{path}{suffix}", data={"csrf_token": token, **data})  # noqa: E731
    assert post("/assign", owner="responder", team="CSIRT", participants="viewer").status_code == 200
    edited = post("/edit", title="Web shell on portal", type="web_attack", severity="P1", cause="Upload flaw",
                  affected_assets="portal01, portal02", tags="web, shell")
    assert edited.status_code == 200 and "portal01, portal02" in edited.text
    assert post("/tasks", title="Image the portal", phase="identify", required="on",
                assignee="responder").status_code == 200
    commented = post("/comments", body="@responder please isolate portal01")
    assert commented.status_code == 200 and "please isolate portal01" in commented.text
    assert post("/timeline", summary="Attacker logged in", at="2026-01-05T10:00").status_code == 200
    assert post("/observables", value="EVIL[.]Example.COM").status_code == 200
    bad = post("/timeline", summary="In the future", at="2999-01-01T00:00")
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    unknown = post("/assign", owner="no-such-user")
    assert unknown.status_code == 422 and "no-such-user" in unknown.text
    incident = incident_of(world, incident_id)
    assert incident.severity == "P1" and incident.team == "CSIRT" and incident.tags == ["web", "shell"]
    assert incident.affected_assets == ["portal01", "portal02"] and incident.cause == "Upload flaw"
    page = browser.get(path).text
    assert "evil.example.com" in page and "Attacker logged in" in page and "Image the portal" in page
    with world.database.transaction(Scope.system()) as session:
        comment = session.scalar(select(Comment).where(Comment.incident_id == incident_id))
        assert comment is not None and world.users["responder"] in comment.mentions
    uploaded = browser.post(f"{path}/evidence", data={"csrf_token": token, "description": "access log"},
                            files={"file": ("../../access.log", b"GET /shell.php 200\n", "text/plain")})
    assert uploaded.status_code == 200 and "The evidence file is stored." in uploaded.text
    assert re.search(r'<code class="sha256">[0-9a-f]{64}</code>', uploaded.text) and "access.log" in uploaded.text


def test_the_post_mortem_is_written_submitted_and_approved_by_another_user(world: Any, app: FastAPI) -> None:
    incident_id = open_one(world.database)
    for phase in ("contain", "eradicate", "recover", "review"):
        walk_to(world.database, incident_id, phase)
    path = f"/incidents/{incident_id}"
    author = signed_in(app, "analyst")
    token = csrf_of(author.get(path))
    assert author.post(f"{path}/postmortem", data={"csrf_token": token}).status_code == 200
    bad = author.post(f"{path}/postmortem/edit", data={"csrf_token": token, "summary": "Ransomware contained",
                                                       "action_items": "Patch the VPN | responder | next Friday"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text and "next Friday" in bad.text  # kept to correct
    nobody = author.post(f"{path}/postmortem/edit", data={"csrf_token": token, "action_items": "Patch | ghost"})
    assert nobody.status_code == 422 and "ghost" in nobody.text
    saved = author.post(f"{path}/postmortem/edit", data={
        "csrf_token": token, "summary": "Ransomware contained", "root_cause": "Unpatched VPN",
        "five_whys": "Why 1\nWhy 2", "action_items": "Patch the VPN | responder | 2026-12-18\n\nReview VPN logging"})
    assert saved.status_code == 200 and "Unpatched VPN" in saved.text
    # The draft form shows the items as they were entered, one a line.
    assert "Patch the VPN | responder | 2026-12-18\nReview VPN logging</textarea>" in saved.text
    assert author.post(f"{path}/postmortem/submit", data={"csrf_token": token}).status_code == 200
    own = author.post(f"{path}/postmortem/approve", data={"csrf_token": token})
    assert own.status_code == 403 and 'role="alert"' in own.text
    reviewer = signed_in(app, "responder")
    approved = reviewer.post(f"{path}/postmortem/approve", data={"csrf_token": csrf_of(reviewer.get(path))})
    assert approved.status_code == 200 and "approved by responder" in approved.text
    # Approved, each action item became a task of its owner, listed with the item.
    with world.database.transaction(Scope.system()) as session:
        made = {t.title: t for t in session.scalars(select(Task).where(Task.incident_id == incident_id))}
    assert made["Patch the VPN"].assignee_id == world.users["responder"]
    items = approved.text[approved.text.index('<table class="action-items">'):]
    items = items[:items.index("</table>")]
    assert "<td>Patch the VPN</td><td>responder</td><td>2026-12-18</td>" in items
    assert f'href="#task-{made["Patch the VPN"].id}"' in items and "<td>Review VPN logging</td><td>—</td>" in items


def test_a_viewer_sees_no_forms_and_may_not_post_them(world: Any, app: FastAPI) -> None:
    incident_id = open_one(world.database)
    viewer = signed_in(app, "viewer")
    page = viewer.get(f"/incidents/{incident_id}")
    assert page.status_code == 200 and "/acknowledge" not in page.text and "/tasks" not in page.text
    token = csrf_of(viewer.get("/account"))
    assert viewer.post(f"/incidents/{incident_id}/acknowledge", data={"csrf_token": token}).status_code == 403
    assert incident_of(world, incident_id).acknowledged_at is None
    assert viewer.get("/incidents/new").status_code == 403


def test_chosen_alerts_are_escalated_from_the_alerts_page(world: Any, app: FastAPI) -> None:
    now = datetime.now(UTC)
    first, second = new_alert(world, host="ws01", seen=now), new_alert(world, host="ws02", seen=now)
    critical = new_alert(world, host="ws03", level="critical", seen=now)
    browser = signed_in(app, "analyst")
    alerts = browser.get("/detection/alerts")
    assert "Escalate to incident" in alerts.text
    # A new incident is described first: the chosen alerts are listed, the title is the first alert's and the
    # severity that of the highest alert (critical: P1); nothing is opened yet.
    form = browser.post("/incidents/escalate", data={"csrf_token": csrf_of(alerts),
                                                     "ids": [str(first), str(critical)]})
    assert form.status_code == 200 and "Escalate to a new incident" in form.text
    assert f'data-alert="{first}"' in form.text and f'data-alert="{critical}"' in form.text
    assert 'value="high on ws01"' in form.text and '<option value="P1" selected' in form.text
    assert incident_count(world) == 0
    too_many = browser.post("/incidents/escalate", data={"csrf_token": csrf_of(alerts),
                                                         "ids": [str(first)] * 501})
    assert too_many.status_code == 422 and "at most 500 alerts" in too_many.text
    refused = browser.post("/incidents/escalate", data={"csrf_token": csrf_of(form), "ids": [str(first)],
                                                        "confirm": "1", "title": "x", "type": "intrusion",
                                                        "severity": "P9"})
    assert refused.status_code == 422 and "severity" in refused.text and incident_count(world) == 0
    assert "Escalate to a new incident" in refused.text  # the form again, to correct
    made = browser.post("/incidents/escalate", data={"csrf_token": csrf_of(form), "ids": [str(first)],
                                                     "confirm": "1", "title": "Lateral movement", "type": "intrusion",
                                                     "severity": "P2"}, follow_redirects=False)
    assert made.status_code == 303
    incident_id = int(made.headers["location"].split("?")[0].rsplit("/", 1)[1])
    incident = incident_of(world, incident_id)
    assert (incident.title, incident.severity) == ("Lateral movement", "P2")
    assert "<dt>Type</dt><dd>Intrusion</dd>" in browser.get(f"/incidents/{incident_id}").text
    ref = incident.ref
    joined = browser.post("/incidents/escalate", data={"csrf_token": csrf_of(alerts), "ids": [str(second)],
                                                       "into": ref}, follow_redirects=False)
    assert joined.status_code == 303 and joined.headers["location"].startswith(f"/incidents/{incident_id}")
    assert "high on ws02" in browser.get(f"/incidents/{incident_id}").text


def test_a_closed_incident_is_reopened_from_its_page_only_with_a_reason(world: Any, app: FastAPI) -> None:
    incident_id = open_one(world.database)
    for phase in ("contain", "eradicate", "recover", "review"):
        walk_to(world.database, incident_id, phase)
    approve_postmortem(world.database, incident_id)
    walk_to(world.database, incident_id, "closed")
    browser = signed_in(app, "responder")
    path = f"/incidents/{incident_id}"
    page = browser.get(path)
    assert "Reopen into" in page.text and "/tasks\"" not in page.text
    refused = browser.post(f"{path}/transition", data={"csrf_token": csrf_of(page), "phase": "eradicate"})
    assert refused.status_code == 422 and "reason" in refused.text
    assert incident_of(world, incident_id).status == "closed"
    reopened = browser.post(f"{path}/transition", data={"csrf_token": csrf_of(page), "phase": "eradicate",
                                                        "reason": "The web shell came back"})
    assert reopened.status_code == 200 and 'aria-current="step" class="current">Eradicate' in reopened.text
    assert incident_of(world, incident_id).status == "open"


def test_escalating_nothing_is_refused_with_a_reason(world: Any, app: FastAPI) -> None:
    browser = signed_in(app, "analyst")
    token = csrf_of(browser.get("/detection/alerts"))
    refused = browser.post("/incidents/escalate", data={"csrf_token": token}, follow_redirects=False)
    assert refused.status_code == 422 and "The alerts were not escalated" in refused.text
    unknown = browser.post("/incidents/escalate", data={"csrf_token": token, "ids": ["1"], "into": "INC-1999-0042"},
                           follow_redirects=False)
    assert unknown.status_code == 404
