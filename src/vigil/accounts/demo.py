"""Demo data of the accounts domain: an organisation tree, one user per role, API tokens, sign-ins.

For evaluation only: the passwords below are published. ``load`` is idempotent: it adds what is
missing and never changes what exists (a user created by hand under a demo name keeps its password,
and ``login_status`` reports that its demo login does not work).

Every domain keeps a loader of this shape, ``load(ctx) -> {kind: how many were created}``, beside its
service; ``vigil demo`` runs them in order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from vigil.accounts import service, signin
from vigil.accounts.models import ApiToken, OrgUnit, UnitKind, User
from vigil.accounts.schemas import GrantCreate, TokenCreate, UserCreate
from vigil.core.auth import Role, verify_password
from vigil.core.config import Language
from vigil.core.context import Context

DEFAULT_ROOT_NAME = "Headquarters"  # what `vigil init` names the root unit
DEMO_ROOT_NAME = "总部 Headquarters"


@dataclass(frozen=True)
class DemoUnit:
    name: str
    kind: UnitKind
    parent: str  # the parent's name; DEMO_ROOT_NAME for the root


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: Role
    unit: str
    display_name: str
    language: Language | None = None


@dataclass(frozen=True)
class DemoToken:
    owner: str
    name: str
    roles: tuple[Role, ...]
    days: int
    revoked: bool = False


DEMO_UNITS: tuple[DemoUnit, ...] = (
    DemoUnit("上海分行 Shanghai Branch", UnitKind.BRANCH, DEMO_ROOT_NAME),
    DemoUnit("支付业务 Payments", UnitKind.BUSINESS_LINE, "上海分行 Shanghai Branch"),
    DemoUnit("零售银行 Retail Banking", UnitKind.BUSINESS_LINE, "上海分行 Shanghai Branch"),
    DemoUnit("北京分行 Beijing Branch", UnitKind.BRANCH, DEMO_ROOT_NAME),
    DemoUnit("对公业务 Corporate Banking", UnitKind.BUSINESS_LINE, "北京分行 Beijing Branch"),
    DemoUnit("云智科技 Yunzhi Technology (subsidiary)", UnitKind.SUBSIDIARY, DEMO_ROOT_NAME),
    DemoUnit("云平台 Cloud Platform", UnitKind.BUSINESS_LINE, "云智科技 Yunzhi Technology (subsidiary)"),
)

# One user per role at headquarters, and a branch analyst who sees only the Shanghai branch.
# Each password meets the default policy (12+ characters, 3+ character classes, no user name).
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", "Vigil-Demo-Sys-01!", Role.SYSTEM_ADMIN, DEMO_ROOT_NAME, "张伟 Zhang Wei"),
    DemoUser("secadmin", "Vigil-Demo-Sec-02!", Role.SECURITY_ADMIN, DEMO_ROOT_NAME, "李娜 Li Na"),
    DemoUser("auditor", "Vigil-Demo-Aud-03!", Role.AUDIT_ADMIN, DEMO_ROOT_NAME, "王芳 Wang Fang"),
    DemoUser("analyst", "Vigil-Demo-Ana-04!", Role.ANALYST, DEMO_ROOT_NAME, "刘洋 Liu Yang"),
    DemoUser("responder", "Vigil-Demo-Res-05!", Role.RESPONDER, DEMO_ROOT_NAME, "陈静 Chen Jing"),
    DemoUser("viewer", "Vigil-Demo-View-06!", Role.VIEWER, DEMO_ROOT_NAME, "赵磊 Zhao Lei"),
    DemoUser("analyst.sh", "Vigil-Demo-Sha-07!", Role.ANALYST, "上海分行 Shanghai Branch", "周敏 Zhou Min",
             language="zh_CN"),
)

DEMO_TOKENS: tuple[DemoToken, ...] = (
    DemoToken("secadmin", "rule-sync pipeline", (Role.SECURITY_ADMIN,), 365),
    DemoToken("viewer", "wallboard", (Role.VIEWER,), 90),
    DemoToken("analyst", "old enrichment script", (Role.ANALYST,), 30, revoked=True),
)

# Where the demo's sign-ins come from: office desktops, and one stranger guessing names.
OFFICE_ADDRESSES = ("10.10.1.21", "10.10.1.35", "10.10.2.14", "10.20.4.8", "10.10.1.77", "10.10.3.9", "10.21.0.12")
STRANGER_ADDRESS = "203.0.113.50"
STRANGER_GUESSES = (("administrator", "admin123"), ("root", "toor"))


def _load_units(ctx: Context, created: Counter[str]) -> dict[str, OrgUnit]:
    root = service.get_unit(ctx.session, service.root_unit_id(ctx.session))
    if root.name == DEFAULT_ROOT_NAME:
        service.rename_unit(ctx, unit_id=root.id, name=DEMO_ROOT_NAME)
        created["renamed root unit"] += 1
    units = {DEMO_ROOT_NAME: root}  # whatever the operator named the root, the demo hangs below it
    for spec in DEMO_UNITS:
        parent = units[spec.parent]
        existing = ctx.session.scalar(
            select(OrgUnit).where(OrgUnit.parent_id == parent.id, OrgUnit.name == spec.name)
        )
        if existing is None:
            existing = service.create_unit(ctx, name=spec.name, kind=spec.kind, parent_id=parent.id)
            created["organisation units"] += 1
        units[spec.name] = existing
    return units


def _load_users(ctx: Context, units: dict[str, OrgUnit], created: Counter[str]) -> list[DemoUser]:
    new: list[DemoUser] = []
    for spec in DEMO_USERS:
        if ctx.session.scalar(select(User.id).where(User.username == spec.username)) is not None:
            continue
        unit_id = units[spec.unit].id
        user = service.create_user(ctx, data=UserCreate(
            username=spec.username, display_name=spec.display_name, email=f"{spec.username}@example.com",
            password=spec.password, unit_id=unit_id, language=spec.language,
            grants=[GrantCreate(role=spec.role, unit_id=unit_id)],
        ))
        user.must_change_password = False  # documented demo logins work straight away
        created["users"] += 1
        new.append(spec)
    ctx.session.flush()
    return new


def _load_tokens(ctx: Context, created: Counter[str]) -> None:
    for spec in DEMO_TOKENS:
        owner = ctx.session.scalar(select(User).where(User.username == spec.owner))
        if owner is None or not {str(role) for role in spec.roles} <= {grant.role for grant in owner.grants}:
            continue  # someone else's account under a demo name, without the demo's roles
        exists = ctx.session.scalar(
            select(ApiToken.id).where(ApiToken.user_id == owner.id, ApiToken.name == spec.name)
        )
        if exists is not None:
            continue
        # The secret is dropped: demo tokens populate the token pages; `vigil token create` makes usable ones.
        _, token = signin.create_token(
            ctx, user=owner, data=TokenCreate(name=spec.name, roles=list(spec.roles), expires_in_days=spec.days)
        )
        if spec.revoked:
            signin.revoke_token(ctx, token=token)
        created["API tokens"] += 1


def _sign_in_history(ctx: Context, new_users: list[DemoUser], created: Counter[str]) -> None:
    """Real sign-ins through the sign-in service, so the audit trail holds what a morning looks like."""
    if not new_users:
        return
    session = ctx.session
    for username, guess in STRANGER_GUESSES:
        signin.authenticate(session, username=username, password=guess, source_ip=STRANGER_ADDRESS)
        created["audited sign-in attempts"] += 1
    for spec, address in zip(new_users, OFFICE_ADDRESSES * 2, strict=False):
        if spec.role == Role.ANALYST:  # a typo first: a failure, then the right password
            signin.authenticate(session, username=spec.username, password=spec.password.lower(),
                                source_ip=address)
            created["audited sign-in attempts"] += 1
        signin.authenticate(session, username=spec.username, password=spec.password, source_ip=address)
        created["audited sign-in attempts"] += 1


def load(ctx: Context) -> dict[str, int]:
    """Add the demo organisation, users, tokens and sign-ins that are missing; how many of each were added."""
    created: Counter[str] = Counter()
    units = _load_units(ctx, created)
    new_users = _load_users(ctx, units, created)
    _load_tokens(ctx, created)
    _sign_in_history(ctx, new_users, created)
    return dict(created)


def login_status(ctx: Context) -> list[tuple[DemoUser, bool]]:
    """Each demo login, and whether it works: the account exists, is enabled and has the demo password."""
    result: list[tuple[DemoUser, bool]] = []
    for spec in DEMO_USERS:
        user = ctx.session.scalar(select(User).where(User.username == spec.username))
        works = user is not None and not user.disabled and verify_password(user.password_hash, spec.password)
        result.append((spec, works))
    return result
