"""The response-action and playbook pages as a browser uses them: an action added with JSON settings and its
token never shown back, a dry-run showing the exact command, a run requested, refused to its requester and
approved by a second responder, a playbook saved with a YAML definition (a broken one refused with the line),
versions listed, and a playbook run approved on the runs page."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.conftest import World
from tests.web.support import csrf_of, signed_in, text_of

from vigil.core.auth import Role

from .action_endpoints import firewall_script

TOKEN = "page-token-8a1f2c"


def test_configure_dry_run_request_and_approve_from_the_pages(world: World, app: FastAPI, tmp_path: Path) -> None:
    world.add_user("responder2", Role.RESPONDER, world.hq)
    script, log = firewall_script(tmp_path)
    admin = signed_in(app, "secadmin")
    form_page = admin.get("/response/actions?add=block_ip")
    assert form_page.status_code == 200 and "/usr/sbin/nft" in form_page.text
    broken = admin.post("/response/actions", data={
        "csrf_token": csrf_of(form_page), "kind": "block_ip", "name": "Edge firewall", "unit_id": str(world.hq),
        "config": '{"mode": "command", "command": [', "requires_approval": "on", "enabled": "on"})
    assert broken.status_code == 422 and "not valid JSON (line 1" in text_of(broken)
    config = json.dumps({"mode": "http", "url": "https://fw.example/api/block", "token": TOKEN})
    created = admin.post("/response/actions", follow_redirects=False, data={
        "csrf_token": csrf_of(form_page), "kind": "block_ip", "name": "Edge API", "unit_id": str(world.hq),
        "config": config, "requires_approval": "on", "enabled": "on", "rollback_after_seconds": "600"})
    assert created.status_code == 303, created.text[:500]
    created = admin.post("/response/actions", follow_redirects=False, data={
        "csrf_token": csrf_of(form_page), "kind": "block_ip", "name": "Edge firewall", "unit_id": str(world.hq),
        "config": f'{{"mode": "command", "command": ["{script}", "add", "{{ip}}"]}}', "requires_approval": "on",
        "enabled": "on"})
    assert created.status_code == 303
    listing = admin.get("/response/actions")
    assert TOKEN not in listing.text and "token : set" in text_of(listing)
    edit_id = int(re.search(r'data-action="Edge API".*?/response/actions/(\d+)/dry-run', listing.text, re.S).group(1))
    editing = admin.get(f"/response/actions?edit={edit_id}")
    assert TOKEN not in editing.text and "Set; leave it out to keep it." in text_of(editing)
    action_id = int(re.search(r'data-action="Edge firewall".*?/response/actions/(\d+)/dry-run', listing.text,
                              re.S).group(1))
    dry = admin.post(f"/response/actions/{action_id}/dry-run", data={"csrf_token": csrf_of(listing),
                                                                     "target": "203.0.113.9"})
    assert f"{script} add 203.0.113.9" in text_of(dry) and not log.exists()
    refused = admin.post(f"/response/actions/{action_id}/dry-run", data={"csrf_token": csrf_of(listing),
                                                                         "target": "$(id)"})
    assert refused.status_code == 422 and "is not an IP address" in text_of(refused)

    responder = signed_in(app, "responder")
    runs = responder.get(f"/response/executions?action={action_id}")
    asked = responder.post("/response/executions", follow_redirects=False, data={
        "csrf_token": csrf_of(runs), "action_id": str(action_id), "target": "203.0.113.9", "incident_id": "",
        "reason": "scanner"})
    assert asked.status_code == 303
    waiting = responder.get(asked.headers["location"])
    assert "Run status: awaiting approval." in text_of(waiting) and "Waiting for another person" in text_of(waiting)
    execution_id = int(re.search(r'data-execution="(\d+)"', waiting.text).group(1))
    own = responder.post(f"/response/executions/{execution_id}/approve", data={"csrf_token": csrf_of(waiting)})
    assert own.status_code == 403 and not log.exists()
    second = signed_in(app, "responder2")
    page = second.get("/response/executions")
    done = second.post(f"/response/executions/{execution_id}/approve", data={"csrf_token": csrf_of(page)})
    assert f'data-execution="{execution_id}" data-status="succeeded"' in done.text
    assert log.read_text() == "add|203.0.113.9\n"


def test_edit_a_playbook_and_approve_its_run(world: World, app: FastAPI, tmp_path: Path) -> None:
    script, log = firewall_script(tmp_path)
    admin = signed_in(app, "secadmin")
    form_page = admin.get("/response/actions?add=block_ip")
    admin.post("/response/actions", data={
        "csrf_token": csrf_of(form_page), "kind": "block_ip", "name": "Edge firewall", "unit_id": str(world.hq),
        "config": f'{{"mode": "command", "command": ["{script}", "add", "{{ip}}"]}}', "enabled": "on"})
    listing = admin.get("/response/actions")
    action_id = re.search(r"/response/actions/(\d+)/dry-run", listing.text).group(1)
    new = admin.get("/response/playbooks/new")
    bad = admin.post("/response/playbooks", data={"csrf_token": csrf_of(new), "name": "Intrusion",
                                                  "unit_id": str(world.hq), "enabled": "on",
                                                  "definition": "steps:\n  - kind: act\n   target: x"})
    assert bad.status_code == 422 and "neither valid JSON nor YAML at line 3" in text_of(bad)
    definition = (f"trigger: {{incident_types: [intrusion], min_severity: P2}}\nsteps:\n"
                  f"  - kind: act\n    action_id: {action_id}\n    target: '{{observable.ipv4}}'\n"
                  "    requires_approval: true\n")
    created = admin.post("/response/playbooks", follow_redirects=False, data={
        "csrf_token": csrf_of(new), "name": "Intrusion", "unit_id": str(world.hq), "enabled": "on",
        "definition": definition})
    assert created.status_code == 303
    editor = admin.get(created.headers["location"])
    assert "The playbook is created (version 1)." in text_of(editor)
    saved = admin.post(created.headers["location"].split("?")[0], follow_redirects=False, data={
        "csrf_token": csrf_of(editor), "name": "Intrusion", "enabled": "on", "comment": "P1 only",
        "definition": definition.replace("P2", "P1")})
    assert saved.status_code == 303
    assert "v2" in text_of(admin.get(saved.headers["location"])) and "P1 only" in text_of(
        admin.get(saved.headers["location"]))

    analyst = world.headers("analyst")
    api = TestClient(app, base_url="https://testserver")
    incident = api.post("/api/v1/incidents", headers=analyst, json={"title": "Intrusion", "type": "intrusion",
                                                                   "severity": "P1"}).json()
    api.post(f"/api/v1/incidents/{incident['id']}/observables", headers=analyst, json={"value": "198.51.100.77"})
    responder = signed_in(app, "responder")
    page = responder.get("/response/playbook-runs")
    started = responder.post("/response/playbook-runs", follow_redirects=False, data={
        "csrf_token": csrf_of(page), "playbook_id": re.search(r'<option value="(\d+)">Intrusion', page.text).group(1),
        "incident": incident["ref"]})
    assert started.status_code == 303
    waiting = responder.get("/response/playbook-runs")
    assert "Waiting for another person" in text_of(waiting) and not log.exists()
    world.add_user("responder2", Role.RESPONDER, world.hq)
    second = signed_in(app, "responder2")
    page = second.get("/response/playbook-runs")
    run_id = re.search(r'data-run="(\d+)"', page.text).group(1)
    second.post(f"/response/playbook-runs/{run_id}/approve", data={"csrf_token": csrf_of(page)})
    assert log.read_text() == "add|198.51.100.77\n"
    assert 'data-status="succeeded"' in second.get("/response/playbook-runs").text
