"""The alert pages as a browser uses them: the queue with filters, bulk actions through checkboxes and the
noisiest rules; an alert's page with its event, the rule's attribution, the state buttons and the "suppress
similar" form that closes the tuning loop; the suppressions page; and other units' records as 404."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from tests.web.support import csrf_of, signed_in, text_of

from .test_alerts_service import (
    NET,
    NET_YAML,
    WHOAMI,
    alert_ids,
    audit_of,
    install_rule,
    process_event,
    raise_alerts,
    rule_row,
    stored_alert,
    with_branch_analysts,
)


def rows_of(page: Any) -> list[str]:
    return re.findall(r'data-alert="(\d+)"', page.text)


def test_the_queue_filters_and_shows_the_noisiest_rules(client: TestClient, world: Any) -> None:
    whoami, net = install_rule(world.database), install_rule(world.database, NET_YAML)
    raise_alerts(world.database, [whoami, net], world.hq, process_event(host="WS01"), process_event(host="WS02"),
                 process_event(NET, host="DC01", command_line="net user /domain"))
    browser = signed_in(client.app, "viewer")  # type: ignore[arg-type]
    page = browser.get("/detection/alerts")
    assert page.status_code == 200
    text = text_of(page)
    assert len(rows_of(page)) == 3 and "Whoami run" in text and "Net user enumeration" in text
    assert "Noisiest rules (last 7 days)" in text
    noisiest = page.text[page.text.index('id="noisiest"'):]
    assert noisiest.index(f'data-rule="{whoami.id}"') < noisiest.index(f'data-rule="{net.id}"')
    assert 'name="ids"' not in page.text and "With the ticked alerts" not in text  # a viewer only reads
    assert len(rows_of(browser.get("/detection/alerts", params={"host": "WS02"}))) == 1
    assert len(rows_of(browser.get("/detection/alerts", params={"level": ["high"]}))) == 1
    assert len(rows_of(browser.get("/detection/alerts", params={"q": "whoami", "status": "new"}))) == 2
    assert len(rows_of(browser.get("/detection/alerts", params={"status": "closed"}))) == 0
    wrong = browser.get("/detection/alerts", params={"since": "yesterday-ish"})
    assert wrong.status_code == 200 and "Enter a date and time such as" in text_of(wrong)
    chinese = browser.get("/detection/alerts", headers={"Accept-Language": "zh-CN"})
    assert "最嘈杂的规则（最近 7 天）" in text_of(chinese) and "首次出现" in text_of(chinese)


def test_bulk_actions_through_checkboxes(client: TestClient, world: Any) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.hq, *(process_event(host=f"WS0{n}") for n in range(1, 4)))
    ids = alert_ids(world.database)
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    page = browser.get("/detection/alerts")
    assert f'name="ids" value="{ids[0]}"' in page.text
    token = csrf_of(page)
    done = browser.post("/detection/alerts/bulk", data={"csrf_token": token, "ids": [str(ids[0]), str(ids[1])],
                                                        "action": "close", "resolution": "false_positive",
                                                        "back": "/detection/alerts?status=new"},
                        follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/detection/alerts?status=new&done=bulk"
    assert [stored_alert(world.database, i).status for i in ids] == ["closed", "closed", "new"]
    assert rule_row(world.database, rule.id).false_positives == 2
    after = browser.get(done.headers["location"])
    assert "The alerts are updated." in text_of(after) and rows_of(after) == [str(ids[2])]
    refused = browser.post("/detection/alerts/bulk", data={"csrf_token": token, "ids": [str(ids[0]), str(ids[2])],
                                                           "action": "escalate"})
    assert refused.status_code == 409 and "nothing was changed" in text_of(refused)
    assert stored_alert(world.database, ids[2]).status == "new"
    no_resolution = browser.post("/detection/alerts/bulk", data={"csrf_token": token, "ids": [str(ids[2])],
                                                                 "action": "close"})
    assert no_resolution.status_code == 422 and stored_alert(world.database, ids[2]).status == "new"
    elsewhere = browser.post("/detection/alerts/bulk", data={"csrf_token": token, "ids": [str(ids[2])],
                                                             "action": "acknowledge", "back": "https://evil.example/"},
                             follow_redirects=False)
    assert elsewhere.headers["location"] == "/detection/alerts?done=bulk"  # no open redirect
    no_token = browser.post("/detection/alerts/bulk", data={"ids": [str(ids[2])], "action": "escalate"})
    assert no_token.status_code == 403 and stored_alert(world.database, ids[2]).status == "acknowledged"


def test_an_alerts_page_shows_the_event_and_the_rules_attribution(client: TestClient, world: Any) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.line_a, process_event(host="PAY01", user=r"CORP\alice"))
    alert_id = alert_ids(world.database)[0]
    page = signed_in(client.app, "viewer").get(f"/detection/alerts/{alert_id}")  # type: ignore[arg-type]
    assert page.status_code == 200
    text = text_of(page)
    assert "Whoami run" in text and "Jane Doe, John Roe" in text and "Detection Rule License" in text
    assert 'href="https://attack.mitre.org/techniques/T1033/"' in page.text
    assert "whoami.exe run, as attackers do" in text and "Inventory scripts" in text
    event = html.unescape(re.search(r'<pre class="document" id="alert-event">(.*?)</pre>', page.text, re.S)[1])
    assert '"Computer": "PAY01"' in event and '\n  "EventID": 1,' in event  # pretty JSON, sorted keys
    assert "Payments" in text and "T1033" in text
    assert "Suppress similar alerts" not in text and "Acknowledge" not in text  # a viewer only reads


def test_state_buttons_move_the_alert_and_refusals_are_explained(client: TestClient, world: Any) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.hq, process_event())
    alert_id = alert_ids(world.database)[0]
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    page = browser.get(f"/detection/alerts/{alert_id}")
    token = csrf_of(page)
    assert "Close as false positive" in text_of(page) and "Reopen" not in text_of(page)
    url = f"/detection/alerts/{alert_id}/transition"
    moved = browser.post(url, data={"csrf_token": token, "action": "acknowledge"}, follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == f"/detection/alerts/{alert_id}?done=acknowledge"
    shown = browser.get(moved.headers["location"])
    assert 'data-status="acknowledged"' in shown.text and "The alert is updated." in text_of(shown)
    browser.post(url, data={"csrf_token": token, "action": "close", "resolution": "false_positive"})
    closed = stored_alert(world.database, alert_id)
    assert (closed.status, closed.resolution, closed.closed_by) == ("closed", "false_positive", "analyst")
    again = browser.post(url, data={"csrf_token": token, "action": "escalate"})
    assert again.status_code == 409 and "closed cannot be escalated" in text_of(again)
    assert "Reopen" in text_of(again)
    browser.post(url, data={"csrf_token": token, "action": "reopen"})
    assert stored_alert(world.database, alert_id).status == "acknowledged"
    assert [r.actor for r in audit_of(world.database, "alert.reopen")] == ["analyst"]
    taken = browser.post(f"/detection/alerts/{alert_id}/assign", data={"csrf_token": token, "assignee": "me"},
                         follow_redirects=False)
    assert taken.status_code == 303 and stored_alert(world.database, alert_id).assignee_id == world.users["analyst"]
    assert "Unassign me" in text_of(browser.get(f"/detection/alerts/{alert_id}"))


def test_suppress_similar_closes_the_tuning_loop(client: TestClient, world: Any) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.line_a, process_event(host="PAY01", user=r"CORP\svc_inv"))
    alert_id = alert_ids(world.database)[0]
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    page = browser.get(f"/detection/alerts/{alert_id}")
    # The form comes prefilled from the event: host, user and process ticked, more fields offered unticked.
    assert re.search(r'name="on_0" checked.*?name="field_0" value="Computer".*?name="value_0" value="PAY01"',
                     page.text, re.S)
    assert 'name="field_2" value="Image"' in page.text and f'value="{html.escape(WHOAMI)}"' in page.text
    assert re.search(r'name="on_3" aria-label', page.text)  # offered, not ticked
    token = csrf_of(page)
    form = {"csrf_token": token, "field_0": "Computer", "op_0": "equals", "value_0": "PAY01", "on_0": "on",
            "field_1": "User", "op_1": "equals", "value_1": r"CORP\svc_inv", "on_1": "on",
            "field_2": "Image", "op_2": "equals", "value_2": WHOAMI, "scope": "rule", "expires_days": "30"}
    missing_reason = browser.post(f"/detection/alerts/{alert_id}/suppress", data=form)
    assert missing_reason.status_code == 422 and "Say why these alerts are noise." in text_of(missing_reason)
    assert 'name="value_1" value="CORP\\svc_inv"' in missing_reason.text  # what was sent is shown again
    saved = browser.post(f"/detection/alerts/{alert_id}/suppress", data={**form, "reason": "nightly inventory"},
                         follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/detection/suppressions?done=suppressed"
    listing = browser.get(saved.headers["location"])
    text = text_of(listing)
    assert "the next matching event raises no alert" in text and "nightly inventory" in text and "active" in text
    record = audit_of(world.database, "suppression.create")[-1]
    assert record.details["conditions"] == [{"field": "Computer", "op": "equals", "value": "PAY01"},
                                            {"field": "User", "op": "equals", "value": r"CORP\svc_inv"}]
    assert record.details["rule_uid"] == rule.id and record.unit_id == world.line_a

    later = datetime.now(UTC) + timedelta(hours=2)
    result = raise_alerts(world.database, [rule], world.line_a,
                          process_event(host="PAY01", user=r"CORP\svc_inv", at=later))
    assert (result.raised, result.suppressed) == (0, 1)
    listing = browser.get("/detection/suppressions")
    sid = re.search(r'data-suppression="(\d+)"', listing.text)[1]
    assert re.search(r"nightly inventory.*?<td>1</td>", listing.text, re.S)  # one match suppressed
    off = browser.post(f"/detection/suppressions/{sid}", data={"csrf_token": token, "enabled": "false"},
                       follow_redirects=False)
    assert off.status_code == 303 and "off" in text_of(browser.get("/detection/suppressions"))
    assert raise_alerts(world.database, [rule], world.line_a,
                        process_event(host="PAY01", user=r"CORP\svc_inv", at=later)).raised == 1
    removed = browser.post(f"/detection/suppressions/{sid}/delete", data={"csrf_token": token},
                           follow_redirects=False)
    assert removed.status_code == 303 and "No suppression yet." in text_of(browser.get("/detection/suppressions"))
    assert [r.action for r in audit_of(world.database, "suppression.update")] == ["suppression.update"]


def test_another_units_alert_is_not_found_on_the_pages(client: TestClient, world: Any) -> None:
    with_branch_analysts(world)
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.branch_b, process_event(host="BJ01"))
    alert_id = alert_ids(world.database)[0]
    browser = signed_in(client.app, "analyst_a")  # type: ignore[arg-type]
    page = browser.get("/detection/alerts")
    assert rows_of(page) == [] and "BJ01" not in page.text
    assert browser.get(f"/detection/alerts/{alert_id}").status_code == 404
    token = csrf_of(page)
    refused = browser.post(f"/detection/alerts/{alert_id}/transition", data={
        "csrf_token": token, "action": "close", "resolution": "false_positive"})
    assert refused.status_code == 404
    assert browser.post(f"/detection/alerts/{alert_id}/suppress", data={"csrf_token": token}).status_code == 404
    assert stored_alert(world.database, alert_id).status == "new"
