"""Business logic of organisation units, users, role grants and the security policy.

Functions take a ``Context`` (session, actor) and keyword arguments, change records, write the
audit trail, and never commit: the caller owns the transaction, so a failure leaves nothing behind.

Separation of duties (三权分立) is enforced here as well as by the endpoints' guards. With a signed-in
principal (the API and the pages): granting and revoking a role needs ``roles:assign`` on the grant's
unit (the security administrator's, never the system administrator's), and the password, the disabling
and the unit of an account holding one of the three administrator roles cannot be changed at all, so
that no administrator can take over another's account. Without a principal (the local operator of the
``vigil`` command on the server) both are allowed, and audited like any change.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from vigil.accounts.models import ApiToken, OrgUnit, SecurityPolicy, UnitKind, User, WebSession
from vigil.accounts.models import RoleGrant as GrantRow
from vigil.accounts.schemas import GrantCreate, PolicyUpdate, ProfileUpdate, UserCreate, UserUpdate
from vigil.core.auth import (
    SEPARATED_ROLES,
    PasswordRules,
    Permission,
    Role,
    UnitTree,
    hash_password,
    password_problems,
)
from vigil.core.context import Context
from vigil.core.db import get_scope, utcnow
from vigil.core.errors import BadInput, Conflict, NotFound, PermissionDenied
from vigil.core.pagination import PageParams, paginate

UNSCOPED = {"vigil_unscoped": True}

# --- organisation units ----------------------------------------------------------------------------


def load_unit_tree(session: Session) -> UnitTree:
    """The whole tree, whatever the session's scope: permissions are computed from it."""
    rows = session.execute(select(OrgUnit.id, OrgUnit.parent_id), execution_options=UNSCOPED).all()
    return UnitTree({unit_id: parent_id for unit_id, parent_id in rows})


def root_unit_id(session: Session) -> int:
    root = session.scalar(
        select(OrgUnit.id).where(OrgUnit.parent_id.is_(None)).order_by(OrgUnit.id), execution_options=UNSCOPED
    )
    if root is None:
        raise RuntimeError("no organisation unit exists; run `vigil init`")
    return root


def ensure_root_unit(session: Session, name: str = "Headquarters") -> OrgUnit:
    existing = session.scalar(
        select(OrgUnit).where(OrgUnit.parent_id.is_(None)).order_by(OrgUnit.id), execution_options=UNSCOPED
    )
    if existing is not None:
        return existing
    root = OrgUnit(name=name, kind=UnitKind.HEADQUARTERS, parent_id=None)
    session.add(root)
    session.flush()
    return root


def _units_query() -> Select[OrgUnit]:
    return select(OrgUnit).order_by(OrgUnit.parent_id.is_not(None), OrgUnit.name, OrgUnit.id)


def list_units(session: Session) -> Sequence[OrgUnit]:
    return session.scalars(_units_query()).all()


def page_units(session: Session, *, params: PageParams) -> tuple[list[OrgUnit], int]:
    return paginate(session, _units_query(), params)


def get_unit(session: Session, unit_id: int) -> OrgUnit:
    unit = session.scalar(select(OrgUnit).where(OrgUnit.id == unit_id))
    if unit is None:
        raise NotFound(f"organisation unit {unit_id} does not exist or is outside your scope")
    return unit


def _check_writable_unit(ctx: Context, unit_id: int) -> None:
    """Refuse a unit outside the caller's scope without telling whether it exists."""
    if not get_scope(ctx.session).allows(unit_id):
        raise NotFound(f"organisation unit {unit_id} does not exist or is outside your scope")


def create_unit(ctx: Context, *, name: str, kind: UnitKind, parent_id: int) -> OrgUnit:
    parent = get_unit(ctx.session, parent_id)
    if kind == UnitKind.HEADQUARTERS:
        raise BadInput("only the root unit is headquarters", errors=[{"field": "kind", "message": "not allowed"}])
    clash = ctx.session.scalar(select(OrgUnit.id).where(OrgUnit.parent_id == parent.id, OrgUnit.name == name))
    if clash is not None:
        raise Conflict(f"{parent.name} already has a unit named {name!r}")
    unit = OrgUnit(name=name, kind=kind, parent_id=parent.id)
    ctx.session.add(unit)
    ctx.session.flush()
    ctx.audit("unit.create", target_type="unit", target_id=unit.id, unit_id=parent.id,
              details={"name": name, "kind": str(kind), "parent_id": parent.id})
    return unit


