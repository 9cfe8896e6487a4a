"""The rule page's "Test results" card as a browser uses it: the summary and each case with its verdict
(record collapsed), the "Try an event" form (match, no match, parse error; nothing stored), saving a tried
event as a case that must fire or must not and deleting one (security administrators at headquarters,
with the CSRF token), analysts and branch administrators only reading and trying, and the card in 简体中文."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.detection.test_rule_tests import HOSTNAME, WHOAMI, new_rule, stored
from tests.detection.test_rules_pages import text_of
from tests.detection.test_rules_service import rows
from tests.web.support import csrf_of, signed_in

from vigil.detection.rules_import import install_starter_pack


def card_of(page: Any) -> str:
    found = re.search(r'<section class="card" id="tests">.*?</section>', page.text, re.S)
    assert found, "no Test results card"
    return found.group(0)


def test_a_starter_rule_shows_its_passing_cases(analyst: TestClient, world: Any) -> None:
    install_starter_pack(world.database)
    row = next(r for r in rows(world.database, "vigil-starter").values()
               if r.path.endswith("proc_creation_win_whoami_discovery.yml"))
    page = analyst.get(f"/detection/rules/{row.id}")
    assert page.status_code == 200
    card = card_of(page)
    total = len(row.tests)
    assert f"{total} of {total} passed" in text_of(page) and total >= 2
    assert card.count('<span class="badge ok">passed</span>') == total and "failed" not in card
    assert "trigger 1" in card and "near miss 1" in card and "must fire" in card and "must not fire" in card
    assert "<details><summary>Show the record</summary>" in card  # records start collapsed
    assert "/tests/0/delete" not in card  # an analyst deletes nothing


def test_trying_an_event_shows_match_no_match_and_parse_errors(analyst: TestClient, world: Any) -> None:
    rule_id = new_rule(world.database)
    page = analyst.get(f"/detection/rules/{rule_id}")
    assert "This rule has no test cases yet" in text_of(page)
    token = csrf_of(page)
    fired = analyst.post(f"/detection/rules/{rule_id}/tests/try", data={"csrf_token": token, "format": "",
                                                                          "record": WHOAMI})
    assert fired.status_code == 200
    assert '<span class="badge warn">the rule fires</span>' in fired.text and "windows_json" in fired.text
    assert "Save as a test that must fire" not in fired.text  # analysts may not store cases
    missed = analyst.post(f"/detection/rules/{rule_id}/tests/try", data={"csrf_token": token,
                                                                           "format": "windows_json",
                                                                           "record": HOSTNAME})
    assert '<span class="badge">no match</span>' in missed.text and "the rule fires" not in missed.text
    broken = analyst.post(f"/detection/rules/{rule_id}/tests/try", data={"csrf_token": token,
                                                                           "format": "web_access",
                                                                           "record": "hello there"})
    assert '<span class="badge bad">parse error</span>' in broken.text
    assert "the web_access parser refused the record" in text_of(broken)
    unknown = analyst.post(f"/detection/rules/{rule_id}/tests/try", data={"csrf_token": token, "format": "nope",
                                                                            "record": WHOAMI})
    assert unknown.status_code == 422 and "unknown log format &#39;nope&#39;" in unknown.text
    big = analyst.post(f"/detection/rules/{rule_id}/tests/try", data={"csrf_token": token, "format": "json",
                                                                        "record": "x" * 70_000})
    assert big.status_code == 422 and "64 KiB" in big.text
    assert stored(world.database, rule_id) == []
    assert analyst.post(f"/detection/rules/{rule_id}/tests/try", data={"format": "", "record": WHOAMI}
                        ).status_code == 403  # no CSRF token


def test_a_security_administrator_saves_a_tried_event_and_deletes_a_case(secadmin: TestClient,
                                                                         world: Any) -> None:
    rule_id = new_rule(world.database)
    page = secadmin.get(f"/detection/rules/{rule_id}")
    token = csrf_of(page)
    tried = secadmin.post(f"/detection/rules/{rule_id}/tests/try", data={"csrf_token": token, "format": "",
                                                                           "record": WHOAMI})
    assert "Save as a test that must fire" in tried.text and "Save as a test that must not fire" in tried.text
    saved = secadmin.post(f"/detection/rules/{rule_id}/tests", data={
        "csrf_token": token, "name": "whoami by ops", "format": "windows_json", "record": WHOAMI, "expect": "match"},
        follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == f"/detection/rules/{rule_id}?done=test_saved#tests"
    secadmin.post(f"/detection/rules/{rule_id}/tests", data={
        "csrf_token": token, "name": "", "format": "windows_json", "record": WHOAMI, "expect": "no_match"})
    after = secadmin.get(f"/detection/rules/{rule_id}?done=test_saved")
    card = card_of(after)
    assert "The test case is saved." in card and "1 of 2 passed" in text_of(after)
    assert "whoami by ops" in card and "must not fire 2" in card
    assert card.count('<span class="badge bad">failed</span>') == 1
    deleted = secadmin.post(f"/detection/rules/{rule_id}/tests/1/delete", data={"csrf_token": token},
                            follow_redirects=False)
    assert deleted.status_code == 303
    assert [case["name"] for case in stored(world.database, rule_id)] == ["whoami by ops"]
    assert "1 of 1 passed" in text_of(secadmin.get(f"/detection/rules/{rule_id}"))
    refused = secadmin.post(f"/detection/rules/{rule_id}/tests", data={
        "csrf_token": token, "format": "syslog", "record": "   ", "expect": "match"})
    assert refused.status_code == 422 and "The input was not accepted" in text_of(refused)
    gone = secadmin.post(f"/detection/rules/{rule_id}/tests/7/delete", data={"csrf_token": token})
    assert gone.status_code == 422 and "no test case 7" in text_of(gone)
    assert len(stored(world.database, rule_id)) == 1


def test_analysts_and_branch_administrators_cannot_change_cases(app: FastAPI, world: Any) -> None:
    rule_id = new_rule(world.database)
    for user in ("analyst", "secadmin_a"):
        browser = signed_in(app, user)
        token = csrf_of(browser.get(f"/detection/rules/{rule_id}"))
        assert browser.post(f"/detection/rules/{rule_id}/tests", data={
            "csrf_token": token, "format": "windows_json", "record": WHOAMI, "expect": "match"}).status_code == 403
    assert stored(world.database, rule_id) == []


def test_the_card_speaks_chinese(app: FastAPI, world: Any) -> None:
    rule_id = new_rule(world.database)
    browser = signed_in(app, "secadmin", **{"Accept-Language": "zh-CN"})
    page = browser.get(f"/detection/rules/{rule_id}")
    assert "测试结果" in page.text and "试运行事件" in page.text and "自动识别" in page.text
    tried = browser.post(f"/detection/rules/{rule_id}/tests/try", data={"csrf_token": csrf_of(page), "format": "",
                                                                          "record": WHOAMI})
    assert "规则命中" in tried.text and "保存为必须命中的测试" in tried.text
