"""Who may do what: roles, permissions, the unit tree, the signed-in principal, and password hashing.

Roles follow the separation of duties of 等保2.0 (三权分立): the system, security and audit
administrators are three different people, none of whom can do another's job, and no account may
hold two of those roles at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Permission(StrEnum):
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    ROLES_ASSIGN = "roles:assign"
    UNITS_READ = "units:read"
    UNITS_WRITE = "units:write"
    SETTINGS_READ = "settings:read"
    METRICS_READ = "metrics:read"
    POLICY_READ = "policy:read"
    POLICY_WRITE = "policy:write"
    AUDIT_READ = "audit:read"
    AUDIT_VERIFY = "audit:verify"
    # Business data of the SOC domains, used as those domains land.
    EVENTS_READ = "events:read"
    EVENTS_INGEST = "events:ingest"
    SOURCES_READ = "sources:read"
    SOURCES_WRITE = "sources:write"
    RULES_READ = "rules:read"
    RULES_WRITE = "rules:write"
    INTEGRATIONS_WRITE = "integrations:write"
    ALERTS_READ = "alerts:read"
    ALERTS_WRITE = "alerts:write"
    INTEL_READ = "intel:read"
    INTEL_WRITE = "intel:write"
    INCIDENTS_READ = "incidents:read"
    INCIDENTS_WRITE = "incidents:write"
    RESPONSE_EXECUTE = "response:execute"
    DASHBOARDS_READ = "dashboards:read"
    KB_READ = "kb:read"
    KB_WRITE = "kb:write"


class Role(StrEnum):
    SYSTEM_ADMIN = "system_admin"
    SECURITY_ADMIN = "security_admin"
    AUDIT_ADMIN = "audit_admin"
    ANALYST = "analyst"
    RESPONDER = "responder"
    VIEWER = "viewer"
    # For the API tokens of log shippers (Filebeat, Fluent Bit, ...): may send events, read nothing.
    SHIPPER = "shipper"


P = Permission
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    # Accounts (create, edit, disable, unlock, reset passwords) and platform settings; never roles,
    # never the audit trail, never security policies or rules.
    Role.SYSTEM_ADMIN: frozenset(
        {P.USERS_READ, P.USERS_WRITE, P.UNITS_READ, P.UNITS_WRITE, P.SETTINGS_READ, P.METRICS_READ}
    ),
    # Who holds which role, security policies, detection rules and integrations; reads accounts to find
    # whom to grant to, but never creates, edits or sets the password of one; never the audit trail.
    Role.SECURITY_ADMIN: frozenset(
        {
            P.USERS_READ, P.ROLES_ASSIGN, P.UNITS_READ, P.POLICY_READ, P.POLICY_WRITE, P.RULES_READ,
            P.RULES_WRITE, P.INTEGRATIONS_WRITE, P.SOURCES_READ, P.SOURCES_WRITE, P.INTEL_READ, P.INTEL_WRITE,
        }
    ),
    # Reads and verifies the audit trail; nothing else.
    Role.AUDIT_ADMIN: frozenset({P.UNITS_READ, P.AUDIT_READ, P.AUDIT_VERIFY}),
    Role.ANALYST: frozenset(
        {
            P.UNITS_READ, P.EVENTS_READ, P.SOURCES_READ, P.RULES_READ, P.ALERTS_READ, P.ALERTS_WRITE,
            P.INCIDENTS_READ, P.INCIDENTS_WRITE, P.DASHBOARDS_READ, P.INTEL_READ, P.INTEL_WRITE,
        }
    ),
    Role.RESPONDER: frozenset(
        {P.UNITS_READ, P.ALERTS_READ, P.INCIDENTS_READ, P.INCIDENTS_WRITE, P.RESPONSE_EXECUTE, P.DASHBOARDS_READ}
    ),
    Role.VIEWER: frozenset({P.UNITS_READ, P.ALERTS_READ, P.INCIDENTS_READ, P.DASHBOARDS_READ}),
    Role.SHIPPER: frozenset({P.EVENTS_INGEST}),
}

# The knowledge base (post-mortems, runbooks): every business role reads it; those who investigate and
# respond write it. Neither the system nor the audit administrator holds business data, so neither gets it.
_KNOWLEDGE_BASE: Mapping[Role, frozenset[Permission]] = {
    Role.SECURITY_ADMIN: frozenset({P.KB_READ, P.KB_WRITE}),
    Role.ANALYST: frozenset({P.KB_READ, P.KB_WRITE}),
    Role.RESPONDER: frozenset({P.KB_READ, P.KB_WRITE}),
    Role.VIEWER: frozenset({P.KB_READ}),
}
ROLE_PERMISSIONS = {role: granted | _KNOWLEDGE_BASE.get(role, frozenset())
                    for role, granted in ROLE_PERMISSIONS.items()}

# The three powers: one account may hold at most one of these.
SEPARATED_ROLES: frozenset[Role] = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN})


class UnitTree:
    """Parent links of the organisation units, answering "which units lie below this one"."""

    def __init__(self, parents: Mapping[int, int | None]) -> None:
        self._children: dict[int, list[int]] = {unit: [] for unit in parents}
        for unit, parent in parents.items():
            if parent is not None and parent in self._children:
                self._children[parent].append(unit)
        self.roots = frozenset(unit for unit, parent in parents.items() if parent is None)

    def subtree(self, unit: int) -> frozenset[int]:
        if unit not in self._children:
            return frozenset()
        seen: set[int] = set()
        stack = [unit]
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self._children[current])
        return frozenset(seen)

    def __contains__(self, unit: object) -> bool:
        return unit in self._children


@dataclass(frozen=True)
class Grant:
    role: Role
    unit_id: int


@dataclass(frozen=True)
class Principal:
    """The signed-in user of one request: grants, and for API tokens the roles the token is limited to."""

    user_id: int
    username: str
    display_name: str
    unit_id: int
    grants: tuple[Grant, ...]
    tree: UnitTree = field(repr=False, compare=False)
    language: str | None = None
    token_roles: frozenset[Role] | None = None
    session_id: int | None = None
    csrf_token: str | None = field(default=None, repr=False)

    @property
    def effective_grants(self) -> tuple[Grant, ...]:
        if self.token_roles is None:
            return self.grants
        return tuple(grant for grant in self.grants if grant.role in self.token_roles)

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(grant.role for grant in self.effective_grants)

    def units_for(self, permission: Permission) -> frozenset[int]:
        """Every unit where this principal holds ``permission``: granted units and all below them."""
        units: set[int] = set()
        for grant in self.effective_grants:
            if permission in ROLE_PERMISSIONS[grant.role]:
                units |= self.tree.subtree(grant.unit_id)
        return frozenset(units)

    def has(self, permission: Permission) -> bool:
        return bool(self.units_for(permission))

    def has_everywhere(self, permission: Permission) -> bool:
        """Held at a root unit, as platform-wide settings and policies require."""
        return any(root in self.units_for(permission) for root in self.tree.roots)


def permissions_of(roles: Iterable[Role]) -> frozenset[Permission]:
    result: set[Permission] = set()
    for role in roles:
        result |= ROLE_PERMISSIONS[role]
    return frozenset(result)


# --- passwords -------------------------------------------------------------------------------------

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# A hash that never verifies, so an unknown user name costs as much time as a wrong password.
@cache
def dummy_hash() -> str:
    """A hash of nothing, verified when a sign-in names no user (made at first need: hashing takes ~0.2 s,
    which every command would otherwise pay at start)."""
    return _hasher.hash(secrets.token_urlsafe(16))

COMMON_PASSWORDS = frozenset(
    [
        "password", "password1", "password123", "passw0rd", "123456", "12345678", "123456789", "1234567890",
        "qwerty", "qwerty123", "qwertyuiop", "1q2w3e4r", "1qaz2wsx", "abc123", "admin", "admin123",
        "administrator", "letmein", "welcome", "welcome1", "iloveyou", "monkey", "dragon", "football",
        "baseball", "master", "sunshine", "princess", "trustno1", "changeme", "p@ssw0rd", "p@ssword", "a123456",
        "aa123456", "woaini1314", "5201314", "123123", "111111", "000000", "666666", "888888", "zxcvbnm",
        "asdfghjkl",
    ]
)

_CLASSES = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"[0-9]"), re.compile(r"[^a-zA-Z0-9]"))


@dataclass(frozen=True)
class PasswordRules:
    min_length: int = 12
    min_classes: int = 3


def password_problems(rules: PasswordRules, password: str, *, username: str) -> list[str]:
    """What is wrong with a new password, as sentences for the user; empty when it is acceptable."""
    problems: list[str] = []
    if len(password) < rules.min_length:
        problems.append(f"must be at least {rules.min_length} characters long")
    if len(password) > 256:
        problems.append("must be at most 256 characters long")
    classes = sum(1 for pattern in _CLASSES if pattern.search(password))
    if classes < rules.min_classes:
        problems.append(
            f"must mix at least {rules.min_classes} of: lower case, upper case, digits, symbols"
        )
    lowered = password.lower()
    if username and username.lower() in lowered:
        problems.append("must not contain the user name")
    if lowered in COMMON_PASSWORDS or lowered.rstrip("!0123456789") in COMMON_PASSWORDS:
        problems.append("is too common")
    return problems


# --- opaque secrets (API tokens, session ids) ------------------------------------------------------

TOKEN_PREFIX = "vgl_"  # noqa: S105 - a prefix, not a secret


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """Tokens and session ids are stored only as this digest; they are random, so no salt is needed."""
    return hashlib.sha256(secret.encode()).hexdigest()
