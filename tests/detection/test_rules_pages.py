"""The rules pages as a browser uses them: the filterable table, the enabled switch (HTMX and plain form),
a rule's page with its YAML, attribution and settings form, and the packs page with uploads and their
diff; analysts read but change nothing, and every post needs its CSRF token."""

from __future__ import annotations

import html
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.detection.test_rules_service import rows, sigma_rule, uid_of, zip_of
from tests.web.support import csrf_of, signed_in
from tests.web.support import text_of as raw_text_of

from vigil.detection.rules_import import install_starter_pack


def text_of(page: Any) -> str:
    return html.unescape(raw_text_of(page))


@pytest.fixture
def starter(world: Any) -> dict[str, Any]:
    install_starter_pack(world.database)
    return rows(world.database, "vigil-starter")




def first_rule(starter: dict[str, Any]) -> Any:
    return min(starter.values(), key=lambda row: row.id)


def test_the_table_lists_and_filters_rules(analyst: TestClient, starter: dict[str, Any]) -> None:
    page = analyst.get("/detection/rules")
    assert page.status_code == 200
    assert "49 of 49" in text_of(page) or "1 to 49 of 49" in text_of(page)
    high = [row for row in starter.values() if row.level == "high"]
    filtered = analyst.get("/detection/rules", params={"level": "high", "status": "", "tactic": "", "enabled": "",
                                                       "q": "", "technique": "", "pack": "vigil-starter"})
    assert filtered.status_code == 200
    assert f"1 to {len(high)} of {len(high)}" in text_of(filtered)
    assert all(row.title in filtered.text for row in high[:5])
    none = analyst.get("/detection/rules", params={"q": "no rule is called this"})
    assert "No rule matches these filters." in text_of(none)
    bad = analyst.get("/detection/rules", params={"technique": "execution"})
    assert bad.status_code == 422


def test_an_analyst_reads_rules_but_cannot_change_one(analyst: TestClient, starter: dict[str, Any],
                                                     world: Any) -> None:
    rule = first_rule(starter)
    table = analyst.get("/detection/rules")
    assert f'action="/detection/rules/{rule.id}/enabled"' not in table.text
    page = analyst.get(f"/detection/rules/{rule.id}")
    assert page.status_code == 200 and 'name="level_override"' not in page.text
    assert "Import a pack" not in analyst.get("/detection/rules/packs").text
    token = csrf_of(page)
    refused = analyst.post(f"/detection/rules/{rule.id}/enabled", data={"csrf_token": token, "enabled": "false"})
    assert refused.status_code == 403
    refused = analyst.post(f"/detection/rules/{rule.id}", data={"csrf_token": token, "level_override": "low"})
    assert refused.status_code == 403
    after = rows(world.database, "vigil-starter")[rule.rule_uid]
    assert after.enabled and after.level_override is None


