"""Issue 6 end to end, in Debian's Chromium against a real server on loopback.

A demo-like alert (Mimikatz on a finance workstation) is escalated into a P1 incident. The P1 paging sends
"incident opened" to a DingTalk robot (a local server that checks DingTalk's message format and its 加签
signature, as the real one does) and pages the responder on call; nobody acknowledges, so the engine's tick
(driven through the runner with a time past the ten-minute timeout, not by sleeping) pages the manager at level
2, which the incident page shows. The manager acknowledges through the signed link of the message. The
incident is walked through the five phases with their required tasks (through the API: the incident pages are
read only), its post-mortem is drafted from the incident, approved by another responder and published on its
own to the knowledge base and to a git wiki (a bare repository); the knowledge-base page opens from the
incident page and the wiki's log holds the commit. The SLA figures on the page are those of the recorded times.

Left out: a playbook's IP block with its rollback (response actions and playbooks are built elsewhere).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect
from tests.e2e.harness import Server, serve, store
from tests.kb.support import bare_remote
from tests.response import platforms

from vigil.accounts import service, signin
from vigil.accounts.schemas import GrantCreate, TokenCreate, UserCreate
from vigil.core import audit
from vigil.core.auth import Role
from vigil.core.context import Context
from vigil.core.db import Database, Scope, utcnow
from vigil.detection.models import Alert
from vigil.response.oncall_runtime import EscalationRunner
from vigil.web.app import create_app
from vigil.web.templating import format_time

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-42!"
TOKEN, SECRET = "e2e-robot-token", "SECe2e-signing-secret"
PUBLIC = "https://soc.example.cn"
NEXT = {"identify": "contain", "contain": "eradicate", "eradicate": "recover", "recover": "review",
        "review": "closed"}


@dataclass
class Running:
    server: Server
    app: FastAPI
    robot: platforms.Platform
    tokens: dict[str, str]
    users: dict[str, int]
    alert_id: int
    remote: str
    zone: ZoneInfo

    @property
    def runner(self) -> EscalationRunner:
        runner: EscalationRunner = self.app.state.escalations
        return runner

    def api(self, who: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = httpx.request(method, self.server.url + path, json=body, timeout=30,
                               headers={"Authorization": f"Bearer {self.tokens[who]}"})
        assert answer.status_code < 300, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None


def seed(database: Database) -> tuple[dict[str, str], dict[str, int], int]:
    """Rita (responder, on call), Mike (responder, the manager at level 2), Sam (security administrator, who
    keeps the channels), each with an API token; one critical alert of a finance workstation."""
    tokens, users = {}, {}
    with database.transaction(Scope.system()) as session:
        hq = service.root_unit_id(session)
        ctx = Context(session=session, actor=audit.Actor(None, "e2e-setup", hq))
        for name, display, role in (("rita", "Rita Responder", Role.RESPONDER), ("mike", "Mike Manager",
                                                                                   Role.RESPONDER),
                                    ("sam", "Sam Admin", Role.SECURITY_ADMIN)):
            user = service.create_user(ctx, data=UserCreate(username=name, display_name=display, password=PASSWORD,
                                                            unit_id=hq, grants=[GrantCreate(role=role, unit_id=hq)]))
            user.must_change_password = False
            tokens[name], _ = signin.create_token(ctx, user=user, data=TokenCreate(name="e2e"))
            users[name] = user.id
        now = datetime.now(UTC)
        alert = Alert(unit_id=hq, rule_uid="win-mimikatz", title="Mimikatz on WS-FIN-07", level="critical",
                      dedup_key="e2e-flow", first_seen=now, last_seen=now, host="WS-FIN-07", user_name="finance01",
                      event={})
        session.add(alert)
        session.flush()
        return tokens, users, alert.id


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    settings, database = store(tmp_path_factory, "e2e-response")
    folder = tmp_path_factory.mktemp("wiki")
    remote = bare_remote(folder)
    settings = settings.model_copy(update={"public_url": PUBLIC, "kb_git_path": folder / "clone",
                                           "kb_git_remote": str(remote), "notify_retry_seconds": 0.0})
    tokens, users, alert_id = seed(database)
    app = create_app(settings, database)
    # The incident events are handed to the runner; the test runs the runner's work itself, so every step
    # happens when the test says (the server's thread would do the same every few seconds).
    app.state.incident_paging.start()
    try:
        with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as robot, serve(app) as server:
            yield Running(server, app, robot, tokens, users, alert_id, str(remote), ZoneInfo(settings.timezone))
    finally:
        app.state.incident_paging.stop()
        app.state.intel.close()
        database.dispose()


def sign_in(page: Page, server: Server, username: str, display: str) -> None:
    page.goto(server.url + "/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {display}")).to_be_visible()


def configure_paging(running: Running) -> None:
    channel = running.api("sam", "POST", "/api/v1/notification-channels", {
        "name": "SOC DingTalk", "kind": "dingtalk", "language": "en", "max_attempts": 2,
        "config": {"url": running.robot.url + "/robot/send", "access_token": TOKEN, "secret": SECRET}})
    schedule = running.api("rita", "POST", "/api/v1/oncall/schedules", {
        "name": "SOC primary", "time_zone": "Asia/Shanghai", "layers": [{
            "name": "primary", "participants": [running.users["rita"]], "rotation": "weekly", "handoff": "09:00",
            "start": str(date.today() - timedelta(days=7))}]})
    policy = running.api("rita", "POST", "/api/v1/escalation-policies", {"name": "P1 paging", "levels": [
        {"timeout_minutes": 10, "targets": [{"kind": "schedule", "id": schedule["id"]}],
         "channel_ids": [channel["id"]]},
        {"timeout_minutes": 10, "targets": [{"kind": "user", "id": running.users["mike"]}],
         "channel_ids": [channel["id"]]}]})
    running.api("rita", "PUT", "/api/v1/incident-paging/P1", {"policy_id": policy["id"],
                                                               "channel_ids": [channel["id"]]})


def markdown_texts(running: Running) -> list[str]:
    return [str(r.json()["markdown"]["text"]) for r in running.robot.received]


def walk_to_review(running: Running, incident_id: int) -> None:
    for phase in ("identify", "contain", "eradicate", "recover"):
        incident = running.api("rita", "GET", f"/api/v1/incidents/{incident_id}")
        assert incident["phase"] == phase
        required = [t for t in incident["tasks"] if t["phase"] == phase and t["required"] and not t["done_at"]]
        assert required, f"no required task in {phase}"
        refused = httpx.post(f"{running.server.url}/api/v1/incidents/{incident_id}/transition", timeout=30,
                             json={"phase": NEXT[phase]}, headers={"Authorization": f"Bearer {running.tokens['rita']}"})
        assert refused.status_code == 409 and "open_tasks" in refused.text  # the required task gates the move
        for task in required:
            running.api("rita", "POST", f"/api/v1/incidents/{incident_id}/tasks/{task['id']}/complete")
        running.api("rita", "POST", f"/api/v1/incidents/{incident_id}/transition", {"phase": NEXT[phase]})


def test_an_alert_is_paged_escalated_worked_through_and_written_up(running: Running, browser: Browser) -> None:
    configure_paging(running)
    incident = running.api("rita", "POST", "/api/v1/incidents/escalate", {
        "alert_ids": [running.alert_id], "type": "intrusion", "severity": "P1"})
    incident_id, ref = int(incident["id"]), str(incident["ref"])
    running.runner.work()

    # DingTalk got "incident opened" and the page of the responder on call, signed (the robot refuses
    # anything else, and the deliveries would say failed).
    texts = markdown_texts(running)
    assert len(texts) == 2
    assert "@rita" in texts[1] and "Mimikatz on WS-FIN-07" in texts[1] and f"{PUBLIC}/ack/" in texts[1]
    deliveries = running.api("rita", "GET", f"/api/v1/notification-deliveries?incident_id={incident_id}")["items"]
    assert sorted((d["message_kind"], d["status"]) for d in deliveries) == [("escalation", "sent"),
                                                                             ("incident_opened", "sent")]

    page = browser.new_context(locale="en-US").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, running.server, "rita", "Rita Responder")
    page.goto(f"{running.server.url}/incidents/{incident_id}")
    timeline = page.locator("table.timeline")
    expect(timeline).to_contain_text("Paged rita (level 1) through SOC DingTalk")
    expect(timeline).to_contain_text("Incident opened")

    # Nobody acknowledges within ten minutes: the manager is paged at level 2.
    assert running.runner.tick(now=utcnow() + timedelta(minutes=11)) == 1
    texts = markdown_texts(running)
    assert len(texts) == 3 and "@mike" in texts[2]
    page.reload()
    expect(timeline).to_contain_text("Escalated to level 2 of 2")
    expect(timeline).to_contain_text("Paged mike (level 2) through SOC DingTalk")

    # The manager acknowledges through the signed link of the message.
    link = re.search(r"https://soc\.example\.cn/ack/([A-Za-z0-9_\-.]+)", texts[2])
    assert link is not None
    ack = browser.new_context(locale="en-US").new_page()
    ack.goto(f"{running.server.url}/ack/{link.group(1)}")
    ack.get_by_role("button", name="Acknowledge").click()
    expect(ack.get_by_role("status")).to_contain_text("Acknowledged by mike")
    page.reload()
    expect(timeline).to_contain_text("Paging acknowledged by mike via link")

    # The five phases, each left only once its required tasks are done.
    walk_to_review(running, incident_id)
    running.api("rita", "POST", f"/api/v1/incidents/{incident_id}/postmortem/prefill")
    running.api("rita", "PATCH", f"/api/v1/incidents/{incident_id}/postmortem", {
        "five_whys": ["Mimikatz ran", "the user was a local administrator", "no LAPS"],
        "went_well": "The on-call paging reached the manager", "went_badly": "The first page was missed",
        "action_items": [{"title": "Roll out LAPS", "owner_id": running.users["mike"],
                          "due_at": (utcnow() + timedelta(days=14)).isoformat()}]})
    running.api("rita", "POST", f"/api/v1/incidents/{incident_id}/postmortem/submit")
    running.api("mike", "POST", f"/api/v1/incidents/{incident_id}/postmortem/approve")
    running.runner.work()  # publishing runs after the approval commits
    walk_review = running.api("rita", "GET", f"/api/v1/incidents/{incident_id}")
    for task in walk_review["tasks"]:
        if task["phase"] == "review" and task["required"] and not task["done_at"]:
            running.api("rita", "POST", f"/api/v1/incidents/{incident_id}/tasks/{task['id']}/complete")
    closed = running.api("rita", "POST", f"/api/v1/incidents/{incident_id}/transition", {"phase": "closed"})
    assert closed["status"] == "closed"

    record = closed["postmortem"]
    slug = f"postmortem-{ref.lower()}"
    assert record["kb_slug"] == slug and record["git_commit"]
    log = subprocess.run(["git", "--git-dir", running.remote, "log", "--format=%H %s"], capture_output=True,
                         text=True, check=True).stdout
    assert f"{record['git_commit']} Add {slug}" in log

    page.reload()
    expect(page.locator('.stepper [aria-current="step"]')).to_have_text("Closed")
    expect(page.locator("code.git-commit")).to_have_text(record["git_commit"][:12])
    expect(timeline).to_contain_text("Post-mortem published")

    # SLA figures on the page are those of the recorded times (P1: 15, 240 and 1,440 minutes on 24x7).
    opened = datetime.fromisoformat(closed["created_at"])
    for metric, recorded, minutes in (("acknowledge", closed["acknowledged_at"], 15),
                                      ("contain", closed["contained_at"], 240),
                                      ("resolve", closed["resolved_at"], 1440)):
        row = page.locator(f'tr[data-metric="{metric}"]')
        expect(row).to_contain_text(format_time(datetime.fromisoformat(recorded), running.zone))
        expect(row).to_contain_text(format_time(opened + timedelta(minutes=minutes), running.zone))
        expect(row).to_contain_text("SLA met")

    page.get_by_role("link", name=slug).click()
    expect(page.get_by_role("heading", name=f"Post-mortem {ref}: Mimikatz on WS-FIN-07")).to_be_visible()
    expect(page.locator("article")).to_contain_text("Roll out LAPS")
    assert errors == []
