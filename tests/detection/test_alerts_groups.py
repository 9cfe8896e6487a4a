"""Grouping the alert queue by host, user, rule or source address (service, API, page and CLI), a group
selected as a filter, one step over every alert of a group, and unit scoping: another unit's alerts never
appear in a group or its counts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from tests.api.support import assert_problem
from tests.web.support import csrf_of, signed_in, text_of
from typer.testing import CliRunner

from vigil.cli.main import app as cli
from vigil.core.errors import BadInput
from vigil.core.pagination import PageParams
from vigil.detection import alerts_service as service
from vigil.detection.schemas_alerts import AlertFilter, AlertMatchingBulk
from vigil.detection.sigma import Rule
from vigil.detection.workflow import AlertAction, Resolution

from .test_alerts_service import (
    NET,
    NET_YAML,
    acting,
    alert_ids,
    audit_of,
    install_rule,
    process_event,
    raise_alerts,
    rule_row,
    stored_alert,
    with_branch_analysts,
)


def raise_queue(world: Any) -> tuple[Rule, Rule]:
    """Payments (line_a, below branch_a): WS01 has three alerts (one of them two matches, one written ws01),
    WS02 one, and one has no host but a source address. Beijing (branch_b) has four alerts, three on a WS01
    of its own: a branch A analyst must never count them."""
    whoami, net = install_rule(world.database), install_rule(world.database, NET_YAML)
    now = datetime.now(UTC)
    no_host = process_event(user=r"CORP\carol", at=now - timedelta(minutes=5))
    del no_host["Computer"]
    no_host["IpAddress"] = "10.0.0.5"
    raise_alerts(world.database, [whoami, net], world.line_a,
                 process_event(host="WS01", at=now - timedelta(minutes=50)),
                 process_event(host="WS01", at=now - timedelta(minutes=40)),  # folded: count 2
                 process_event(host="ws01", user=r"CORP\bob", at=now - timedelta(minutes=35)),
                 process_event(NET, host="WS01", command_line="net user /domain", at=now - timedelta(minutes=30)),
                 process_event(host="WS02", at=now - timedelta(minutes=20)),
                 no_host)
    raise_alerts(world.database, [whoami], world.branch_b,
                 *(process_event(host="WS01", user=f"CORP\\u{n}", at=now - timedelta(minutes=n)) for n in range(3)),
                 process_event(host="BJ01", at=now))
    with_branch_analysts(world)
    return whoami, net


def groups_of(client: TestClient, headers: dict[str, str], by: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/alerts/groups", headers=headers, params={"by": by, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "total", "limit", "offset"} and body["total"] >= len(body["items"])
    return list(body["items"])


def test_groups_count_only_the_callers_units(world: Any, client: TestClient) -> None:
    whoami, net = raise_queue(world)
    h_a = world.headers("analyst_a")
    hosts = groups_of(client, h_a, "host")
    assert [(g["key"], g["alerts"], g["matches"], g["level"]) for g in hosts] == [
        ("WS01", 3, 4, "high"), (None, 1, 1, "medium"), ("WS02", 1, 1, "medium")]  # then newest first
    assert hosts[0]["statuses"] == {"new": 3} and hosts[0]["filter"] == {"host": "WS01"}
    assert hosts[1]["filter"] == {"without": "host"}
    assert "BJ01" not in {g["key"] for g in hosts}
    # Headquarters sees both units: the same WS01 group holds Beijing's three alerts too.
    everything = {g["key"]: g["alerts"] for g in groups_of(client, world.headers("analyst"), "host")}
    assert everything["WS01"] == 6 and everything["BJ01"] == 1
    assert {g["key"]: g["alerts"] for g in groups_of(client, world.headers("analyst_b"), "host")} == {
        "WS01": 3, "BJ01": 1}

    rules = groups_of(client, h_a, "rule")
    assert [(g["key"], g["label"], g["alerts"], g["matches"]) for g in rules] == [
        (whoami.id, "Whoami run", 4, 5), (net.id, "Net user enumeration", 1, 1)]
    addresses = groups_of(client, h_a, "source_ip")
    assert [(g["key"], g["alerts"]) for g in addresses] == [(None, 4), ("10.0.0.5", 1)]
    users = {g["key"]: g["alerts"] for g in groups_of(client, h_a, "user")}
    assert users == {r"CORP\alice": 3, r"CORP\bob": 1, r"CORP\carol": 1}
    # The list's filters narrow the groups; pages of groups.
    assert [g["key"] for g in groups_of(client, h_a, "host", level="high")] == ["WS01"]
    paged = client.get("/api/v1/alerts/groups", headers=h_a, params={"by": "host", "limit": 1, "offset": 1}).json()
    assert paged["total"] == 3 and [g["key"] for g in paged["items"]] == [None]
    assert_problem(client.get("/api/v1/alerts/groups", headers=h_a, params={"by": "colour"}), 422)
    assert_problem(client.get("/api/v1/alerts/groups", headers=h_a), 422)


def test_a_group_selects_its_alerts(world: Any, client: TestClient) -> None:
    raise_queue(world)
    h_a = world.headers("analyst_a")
    for group in groups_of(client, h_a, "host") + groups_of(client, h_a, "source_ip"):
        listed = client.get("/api/v1/alerts", headers=h_a, params=group["filter"]).json()
        assert listed["total"] == group["alerts"], group
        assert sum(item["count"] for item in listed["items"]) == group["matches"]
    no_host = client.get("/api/v1/alerts", headers=h_a, params={"without": "host"}).json()["items"]
    assert [(item["host"], item["source_ip"]) for item in no_host] == [(None, "10.0.0.5")]


def test_one_step_over_a_group(world: Any, client: TestClient) -> None:
    whoami, _ = raise_queue(world)
    h_a = world.headers("analyst_a")
    ws01 = client.get("/api/v1/alerts", headers=h_a, params={"host": "WS01"}).json()["items"]
    true_positive = ws01[0]["id"]
    client.post(f"/api/v1/alerts/{true_positive}/transition", headers=h_a,
                json={"action": "close", "resolution": "true_positive"})
    done = client.post("/api/v1/alerts/bulk/matching", headers=h_a, json={
        "filter": {"host": "WS01"}, "action": "close", "resolution": "false_positive", "comment": "patch test"})
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["skipped"] == [true_positive] and len(result["changed"]) == 2 and result["unchanged"] == []
    assert stored_alert(world.database, true_positive).resolution == "true_positive"  # left alone
    assert groups_of(client, h_a, "host")[0]["statuses"] == {"closed": 3}
    assert ws01[0]["title"] == "Net user enumeration"  # the newest: closed as a true positive above
    assert rule_row(world.database, whoami.id).false_positives == 2
    assert [r.details.get("comment") for r in audit_of(world.database, "alert.close")] == [
        None, "patch test", "patch test"]
    # Beijing's WS01 is another unit's: untouched, and analyst_b still sees it new.
    assert groups_of(client, world.headers("analyst_b"), "host")[0]["statuses"] == {"new": 3}
    again = client.post("/api/v1/alerts/bulk/matching", headers=h_a, json={
        "filter": {"host": "WS01"}, "action": "close", "resolution": "false_positive"}).json()
    assert again["changed"] == [] and sorted(again["unchanged"]) == sorted(result["changed"])
    refused = assert_problem(client.post("/api/v1/alerts/bulk/matching", headers=h_a, json={
        "filter": {}, "action": "acknowledge"}), 422, "bad-input")
    assert "whole queue" in refused["detail"]
    assert_problem(client.post("/api/v1/alerts/bulk/matching", headers=h_a, json={
        "filter": {"host": "WS02"}, "action": "close"}), 422)
    assert stored_alert(world.database, alert_ids(world.database, host="WS02")[0]).status == "new"
    assert_problem(client.post("/api/v1/alerts/bulk/matching", headers=world.headers("viewer"), json={
        "filter": {"host": "WS02"}, "action": "acknowledge"}), 403)


def test_a_step_over_a_filter_leaves_out_alerts_raised_after_the_page(world: Any) -> None:
    raise_queue(world)
    before = datetime.now(UTC) - timedelta(days=1)
    with acting(world.database, "analyst_a") as ctx:
        data = AlertMatchingBulk(filter=AlertFilter(host="WS01", raised_before=before),
                                 action=AlertAction.ACKNOWLEDGE)
        assert service.bulk_matching(ctx, data=data).changed == []
        with pytest.raises(BadInput):
            service.bulk_matching(ctx, data=AlertMatchingBulk(filter=AlertFilter(), action=AlertAction.ACKNOWLEDGE))
        groups, total = service.group_alerts(ctx.session, filters=AlertFilter(), by="host", params=PageParams())
        assert total == 3 and groups[0].key == "WS01"
        closing = AlertMatchingBulk(filter=AlertFilter(host="ws01"), action=AlertAction.CLOSE,
                                    resolution=Resolution.TRUE_POSITIVE)
        assert len(service.bulk_matching(ctx, data=closing).changed) == 3


def rows_of(page: Any) -> list[str]:
    return re.findall(r'data-alert="(\d+)"', page.text)


def test_the_page_groups_selects_a_group_and_closes_it(client: TestClient, world: Any) -> None:
    raise_queue(world)
    browser = signed_in(client.app, "analyst_a")  # type: ignore[arg-type]
    grouped = browser.get("/detection/alerts", params={"group": "host"})
    assert grouped.status_code == 200
    assert re.findall(r'data-group="([^"]*)"', grouped.text) == ["WS01", "", "WS02"]
    assert rows_of(grouped) == [] and "Alerts by Host" in text_of(grouped) and "BJ01" not in grouped.text
    ws01 = grouped.text[grouped.text.index('data-group="WS01"'):]
    assert 'href="/detection/alerts?host=WS01"' in ws01[:400]
    assert 'href="/detection/alerts?without=host"' in grouped.text
    chinese = browser.get("/detection/alerts", params={"group": "host"}, headers={"Accept-Language": "zh-CN"})
    assert "按主机分组的告警" in text_of(chinese) and "最高级别" in text_of(chinese)

    group = browser.get("/detection/alerts", params={"host": "WS01"})
    assert len(rows_of(group)) == 3 and "With all 3 alerts these filters select" in text_of(group)
    assert 'action="/detection/alerts/bulk-matching"' in group.text
    form = group.text[group.text.index('id="matching"'):]
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form[:form.index("</form>")]))
    assert hidden["host"] == "WS01" and hidden["raised_before"]
    done = browser.post("/detection/alerts/bulk-matching", data={
        **hidden, "csrf_token": csrf_of(group), "action": "close", "resolution": "false_positive"},
        follow_redirects=False)
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith("/detection/alerts?host=WS01&done=matching&changed=3")
    after = browser.get(done.headers["location"])
    assert "3 alerts changed, 0 already so, 0 skipped" in text_of(after)
    assert {stored_alert(world.database, int(i)).status for i in rows_of(after)} == {"closed"}
    beijing = signed_in(client.app, "analyst_b")  # type: ignore[arg-type]
    assert len(rows_of(beijing.get("/detection/alerts", params={"host": "WS01", "status": "new"}))) == 3

    unfiltered = browser.get("/detection/alerts")
    assert 'id="matching"' not in unfiltered.text  # never the whole queue at once
    refused = browser.post("/detection/alerts/bulk-matching", data={
        "csrf_token": csrf_of(group), "host": "WS02", "action": "close"})
    assert refused.status_code == 422 and "needs a resolution" in text_of(refused)
    viewer = signed_in(client.app, "viewer")  # type: ignore[arg-type]
    assert 'id="matching"' not in viewer.get("/detection/alerts", params={"host": "WS02"}).text


def test_cli_groups(world: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whoami, net = raise_queue(world)
    monkeypatch.chdir(tmp_path)
    env = {"VIGIL_DATABASE_URL": database_url, "VIGIL_DATA_DIR": str(tmp_path / "var")}
    runner = CliRunner()
    table = runner.invoke(cli, ["alerts", "list", "--group-by", "host"], env=env)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:5] == ["HOST", "ALERTS", "MATCHES", "LEVEL", "LAST"]
    ws01 = next(line for line in lines if line.startswith("WS01"))
    assert ws01.split()[1:4] == ["6", "7", "high"] and "new:6" in ws01  # the operator sees every unit
    assert any(line.startswith("(none)") for line in lines) and "4 of 4 groups" in table.output
    as_json = runner.invoke(cli, ["alerts", "list", "--group-by", "rule", "--level", "medium", "--json"], env=env)
    body = orjson.loads(as_json.output)
    assert body["by"] == "rule" and [(g["key"], g["alerts"]) for g in body["items"]] == [(whoami.id, 8)]
    none = runner.invoke(cli, ["alerts", "list", "--without", "host", "--json"], env=env)
    assert [item["source_ip"] for item in orjson.loads(none.output)["items"]] == ["10.0.0.5"]
    wrong = runner.invoke(cli, ["alerts", "list", "--group-by", "colour"], env=env)
    assert wrong.exit_code == 2

    # A group's alerts closed in one step: every unit's WS01 (the operator's scope), one refused and skipped.
    net_alert = alert_ids(world.database, rule_uid=net.id)[0]
    assert runner.invoke(cli, ["alerts", "close", str(net_alert), "--as", "tp"], env=env).exit_code == 0
    closed = runner.invoke(cli, ["alerts", "close", "--where", "host=ws01", "--as", "fp", "-m", "patch test"], env=env)
    assert closed.exit_code == 0, closed.output
    assert f"alert {net_alert}: its state refuses close, skipped" in closed.output
    assert "5 changed, 0 already there, 1 skipped" in closed.output
    assert rule_row(world.database, whoami.id).false_positives == 5
    assert stored_alert(world.database, net_alert).resolution == "true_positive"
    assert "(none)" in runner.invoke(cli, ["alerts", "list", "--group-by", "host", "--status", "new"], env=env).output
    acked = runner.invoke(cli, ["alerts", "ack", "-w", "without=host", "-w", "status=new"], env=env)
    assert acked.exit_code == 0 and "1 changed" in acked.output, acked.output
    both = runner.invoke(cli, ["alerts", "ack", "1", "--where", "host=WS02"], env=env)
    assert both.exit_code != 0 and "not both" in both.output
    assert runner.invoke(cli, ["alerts", "ack"], env=env).exit_code != 0
    bad = runner.invoke(cli, ["alerts", "ack", "--where", "colour=red"], env=env)
    assert bad.exit_code != 0 and "KEY=VALUE" in bad.output
    assert runner.invoke(cli, ["alerts", "ack", "--where", "level=severe"], env=env).exit_code != 0