def rename_unit(ctx: Context, *, unit_id: int, name: str) -> OrgUnit:
    unit = get_unit(ctx.session, unit_id)
    old = unit.name
    # Siblings may lie outside the caller's scope (a branch administrator renaming the branch): all count.
    same_parent = OrgUnit.parent_id.is_(None) if unit.parent_id is None else OrgUnit.parent_id == unit.parent_id
    clash = ctx.session.scalar(select(OrgUnit.id).where(same_parent, OrgUnit.name == name, OrgUnit.id != unit.id),
                               execution_options=UNSCOPED)
    if clash is not None:
        raise Conflict(f"another unit under the same parent is already named {name!r}")
    unit.name = name
    ctx.audit("unit.update", target_type="unit", target_id=unit.id, unit_id=unit.id,
              details={"name": [old, name]})
    return unit


# --- security policy -------------------------------------------------------------------------------


def get_policy(session: Session) -> SecurityPolicy:
    policy = session.get(SecurityPolicy, 1)
    if policy is None:
        policy = SecurityPolicy(id=1)
        session.add(policy)
        session.flush()
    return policy


def password_rules(session: Session) -> PasswordRules:
    policy = get_policy(session)
    return PasswordRules(min_length=policy.password_min_length, min_classes=policy.password_min_classes)


def update_policy(ctx: Context, *, data: PolicyUpdate) -> SecurityPolicy:
    policy = get_policy(ctx.session)
    changes = {}
    for field, value in data.model_dump().items():
        if getattr(policy, field) != value:
            changes[field] = [getattr(policy, field), value]
            setattr(policy, field, value)
    policy.updated_at = utcnow()
    policy.updated_by = ctx.actor.name
    ctx.audit("policy.update", target_type="policy", target_id="security", details=changes)
    return policy


def check_new_password(session: Session, *, password: str, username: str) -> None:
    problems = password_problems(password_rules(session), password, username=username)
    if problems:
        raise BadInput(
            "the password does not meet the password policy: " + "; ".join(problems),
            errors=[{"field": "password", "message": problem} for problem in problems],
        )


# --- users -----------------------------------------------------------------------------------------


def list_users(session: Session, *, params: PageParams, query: str = "", unit_id: int | None = None,
               ) -> tuple[list[User], int]:
    statement = select(User).order_by(User.username)
    if query:
        like = f"%{query.lower()}%"
        statement = statement.where(
            or_(func.lower(User.username).like(like), func.lower(User.display_name).like(like),
                func.lower(User.email).like(like))
        )
    if unit_id is not None:
        statement = statement.where(User.unit_id == unit_id)
    return paginate(session, statement, params)


def get_user(session: Session, user_id: int) -> User:
    user = session.scalar(select(User).where(User.id == user_id))
    if user is None:
        raise NotFound(f"user {user_id} does not exist or is outside your scope")
    return user


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"user {username!r} does not exist or is outside your scope")
    return user


def _check_separation(roles: set[str]) -> None:
    held = sorted(role for role in roles if role in SEPARATED_ROLES)
    if len(held) > 1:
        raise Conflict(
            "separation of duties: one account may hold only one of the system, security and audit "
            f"administrator roles (asked for {', '.join(held)})"
        )


def all_grants(session: Session, user_id: int) -> list[tuple[str, int]]:
    """Every (role, unit) the user holds, including grants outside the session's scope."""
    rows = session.execute(select(GrantRow.role, GrantRow.unit_id).where(GrantRow.user_id == user_id),
                           execution_options=UNSCOPED).all()
    return [(role, unit_id) for role, unit_id in rows]


def administrator_roles(session: Session, user_id: int) -> list[str]:
    """Which of the three administrator roles the user holds, on any unit (at most one)."""
    return sorted({role for role, _ in all_grants(session, user_id) if role in SEPARATED_ROLES})


