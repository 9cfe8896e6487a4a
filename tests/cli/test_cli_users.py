"""`vigil user …` and `vigil unit list`: each command's effect on what a user would notice (sign-in, roles)."""

from __future__ import annotations

import getpass

import orjson

PASSWORD = "Blue-Harbour-73!"
OTHER = "Quiet-Lantern-58?"


def add(cli, username: str, *extra: str, password: str = PASSWORD):
    return cli("user", "add", username, *extra, "--password-stdin", input=f"{password}\n")


def test_add_with_prompted_password(cli, accounts) -> None:
    result = cli("user", "add", "alice", "--role", "analyst", "--display-name", "Alice Wong",
                 "--email", "alice@example.com", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "created user alice" in result.stdout
    assert PASSWORD not in result.output  # the prompt never echoes it
    assert accounts.sign_in("alice", PASSWORD) == (True, "ok")
    user = accounts.user("alice")
    assert user is not None
    assert user.must_change_password  # a first password set by an operator is temporary
    assert user.display_name == "Alice Wong"
    assert [(grant.role, grant.unit_id) for grant in user.grants] == [("analyst", user.unit_id)]
    [created] = accounts.audit("user.create")
    assert created.actor == f"cli:{getpass.getuser()}"
    assert created.actor_id is None


def test_add_refuses_mismatched_prompts_and_weak_passwords(cli, accounts) -> None:
    mismatch = cli("user", "add", "bob", "--role", "viewer", input=f"{PASSWORD}\n{OTHER}\n")
    assert mismatch.exit_code == 1
    weak = add(cli, "bob", "--role", "viewer", password="password123")
    assert weak.exit_code == 1
    assert "password policy" in weak.stderr
    assert "too common" in weak.stderr
    assert accounts.user("bob") is None  # nothing half-applied


def test_add_on_a_unit_by_name_or_id(cli, accounts, org) -> None:
    payments = org["Payments"]
    assert add(cli, "pay.analyst", "--role", "analyst", "--unit", "payments").exit_code == 0
    assert add(cli, "pay.viewer", "--role", "viewer", "--unit", str(payments)).exit_code == 0
    for username in ("pay.analyst", "pay.viewer"):
        user = accounts.user(username)
        assert user is not None
        assert user.unit_id == payments
        assert [grant.unit_id for grant in user.grants] == [payments]
    ambiguous = add(cli, "someone", "--role", "viewer", "--unit", "branch")
    assert ambiguous.exit_code == 1
    assert "several organisation units" in ambiguous.stderr
    unknown = add(cli, "someone", "--role", "viewer", "--unit", "Atlantis")
    assert unknown.exit_code == 1
    assert "no organisation unit is named 'Atlantis'" in unknown.stderr
    assert accounts.user("someone") is None


def test_add_refusals(cli, accounts) -> None:
    assert add(cli, "carol", "--role", "viewer").exit_code == 0
    taken = add(cli, "carol", "--role", "viewer")
    assert taken.exit_code == 1
    assert "taken" in taken.stderr
    two_powers = add(cli, "dave", "--role", "system_admin", "--role", "audit_admin")
    assert two_powers.exit_code == 1
    assert "separation of duties" in two_powers.stderr
    prompted = cli("user", "add", "dave", "--role", "security_admin", "--role", "audit_admin")
    assert prompted.exit_code == 1  # refused before asking for a password
    assert "Password" not in prompted.stdout
    bad_email = add(cli, "erin", "--role", "viewer", "--email", "not-an-address")
    assert bad_email.exit_code == 1
    assert "email" in bad_email.stderr
    bad_name = add(cli, "-x", "--role", "viewer")
    assert bad_name.exit_code != 0
    no_role = cli("user", "add", "frank", "--password-stdin", input=f"{PASSWORD}\n")
    assert no_role.exit_code == 2  # a usage error
    unknown_role = add(cli, "frank", "--role", "superuser")
    assert unknown_role.exit_code == 2
    for username in ("dave", "erin", "frank"):
        assert accounts.user(username) is None


def test_list(cli) -> None:
    add(cli, "gina", "--role", "responder", "--display-name", "Gina")
    table = cli.ok("user", "list").stdout
    assert "gina" in table
    assert "responder@Headquarters" in table
    [gina] = orjson.loads(cli.ok("user", "list", "--json").stdout)
    assert gina["username"] == "gina"
    assert gina["grants"][0]["role"] == "responder"
    assert gina["disabled"] is False


def test_disable_and_enable(cli, accounts) -> None:
    add(cli, "hank", "--role", "analyst")
    secret = cli.ok("token", "create", "hank", "--name", "script").stdout.strip()
    assert accounts.token_works(secret)
    assert "disabled hank" in cli.ok("user", "disable", "hank").stdout
    assert accounts.sign_in("hank", PASSWORD) == (False, "account disabled")
    assert not accounts.token_works(secret)
    assert "already disabled" in cli.ok("user", "disable", "hank").stdout
    while_disabled = cli.ok("token", "create", "hank", "--name", "later")
    assert "hank is disabled" in while_disabled.stderr
    assert not accounts.token_works(while_disabled.stdout.strip())
    assert "disabled" in cli.ok("user", "list").stdout
    cli.ok("user", "enable", "hank")
    assert accounts.sign_in("hank", PASSWORD) == (True, "ok")
    assert accounts.token_works(secret)
    assert accounts.token_works(while_disabled.stdout.strip())
    missing = cli("user", "disable", "nobody-here")
    assert missing.exit_code == 1
    assert "does not exist" in missing.stderr


def test_set_role(cli, accounts, org) -> None:
    add(cli, "ivan", "--role", "analyst", "--role", "responder")
    cli.ok("user", "set-role", "ivan", "viewer")
    ivan = accounts.user("ivan")
    assert ivan is not None
    assert [(grant.role, grant.unit_id) for grant in ivan.grants] == [("viewer", ivan.unit_id)]
    beijing = org["Beijing Branch"]
    result = cli.ok("user", "set-role", "ivan", "analyst", "--unit", "beijing branch")
    assert "ivan now holds analyst on Beijing Branch" in result.stdout
    ivan = accounts.user("ivan")
    assert ivan is not None
    assert [(grant.role, grant.unit_id) for grant in ivan.grants] == [("analyst", beijing)]
    again = cli.ok("user", "set-role", "ivan", "analyst", "--unit", str(beijing))
    assert "nothing changed" in again.stdout
    # 三权分立 holds here too: one of the three administrator roles at most, and set-role replaces.
    assert cli("user", "set-role", "ivan", "auditor").exit_code == 2  # not a role


def test_reset_password(cli, accounts) -> None:
    add(cli, "judy", "--role", "viewer")
    result = cli("user", "reset-password", "judy", "--password-stdin", input=f"{OTHER}\n")
    assert result.exit_code == 0, result.output
    assert accounts.sign_in("judy", PASSWORD) == (False, "wrong password")
    assert accounts.sign_in("judy", OTHER) == (True, "ok")
    judy = accounts.user("judy")
    assert judy is not None and judy.must_change_password
    prompted = cli("user", "reset-password", "judy", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    assert accounts.sign_in("judy", PASSWORD) == (True, "ok")
    weak = cli("user", "reset-password", "judy", "--password-stdin", input="judy12345678\n")
    assert weak.exit_code == 1
    assert "must not contain the user name" in weak.stderr
    assert accounts.sign_in("judy", PASSWORD) == (True, "ok")
    empty = cli("user", "reset-password", "judy", "--password-stdin", input="")
    assert empty.exit_code == 1


def test_move(cli, accounts, org) -> None:
    add(cli, "lena", "--role", "viewer")
    result = cli.ok("user", "move", "lena", "--unit", "payments")
    assert f"moved lena to Payments (id {org['Payments']})" in result.stdout
    lena = accounts.user("lena")
    assert lena is not None and lena.unit_id == org["Payments"]
    assert [(grant.role, grant.unit_id) for grant in lena.grants] == [("viewer", org["Headquarters"])]  # stays
    assert "nothing changed" in cli.ok("user", "move", "lena", "--unit", str(org["Payments"])).stdout
    unknown = cli("user", "move", "lena", "--unit", "Atlantis")
    assert unknown.exit_code == 1 and "Atlantis" in unknown.stderr
    [moved] = accounts.audit("user.update")
    assert moved.actor == f"cli:{getpass.getuser()}" and moved.details["unit_id"] == [
        str(org["Headquarters"]), str(org["Payments"])]


def test_the_operator_changes_administrator_accounts(cli, accounts, org) -> None:
    """What the API and the pages refuse for an administrator account, the operator on the server may do."""
    add(cli, "mia", "--role", "audit_admin")
    assert cli("user", "reset-password", "mia", "--password-stdin", input=f"{OTHER}\n").exit_code == 0
    assert accounts.sign_in("mia", OTHER) == (True, "ok")
    cli.ok("user", "move", "mia", "--unit", "Shanghai Branch")
    assert "disabled mia" in cli.ok("user", "disable", "mia").stdout
    mia = accounts.user("mia")
    assert mia is not None and mia.unit_id == org["Shanghai Branch"] and mia.disabled
    [reset] = accounts.audit("user.password.reset")
    assert reset.actor == f"cli:{getpass.getuser()}" and reset.details["username"] == "mia"


def test_unlock(cli, accounts) -> None:
    add(cli, "kate", "--role", "viewer")
    for _ in range(5):  # the default policy locks after five failures
        accounts.sign_in("kate", "Wrong-Guess-000!")
    assert accounts.sign_in("kate", PASSWORD) == (False, "account locked")
    assert "locked until" in cli.ok("user", "list").stdout
    assert "unlocked kate" in cli.ok("user", "unlock", "kate").stdout
    assert accounts.sign_in("kate", PASSWORD) == (True, "ok")
    assert [record.actor for record in accounts.audit("user.unlock")] == [f"cli:{getpass.getuser()}"]


def test_unit_list_shows_the_tree(cli, org) -> None:
    lines = cli.ok("unit", "list").stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "KIND"]
    shanghai = next(i for i, line in enumerate(lines) if "Shanghai Branch" in line)
    assert lines[shanghai + 1].split() == [str(org["Payments"]), "Payments", "business_line"]
    assert lines[shanghai + 1].index("Payments") > lines[shanghai].index("Shanghai")  # indented below its branch
    assert {unit["name"] for unit in orjson.loads(cli.ok("unit", "list", "--json").stdout)} == set(org)
