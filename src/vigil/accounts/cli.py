"""`vigil user …`, `vigil token …` and `vigil unit list`: accounts from the command line.

Passwords are prompted twice without echo, or read from one line of stdin with ``--password-stdin``;
never taken as an argument, where ``ps`` and the shell history would show them. Every change is
audited as the local operator (``cli:<login>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.accounts import service, signin
from vigil.accounts.models import ApiToken, OrgUnit, User
from vigil.accounts.schemas import (
    USERNAME,
    GrantCreate,
    TokenCreate,
    TokenRead,
    UnitRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from vigil.cli.runtime import (
    EXIT_CODES_HELP,
    JsonOption,
    fail,
    local_time,
    note,
    operation,
    print_json,
    print_table,
    read_password,
)
from vigil.core.auth import SEPARATED_ROLES, Role
from vigil.core.config import Settings
from vigil.core.db import utcnow
from vigil.core.errors import Conflict, NotFound
from vigil.core.pagination import MAX_LIMIT, PageParams

users = typer.Typer(help="Local accounts: add, list, disable, enable, move, roles, passwords, lockouts.",
                    no_args_is_help=True)
tokens = typer.Typer(help="API tokens for `Authorization: Bearer`: create, list, revoke.", no_args_is_help=True)
units = typer.Typer(help="Organisation units (headquarters, branches, subsidiaries, business lines).",
                    no_args_is_help=True)

Username = Annotated[str, typer.Argument(help="The user's sign-in name.", show_default=False)]
UnitOption = Annotated[
    str | None, typer.Option("--unit", "-u", help="Organisation unit by id or name.", show_default=False)
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from one line of stdin instead of prompting.")
]


# --- lookups ---------------------------------------------------------------------------------------


def resolve_unit(session: Session, ref: str | None) -> OrgUnit:
    """A unit by id, by exact name, by name ignoring case, or by a part of its name that only it has."""
    if ref is None:
        return service.get_unit(session, service.root_unit_id(session))
    if ref.isdigit():
        return service.get_unit(session, int(ref))
    every = service.list_units(session)
    wanted = ref.casefold()
    for matches in (
        [unit for unit in every if unit.name == ref],
        [unit for unit in every if unit.name.casefold() == wanted],
        [unit for unit in every if wanted in unit.name.casefold()],
    ):
        if len(matches) == 1:
            return matches[0]
        if matches:
            named = ", ".join(f"{unit.name} (id {unit.id})" for unit in matches)
            raise Conflict(f"{ref!r} names several organisation units: {named}; give the unit id")
    raise NotFound(f"no organisation unit is named {ref!r}; `vigil unit list` shows them all")


def unit_names(session: Session) -> dict[int, str]:
    return {unit.id: unit.name for unit in service.list_units(session)}


def all_users(session: Session) -> list[User]:
    found: list[User] = []
    while True:
        page, total = service.list_users(session, params=PageParams(limit=MAX_LIMIT, offset=len(found)))
        found += page
        if not page or len(found) >= total:
            return found


def status_of(settings: Settings, user: User) -> str:
    if user.disabled:
        return "disabled"
    if user.locked:
        return f"locked until {local_time(settings, user.locked_until)}"
    return "active"


def roles_text(user: User, names: dict[int, str]) -> str:
    return ", ".join(f"{grant.role}@{names.get(grant.unit_id, grant.unit_id)}" for grant in user.grants) or "-"


# --- users -----------------------------------------------------------------------------------------


@users.command("add", epilog=EXIT_CODES_HELP)
def add_user(
    username: Username,
    role: Annotated[
        list[Role], typer.Option("--role", "-r", help="Role granted on the unit; repeat for several.",
                                 show_default=False)
    ],
    unit: Annotated[
        str | None,
        typer.Option("--unit", "-u", help="Unit by id or name; default the root unit.", show_default=False),
    ] = None,
    display_name: Annotated[str, typer.Option(help="Name shown in the UI; default the user name.")] = "",
    email: Annotated[str | None, typer.Option(help="E-mail address.", show_default=False)] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a local account holding ROLE on a unit. The password is prompted (twice, hidden) or read from stdin.

    The user must change this first password at the first sign-in.
    """
    if not USERNAME.match(username):
        fail("the user name must be 2-64 letters, digits, dots, dashes or underscores, "
             "starting with a letter or digit")
    powers = sorted({str(one) for one in role} & {str(one) for one in SEPARATED_ROLES})
    if len(powers) > 1:  # the service refuses this too; saying so before the password prompt saves typing
        fail("separation of duties: one account may hold only one of the system, security and audit "
             f"administrator roles (asked for {', '.join(powers)})")
    with operation() as op:
        # Check what can be checked before asking for a password.
        with op.transaction() as ctx:
            unit_id = resolve_unit(ctx.session, unit).id
            taken = ctx.session.scalar(select(User.id).where(User.username == username))
            if taken is not None:
                raise Conflict(f"the user name {username!r} is taken")
        password = read_password(from_stdin=password_stdin)
        with op.transaction() as ctx:
            data = UserCreate(
                username=username, display_name=display_name, email=email or None, password=password,
                unit_id=unit_id, grants=[GrantCreate(role=one, unit_id=unit_id) for one in dict.fromkeys(role)],
            )
            user = service.create_user(ctx, data=data)
            unit_name = service.get_unit(ctx.session, unit_id).name
            typer.echo(f"created user {user.username} (id {user.id}) in {unit_name} with role "
                       f"{', '.join(dict.fromkeys(role))}; the password must be changed at first sign-in")


