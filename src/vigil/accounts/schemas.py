"""What the accounts API takes and returns."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from vigil.accounts.models import UnitKind
from vigil.core.auth import Role
from vigil.core.config import Language
from vigil.core.inputs import RecordId, refuse_nul
from vigil.core.pagination import Page

USERNAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,63}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # Every text field: the records store cannot hold NUL characters (see core.inputs).
        return refuse_nul(value) if isinstance(value, str) else value


class Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UnitCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: UnitKind
    parent_id: RecordId


class UnitUpdate(Strict):
    name: str = Field(min_length=1, max_length=200)


class UnitRead(Read):
    id: int
    parent_id: int | None
    name: str
    kind: UnitKind
    created_at: datetime


UnitPage = Page[UnitRead]


class GrantCreate(Strict):
    role: Role
    unit_id: RecordId


class GrantRead(Read):
    id: int
    role: Role
    unit_id: int
    granted_at: datetime
    granted_by: str


class UserCreate(Strict):
    username: str = Field(min_length=2, max_length=64)
    display_name: str = Field(default="", max_length=200)
    email: EmailStr | None = None
    password: str = Field(min_length=1, max_length=256)
    unit_id: RecordId
    grants: list[GrantCreate] = Field(default_factory=list)
    language: Language | None = None

    @field_validator("username")
    @classmethod
    def _username_shape(cls, value: str) -> str:
        if not USERNAME.match(value):
            raise ValueError("use 2-64 letters, digits, dots, dashes or underscores, starting with a letter or digit")
        return value


def _not_null(value: object) -> object:
    """For a field that is optional in a change but has no "empty" value: null is refused, not stored."""
    if value is None:
        raise ValueError("must not be null; leave the field out to keep its value")
    return value


class UserUpdate(Strict):
    """Only the fields sent change; email and language may be null (cleared), the others may not."""

    display_name: str | None = Field(default=None, max_length=200)
    email: EmailStr | None = None
    unit_id: RecordId | None = None
    language: Language | None = None
    disabled: bool | None = None

    _present = field_validator("display_name", "unit_id", "disabled", mode="before")(_not_null)


class UserRead(Read):
    id: int
    username: str
    display_name: str
    email: str
    unit_id: int
    language: str | None
    disabled: bool
    locked: bool
    must_change_password: bool
    last_login_at: datetime | None
    created_at: datetime
    grants: list[GrantRead]


UserPage = Page[UserRead]


class PasswordReset(Strict):
    password: str = Field(min_length=1, max_length=256)


class PasswordChange(Strict):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class ProfileUpdate(Strict):
    display_name: str | None = Field(default=None, max_length=200)

    _present = field_validator("display_name", mode="before")(_not_null)
    language: Language | None = None


class Me(BaseModel):
    id: int
    username: str
    display_name: str
    unit_id: int
    language: str | None
    roles: list[GrantRead]
    permissions: list[str]
    must_change_password: bool


class TokenCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    roles: list[Role] | None = Field(default=None, description="Roles the token acts with; default all of yours.")
    expires_in_days: int = Field(default=90, ge=1, le=3650)


class TokenRead(Read):
    id: int
    user_id: int
    name: str
    prefix: str
    roles: list[Role]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenRead):
    token: str = Field(description="The secret; shown only this once.")


TokenPage = Page[TokenRead]


class PolicyRead(Read):
    password_min_length: int
    password_min_classes: int
    password_max_age_days: int
    max_failed_logins: int
    lockout_minutes: int
    token_max_days: int
    updated_at: datetime
    updated_by: str


class PolicyUpdate(Strict):
    password_min_length: int = Field(ge=8, le=128)
    password_min_classes: int = Field(ge=1, le=4)
    password_max_age_days: int = Field(ge=0, le=3650, description="0: passwords never expire.")
    max_failed_logins: int = Field(ge=1, le=100)
    lockout_minutes: int = Field(ge=1, le=24 * 60)
    token_max_days: int = Field(ge=1, le=3650)
