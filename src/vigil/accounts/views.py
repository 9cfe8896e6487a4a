"""Pages of accounts: one's own account and tokens, user and unit administration, the security policy.

Each page has the guard of the matching API endpoint; each change calls one service function inside a
savepoint, so a refused change (bad input, a conflict) leaves nothing behind and the form is shown again
with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from vigil.accounts import service, signin
from vigil.accounts.models import OrgUnit, UnitKind, User
from vigil.accounts.schemas import (
    GrantCreate,
    PasswordChange,
    PolicyUpdate,
    ProfileUpdate,
    TokenCreate,
    UnitCreate,
    UnitUpdate,
    UserCreate,
    UserUpdate,
)
from vigil.core import i18n
from vigil.core.auth import Permission, Principal
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.pagination import PageParams, page_params
from vigil.web.deps import SelfDep, SessionDep, context, current_user
from vigil.web.templating import (
    N_,
    FormDep,
    NextParam,
    Pager,
    PageRoute,
    Translator,
    describe_error,
    local_path,
    page_guard,
    redirect,
    render,
    text_fields,
    translator,
    unit_options,
    validate,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
P = Permission
Pages = Annotated[PageParams, Depends(page_params)]
Signed = Annotated[Principal, Depends(page_guard())]
UsersRead = Annotated[Principal, Depends(page_guard(P.USERS_READ))]
UsersWrite = Annotated[Principal, Depends(page_guard(P.USERS_WRITE))]
RolesAssign = Annotated[Principal, Depends(page_guard(P.ROLES_ASSIGN))]
UnitsRead = Annotated[Principal, Depends(page_guard(P.UNITS_READ))]
UnitsWrite = Annotated[Principal, Depends(page_guard(P.UNITS_WRITE))]
PolicyReader = Annotated[Principal, Depends(page_guard(P.POLICY_READ, everywhere=True))]
PolicyWriter = Annotated[Principal, Depends(page_guard(P.POLICY_WRITE, everywhere=True))]
FORM_REFUSED = (BadInput, Conflict)

UNIT_KIND_LABELS: dict[str, str] = {
    UnitKind.HEADQUARTERS: N_("Headquarters"),
    UnitKind.BRANCH: N_("Branch"),
    UnitKind.SUBSIDIARY: N_("Subsidiary"),
    UnitKind.BUSINESS_LINE: N_("Business line"),
}


@dataclass
class FormState:
    """What a form shows again after a refusal: the values sent, each field's complaint, a summary."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.error)


def refused(_: Translator, values: dict[str, Any], errors: dict[str, str]) -> FormState:
    return FormState(values, errors, _("Check the marked fields.") if errors else "")


def unit_choices(session: Session, principal: Principal, permission: Permission) -> list[OrgUnit]:
    """Units of the session's scope where the principal may also use ``permission``."""
    usable = principal.units_for(permission)
    return [unit for unit in service.list_units(session) if unit.id in usable]


def kind_label(_: Translator, kind: str) -> str:
    return _(UNIT_KIND_LABELS.get(kind, kind))


# --- one's own account -----------------------------------------------------------------------------


def _account_page(request: Request, principal: Principal, session: Session, pages: PageParams, *,
                  status: int = 200, **extra: Any) -> HTMLResponse:
    user = current_user(session, principal)
    tokens, total = signin.list_tokens(session, params=pages, user_id=principal.user_id)
    context_ = {
        "user": user,
        "tokens": tokens,
        "pager": Pager("/account", total, pages.limit, pages.offset),
        "held_roles": sorted({grant.role for grant in principal.grants}),
        "languages": i18n.LANGUAGES,
        "profile": FormState(),
        "token_form": FormState({"expires_in_days": 90}),
        "new_token": None,
        **extra,
    }
    return render(request, "accounts/account.html", context_, status=status)


@router.get("/account")
def account(request: Request, principal: Signed, session: SessionDep, pages: Pages) -> HTMLResponse:
    return _account_page(request, principal, session, pages)