@users.command("list", epilog=EXIT_CODES_HELP)
def list_users(as_json: JsonOption = False) -> None:
    """List every account: unit, roles, status and last sign-in."""
    with operation() as op, op.transaction() as ctx:
        found = all_users(ctx.session)
        if as_json:
            print_json([UserRead.model_validate(user).model_dump(mode="json") for user in found])
            return
        names = unit_names(ctx.session)
        print_table(
            ["USERNAME", "NAME", "UNIT", "ROLES", "STATUS", "LAST SIGN-IN"],
            [[user.username, user.display_name, names.get(user.unit_id, str(user.unit_id)),
              roles_text(user, names), status_of(op.settings, user), local_time(op.settings, user.last_login_at)]
             for user in found],
        )


def _set_disabled(username: str, disabled: bool) -> None:
    with operation() as op, op.transaction() as ctx:
        user = service.find_user(ctx.session, username)
        word = "disabled" if disabled else "enabled"
        if user.disabled == disabled:
            typer.echo(f"{username} is already {word}; nothing changed")
            return
        service.update_user(ctx, user_id=user.id, data=UserUpdate(disabled=disabled))
        ended = ""
        if disabled:
            ended = "; sign-in sessions ended, API tokens stop working"
        typer.echo(f"{word} {username}{ended}")


@users.command("disable", epilog=EXIT_CODES_HELP)
def disable_user(username: Username) -> None:
    """Disable an account: it can no longer sign in, its sessions end and its tokens stop working."""
    _set_disabled(username, True)


@users.command("enable", epilog=EXIT_CODES_HELP)
def enable_user(username: Username) -> None:
    """Enable a disabled account again."""
    _set_disabled(username, False)


@users.command("move", epilog=EXIT_CODES_HELP)
def move_user(
    username: Username,
    unit: Annotated[str, typer.Option("--unit", "-u", help="The new unit, by id or name.", show_default=False)],
) -> None:
    """Move an account to another organisation unit; its roles stay where they are granted.

    Over the API and the web pages an administrator account cannot be moved; this command can.
    """
    with operation() as op, op.transaction() as ctx:
        user = service.find_user(ctx.session, username)
        target = resolve_unit(ctx.session, unit)
        if user.unit_id == target.id:
            typer.echo(f"{username} is already in {target.name}; nothing changed")
            return
        service.update_user(ctx, user_id=user.id, data=UserUpdate(unit_id=target.id))
        typer.echo(f"moved {username} to {target.name} (id {target.id})")


@users.command("set-role", epilog=EXIT_CODES_HELP)
def set_role(
    username: Username,
    role: Annotated[Role, typer.Argument(help="The one role the user will hold.", show_default=False)],
    unit: Annotated[
        str | None,
        typer.Option("--unit", "-u", help="Unit by id or name; default the user's own unit.", show_default=False),
    ] = None,
) -> None:
    """Replace all of a user's roles with ROLE on one unit (which covers the units below it)."""
    with operation() as op, op.transaction() as ctx:
        user = service.find_user(ctx.session, username)
        target = resolve_unit(ctx.session, unit) if unit is not None else service.get_unit(ctx.session, user.unit_id)
        if [(grant.role, grant.unit_id) for grant in user.grants] == [(str(role), target.id)]:
            typer.echo(f"{username} already holds only {role} on {target.name}; nothing changed")
            return
        service.set_role(ctx, user=user, role=role, unit_id=target.id)
        typer.echo(f"{username} now holds {role} on {target.name} (id {target.id})")


@users.command("reset-password", epilog=EXIT_CODES_HELP)
def reset_password(username: Username, password_stdin: PasswordStdin = False) -> None:
    """Set a new temporary password; the user must change it at the next sign-in. Ends their sessions."""
    with operation() as op:
        with op.transaction() as ctx:
            service.find_user(ctx.session, username)
        password = read_password(from_stdin=password_stdin, prompt="New password")
        with op.transaction() as ctx:
            user = service.find_user(ctx.session, username)
            service.reset_password(ctx, user_id=user.id, password=password)
            typer.echo(f"reset the password of {username}; it must be changed at the next sign-in")