def _check_not_administrator(ctx: Context, user: User, *, change: str, command: str) -> None:
    """Over the API and the pages, an administrator account's password, status and unit are out of reach:
    ``change`` says what happens to it "only on the server", where the operator runs ``command``."""
    if ctx.principal is None:
        return
    held = administrator_roles(ctx.session, user.id)
    if held:
        raise PermissionDenied(
            f"{user.username} holds the {held[0]} role, and an administrator account {change} only on the "
            f"server: run `{command}` there"
        )


def _check_may_assign(ctx: Context, unit_id: int) -> None:
    """Granting and revoking roles is the security administrator's job (``roles:assign``), never that of
    the system administrator who creates accounts and sets their passwords."""
    if ctx.principal is not None and unit_id not in ctx.principal.units_for(Permission.ROLES_ASSIGN):
        raise PermissionDenied(
            f"granting and revoking roles needs the permission {Permission.ROLES_ASSIGN} on the unit "
            "(the security administrator's)", permission=str(Permission.ROLES_ASSIGN)
        )


def check_manageable(ctx: Context, user: User) -> None:
    """An administrator may change a user only when every role the user holds lies within the
    administrator's units: a branch administrator must not take over an account with wider powers."""
    scope = get_scope(ctx.session)
    outside = sorted({unit_id for _, unit_id in all_grants(ctx.session, user.id) if not scope.allows(unit_id)})
    if outside:
        raise PermissionDenied(
            f"{user.username} holds roles on organisation units outside yours; "
            "an administrator of a unit above them must make this change"
        )


def create_user(ctx: Context, *, data: UserCreate) -> User:
    _check_writable_unit(ctx, data.unit_id)
    taken = ctx.session.scalar(select(User.id).where(User.username == data.username),
                               execution_options=UNSCOPED)
    if taken is not None:
        raise Conflict(f"the user name {data.username!r} is taken")
    check_new_password(ctx.session, password=data.password, username=data.username)
    _check_separation({str(grant.role) for grant in data.grants})
    user = User(
        username=data.username,
        display_name=data.display_name or data.username,
        email=str(data.email or ""),
        password_hash=hash_password(data.password),
        unit_id=data.unit_id,
        language=data.language,
        must_change_password=True,
    )
    ctx.session.add(user)
    ctx.session.flush()
    ctx.audit("user.create", target_type="user", target_id=user.id, unit_id=user.unit_id,
              details={"username": user.username})
    for grant in data.grants:
        grant_role(ctx, user=user, grant=grant)
    return user


def update_user(ctx: Context, *, user_id: int, data: UserUpdate) -> User:
    user = get_user(ctx.session, user_id)
    check_manageable(ctx, user)
    changes: dict[str, list[object]] = {}
    for field, value in data.model_dump(exclude_unset=True).items():
        if field == "email":
            value = str(value or "")
        if field == "unit_id":
            _check_writable_unit(ctx, value)
            if value != user.unit_id:
                _check_not_administrator(ctx, user, change="moves to another unit",
                                         command=f"vigil user move {user.username} --unit UNIT")
        if field == "disabled" and value and user.id == ctx.actor.user_id:
            raise Conflict("you cannot disable your own account")
        if field == "disabled" and value and not user.disabled:
            _check_not_administrator(ctx, user, change="is disabled", command=f"vigil user disable {user.username}")
        if getattr(user, field) != value:
            changes[field] = [getattr(user, field), value]
            setattr(user, field, value)
    if "disabled" in changes and user.disabled:
        from_sessions = end_user_sessions(ctx.session, user_id=user.id)
        changes["sessions_ended"] = [from_sessions, 0]
    if "unit_id" in changes:
        # A user's API tokens belong to the user's unit: they move along, so the user still sees them.
        for token in ctx.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)):
            token.unit_id = user.unit_id
    action = "user.disable" if changes.get("disabled") == [False, True] else "user.update"
    ctx.audit(action, target_type="user", target_id=user.id, unit_id=user.unit_id,
              details={k: [str(v) for v in pair] for k, pair in changes.items()})
    return user


def update_profile(ctx: Context, *, user: User, data: ProfileUpdate) -> User:
    """A user's own display name and language (self-service)."""
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(user, field, value)
    ctx.audit("user.profile.update", target_type="user", target_id=user.id, unit_id=user.unit_id,
              details={key: str(value) for key, value in changes.items()})
    return user


