"""/api/v1: users, organisation units, API tokens, the signed-in user, and the security policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status

from vigil.accounts import service, signin
from vigil.accounts.schemas import (
    GrantCreate,
    GrantRead,
    Me,
    PasswordChange,
    PasswordReset,
    PolicyRead,
    PolicyUpdate,
    ProfileUpdate,
    TokenCreate,
    TokenCreated,
    TokenPage,
    TokenRead,
    UnitCreate,
    UnitPage,
    UnitRead,
    UnitUpdate,
    UserCreate,
    UserPage,
    UserRead,
    UserUpdate,
)
from vigil.core.auth import ROLE_PERMISSIONS, Permission, Principal, Role
from vigil.core.db import MAX_RECORD_ID
from vigil.core.errors import BadInput
from vigil.core.inputs import Text
from vigil.core.pagination import PageParams, page_params
from vigil.web.deps import SelfDep, SessionDep, context, current_user, require

router = APIRouter(prefix="/api/v1")
P = Permission
Pages = Annotated[PageParams, Depends(page_params)]
Id = Annotated[int, Path(ge=1, le=MAX_RECORD_ID, description="A record's id.")]


UsersRead = Annotated[Principal, Depends(require(P.USERS_READ))]
UsersWrite = Annotated[Principal, Depends(require(P.USERS_WRITE))]
RolesAssign = Annotated[Principal, Depends(require(P.ROLES_ASSIGN))]
UnitsRead = Annotated[Principal, Depends(require(P.UNITS_READ))]
UnitsWrite = Annotated[Principal, Depends(require(P.UNITS_WRITE))]
PolicyReader = Annotated[Principal, Depends(require(P.POLICY_READ, everywhere=True))]
PolicyWriter = Annotated[Principal, Depends(require(P.POLICY_WRITE, everywhere=True))]


# --- the signed-in user ----------------------------------------------------------------------------


def _me(principal: Principal, session: SessionDep) -> Me:
    user = current_user(session, principal)
    permissions = sorted({str(p) for p in Permission if principal.has(p)})
    return Me(
        id=user.id, username=user.username, display_name=user.display_name, unit_id=user.unit_id,
        language=user.language, roles=[GrantRead.model_validate(g) for g in user.grants],
        permissions=permissions, must_change_password=user.must_change_password,
    )


@router.get("/me", tags=["me"])
def read_me(principal: SelfDep, session: SessionDep) -> Me:
    return _me(principal, session)


@router.patch("/me", tags=["me"])
def update_me(data: ProfileUpdate, request: Request, principal: SelfDep, session: SessionDep) -> Me:
    user = current_user(session, principal)
    service.update_profile(context(request, session, principal), user=user, data=data)
    return _me(principal, session)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT, tags=["me"])
def change_password(data: PasswordChange, request: Request, principal: SelfDep, session: SessionDep) -> None:
    """A wrong current password counts towards lockout like a failed sign-in; a locked account is refused."""
    user = current_user(session, principal)
    try:
        signin.change_own_password(context(request, session, principal), user=user, data=data)
    except signin.CurrentPasswordRefused:
        session.commit()  # the failure count, a lockout and their audit records stay although this is refused
        raise


@router.get("/me/tokens", tags=["me"])
def my_tokens(principal: SelfDep, session: SessionDep, pages: Pages) -> TokenPage:
    items, total = signin.list_tokens(session, params=pages, user_id=principal.user_id)
    return TokenPage(items=[TokenRead.model_validate(t) for t in items], total=total, **pages.model_dump())


@router.post("/me/tokens", status_code=status.HTTP_201_CREATED, tags=["me"])
def create_my_token(data: TokenCreate, request: Request, principal: SelfDep, session: SessionDep) -> TokenCreated:
    user = current_user(session, principal)
    if principal.token_roles is not None:
        # A token may not mint tokens with more roles than it carries itself.
        wanted = set(data.roles) if data.roles is not None else set(principal.token_roles)
        if not wanted <= principal.token_roles:
            extra = ", ".join(sorted(wanted - principal.token_roles))
            raise BadInput(f"a token can create tokens only with the roles it carries itself (not {extra})",
                           errors=[{"field": "roles", "message": f"not carried by this token: {extra}"}])
        data = data.model_copy(update={"roles": sorted(wanted)})
    secret, token = signin.create_token(context(request, session, principal), user=user, data=data)
    return TokenCreated.model_validate({**TokenRead.model_validate(token).model_dump(), "token": secret})


@router.delete("/me/tokens/{token_id}", tags=["me"])
def revoke_my_token(token_id: Id, request: Request, principal: SelfDep, session: SessionDep) -> TokenRead:
    token = signin.get_token(session, token_id)
    if token.user_id != principal.user_id:
        token = signin.get_token(session, -1)  # someone else's token: as if it did not exist
    return TokenRead.model_validate(signin.revoke_token(context(request, session, principal), token=token))


# --- users -----------------------------------------------------------------------------------------


@router.get("/users", tags=["users"])
def list_users(
    principal: UsersRead,
    session: SessionDep,
    pages: Pages,
    q: Annotated[Text, Query(max_length=100, description="Part of a name or e-mail.")] = "",
    unit_id: Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)] = None,
) -> UserPage:
    items, total = service.list_users(session, params=pages, query=q, unit_id=unit_id)
    return UserPage(items=[UserRead.model_validate(u) for u in items], total=total, **pages.model_dump())


@router.post("/users", status_code=status.HTTP_201_CREATED, tags=["users"])
def create_user(data: UserCreate, request: Request, principal: UsersWrite, session: SessionDep) -> UserRead:
    """Creates the account only: its roles are granted by the security administrator (``roles:assign``)."""
    assignable = principal.units_for(P.ROLES_ASSIGN)
    if any(grant.unit_id not in assignable for grant in data.grants):
        raise BadInput(
            f"roles are granted by the security administrator (the permission {P.ROLES_ASSIGN}), not when an "
            "account is created: create it without grants, then ask them to grant its role",
            errors=[{"field": "grants", "message": f"needs the permission {P.ROLES_ASSIGN} on the unit"}],
        )
    user = service.create_user(context(request, session, principal), data=data)
    return UserRead.model_validate(user)


@router.get("/users/{user_id}", tags=["users"])
def read_user(user_id: Id, principal: UsersRead, session: SessionDep) -> UserRead:
    return UserRead.model_validate(service.get_user(session, user_id))


@router.patch("/users/{user_id}", tags=["users"])
def update_user(user_id: Id, data: UserUpdate, request: Request, principal: UsersWrite,
                session: SessionDep) -> UserRead:
    user = service.update_user(context(request, session, principal), user_id=user_id, data=data)
    return UserRead.model_validate(user)


@router.post("/users/{user_id}/grants", status_code=status.HTTP_201_CREATED, tags=["users"])
def grant_role(user_id: Id, data: GrantCreate, request: Request, principal: RolesAssign,
               session: SessionDep) -> GrantRead:
    ctx = context(request, session, principal)
    return GrantRead.model_validate(service.grant_role(ctx, user=service.get_user(session, user_id), grant=data))


@router.delete("/users/{user_id}/grants/{grant_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["users"])
def revoke_grant(user_id: Id, grant_id: Id, request: Request, principal: RolesAssign,
                 session: SessionDep) -> None:
    service.revoke_grant(context(request, session, principal), user_id=user_id, grant_id=grant_id)


@router.post("/users/{user_id}/password", tags=["users"])
def reset_password(user_id: Id, data: PasswordReset, request: Request, principal: UsersWrite,
                   session: SessionDep) -> UserRead:
    user = service.reset_password(context(request, session, principal), user_id=user_id, password=data.password)
    return UserRead.model_validate(user)


@router.post("/users/{user_id}/unlock", tags=["users"])
def unlock_user(user_id: Id, request: Request, principal: UsersWrite, session: SessionDep) -> UserRead:
    return UserRead.model_validate(service.unlock_user(context(request, session, principal), user_id=user_id))


@router.get("/users/{user_id}/tokens", tags=["users"])
def user_tokens(user_id: Id, principal: UsersRead, session: SessionDep, pages: Pages) -> TokenPage:
    service.get_user(session, user_id)
    items, total = signin.list_tokens(session, params=pages, user_id=user_id)
    return TokenPage(items=[TokenRead.model_validate(t) for t in items], total=total, **pages.model_dump())


@router.delete("/users/{user_id}/tokens/{token_id}", tags=["users"])
def revoke_user_token(user_id: Id, token_id: Id, request: Request, principal: UsersWrite,
                      session: SessionDep) -> TokenRead:
    token = signin.get_token(session, token_id)
    if token.user_id != user_id:
        token = signin.get_token(session, -1)
    ctx = context(request, session, principal)
    service.check_manageable(ctx, service.get_user(session, user_id))
    return TokenRead.model_validate(signin.revoke_token(ctx, token=token))


@router.get("/roles", tags=["users"])
def list_roles(principal: UsersRead) -> dict[str, list[str]]:
    return {str(role): sorted(str(p) for p in ROLE_PERMISSIONS[role]) for role in Role}


# --- organisation units ----------------------------------------------------------------------------


@router.get("/units", tags=["units"])
def list_units(principal: UnitsRead, session: SessionDep, pages: Pages) -> UnitPage:
    items, total = service.page_units(session, params=pages)
    return UnitPage(items=[UnitRead.model_validate(u) for u in items], total=total, **pages.model_dump())


@router.post("/units", status_code=status.HTTP_201_CREATED, tags=["units"])
def create_unit(data: UnitCreate, request: Request, principal: UnitsWrite, session: SessionDep) -> UnitRead:
    unit = service.create_unit(context(request, session, principal), name=data.name, kind=data.kind,
                               parent_id=data.parent_id)
    return UnitRead.model_validate(unit)


@router.get("/units/{unit_id}", tags=["units"])
def read_unit(unit_id: Id, principal: UnitsRead, session: SessionDep) -> UnitRead:
    return UnitRead.model_validate(service.get_unit(session, unit_id))


@router.patch("/units/{unit_id}", tags=["units"])
def rename_unit(unit_id: Id, data: UnitUpdate, request: Request, principal: UnitsWrite,
                session: SessionDep) -> UnitRead:
    unit = service.rename_unit(context(request, session, principal), unit_id=unit_id, name=data.name)
    return UnitRead.model_validate(unit)


# --- security policy -------------------------------------------------------------------------------


@router.get("/security/policy", tags=["security"])
def read_policy(principal: PolicyReader, session: SessionDep) -> PolicyRead:
    return PolicyRead.model_validate(service.get_policy(session))


@router.put("/security/policy", tags=["security"])
def update_policy(data: PolicyUpdate, request: Request, principal: PolicyWriter, session: SessionDep) -> PolicyRead:
    return PolicyRead.model_validate(service.update_policy(context(request, session, principal), data=data))