@users.command("unlock", epilog=EXIT_CODES_HELP)
def unlock_user(username: Username) -> None:
    """Lift a lockout after too many failed sign-ins, and reset the failure count."""
    with operation() as op, op.transaction() as ctx:
        user = service.find_user(ctx.session, username)
        was_locked = user.locked
        service.unlock_user(ctx, user_id=user.id)
        typer.echo(f"unlocked {username}" if was_locked else f"{username} was not locked; failure count reset")


# --- tokens ----------------------------------------------------------------------------------------


def token_status(token: ApiToken) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at <= utcnow():
        return "expired"
    return "active"


@tokens.command("create", epilog=EXIT_CODES_HELP)
def create_token(
    username: Annotated[str, typer.Argument(help="The user the token acts as.", show_default=False)],
    name: Annotated[str, typer.Option("--name", "-n", help="What the token is for.", show_default=False)],
    role: Annotated[
        list[Role] | None,
        typer.Option("--role", "-r", help="Limit the token to this role of its owner; repeat for several. "
                                          "Default: all the owner's roles.", show_default=False),
    ] = None,
    days: Annotated[int, typer.Option(help="Days until the token expires.", min=1, max=3650)] = 90,
) -> None:
    """Create an API token. The secret is printed once, alone on stdout, so a script can capture it."""
    with operation() as op, op.transaction() as ctx:
        user = service.find_user(ctx.session, username)
        roles = list(dict.fromkeys(role)) if role else None
        secret, token = signin.create_token(
            ctx, user=user, data=TokenCreate(name=name, roles=roles, expires_in_days=days)
        )
        expires = local_time(op.settings, token.expires_at)
        if user.disabled:
            note(f"warning: {username} is disabled; the token works only once the account is enabled again")
    note(f"token {token.id} {name!r} for {username}: roles {', '.join(token.roles) or '-'}; expires {expires}. "
         "The secret below is shown only this once.")
    typer.echo(secret)


@tokens.command("list", epilog=EXIT_CODES_HELP)
def list_tokens(
    username: Annotated[str | None, typer.Argument(help="Only this user's tokens.", show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """List API tokens (never their secrets): owner, roles, expiry, status and last use."""
    with operation() as op, op.transaction() as ctx:
        owner_id = service.find_user(ctx.session, username).id if username else None
        found: list[ApiToken] = []
        while True:
            page, total = signin.list_tokens(ctx.session, params=PageParams(limit=MAX_LIMIT, offset=len(found)),
                                             user_id=owner_id)
            found += page
            if not page or len(found) >= total:
                break
        if as_json:
            print_json([TokenRead.model_validate(token).model_dump(mode="json") for token in found])
            return
        owners = {user.id: user.username for user in all_users(ctx.session)}
        print_table(
            ["ID", "OWNER", "NAME", "PREFIX", "ROLES", "EXPIRES", "STATUS", "LAST USED"],
            [[str(token.id), owners.get(token.user_id, str(token.user_id)), token.name, token.prefix,
              ", ".join(token.roles) or "-", local_time(op.settings, token.expires_at), token_status(token),
              local_time(op.settings, token.last_used_at)] for token in found],
        )


@tokens.command("revoke", epilog=EXIT_CODES_HELP)
def revoke_token(token_id: Annotated[int, typer.Argument(help="The token's id (see `vigil token list`).")]) -> None:
    """Revoke an API token at once; requests carrying it get 401 from then on."""
    with operation() as op, op.transaction() as ctx:
        token = signin.get_token(ctx.session, token_id)
        if token.revoked_at is not None:
            typer.echo(f"token {token_id} was already revoked; nothing changed")
            return
        signin.revoke_token(ctx, token=token)
        typer.echo(f"revoked token {token_id} {token.name!r}")


# --- units -----------------------------------------------------------------------------------------


def _tree_rows(every: Sequence[OrgUnit]) -> list[list[str]]:
    children: dict[int | None, list[OrgUnit]] = {}
    for unit in every:
        children.setdefault(unit.parent_id, []).append(unit)
    rows: list[list[str]] = []

    def walk(parent: int | None, depth: int) -> None:
        for unit in sorted(children.get(parent, []), key=lambda one: one.id):
            rows.append([str(unit.id), "  " * depth + unit.name, unit.kind])
            walk(unit.id, depth + 1)

    walk(None, 0)
    return rows


@units.command("list", epilog=EXIT_CODES_HELP)
def list_units(as_json: JsonOption = False) -> None:
    """Show the organisation tree, with the ids that `--unit` accepts."""
    with operation() as op, op.transaction() as ctx:
        every = service.list_units(ctx.session)
        if as_json:
            print_json([UnitRead.model_validate(unit).model_dump(mode="json") for unit in every])
            return
        print_table(["ID", "NAME", "KIND"], _tree_rows(every))
