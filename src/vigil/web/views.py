"""Pages of the web shell: sign-in and sign-out, the language switch, the home page, and the settings."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from vigil.accounts import service, signin
from vigil.accounts.schemas import ProfileUpdate
from vigil.core import i18n
from vigil.core.auth import Permission, Principal
from vigil.core.config import Settings
from vigil.core.db import Scope, set_scope
from vigil.core.errors import BadInput, NotAuthenticated
from vigil.web.deps import (
    LANGUAGE_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SelfDep,
    SessionDep,
    client_ip,
    context,
    current_user,
    own_records,
    resolve_principal,
    settings_of,
    supplied_csrf_token,
)
from vigil.web.templating import (
    DOMAINS,
    LANGUAGE_COOKIE_DAYS,
    N_,
    FormDep,
    NextParam,
    PageRoute,
    allowed,
    check_login_csrf,
    local_path,
    page_guard,
    redirect,
    render,
    set_cookie,
    text_fields,
    translator,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Home = Annotated[Principal, Depends(page_guard())]
SettingsReader = Annotated[Principal, Depends(page_guard(Permission.SETTINGS_READ, everywhere=True))]
AFTER_LOGIN_AVOID = ("/login", "/logout")

# --- sign-in and sign-out --------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next_url: NextParam = "") -> HTMLResponse:
    return render(request, "login.html", {"next": local_path(next_url, "", AFTER_LOGIN_AVOID), "username": "",
                                          "error": ""})


@router.post("/login")
def login(request: Request, session: SessionDep, form: FormDep) -> Response:
    """Check the password (counted towards lockout and audited either way), then start a session."""
    check_login_csrf(request, form)
    fields = text_fields(form, "username", "next")
    password = form.get("password")
    set_scope(session, Scope.system())  # sign-in counts failures on any unit's user
    result = signin.authenticate(session, username=fields["username"][:64],
                                 password=password if isinstance(password, str) else "",
                                 source_ip=client_ip(request))
    if result.user is None:
        # A normal response, so the request's transaction commits the failure count and audit record.
        _ = translator(request)
        return render(request, "login.html", {"next": local_path(fields["next"], "", AFTER_LOGIN_AVOID),
                                              "username": fields["username"],
                                              "error": _("Invalid user name or password.")})
    settings = settings_of(request)
    secret, _web_session = signin.start_session(
        session, user=result.user, source_ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""), max_hours=settings.session_max_hours)
    target = local_path(fields["next"], "/", AFTER_LOGIN_AVOID)
    if result.user.must_change_password:
        target = f"/account/password?next={quote(target)}"
    response = redirect(target)
    set_cookie(response, request, SESSION_COOKIE, secret)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/", secure=settings.cookie_secure, httponly=True, samesite="lax")
    return response


@router.post("/logout")
def logout(request: Request, principal: SelfDep, session: SessionDep) -> Response:
    if principal.session_id is not None:
        signin.end_session(context(request, session, principal), session_id=principal.session_id)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/", secure=settings_of(request).cookie_secure, httponly=True,
                           samesite="lax")
    return response


# --- language --------------------------------------------------------------------------------------


def _signed_in(request: Request, session: SessionDep, csrf_token: str) -> Principal | None:
    """The signed-in user (checking the session's CSRF token on this POST), or None when signed out."""
    if not request.cookies.get(SESSION_COOKIE):
        return None
    try:
        return resolve_principal(request, session, csrf_token)
    except NotAuthenticated:
        return None


@router.post("/language")
def switch_language(request: Request, session: SessionDep, form: FormDep,
                    csrf_token: Annotated[str, Depends(supplied_csrf_token)]) -> Response:
    """Keep the choice on the user when signed in, and in a cookie for the sign-in page."""
    fields = text_fields(form, "language", "next")
    language = fields["language"]
    if language not in i18n.LANGUAGES:
        raise BadInput(f"unknown language {language!r}; use one of {', '.join(i18n.LANGUAGES)}")
    principal = _signed_in(request, session, csrf_token)
    if principal is None:
        check_login_csrf(request, form)
    else:
        own_records(principal, session)
        user = current_user(session, principal)
        service.update_profile(context(request, session, principal), user=user,
                               data=ProfileUpdate.model_validate({"language": language}))
    response = redirect(local_path(fields["next"]))
    set_cookie(response, request, LANGUAGE_COOKIE, language, max_age=LANGUAGE_COOKIE_DAYS * 24 * 3600)
    return response


# --- home ------------------------------------------------------------------------------------------


@router.get("/")
def home(request: Request, principal: Home, session: SessionDep) -> HTMLResponse:
    # The units this user holds roles on (and their own) are theirs to see named.
    set_scope(session, Scope(frozenset({principal.unit_id, *(grant.unit_id for grant in principal.grants)})))
    names = {unit.id: unit.name for unit in service.list_units(session)}
    domains = [
        {"domain": domain, "built": domain.href is not None,
         "open": domain.href is not None and allowed(principal, domain.permission, domain.everywhere)}
        for domain in DOMAINS
    ]
    permissions = sorted(str(permission) for permission in Permission if principal.has(permission))
    return render(request, "home.html", {
        "unit_name": names.get(principal.unit_id, ""),
        "grants": [(grant.role, names.get(grant.unit_id, str(grant.unit_id))) for grant in principal.grants],
        "permissions": permissions,
        "domains": domains,
    })


# --- settings --------------------------------------------------------------------------------------

SETTING_LABELS: dict[str, str] = {
    "config": N_("Path of the TOML settings file."),
    "data_dir": N_("Folder of the embedded stores."),
    "database_url": N_("Address of the records store; SQLite in the data folder unless set."),
    "secret_key": N_("Key for signed links; a random key kept in the data folder unless set."),
    "host": N_("Address the server listens on."),
    "port": N_("Port the server listens on."),
    "cookie_secure": N_("Send the sign-in cookie over HTTPS only."),
    "session_idle_minutes": N_("Minutes without activity before a sign-in ends."),
    "session_max_hours": N_("Longest sign-in, in hours."),
    "max_body_bytes": N_("Largest accepted request body, in bytes."),
    "default_language": N_("Language of the interface when nothing else decides."),
    "timezone": N_("Time zone for display and reports."),
    "log_level": N_("Level of detail of the server log."),
    "metrics_public": N_("Serve /metrics without a token (only behind a trusted network)."),
    "kb_git_path": N_("Local git working copy the knowledge base publishes pages to; no git wiki unless set."),
    "kb_git_remote": N_("Repository the git wiki pushes to after each commit; commits stay local unless set."),
    "kb_git_branch": N_("Branch of the git wiki that pages are committed to."),
    "kb_git_folder": N_("Folder inside the git wiki for pages; empty: the top folder."),
    "kb_git_author_name": N_("Author name of the git wiki's commits."),
    "kb_git_author_email": N_("Author e-mail of the git wiki's commits."),
    "kb_git_timeout_seconds": N_("Longest a git command of the git wiki may take, in seconds."),
    "evidence_max_bytes": N_("Largest evidence file an incident accepts, in bytes."),
}


@router.get("/admin/settings")
def settings_page(request: Request, principal: SettingsReader) -> HTMLResponse:
    _ = translator(request)
    settings = settings_of(request)
    rows: list[dict[str, Any]] = []
    for name, value in settings.masked().items():
        described = Settings.model_fields[name].description or ""
        rows.append({
            "name": name,
            "variable": f"VIGIL_{name.upper()}",
            "value": "" if value is None else str(value),
            "description": _(SETTING_LABELS[name]) if name in SETTING_LABELS else described,
        })
    return render(request, "settings.html", {"rows": rows})
