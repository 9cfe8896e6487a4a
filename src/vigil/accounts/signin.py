"""Sign-in, lockout, browser sessions, API tokens, and turning either into a ``Principal``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vigil.accounts import service
from vigil.accounts.models import ApiToken, SecurityPolicy, User, WebSession
from vigil.accounts.schemas import PasswordChange, TokenCreate
from vigil.core import audit
from vigil.core.auth import (
    TOKEN_PREFIX,
    Grant,
    Principal,
    Role,
    UnitTree,
    digest,
    dummy_hash,
    hash_password,
    new_secret,
    password_needs_rehash,
    verify_password,
)
from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import BadInput, NotFound, PermissionDenied
from vigil.core.pagination import PageParams, paginate

GENERIC_REFUSAL = "Invalid user name or password."


@dataclass(frozen=True)
class SignInResult:
    user: User | None
    reason: str  # for the audit trail only; users always see GENERIC_REFUSAL


def authenticate(session: Session, *, username: str, password: str, source_ip: str) -> SignInResult:
    """Check a password, count failures towards lockout, and audit the attempt either way.

    The caller must commit even when sign-in fails, so the failure count and audit record stay.
    """
    policy = service.get_policy(session)
    user = session.scalar(select(User).where(User.username == username), execution_options=service.UNSCOPED)
    root = service.root_unit_id(session)
    actor = audit.Actor(user.id if user else None, username[:200], user.unit_id if user else root, source_ip)

    def refuse(reason: str) -> SignInResult:
        audit.record(session, actor=actor, action="auth.login", outcome=audit.Outcome.FAILURE,
                     target_type="user", target_id=user.id if user else "", details={"reason": reason})
        return SignInResult(None, reason)

    if user is None:
        verify_password(dummy_hash(), password)  # same cost as a real check: no user-name probing by timing
        return refuse("unknown user")
    if user.locked:
        verify_password(user.password_hash, password)  # same cost: timing must not tell a locked account
        return refuse("account locked")
    if not verify_password(user.password_hash, password):
        count_failure(session, user=user, policy=policy, actor=actor)
        return refuse("wrong password")
    if user.disabled:
        return refuse("account disabled")
    user.failed_logins = 0
    user.last_login_at = utcnow()
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    max_age = policy.password_max_age_days
    if max_age and user.password_changed_at < utcnow() - timedelta(days=max_age):
        user.must_change_password = True
    audit.record(session, actor=actor, action="auth.login", target_type="user", target_id=user.id)
    return SignInResult(user, "ok")


def count_failure(session: Session, *, user: User, policy: SecurityPolicy, actor: audit.Actor) -> None:
    """One more wrong password of ``user``: at the policy's limit the account locks, and that is audited."""
    user.failed_logins += 1
    if user.failed_logins >= policy.max_failed_logins:
        user.locked_until = utcnow() + timedelta(minutes=policy.lockout_minutes)
        user.failed_logins = 0
        audit.record(session, actor=actor, action="user.lock", outcome=audit.Outcome.SUCCESS,
                     target_type="user", target_id=user.id, unit_id=user.unit_id,
                     details={"minutes": policy.lockout_minutes, "after_failures": policy.max_failed_logins})


# --- browser sessions ------------------------------------------------------------------------------


def start_session(session: Session, *, user: User, source_ip: str, user_agent: str, max_hours: int
                  ) -> tuple[str, WebSession]:
    secret = new_secret()
    web_session = WebSession(
        token_hash=digest(secret),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=utcnow() + timedelta(hours=max_hours),
        source_ip=source_ip,
        user_agent=user_agent[:300],
    )
    session.add(web_session)
    session.flush()
    return secret, web_session


def resolve_session(session: Session, *, secret: str, idle_minutes: int) -> WebSession | None:
    web_session = session.scalar(select(WebSession).where(WebSession.token_hash == digest(secret)))
    now = utcnow()
    if web_session is None or web_session.ended_at is not None or web_session.expires_at <= now:
        return None
    if web_session.last_seen_at < now - timedelta(minutes=idle_minutes):
        web_session.ended_at = now
        return None
    # Touch at most once a minute, to keep reads from writing on every request.
    if web_session.last_seen_at < now - timedelta(minutes=1):
        web_session.last_seen_at = now
    return web_session


def end_session(ctx: Context, *, session_id: int) -> None:
    web_session = ctx.session.get(WebSession, session_id)
    if web_session is not None and web_session.ended_at is None:
        web_session.ended_at = utcnow()
        ctx.audit("auth.logout", target_type="user", target_id=web_session.user_id)


# --- principals ------------------------------------------------------------------------------------


def principal_for(
    user: User,
    *,
    tree: UnitTree,
    token_roles: frozenset[Role] | None = None,
    web_session: WebSession | None = None,
) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        unit_id=user.unit_id,
        grants=tuple(Grant(Role(grant.role), grant.unit_id) for grant in user.grants),
        tree=tree,
        language=user.language,
        token_roles=token_roles,
        session_id=web_session.id if web_session else None,
        csrf_token=web_session.csrf_token if web_session else None,
    )


