"""Issue 6's "done when", end to end in Debian's Chromium against a real server on loopback, through the pages.

A demo-like alert (Mimikatz on a finance workstation, seen from an outside address) is escalated from the alerts
page into a P1 intrusion. The P1 paging sends "incident opened" to a DingTalk robot (a local server that checks
DingTalk's message format and its 加签 signature, as the real one does) and pages the responder on call; nobody
acknowledges, so the engine's tick (driven with a time past the ten-minute timeout, not by sleeping) pages the
manager at level 2, which the incident page shows; the manager acknowledges through the signed link of the message.
The intrusion playbook started by itself and waits at its IP block; the responder approves it on the playbook
runs page, the firewall (a stand-in script) gets ``add <ip>``, and after the block's TTL (the rollback tick driven
past it) it gets ``delete <ip>`` and the incident page says "rolled back". The five phases are walked on the
incident page: each move is first refused for the open required tasks, which are then completed. The post-mortem
is drafted from the incident, written with an action item, approved by the manager, and published on its own to
the knowledge base and to a git wiki (a bare repository); the incident closes, the knowledge-base page opens from
the incident page, the wiki's log holds the commit, and the SLA figures on the page are those of the recorded
times.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect
from tests.e2e.harness import Server, serve, store
from tests.kb.support import bare_remote
from tests.response import platforms
from tests.response.action_endpoints import firewall_script

from vigil.accounts import service, signin
from vigil.accounts.schemas import GrantCreate, TokenCreate, UserCreate
from vigil.core import audit
from vigil.core.auth import Role
from vigil.core.context import Context
from vigil.core.db import Database, Scope, utcnow
from vigil.detection.models import Alert
from vigil.response.oncall_runtime import EscalationRunner
from vigil.response.playbooks.runtime import ResponseRunner
from vigil.web.app import create_app
from vigil.web.templating import format_time

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-42!"
TOKEN, SECRET = "e2e-robot-token", "SECe2e-signing-secret"
PUBLIC = "https://soc.example.cn"
ATTACKER = "203.0.113.66"
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
    firewall: tuple[Path, Path]  # the stand-in script, and the log of its calls

    @property
    def runner(self) -> EscalationRunner:
        runner: EscalationRunner = self.app.state.escalations
        return runner

    @property
    def response(self) -> ResponseRunner:
        runner: ResponseRunner = self.app.state.response_runner
        return runner

    def api(self, who: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = httpx.request(method, self.server.url + path, json=body, timeout=30,
                               headers={"Authorization": f"Bearer {self.tokens[who]}"})
        assert answer.status_code < 300, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None


def seed(database: Database) -> tuple[dict[str, str], dict[str, int], int]:
    """Rita (responder, on call), Mike (responder, the manager at level 2), Sam (security administrator, who
    keeps the channels, actions and playbooks), each with an API token; one critical alert of a finance
    workstation, from an outside address."""
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
                      source_ip=ATTACKER, event={})
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
    # Incident events reach the paging and the playbooks as in `vigil serve`; the test runs the paging's work
    # and the ticks itself, so every timed step happens when the test says (the server's threads would do the
    # same every few seconds).
    app.state.incident_paging.start()
    app.state.response_runner.start()
    try:
        with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as robot, serve(app) as server:
            yield Running(server, app, robot, tokens, users, alert_id, str(remote), ZoneInfo(settings.timezone),
                          firewall_script(tmp_path_factory.mktemp("firewall")))
    finally:
        app.state.response_runner.stop()
        app.state.incident_paging.stop()
        app.state.intel.close()
        database.dispose()


def sign_in(browser: Browser, server: Server, username: str, display: str) -> Page:
    page = browser.new_context(locale="en-US").new_page()
    page.goto(server.url + "/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {display}")).to_be_visible()
    return page


def configure(running: Running) -> None:
    """What the SOC set up beforehand (its own pages and API are tested elsewhere): the DingTalk channel, the
    on-call schedule, the P1 escalation policy and paging, the edge firewall's block action (rolled back after
    ten minutes) and the intrusion playbook whose IP block needs approval."""
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
    script, _ = running.firewall
    action = running.api("sam", "POST", "/api/v1/response-actions", {
        "name": "Edge firewall", "kind": "block_ip", "requires_approval": False, "rollback_after_seconds": 600,
        "config": {"mode": "command", "command": [str(script), "add", "{ip}"],
                   "undo_command": [str(script), "delete", "{ip}"]}})
    running.api("sam", "POST", "/api/v1/playbooks", {"name": "Intrusion containment", "definition": {
        "trigger": {"incident_types": ["intrusion"], "min_severity": "P1"},
        "steps": [{"kind": "act", "action_id": action["id"], "target": "{alert.source_ip}",
                   "requires_approval": True, "reason": "block the attacker"}]}})


def markdown_texts(running: Running) -> list[str]:
    return [str(r.json()["markdown"]["text"]) for r in running.robot.received]


def firewall_calls(running: Running) -> list[str]:
    log = running.firewall[1]
    return log.read_text().splitlines() if log.exists() else []


def escalate_from_the_alerts_page(page: Page, running: Running) -> int:
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Alerts").click()
    page.get_by_label(f"Select alert {running.alert_id}").check()
    page.get_by_role("button", name="Escalate to incident").click()
    expect(page.get_by_role("heading", name="Escalate to a new incident")).to_be_visible()
    expect(page.get_by_label("Title")).to_have_value("Mimikatz on WS-FIN-07")
    expect(page.get_by_label("Severity")).to_have_value("P1")  # a critical alert
    page.get_by_label("Type").select_option(label="Intrusion")
    page.get_by_role("button", name="Open the incident").click()
    expect(page.get_by_role("status")).to_have_text("The alerts are in this incident.")
    match = re.search(r"/incidents/(\d+)", page.url)
    assert match is not None
    return int(match.group(1))


def walk_the_phases(page: Page) -> None:
    """Identify to review on the incident page: each move is refused while a required task of the phase is
    open; the tasks are completed and the move goes through."""
    for phase in ("identify", "contain", "eradicate", "recover"):
        expect(page.locator('.stepper [aria-current="step"]')).to_have_text(phase.capitalize())
        open_required = page.locator(f'tr.required[data-phase="{phase}"][data-status="open"]')
        assert open_required.count() > 0, f"no required task in {phase}"
        page.locator("#move select[name=phase]").select_option(NEXT[phase])
        page.locator("#move").get_by_role("button", name="Move").click()
        expect(page.locator("#refusal")).to_contain_text(f"the required tasks of {phase} are not done")
        while open_required.count():
            open_required.first.get_by_role("button", name="Complete").click()
            expect(page.get_by_role("status")).to_have_text("The task is done.")
        page.locator("#move select[name=phase]").select_option(NEXT[phase])
        page.locator("#move").get_by_role("button", name="Move").click()
        expect(page.get_by_role("status")).to_have_text("The incident moved to its new phase.")


def test_an_alert_is_paged_escalated_contained_worked_through_and_written_up(running: Running,
                                                                            browser: Browser) -> None:
    configure(running)
    page = sign_in(browser, running.server, "rita", "Rita Responder")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    incident_id = escalate_from_the_alerts_page(page, running)
    ref = page.get_by_role("heading", level=1).inner_text().split()[0]
    running.runner.work()

    # DingTalk got "incident opened" and the page of the responder on call, signed (the robot refuses
    # anything else, and the deliveries would say failed).
    texts = markdown_texts(running)
    assert len(texts) == 2
    assert "@rita" in texts[1] and "Mimikatz on WS-FIN-07" in texts[1] and f"{PUBLIC}/ack/" in texts[1]
    deliveries = running.api("rita", "GET", f"/api/v1/notification-deliveries?incident_id={incident_id}")["items"]
    assert sorted((d["message_kind"], d["status"]) for d in deliveries) == [("escalation", "sent"),
                                                                             ("incident_opened", "sent")]
    page.reload()
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

    # The intrusion playbook started by itself and waits at its IP block: approved on the runs page, the
    # firewall blocks the attacker; after the TTL the block is rolled back.
    runs = page.locator("table.playbook-runs tr[data-run]")
    expect(runs.first).to_have_attribute("data-status", "awaiting_approval")
    expect(runs.first).to_contain_text("Intrusion containment v1")
    assert firewall_calls(running) == []
    runs.first.get_by_role("link", name="Intrusion containment v1").click()
    run = page.locator("article.run").first
    run.get_by_role("button", name="Approve step 1").click()
    expect(page.locator("article.run").first).to_have_attribute("data-status", "succeeded")
    assert firewall_calls(running) == [f"add|{ATTACKER}"]
    page.goto(f"{running.server.url}/incidents/{incident_id}")
    block = page.locator("table.incident-executions tr[data-execution]").first
    expect(block).to_have_attribute("data-status", "succeeded")
    expect(block).to_contain_text(ATTACKER)
    expect(block).to_contain_text("approved by rita")
    assert running.response.tick(now=utcnow() + timedelta(minutes=11))
    assert firewall_calls(running) == [f"add|{ATTACKER}", f"delete|{ATTACKER}"]
    page.reload()
    expect(block).to_have_attribute("data-status", "rolled_back")
    expect(block).to_contain_text("rolled back")

    # The five phases, each left only once its required tasks are done.
    walk_the_phases(page)

    # The post-mortem: drafted from the incident, completed, submitted; approved by the manager.
    page.get_by_role("button", name="Draft the post-mortem").click()
    expect(page.get_by_role("status")).to_have_text("The post-mortem draft is written.")
    page.get_by_label("Five whys (one a line)").fill("Mimikatz ran\nthe user was a local administrator\nno LAPS")
    page.get_by_label("What went well").fill("The on-call paging reached the manager")
    page.get_by_label("What went badly").fill("The first page was missed")
    due = (datetime.now(running.zone) + timedelta(days=14)).date().isoformat()
    page.get_by_label(re.compile("^Action items")).fill(f"Roll out LAPS | mike | {due}")
    page.get_by_role("button", name="Save", exact=True).last.click()
    expect(page.get_by_role("status")).to_have_text("The post-mortem is saved.")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_role("status")).to_have_text("The post-mortem is submitted for review.")
    manager = sign_in(browser, running.server, "mike", "Mike Manager")
    manager.goto(f"{running.server.url}/incidents/{incident_id}")
    manager.get_by_role("button", name="Approve", exact=True).click()
    expect(manager.get_by_role("status")).to_have_text("The post-mortem is approved.")
    running.runner.work()  # publishing runs after the approval commits

    # Review: its required tasks (the action item is a task of Mike's, not required), then closed.
    page.reload()
    expect(page.locator("table.action-items")).to_contain_text("Roll out LAPS")
    open_required = page.locator('tr.required[data-phase="review"][data-status="open"]')
    while open_required.count():
        open_required.first.get_by_role("button", name="Complete").click()
        expect(page.get_by_role("status")).to_have_text("The task is done.")
    page.locator("#move select[name=phase]").select_option("closed")
    page.locator("#move").get_by_role("button", name="Move").click()
    expect(page.locator('.stepper [aria-current="step"]')).to_have_text("Closed")

    closed = running.api("rita", "GET", f"/api/v1/incidents/{incident_id}")
    assert closed["status"] == "closed"
    record = closed["postmortem"]
    slug = f"postmortem-{ref.lower()}"
    assert record["kb_slug"] == slug and record["git_commit"]
    log = subprocess.run(["git", "--git-dir", running.remote, "log", "--format=%H %s"], capture_output=True,
                         text=True, check=True).stdout
    assert f"{record['git_commit']} Add {slug}" in log
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