@router.post("/account/profile")
def save_profile(request: Request, principal: Signed, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "display_name", "language")
    data, errors = validate(ProfileUpdate, {**values, "language": values["language"] or None}, _)
    if data is None:
        return _account_page(request, principal, session, PageParams(), status=422,
                             profile=refused(_, values, errors))
    service.update_profile(context(request, session, principal), user=current_user(session, principal), data=data)
    return redirect("/account?notice=profile-saved")


@router.post("/account/tokens")
def create_own_token(request: Request, principal: Signed, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    values: dict[str, Any] = text_fields(form, "name", "expires_in_days")
    roles = [role for role in form.getlist("roles") if isinstance(role, str)]
    values["roles"] = roles
    data, errors = validate(TokenCreate, {**values, "roles": roles or None}, _)
    state = refused(_, values, errors)
    if data is not None:
        try:
            with session.begin_nested():
                secret, token = signin.create_token(context(request, session, principal),
                                                    user=current_user(session, principal), data=data)
            return _account_page(request, principal, session, PageParams(), status=201,
                                 new_token={"secret": secret, "token": token})
        except FORM_REFUSED as exc:
            state = FormState(values, {}, describe_error(exc, _))
    return _account_page(request, principal, session, PageParams(), status=422, token_form=state)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_own_token(token_id: int, request: Request, principal: Signed, session: SessionDep) -> Response:
    token = signin.get_token(session, token_id)
    if token.user_id != principal.user_id:
        raise NotFound(f"token {token_id} does not exist or is outside your scope")
    signin.revoke_token(context(request, session, principal), token=token)
    return redirect("/account?notice=token-revoked")


# --- changing one's password (also the forced change after a reset) --------------------------------


def _password_page(request: Request, session: Session, next_url: str, *, status: int = 200,
                   state: FormState | None = None) -> HTMLResponse:
    policy = service.get_policy(session)
    return render(request, "accounts/password.html",
                  {"next": next_url, "policy": policy, "form": state or FormState()}, status=status)


@router.get("/account/password")
def password_form(request: Request, principal: SelfDep, session: SessionDep, next_url: NextParam = ""
                  ) -> HTMLResponse:
    forced = current_user(session, principal).must_change_password
    return _password_page(request, session, local_path(next_url, ""), state=FormState({"forced": forced}))


@router.post("/account/password")
def change_password(request: Request, principal: SelfDep, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "next")
    secret = {name: value if isinstance(value := form.get(name), str) else ""
              for name in ("current_password", "new_password", "confirm_password")}
    user = current_user(session, principal)
    shown = {"forced": user.must_change_password}
    next_url = local_path(values["next"], "")
    if secret["new_password"] != secret["confirm_password"]:
        state = refused(_, shown, {"confirm_password": _("The two new passwords differ.")})
        return _password_page(request, session, next_url, status=422, state=state)
    data, errors = validate(PasswordChange, {"current_password": secret["current_password"],
                                             "new_password": secret["new_password"]}, _)
    if data is None:
        return _password_page(request, session, next_url, status=422, state=refused(_, shown, errors))
    ctx = context(request, session, principal)
    try:
        # Outside the savepoint: a wrong password's count towards lockout stays (the 422 page commits it).
        signin.check_current_password(ctx, user=user, password=data.current_password)
    except signin.AccountLocked:
        state = refused(_, shown, {"current_password": _(
            "Your account is locked after too many wrong passwords. Try again later, or ask an administrator "
            "to unlock it.")})
        return _password_page(request, session, next_url, status=422, state=state)
    except signin.WrongCurrentPassword:
        state = refused(_, shown, {"current_password": _("The current password is wrong.")})
        return _password_page(request, session, next_url, status=422, state=state)
    try:
        with session.begin_nested():
            signin.set_own_password(ctx, user=user, new_password=data.new_password)
    except FORM_REFUSED as exc:
        state = FormState(shown, {}, describe_error(exc, _))
        return _password_page(request, session, next_url, status=422, state=state)
    return redirect(next_url or "/account?notice=password-changed")


# --- users -----------------------------------------------------------------------------------------


def _users_page(request: Request, principal: Principal, session: Session, pages: PageParams, query: str, *,
                status: int = 200, create: FormState | None = None) -> HTMLResponse:
    units = service.list_units(session)
    users, total = service.list_users(session, params=pages, query=query)
    return render(request, "accounts/users.html", {
        "users": users,
        "query": query,
        "pager": Pager("/admin/users", total, pages.limit, pages.offset, {"q": query}),
        "unit_names": {unit.id: unit.name for unit in units},
        "create_units": unit_options(unit for unit in units if unit.id in principal.units_for(P.USERS_WRITE)),
        "create": create or FormState(),
    }, status=status)


@router.get("/admin/users")
def users(request: Request, principal: UsersRead, session: SessionDep, pages: Pages, q: str = "") -> HTMLResponse:
    return _users_page(request, principal, session, pages, q[:100])


@router.post("/admin/users")
def create_user(request: Request, principal: UsersWrite, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "username", "display_name", "email", "unit_id", "role")
    password = form.get("password")
    grants = [{"role": values["role"], "unit_id": values["unit_id"]}] if values["role"] else []
    data, errors = validate(UserCreate, {
        "username": values["username"], "display_name": values["display_name"], "email": values["email"] or None,
        "unit_id": values["unit_id"], "grants": grants, "password": password if isinstance(password, str) else "",
    }, _)
    errors = {("role" if name == "grants" else name): message for name, message in errors.items()}
    if data is not None and any(grant.unit_id not in principal.units_for(P.ROLES_ASSIGN) for grant in data.grants):
        # The form offers no role to a system administrator: roles are the security administrator's to grant.
        data, errors = None, {"role": _("Roles are granted by the security administrator: create the account "
                                        "without one, then ask them to grant it.")}
    state = refused(_, values, errors)
    if data is not None:
        try:
            with session.begin_nested():
                user = service.create_user(context(request, session, principal), data=data)
            return redirect(f"/admin/users/{user.id}?notice=user-created")
        except FORM_REFUSED as exc:
            state = FormState(values, {}, describe_error(exc, _))
    return _users_page(request, principal, session, PageParams(), "", status=422, create=state)


def _user_page(request: Request, principal: Principal, session: Session, user_id: int, *, status: int = 200,
               error: str = "", forms: dict[str, FormState] | None = None) -> HTMLResponse:
    user = service.get_user(session, user_id)
    units = service.list_units(session)
    tokens, total = signin.list_tokens(session, params=PageParams(limit=100), user_id=user.id)
    writable = principal.units_for(P.USERS_WRITE)
    assignable = principal.units_for(P.ROLES_ASSIGN)
    return render(request, "accounts/user.html", {
        "user": user,
        "unit_names": {unit.id: unit.name for unit in units},
        "write_units": unit_options(unit for unit in units if unit.id in writable),
        "assign_units": unit_options(unit for unit in units if unit.id in assignable),
        # Its password, status and unit change only on the server (service._check_not_administrator).
        "administrator_role": next(iter(service.administrator_roles(session, user.id)), ""),
        "tokens": tokens,
        "token_total": total,
        "languages": i18n.LANGUAGES,
        "is_self": user.id == principal.user_id,
        "error": error,
        "state": {"edit": FormState(), "grant": FormState(), "password": FormState(), **(forms or {})},
    }, status=status)


@router.get("/admin/users/{user_id}")
def user_detail(user_id: int, request: Request, principal: UsersRead, session: SessionDep) -> HTMLResponse:
    return _user_page(request, principal, session, user_id)


def _user_change(request: Request, principal: Principal, session: Session, user_id: int, notice: str,
                 change: Any, *, form_name: str = "", values: dict[str, Any] | None = None) -> Response:
    """Run one service change on a user; show the refusal on the user's page when it is refused."""
    try:
        with session.begin_nested():
            change()
    except FORM_REFUSED as exc:
        message = describe_error(exc, translator(request))
        forms = {form_name: FormState(values or {}, {}, message)} if form_name else None
        return _user_page(request, principal, session, user_id, status=422,
                          error="" if form_name else message, forms=forms)
    return redirect(f"/admin/users/{user_id}?notice={notice}")


@router.post("/admin/users/{user_id}")
def edit_user(user_id: int, request: Request, principal: UsersWrite, session: SessionDep,
              form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "display_name", "email", "unit_id", "language")
    changes: dict[str, Any] = {**values, "email": values["email"] or None, "language": values["language"] or None}
    if not values["unit_id"]:
        del changes["unit_id"]  # an administrator account's form has no unit field: its unit stays
    data, errors = validate(UserUpdate, changes, _)
    if data is None:
        return _user_page(request, principal, session, user_id, status=422,
                          forms={"edit": refused(_, values, errors)})
    ctx = context(request, session, principal)
    return _user_change(request, principal, session, user_id, "user-saved",
                        lambda: service.update_user(ctx, user_id=user_id, data=data),
                        form_name="edit", values=values)


@router.post("/admin/users/{user_id}/disable")
def disable_user(user_id: int, request: Request, principal: UsersWrite, session: SessionDep) -> Response:
    ctx = context(request, session, principal)
    return _user_change(request, principal, session, user_id, "user-disabled",
                        lambda: service.update_user(ctx, user_id=user_id, data=UserUpdate(disabled=True)))


@router.post("/admin/users/{user_id}/enable")
def enable_user(user_id: int, request: Request, principal: UsersWrite, session: SessionDep) -> Response:
    ctx = context(request, session, principal)
    return _user_change(request, principal, session, user_id, "user-enabled",
                        lambda: service.update_user(ctx, user_id=user_id, data=UserUpdate(disabled=False)))


@router.post("/admin/users/{user_id}/grants")
def grant_role(user_id: int, request: Request, principal: RolesAssign, session: SessionDep,
               form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "role", "unit_id")
    data, errors = validate(GrantCreate, values, _)
    if data is None:
        return _user_page(request, principal, session, user_id, status=422,
                          forms={"grant": refused(_, values, errors)})
    ctx = context(request, session, principal)
    user = service.get_user(session, user_id)
    return _user_change(request, principal, session, user_id, "role-granted",
                        lambda: service.grant_role(ctx, user=user, grant=data), form_name="grant", values=values)


@router.post("/admin/users/{user_id}/grants/{grant_id}/revoke")
def revoke_grant(user_id: int, grant_id: int, request: Request, principal: RolesAssign,
                 session: SessionDep) -> Response:
    ctx = context(request, session, principal)
    return _user_change(request, principal, session, user_id, "role-revoked",
                        lambda: service.revoke_grant(ctx, user_id=user_id, grant_id=grant_id))


@router.post("/admin/users/{user_id}/password")
def reset_password(user_id: int, request: Request, principal: UsersWrite, session: SessionDep,
                   form: FormDep) -> Response:
    password = form.get("password")
    ctx = context(request, session, principal)
    return _user_change(request, principal, session, user_id, "password-reset",
                        lambda: service.reset_password(ctx, user_id=user_id,
                                                       password=password if isinstance(password, str) else ""),
                        form_name="password")


@router.post("/admin/users/{user_id}/unlock")
def unlock_user(user_id: int, request: Request, principal: UsersWrite, session: SessionDep) -> Response:
    ctx = context(request, session, principal)
    return _user_change(request, principal, session, user_id, "user-unlocked",
                        lambda: service.unlock_user(ctx, user_id=user_id))


def _active_tokens(session: Session, user: User) -> list[Any]:
    found: list[Any] = []
    while True:
        batch, total = signin.list_tokens(session, params=PageParams(limit=500, offset=len(found)), user_id=user.id)
        found += batch
        if not batch or len(found) >= total:
            return [token for token in found if token.revoked_at is None]


@router.post("/admin/users/{user_id}/tokens/revoke")
def revoke_user_tokens(user_id: int, request: Request, principal: UsersWrite, session: SessionDep,
                       form: FormDep) -> Response:
    """Revoke one token of the user (``token_id``), or every active one when none is named."""
    user = service.get_user(session, user_id)
    ctx = context(request, session, principal)
    chosen = text_fields(form, "token_id")["token_id"]
    if chosen:
        token = signin.get_token(session, int(chosen)) if chosen.isdigit() else None
        if token is None or token.user_id != user.id:
            raise NotFound(f"token {chosen} does not belong to user {user_id}")
        signin.revoke_token(ctx, token=token)
        return redirect(f"/admin/users/{user_id}?notice=token-revoked")
    for token in _active_tokens(session, user):
        signin.revoke_token(ctx, token=token)
    return redirect(f"/admin/users/{user_id}?notice=tokens-revoked")


# --- organisation units ----------------------------------------------------------------------------


@dataclass
class UnitNode:
    unit: OrgUnit
    children: list[UnitNode] = field(default_factory=list)


def unit_tree(units: list[OrgUnit]) -> list[UnitNode]:
    """The visible units as a forest: a unit whose parent is out of scope starts a tree of its own."""
    nodes = {unit.id: UnitNode(unit) for unit in units}
    roots: list[UnitNode] = []
    for node in nodes.values():
        parent = nodes.get(node.unit.parent_id) if node.unit.parent_id is not None else None
        (parent.children if parent else roots).append(node)
    return roots


def _units_page(request: Request, principal: Principal, session: Session, *, status: int = 200,
                create: FormState | None = None, rename: FormState | None = None) -> HTMLResponse:
    _ = translator(request)
    units = list(service.list_units(session))
    return render(request, "accounts/units.html", {
        "tree": unit_tree(units),
        "kind_label": lambda kind: kind_label(_, kind),
        "parents": unit_options(unit for unit in units if unit.id in principal.units_for(P.UNITS_WRITE)),
        "kinds": [(str(kind), kind_label(_, kind)) for kind in UnitKind if kind != UnitKind.HEADQUARTERS],
        "create": create or FormState(),
        "rename": rename or FormState(),
    }, status=status)


@router.get("/admin/units")
def units(request: Request, principal: UnitsRead, session: SessionDep) -> HTMLResponse:
    return _units_page(request, principal, session)


@router.post("/admin/units")
def create_unit(request: Request, principal: UnitsWrite, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "name", "kind", "parent_id")
    data, errors = validate(UnitCreate, values, _)
    state = refused(_, values, errors)
    if data is not None:
        try:
            with session.begin_nested():
                service.create_unit(context(request, session, principal), name=data.name, kind=data.kind,
                                    parent_id=data.parent_id)
            return redirect("/admin/units?notice=unit-created")
        except FORM_REFUSED as exc:
            state = FormState(values, {}, describe_error(exc, _))
    return _units_page(request, principal, session, status=422, create=state)


@router.post("/admin/units/{unit_id}/rename")
def rename_unit(unit_id: int, request: Request, principal: UnitsWrite, session: SessionDep,
                form: FormDep) -> Response:
    _ = translator(request)
    values = {**text_fields(form, "name"), "unit_id": unit_id}
    data, errors = validate(UnitUpdate, {"name": values["name"]}, _)
    state = refused(_, values, errors)
    if data is not None:
        try:
            with session.begin_nested():
                service.rename_unit(context(request, session, principal), unit_id=unit_id, name=data.name)
            return redirect("/admin/units?notice=unit-renamed")
        except FORM_REFUSED as exc:
            state = FormState(values, {}, describe_error(exc, _))
    return _units_page(request, principal, session, status=422, rename=state)


# --- security policy -------------------------------------------------------------------------------


@router.get("/security/policy")
def policy(request: Request, principal: PolicyReader, session: SessionDep) -> HTMLResponse:
    return render(request, "accounts/policy.html", {"policy": service.get_policy(session), "form": FormState()})


@router.post("/security/policy")
def save_policy(request: Request, principal: PolicyWriter, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    names = list(PolicyUpdate.model_fields)
    values = text_fields(form, *names)
    data, errors = validate(PolicyUpdate, values, _)
    if data is None:
        return render(request, "accounts/policy.html",
                      {"policy": service.get_policy(session), "form": refused(_, values, errors)}, status=422)
    service.update_policy(context(request, session, principal), data=data)
    return redirect("/security/policy?notice=policy-saved")