def test_the_enabled_switch_swaps_its_row_or_returns_to_the_table(secadmin: TestClient, starter: dict[str, Any],
                                                                 world: Any) -> None:
    rule = first_rule(starter)
    table = secadmin.get("/detection/rules", params={"pack": "vigil-starter"})
    token = csrf_of(table)
    fragment = secadmin.post(f"/detection/rules/{rule.id}/enabled", data={"csrf_token": token, "enabled": "false"},
                             headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith(f'<tr id="rule-{rule.id}"') and "<html" not in fragment.text
    assert 'aria-pressed="false"' in fragment.text
    assert not rows(world.database, "vigil-starter")[rule.rule_uid].enabled
    back = secadmin.post(f"/detection/rules/{rule.id}/enabled", follow_redirects=False,
                         data={"csrf_token": token, "enabled": "true", "next": "/detection/rules?pack=vigil-starter"})
    assert back.status_code == 303 and back.headers["location"] == "/detection/rules?pack=vigil-starter"
    assert rows(world.database, "vigil-starter")[rule.rule_uid].enabled
    elsewhere = secadmin.post(f"/detection/rules/{rule.id}/enabled", follow_redirects=False,
                              data={"csrf_token": token, "enabled": "true", "next": "https://evil.example/"})
    assert elsewhere.headers["location"] == "/detection/rules"
    forged = secadmin.post(f"/detection/rules/{rule.id}/enabled", data={"enabled": "false"})
    assert forged.status_code == 403
    assert rows(world.database, "vigil-starter")[rule.rule_uid].enabled


def test_a_rule_page_shows_yaml_attribution_and_saves_settings(secadmin: TestClient, starter: dict[str, Any],
                                                              world: Any) -> None:
    rule = first_rule(starter)
    page = secadmin.get(f"/detection/rules/{rule.id}")
    assert page.status_code == 200
    text = text_of(page)
    assert rule.title in text and rule.author in text and "Detection Rule License" in text
    assert all(reference in page.text for reference in rule.references)
    assert "detection:" in page.text and rule.rule_uid in page.text
    saved = secadmin.post(f"/detection/rules/{rule.id}", follow_redirects=False, data={
        "csrf_token": csrf_of(page), "enabled": "on", "level_override": "critical", "notes": "noisy on jump hosts"})
    assert saved.status_code == 303 and saved.headers["location"] == f"/detection/rules/{rule.id}?done=saved"
    shown = secadmin.get(saved.headers["location"])
    assert "The rule's settings are saved." in text_of(shown)
    assert "overridden; the rule says" in text_of(shown) and "noisy on jump hosts" in shown.text
    stored = rows(world.database, "vigil-starter")[rule.rule_uid]
    assert (stored.enabled, stored.level_override, stored.notes) == (True, "critical", "noisy on jump hosts")
    refused = secadmin.post(f"/detection/rules/{rule.id}", data={
        "csrf_token": csrf_of(shown), "enabled": "on", "level_override": "severe", "notes": ""})
    assert refused.status_code == 422 and "Check the marked fields." in text_of(refused)
    assert rows(world.database, "vigil-starter")[rule.rule_uid].level_override == "critical"
    assert secadmin.get("/detection/rules/999999").status_code == 404


def test_uploading_a_pack_shows_its_diff_and_broken_rules(secadmin: TestClient, world: Any) -> None:
    page = secadmin.get("/detection/rules/packs")
    assert "Import a pack" in page.text
    first = zip_of({"rules/whoami.yml": sigma_rule("Whoami").encode(),
                    "rules/net.yml": sigma_rule("Net Use", image="\\net.exe").encode(),
                    "rules/broken.yml": b"title: Broken\ndetection: [\n"})
    answer = secadmin.post("/detection/rules/packs/import", data={"csrf_token": csrf_of(page), "enable": "all"},
                           files={"file": ("sigma_all_rules.zip", first, "application/zip")})
    assert answer.status_code == 200, answer.text[:500]
    text = text_of(answer)
    assert "Pack sigma_all_rules imported" in text
    assert "2 added, 0 updated, 0 removed, 0 unchanged, 1 not loadable." in text
    assert "sigma_all_rules.zip!rules/broken.yml:3: broken YAML" in text
    second = zip_of({"rules/whoami.yml": sigma_rule("Whoami", level="critical").encode()})
    answer = secadmin.post("/detection/rules/packs/import", data={"csrf_token": csrf_of(answer)},
                           files={"file": ("sigma_all_rules.zip", second, "application/zip")})
    assert "0 added, 1 updated, 1 removed, 0 unchanged, 0 not loadable." in text_of(answer)
    assert set(rows(world.database, "sigma_all_rules")) == {uid_of("Whoami")}
    pasted = secadmin.post("/detection/rules/packs/import", data={
        "csrf_token": csrf_of(answer), "pack": "sigma_all_rules", "yaml": sigma_rule("Pasted", image="\\p.exe")})
    assert "1 added, 0 updated, 0 removed, 1 unchanged" in text_of(pasted)


def test_a_hostile_upload_is_refused_on_the_page(secadmin: TestClient, world: Any) -> None:
    page = secadmin.get("/detection/rules/packs")
    evil = zip_of({"../../escape.yml": sigma_rule("Escape").encode()})
    answer = secadmin.post("/detection/rules/packs/import", data={"csrf_token": csrf_of(page)},
                           files={"file": ("evil.zip", evil, "application/zip")})
    assert answer.status_code == 422 and "points outside the archive" in text_of(answer)
    nothing = secadmin.post("/detection/rules/packs/import", data={"csrf_token": csrf_of(page)})
    assert nothing.status_code == 422 and "Choose a file to upload, or paste a rule." in text_of(nothing)
    assert rows(world.database) == {}
    no_token = secadmin.post("/detection/rules/packs/import", data={"yaml": sigma_rule("Forged")})
    assert no_token.status_code == 403


def test_the_pages_speak_chinese(app: FastAPI, world: Any, starter: dict[str, Any]) -> None:
    client = signed_in(app, "secadmin", **{"Accept-Language": "zh-CN"})
    client.cookies.set("vigil_lang", "zh_CN")
    assert "检测规则" in client.get("/detection/rules").text
    assert "导入规则包" in client.get("/detection/rules/packs").text


def test_the_rules_a_filter_matches_are_switched_together(secadmin: TestClient, analyst: TestClient,
                                                          starter: dict[str, Any], world: Any) -> None:
    linux = {uid for uid, row in starter.items() if row.product == "linux"}
    assert 0 < len(linux) < len(starter)
    table = secadmin.get("/detection/rules", params={"product": "linux", "pack": "vigil-starter"})
    assert f"Disable all {len(linux)} rules matching the filters" in text_of(table)
    refused = analyst.post("/detection/rules/bulk", data={"csrf_token": csrf_of(analyst.get("/detection/rules")),
                                                          "product": "linux", "set": "off"})
    assert refused.status_code == 403
    done = secadmin.post("/detection/rules/bulk", follow_redirects=False, data={
        "csrf_token": csrf_of(table), "product": "linux", "pack": "vigil-starter", "set": "off"})
    assert done.status_code == 303
    assert done.headers["location"] == "/detection/rules?product=linux&pack=vigil-starter&done=disabled"
    assert "The rules matching the filters are disabled." in text_of(secadmin.get(done.headers["location"]))
    after = rows(world.database, "vigil-starter")
    assert {uid for uid, row in after.items() if not row.enabled} == linux
    bad = secadmin.post("/detection/rules/bulk", data={"csrf_token": csrf_of(table), "technique": "x", "set": "on"})
    assert bad.status_code == 422
    assert {uid for uid, row in rows(world.database, "vigil-starter").items() if not row.enabled} == linux