def active_user(session: Session, user_id: int) -> User | None:
    user = session.scalar(select(User).where(User.id == user_id), execution_options=service.UNSCOPED)
    if user is None or user.disabled:
        return None
    return user


# --- API tokens ------------------------------------------------------------------------------------


def create_token(ctx: Context, *, user: User, data: TokenCreate) -> tuple[str, ApiToken]:
    held = {Role(grant.role) for grant in user.grants}
    roles = set(data.roles) if data.roles is not None else held
    if not roles <= held:
        missing = ", ".join(sorted(roles - held))
        raise BadInput(f"a token can carry only roles its owner holds (not {missing})",
                       errors=[{"field": "roles", "message": f"not held: {missing}"}])
    max_days = service.get_policy(ctx.session).token_max_days
    if data.expires_in_days > max_days:
        raise BadInput(f"the security policy allows tokens of at most {max_days} days",
                       errors=[{"field": "expires_in_days", "message": f"at most {max_days}"}])
    secret = new_secret(TOKEN_PREFIX)
    token = ApiToken(
        user_id=user.id,
        unit_id=user.unit_id,
        name=data.name,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=digest(secret),
        roles=sorted(str(role) for role in roles),
        expires_at=utcnow() + timedelta(days=data.expires_in_days),
    )
    ctx.session.add(token)
    ctx.session.flush()
    ctx.audit("token.create", target_type="token", target_id=token.id, unit_id=user.unit_id,
              details={"owner": user.username, "name": data.name, "roles": token.roles,
                       "expires_at": token.expires_at.isoformat()})
    return secret, token


def list_tokens(session: Session, *, params: PageParams, user_id: int | None) -> tuple[list[ApiToken], int]:
    statement = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if user_id is not None:
        statement = statement.where(ApiToken.user_id == user_id)
    return paginate(session, statement, params)


def get_token(session: Session, token_id: int) -> ApiToken:
    token = session.scalar(select(ApiToken).where(ApiToken.id == token_id))
    if token is None:
        raise NotFound(f"token {token_id} does not exist or is outside your scope")
    return token


def revoke_token(ctx: Context, *, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        ctx.audit("token.revoke", target_type="token", target_id=token.id, unit_id=token.unit_id,
                  details={"name": token.name, "owner_id": token.user_id})
    return token


def resolve_token(session: Session, *, secret: str) -> tuple[ApiToken, User] | None:
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(secret)),
                           execution_options=service.UNSCOPED)
    now = utcnow()
    if token is None or token.revoked_at is not None or token.expires_at <= now:
        return None
    user = active_user(session, token.user_id)
    if user is None:
        return None
    if token.last_used_at is None or token.last_used_at < now - timedelta(minutes=1):
        session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now),
                        execution_options=service.UNSCOPED)
    return token, user


# --- self-service ----------------------------------------------------------------------------------


class CurrentPasswordRefused(PermissionDenied):
    """A password change refused at its first step. What that step recorded (the failure count, a lockout,
    the audit record) must be kept although the change is refused: the caller commits it."""


class WrongCurrentPassword(CurrentPasswordRefused):
    pass


class AccountLocked(CurrentPasswordRefused):
    pass


def check_current_password(ctx: Context, *, user: User, password: str) -> None:
    """The first step of changing one's own password: the current one, checked like a sign-in.

    A wrong password counts towards lockout exactly as a failed sign-in does (the same policy), and a
    locked account cannot change its password at all; both are audited and raise
    ``CurrentPasswordRefused`` after recording, so that whoever holds a stolen session cannot guess the
    password without limit. The caller must commit what was recorded before the refusal reaches the user.
    """
    def refuse(reason: str) -> None:
        ctx.audit("user.password.change", outcome=audit.Outcome.FAILURE, target_type="user", target_id=user.id,
                  unit_id=user.unit_id, details={"reason": reason})

    if user.locked:
        verify_password(user.password_hash, password)  # the same cost either way
        refuse("account locked")
        raise AccountLocked("your account is locked after too many wrong passwords; try again later, or ask "
                            "an administrator to unlock it")
    if not verify_password(user.password_hash, password):
        refuse("wrong password")
        count_failure(ctx.session, user=user, policy=service.get_policy(ctx.session), actor=ctx.actor)
        raise WrongCurrentPassword("the current password is wrong")
    user.failed_logins = 0


def set_own_password(ctx: Context, *, user: User, new_password: str) -> None:
    """The second step, after ``check_current_password``: the new password, if the policy accepts it."""
    if verify_password(user.password_hash, new_password):
        raise BadInput("the new password must differ from the current one",
                       errors=[{"field": "new_password", "message": "same as the current password"}])
    service.check_new_password(ctx.session, password=new_password, username=user.username)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    user.must_change_password = False
    ctx.audit("user.password.change", target_type="user", target_id=user.id, unit_id=user.unit_id)


def change_own_password(ctx: Context, *, user: User, data: PasswordChange) -> None:
    """Both steps; on ``CurrentPasswordRefused`` the caller must still commit (see check_current_password)."""
    check_current_password(ctx, user=user, password=data.current_password)
    set_own_password(ctx, user=user, new_password=data.new_password)
