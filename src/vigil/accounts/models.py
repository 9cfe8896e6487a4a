"""Organisation units, users, role grants, API tokens, sign-in sessions and the security policy."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vigil.core.auth import Role
from vigil.core.db import Base, UnitScoped, self_scoped, utcnow


class UnitKind(StrEnum):
    HEADQUARTERS = "headquarters"
    BRANCH = "branch"
    SUBSIDIARY = "subsidiary"
    BUSINESS_LINE = "business_line"


@self_scoped
class OrgUnit(Base):
    __tablename__ = "org_units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("parent_id", "name", name="uq_org_units_parent_name"),)


class User(UnitScoped, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(10))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > utcnow()

    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin", order_by="RoleGrant.id"
    )


class RoleGrant(UnitScoped, Base):
    """A role held on one unit, covering that unit and every unit below it."""

    __tablename__ = "role_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(30))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    granted_by: Mapped[str] = mapped_column(String(64), default="")

    user: Mapped[User] = relationship(back_populates="grants")

    __table_args__ = (UniqueConstraint("user_id", "role", "unit_id", name="uq_role_grants_user_role_unit"),)


class ApiToken(UnitScoped, Base):
    """A bearer token: only its SHA-256 digest is stored; it acts with a subset of its owner's roles."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()

    def roles_set(self) -> frozenset[Role]:
        return frozenset(Role(role) for role in self.roles)


class WebSession(Base):
    """A browser sign-in. The cookie holds a random id; only its digest is stored."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    source_ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    ended_at: Mapped[datetime | None] = mapped_column()


class SecurityPolicy(Base):
    """Platform-wide sign-in and password rules; owned by the security administrator."""

    __tablename__ = "security_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    password_min_length: Mapped[int] = mapped_column(Integer, default=12)
    password_min_classes: Mapped[int] = mapped_column(Integer, default=3)
    password_max_age_days: Mapped[int] = mapped_column(Integer, default=90)
    max_failed_logins: Mapped[int] = mapped_column(Integer, default=5)
    lockout_minutes: Mapped[int] = mapped_column(Integer, default=15)
    token_max_days: Mapped[int] = mapped_column(Integer, default=365)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
