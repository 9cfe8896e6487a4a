"""`vigil audit verify`: intact chains pass; a record edited or deleted with SQL is named."""

from __future__ import annotations

import re

import orjson
from sqlalchemy import text

PASSWORD = "Blue-Harbour-73!"


def _some_history(cli) -> None:
    cli.ok("user", "add", "nina", "--role", "viewer", "--password-stdin", input=f"{PASSWORD}\n")
    cli.ok("token", "create", "nina", "--name", "wallboard")
    cli.ok("user", "disable", "nina")


def test_verify_intact(cli, database) -> None:
    _some_history(cli)
    result = cli.ok("audit", "verify")
    count = int(re.fullmatch(r"audit trail intact: (\d+) records\n", result.stdout).group(1))
    assert count >= 4
    again = orjson.loads(cli.ok("audit", "verify", "--json").stdout)
    assert again["ok"] is True
    assert again["checked"] == count + 1  # the first check was itself audited


def test_verify_names_a_record_edited_with_sql(cli, database) -> None:
    _some_history(cli)
    cli.ok("audit", "verify")
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE audit_records SET actor = 'somebody-else' WHERE seq = 2"))
    result = cli("audit", "verify")
    assert result.exit_code == 1
    assert "BROKEN at record 2" in result.stderr
    assert "does not match its hash" in result.stderr
    as_json = cli("audit", "verify", "--json")
    assert as_json.exit_code == 1
    assert orjson.loads(as_json.stdout)["first_bad_seq"] == 2


def test_verify_names_a_record_deleted_with_sql(cli, database) -> None:
    _some_history(cli)
    with database.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_records WHERE seq = 3"))
    result = cli("audit", "verify")
    assert result.exit_code == 1
    assert "BROKEN at record 3" in result.stderr
    assert "missing" in result.stderr
