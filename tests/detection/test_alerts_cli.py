"""`vigil alerts`: list, show, ack, escalate, close --as fp|tp, reopen, assign, suppress, suppressions,
unsuppress and stats, against a real records store, audited as the local operator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from vigil.cli.main import app

from .test_alerts_service import (
    NET,
    NET_YAML,
    alert_ids,
    audit_of,
    install_rule,
    process_event,
    raise_alerts,
    rule_row,
    stored_alert,
)


class Vigil:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, ["alerts", *args], env=self.env)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, f"vigil alerts {' '.join(args)} -> {result.exit_code}\n{result.output}"
        return result


@pytest.fixture
def vigil(world: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vigil:
    monkeypatch.chdir(tmp_path)
    return Vigil({"VIGIL_DATABASE_URL": database_url, "VIGIL_DATA_DIR": str(tmp_path / "var")})


def test_list_and_show(vigil: Vigil, world: Any) -> None:
    whoami, net = install_rule(world.database), install_rule(world.database, NET_YAML)
    raise_alerts(world.database, [whoami, net], world.hq, process_event(host="WS01"),
                 process_event(NET, host="DC01", command_line="net user /domain"))
    listed = vigil.ok("list").output
    assert "Whoami run" in listed and "Net user enumeration" in listed and "2 of 2 alerts" in listed
    high = vigil.ok("list", "--level", "high", "--json").output
    assert [item["host"] for item in orjson.loads(high)["items"]] == ["DC01"]
    assert "0 of 0 alerts" in vigil.ok("list", "--status", "closed").output
    assert "1 of 1 alerts" in vigil.ok("list", "-q", "ws01", "--since", "1d").output
    alert_id = alert_ids(world.database, host="WS01")[0]
    shown = vigil.ok("show", str(alert_id)).output
    assert "Jane Doe, John Roe" in shown and "https://attack.mitre.org/techniques/T1033/" in shown
    assert '"Computer": "WS01"' in shown
    as_json = orjson.loads(vigil.ok("show", str(alert_id), "--json").output)
    assert as_json["rule"]["author"] == "Jane Doe, John Roe" and as_json["actions"] == ["acknowledge", "escalate",
                                                                                       "close"]
    missing = vigil("show", "999999")
    assert missing.exit_code == 1 and "alert 999999 does not exist" in missing.output
    wrong = vigil("list", "--level", "severe")
    assert wrong.exit_code == 1 and "level" in wrong.output


def test_the_workflow_from_the_shell(vigil: Vigil, world: Any) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.hq, *(process_event(host=f"WS0{n}") for n in range(1, 4)))
    one, two, three = alert_ids(world.database)
    assert f"alert {one}: acknowledge done" in vigil.ok("ack", str(one), "-m", "on it").output
    closed = vigil.ok("close", str(one), str(two), "--as", "fp").output
    assert f"alert {two}: close done" in closed
    assert [stored_alert(world.database, i).resolution for i in (one, two)] == ["false_positive"] * 2
    assert rule_row(world.database, rule.id).false_positives == 2
    record = audit_of(world.database, "alert.close")[-1]
    assert record.actor.startswith("cli:") and record.details["resolution"] == "false_positive"
    refused = vigil("escalate", str(two), str(three))
    assert refused.exit_code == 1 and f"alert {two}:" in refused.output and "nothing was changed" in refused.output
    assert stored_alert(world.database, three).status == "new"
    assert vigil("close", str(three)).exit_code == 2  # --as is required
    vigil.ok("close", str(three), "--as", "tp")
    assert stored_alert(world.database, three).resolution == "true_positive"
    vigil.ok("reopen", str(one))
    assert stored_alert(world.database, one).status == "acknowledged"
    assert rule_row(world.database, rule.id).false_positives == 1
    vigil.ok("escalate", str(one))
    assert stored_alert(world.database, one).status == "escalated"
    assert "assigned to analyst" in vigil.ok("assign", str(one), "analyst").output
    assert stored_alert(world.database, one).assignee_id == world.users["analyst"]
    refused_user = vigil("assign", str(one), "sysadmin")
    assert refused_user.exit_code == 1 and "cannot read alerts" in refused_user.output
    vigil.ok("assign", str(one), "-")
    assert stored_alert(world.database, one).assignee_id is None


def test_suppress_from_the_shell_stops_the_next_match(vigil: Vigil, world: Any) -> None:
    rule = install_rule(world.database)
    raise_alerts(world.database, [rule], world.line_a, process_event(host="PAY01", user=r"CORP\svc_inv"))
    alert_id = alert_ids(world.database)[0]
    saved = vigil.ok("suppress", str(alert_id), "-f", "Computer", "-f", "User", "--reason", "inventory",
                     "--days", "30").output
    assert "Computer equals 'PAY01'" in saved and "until" in saved
    vigil.ok("close", str(alert_id), "--as", "fp")
    later = datetime.now(UTC) + timedelta(hours=2)
    result = raise_alerts(world.database, [rule], world.line_a,
                          process_event(host="PAY01", user=r"CORP\svc_inv", at=later))
    assert result.suppressed == 1 and result.raised == 0
    listed = orjson.loads(vigil.ok("suppressions", "--json").output)
    assert [(s["hits"], s["active"], s["unit_id"], s["reason"]) for s in listed] == [(1, True, world.line_a,
                                                                                       "inventory")]
    assert "active" in vigil.ok("suppressions").output
    nothing = vigil("suppress", str(alert_id), "-f", "NoSuchField", "--reason", "x")
    assert nothing.exit_code == 1 and "none of these fields" in nothing.output
    assert vigil("suppress", str(alert_id)).exit_code == 2  # --reason is required
    sid = str(listed[0]["id"])
    assert f"suppression {sid} removed" in vigil.ok("unsuppress", sid).output
    assert vigil("unsuppress", sid).exit_code == 1
    assert [r.action for r in audit_of(world.database, "suppression.delete")] == ["suppression.delete"]


def test_stats_and_noisiest(vigil: Vigil, world: Any) -> None:
    whoami, net = install_rule(world.database), install_rule(world.database, NET_YAML)
    now = datetime.now(UTC)
    raise_alerts(world.database, [whoami, net], world.hq,
                 process_event(host="WS01", at=now - timedelta(hours=1)),
                 process_event(host="WS02", at=now - timedelta(hours=2)),
                 process_event(NET, host="DC01", command_line="net user", at=now - timedelta(days=12)))
    first = alert_ids(world.database, host="WS01")[0]
    vigil.ok("close", str(first), "--as", "fp")
    stats = orjson.loads(vigil.ok("stats", "--json").output)
    assert [(s["rule_uid"], s["alerts"], s["false_positives"]) for s in stats] == [(whoami.id, 2, 1), (net.id, 1, 0)]
    assert "100%" in vigil.ok("stats").output  # of the resolved alerts: one, a false positive
    vigil.ok("close", str(alert_ids(world.database, host="WS02")[0]), "--as", "tp")
    assert "50%" in vigil.ok("stats").output
    noisy = orjson.loads(vigil.ok("stats", "--noisiest", "7", "--json").output)
    assert [s["rule_uid"] for s in noisy] == [whoami.id]