def end_user_sessions(session: Session, *, user_id: int) -> int:
    ended = 0
    for web_session in session.scalars(
        select(WebSession).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
    ):
        web_session.ended_at = utcnow()
        ended += 1
    return ended


def grant_role(ctx: Context, *, user: User, grant: GrantCreate) -> GrantRow:
    _check_writable_unit(ctx, grant.unit_id)
    _check_may_assign(ctx, grant.unit_id)
    if user.id == ctx.actor.user_id:
        raise PermissionDenied("you cannot change your own roles; ask another administrator")
    check_manageable(ctx, user)
    # Every grant counts, also those on units the caller cannot see: separation is per account.
    held = all_grants(ctx.session, user.id)
    if (str(grant.role), grant.unit_id) in held:
        raise Conflict(f"{user.username} already holds {grant.role} on unit {grant.unit_id}")
    _check_separation({role for role, _ in held} | {str(grant.role)})
    if ctx.principal is not None and grant.role in SEPARATED_ROLES and user.must_change_password:
        # Whoever set the first password could otherwise sign in as the new administrator.
        raise Conflict(
            f"{user.username} still has the password their account was created or reset with; an "
            f"administrator role is granted only after they have chosen their own password"
        )
    row = GrantRow(role=str(grant.role), unit_id=grant.unit_id, granted_by=ctx.actor.name)
    user.grants.append(row)
    ctx.session.flush()
    ctx.audit("user.role.grant", target_type="user", target_id=user.id, unit_id=grant.unit_id,
              details={"username": user.username, "role": str(grant.role), "unit_id": grant.unit_id})
    return row


def revoke_grant(ctx: Context, *, user_id: int, grant_id: int) -> None:
    user = get_user(ctx.session, user_id)
    if user.id == ctx.actor.user_id:
        raise PermissionDenied("you cannot change your own roles; ask another administrator")
    check_manageable(ctx, user)
    row = next((g for g in user.grants if g.id == grant_id), None)
    if row is None or not get_scope(ctx.session).allows(row.unit_id):
        raise NotFound(f"grant {grant_id} does not exist on user {user_id}")
    _check_may_assign(ctx, row.unit_id)
    user.grants.remove(row)
    ctx.audit("user.role.revoke", target_type="user", target_id=user.id, unit_id=row.unit_id,
              details={"username": user.username, "role": row.role, "unit_id": row.unit_id})


def set_role(ctx: Context, *, user: User, role: Role, unit_id: int) -> GrantRow:
    """Replace every grant the caller can see with this one role (the CLI's set-role)."""
    _check_writable_unit(ctx, unit_id)
    _check_may_assign(ctx, unit_id)
    if user.id == ctx.actor.user_id:
        raise PermissionDenied("you cannot change your own roles; ask another administrator")
    check_manageable(ctx, user)
    scope = get_scope(ctx.session)
    for row in [g for g in user.grants if scope.allows(g.unit_id)]:
        user.grants.remove(row)
        ctx.audit("user.role.revoke", target_type="user", target_id=user.id, unit_id=row.unit_id,
                  details={"username": user.username, "role": row.role, "unit_id": row.unit_id})
    ctx.session.flush()
    return grant_role(ctx, user=user, grant=GrantCreate(role=role, unit_id=unit_id))


def reset_password(ctx: Context, *, user_id: int, password: str) -> User:
    """An administrator sets a temporary password; the user must change it at next sign-in."""
    user = get_user(ctx.session, user_id)
    check_manageable(ctx, user)
    _check_not_administrator(ctx, user, change="has its password reset",
                             command=f"vigil user reset-password {user.username}")
    check_new_password(ctx.session, password=password, username=user.username)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.must_change_password = user.id != ctx.actor.user_id
    user.failed_logins = 0
    user.locked_until = None
    ended = end_user_sessions(ctx.session, user_id=user.id)
    ctx.audit("user.password.reset", target_type="user", target_id=user.id, unit_id=user.unit_id,
              details={"username": user.username, "sessions_ended": ended})
    return user


def unlock_user(ctx: Context, *, user_id: int) -> User:
    user = get_user(ctx.session, user_id)
    check_manageable(ctx, user)
    user.failed_logins = 0
    user.locked_until = None
    ctx.audit("user.unlock", target_type="user", target_id=user.id, unit_id=user.unit_id,
              details={"username": user.username})
    return user
