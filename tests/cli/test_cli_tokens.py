"""`vigil token …`: the secret is shown once on stdout alone; listed and revoked tokens behave as shown."""

from __future__ import annotations

import orjson

PASSWORD = "Blue-Harbour-73!"


def test_create_list_and_revoke(cli, accounts) -> None:
    cli.ok("user", "add", "lena", "--role", "analyst", "--password-stdin", input=f"{PASSWORD}\n")
    created = cli("token", "create", "lena", "--name", "enrichment", "--days", "7")
    assert created.exit_code == 0, created.output
    lines = created.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vgl_")  # nothing else on stdout: scripts capture it
    secret = lines[0]
    assert "shown only this once" in created.stderr
    assert accounts.token_works(secret)

    [listed] = orjson.loads(cli.ok("token", "list", "lena", "--json").stdout)
    assert listed["name"] == "enrichment"
    assert listed["roles"] == ["analyst"]
    assert listed["revoked_at"] is None
    assert secret not in cli.ok("token", "list").output
    assert secret[:10] in cli.ok("token", "list").stdout  # the prefix identifies it

    revoked = cli.ok("token", "revoke", str(listed["id"]))
    assert "revoked token" in revoked.stdout
    assert not accounts.token_works(secret)
    assert "revoked" in cli.ok("token", "list", "lena").stdout
    assert "already revoked" in cli.ok("token", "revoke", str(listed["id"])).stdout
    assert [record.target_id for record in accounts.audit("token.revoke")] == [str(listed["id"])]


def test_token_roles_are_limited_to_the_owners(cli, accounts) -> None:
    cli.ok("user", "add", "mike", "--role", "analyst", "--password-stdin", input=f"{PASSWORD}\n")
    refused = cli("token", "create", "mike", "--name", "x", "--role", "system_admin")
    assert refused.exit_code == 1
    assert "only roles its owner holds" in refused.stderr
    assert refused.stdout == ""
    assert orjson.loads(cli.ok("token", "list", "--json").stdout) == []


def test_token_refusals(cli) -> None:
    assert cli("token", "create", "ghost", "--name", "x").exit_code == 1
    assert cli("token", "revoke", "4242").exit_code == 1
    assert cli("token", "list", "ghost").exit_code == 1
    assert cli("token", "create", "ghost", "--name", "x", "--days", "0").exit_code == 2
    assert cli("token", "create", "ghost").exit_code == 2  # --name is required
