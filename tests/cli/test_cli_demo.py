"""`vigil demo`: loads once, changes nothing the second time, and every printed login signs in."""

from __future__ import annotations

import orjson

from vigil.accounts.demo import DEMO_USERS


def printed_logins(output: str) -> dict[str, tuple[str, str]]:
    """USERNAME -> (PASSWORD, ROLE) from the table `vigil demo` prints."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:4] == ["USERNAME", "PASSWORD", "ROLE", "UNIT"])
    return {line.split()[0]: (line.split()[1], line.split()[2]) for line in lines[start + 1:] if line.strip()}


def test_demo_loads_once_and_its_logins_work(cli, accounts) -> None:
    first = cli.ok("demo")
    assert "http://127.0.0.1:8000" in first.stdout
    assert "accounts: loaded" in first.stdout
    audit_before = orjson.loads(cli.ok("audit", "verify", "--json").stdout)["checked"]

    second = cli.ok("demo")
    assert "demo data already loaded; nothing changed" in second.stdout
    assert orjson.loads(cli.ok("audit", "verify", "--json").stdout)["checked"] == audit_before + 1  # only the check

    # The EVTX samples are years old: their source is kept out of the 180-day retention.
    sources = {item["name"]: item for item in orjson.loads(cli.ok("sources", "list", "--json").stdout)["items"]}
    assert sources["file:evtx-attack-samples"]["retention_days"] == 36500
    # The branch firewall is expected but never sends: silent, for the log-source health alert.
    assert sources["syslog:192.0.2.1"]["silent"] and sources["syslog:192.0.2.1"]["expected_interval_minutes"] == 15

    logins = printed_logins(second.stdout)
    assert set(logins) == {spec.username for spec in DEMO_USERS}
    assert {role for _, role in logins.values()} >= {
        "system_admin", "security_admin", "audit_admin", "analyst", "responder", "viewer"}
    for username, (password, role) in logins.items():
        assert accounts.sign_in(username, password) == (True, "ok"), username
        user = accounts.user(username)
        assert user is not None and not user.must_change_password
        assert [grant.role for grant in user.grants] == [role]


def test_demo_organisation_tokens_and_history(cli, accounts) -> None:
    cli.ok("demo")
    units = {unit["name"]: unit for unit in orjson.loads(cli.ok("unit", "list", "--json").stdout)}
    root = units["总部 Headquarters"]
    assert root["parent_id"] is None and root["kind"] == "headquarters"
    shanghai = units["上海分行 Shanghai Branch"]
    assert shanghai["parent_id"] == root["id"]
    assert units["支付业务 Payments"]["parent_id"] == shanghai["id"]
    assert units["北京分行 Beijing Branch"]["kind"] == "branch"
    assert any(unit["kind"] == "subsidiary" for unit in units.values())
    tokens = orjson.loads(cli.ok("token", "list", "--json").stdout)
    assert len(tokens) == 3
    assert sum(token["revoked_at"] is not None for token in tokens) == 1
    sign_ins = accounts.audit("auth.login")
    assert {record.outcome for record in sign_ins} == {"success", "failure"}
    assert any(record.source_ip == "203.0.113.50" for record in sign_ins)
    branch_analyst = accounts.user("analyst.sh")
    assert branch_analyst is not None and branch_analyst.unit_id == shanghai["id"]
    assert cli.ok("audit", "verify").stdout.startswith("audit trail intact")


def test_demo_leaves_an_existing_account_alone(cli, accounts) -> None:
    own_password = "Mine-Not-Yours-99!"
    cli.ok("user", "add", "analyst", "--role", "analyst", "--password-stdin", input=f"{own_password}\n")
    result = cli.ok("demo")
    assert "analyst" not in printed_logins(result.stdout)
    assert "analyst.sh" in printed_logins(result.stdout)
    assert "demo login 'analyst' does not work here" in result.stderr
    assert accounts.sign_in("analyst", own_password) == (True, "ok")
