"""The toolkit of server-rendered pages: Jinja2, the request's language, navigation, forms and errors.

Every visible string goes through ``_``: in templates the ``_`` of the render context, in views a
``Translator``; ``N_`` only marks a string for extraction where it is translated later (navigation
labels, role names). babel.cfg tells Babel where to look; tests/web/test_catalogues.py fails when a
message lacks its 简体中文 or English translation. Translations are plain text, escaped like any value.

The navigation shows every domain of the platform (ARCHITECTURE.md §1). A domain that is not built yet
has no page and shows as planned; when it lands, give its ``Domain`` entry a page and a permission.
Pages are guarded like the API (``web.deps.require``), and ``page_guard`` also sends a user who must
change their password to that form before anything else.
"""

from __future__ import annotations

import hmac
import itertools
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from vigil.core import i18n
from vigil.core.auth import Permission, Principal, Role
from vigil.core.errors import BadInput, Conflict, CsrfFailed, NotFound, PermissionDenied, VigilError
from vigil.core.i18n import N_ as N_  # re-exported: the views mark their messages with it
from vigil.web.deps import (
    CSRF_FIELD,
    LANGUAGE_COOKIE,
    LOGIN_CSRF_COOKIE,
    SessionDep,
    current_user,
    own_records,
    require,
    settings_of,
)

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
HAS_HTMX = (STATIC_DIR / "vendor" / "htmx.min.js").is_file()
LANGUAGE_COOKIE_DAYS = 365
M = TypeVar("M", bound=BaseModel)


# --- language --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Translator:
    """``_`` for one language: looks a message up and fills in ``%(name)s`` variables."""

    language: str

    def __call__(self, message: str, **variables: Any) -> str:
        text = i18n.gettext_for(self.language)(message)
        return text % variables if variables else text


def language_of(request: Request, principal: Principal | None = None) -> str:
    """The user's own setting, else the language cookie, else Accept-Language, else the default."""
    principal = principal or getattr(request.state, "principal", None)
    return i18n.choose(
        [principal.language if principal else None, request.cookies.get(LANGUAGE_COOKIE)],
        request.headers.get("accept-language"),
        settings_of(request).default_language,
    )


def translator(request: Request, principal: Principal | None = None) -> Translator:
    return Translator(language_of(request, principal))


ROLE_LABELS: Mapping[str, str] = {
    Role.SYSTEM_ADMIN: N_("System administrator"),
    Role.SECURITY_ADMIN: N_("Security administrator"),
    Role.AUDIT_ADMIN: N_("Audit administrator"),
    Role.ANALYST: N_("Security analyst"),
    Role.RESPONDER: N_("Incident responder"),
    Role.VIEWER: N_("Viewer"),
    Role.SHIPPER: N_("Log shipper"),
}

# --- navigation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Domain:
    """A part of the platform, or an administration page; without ``href`` it is not built yet."""

    key: str
    label: str
    summary: str = ""
    href: str | None = None
    permission: Permission | None = None
    everywhere: bool = False


P = Permission
DOMAINS: tuple[Domain, ...] = (
    Domain("siem", N_("SIEM: log collection"),
           N_("Receive, parse, normalise, store and search logs from every source."),
           href="/siem/search", permission=P.EVENTS_READ),
    Domain("sources", N_("Log sources"),
           N_("Every input and host sending logs: volume, parse errors, silence, retention."),
           href="/siem/sources", permission=P.SOURCES_READ),
    Domain("detection", N_("Threat detection: alerts"),
           N_("Sigma rules in real time and as hunts over history; alert tuning and ATT&CK coverage."),
           href="/detection/alerts", permission=P.ALERTS_READ),
    Domain("rules", N_("Detection rules"),
           N_("Sigma rules and packs: import, enable, tune; hits and false positives per rule."),
           href="/detection/rules", permission=P.RULES_READ),
    Domain("hunts", N_("Hunts"),
           N_("Sigma rules over stored events or log folders, recorded with who, what and what was found."),
           href="/detection/hunts", permission=P.EVENTS_READ),
    Domain("attack", N_("ATT&CK coverage"),
           N_("Techniques covered by enabled rules and seen in alerts, as a heat map and a Navigator layer."),
           href="/detection/coverage", permission=P.RULES_READ),
    Domain("ioc", N_("IOC detection"),
           N_("Indicators from STIX/TAXII, MISP and feeds, matched on every event and over history."),
           href="/intel", permission=P.INTEL_READ),
    Domain("intel", N_("Threat-intel operations"),
           N_("Reports, actors and campaigns: who did what, when, how, and against which asset."),
           href="/intel/actors", permission=P.INTEL_READ),
    Domain("incidents", N_("Incidents"),
           N_("Alerts and reports become incidents that move through the five-step response."),
           href="/incidents", permission=P.INCIDENTS_READ),
    Domain("reports", N_("Report triage"),
           N_("Suspected incidents reported by employees, waiting for triage."),
           href="/reports/triage", permission=P.INCIDENTS_WRITE),
    Domain("response", N_("Response and on-call"),
           N_("On-call rotas, escalation, notifications and approved response actions."),
           href="/oncall", permission=P.INCIDENTS_READ),
    Domain("kb", N_("Knowledge base"),
           N_("Post-mortems, runbooks and notes in Markdown, versioned, searchable and published to a git wiki."),
           href="/kb", permission=P.KB_READ),
    Domain("assets", N_("Assets"),
           N_("Hosts, IP addresses, domains, applications and repositories, with owner and criticality.")),
    Domain("vulns", N_("Vulnerabilities"),
           N_("Scanner results deduplicated, triaged, assigned, fixed and verified, with SLAs.")),
    Domain("src", N_("SRC portal"),
           N_("The company's own bug bounty: reports, triage, rewards and leaderboard.")),
    Domain("awareness", N_("Security awareness"),
           N_("Courses, exams, phishing simulation and advice for employees and their managers.")),
    Domain("compliance", N_("Compliance"),
           N_("MLPS 2.0, ISO/IEC 27001 and Cybersecurity Law controls with evidence and gap reports.")),
    Domain("dashboards", N_("Dashboards and reports"),
           N_("Situational awareness, SOC metrics and scheduled reports.")),
    Domain("projects", N_("Project security"),
           N_("Security gates for business projects, from design review to release and operation.")),
    Domain("coverage", N_("Defence coverage"),
           N_("Which protections cover each asset, and where the gaps are.")),
    Domain("units", N_("Organisation units"),
           N_("Headquarters, branches, subsidiaries and business lines, with roles scoped to them."),
           href="/admin/units", permission=P.UNITS_READ),
)
ADMIN_PAGES: tuple[Domain, ...] = (
    Domain("users", N_("Users"), href="/admin/users", permission=P.USERS_READ),
    Domain("settings", N_("Settings"), href="/admin/settings", permission=P.SETTINGS_READ, everywhere=True),
    Domain("policy", N_("Security policy"), href="/security/policy", permission=P.POLICY_READ, everywhere=True),
    Domain("audit", N_("Audit log"), href="/audit", permission=P.AUDIT_READ),
    Domain("notification-channels", N_("Notification channels"), href="/response/notifications",
           permission=P.INTEGRATIONS_WRITE),
    Domain("response-actions", N_("Response actions"), href="/response/actions", permission=P.INTEGRATIONS_WRITE),
    Domain("playbooks", N_("Playbooks"), href="/response/playbooks", permission=P.INTEGRATIONS_WRITE),
    Domain("action-runs", N_("Response action runs"), href="/response/executions", permission=P.RESPONSE_EXECUTE),
    Domain("playbook-runs", N_("Playbook runs"), href="/response/playbook-runs", permission=P.RESPONSE_EXECUTE),
)
OVERVIEW: tuple[Domain, ...] = (
    Domain("home", N_("Home"), href="/"),
    Domain("account", N_("My account"), href="/account"),
    Domain("report", N_("Report an incident"), href="/reports/new"),
)


def allowed(principal: Principal | None, permission: Permission | str | None, everywhere: bool = False) -> bool:
    if principal is None:
        return False
    if permission is None:
        return True
    permission = Permission(permission)
    return principal.has_everywhere(permission) if everywhere else principal.has(permission)


@dataclass(frozen=True)
class NavLink:
    label: str
    href: str | None  # None: planned, or built but not open to this user
    planned: bool
    active: bool


@dataclass(frozen=True)
class NavSection:
    title: str
    links: list[NavLink] = field(default_factory=list)


def _is_active(href: str, path: str) -> bool:
    return path == href if href == "/" else path == href or path.startswith(href + "/")


def navigation(principal: Principal | None, path: str, _: Translator) -> list[NavSection]:
    """The sidebar: every domain (planned ones unlinked), and the administration pages this user may open."""
    if principal is None:
        return []

    def link(domain: Domain, *, hide_denied: bool) -> NavLink | None:
        if domain.href is None:
            return NavLink(_(domain.label), None, planned=True, active=False)
        if not allowed(principal, domain.permission, domain.everywhere):
            return None if hide_denied else NavLink(_(domain.label), None, planned=False, active=False)
        return NavLink(_(domain.label), domain.href, planned=False, active=_is_active(domain.href, path))

    sections = [
        NavSection(_("Overview"), [x for d in OVERVIEW if (x := link(d, hide_denied=True))]),
        NavSection(_("Platform"), [x for d in DOMAINS if (x := link(d, hide_denied=False))]),
        NavSection(_("Administration"), [x for d in ADMIN_PAGES if (x := link(d, hide_denied=True))]),
    ]
    return [section for section in sections if section.links]


# --- rendering -------------------------------------------------------------------------------------

environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ids = itertools.count(1)
environment.globals["uid"] = lambda: next(_ids)  # unique element ids (a field and its note)


def format_time(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def login_csrf_token(request: Request) -> str:
    """The double-submit token of signed-out forms (sign-in, language): a cookie and a hidden field."""
    token: str | None = getattr(request.state, "login_csrf", None)
    if token is None:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        request.state.login_csrf = token
    return token


def check_login_csrf(request: Request, form: FormData) -> None:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    supplied = form.get(CSRF_FIELD)
    if not cookie or not isinstance(supplied, str) or not hmac.compare_digest(cookie, supplied):
        raise CsrfFailed("this form was sent without a valid CSRF token; reload the page and try again")


def set_cookie(response: Response, request: Request, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=settings_of(request).cookie_secure,
                        httponly=True, samesite="lax")


# Confirmations after a redirect (``?notice=key``): only these fixed messages, never text from the URL.
NOTICES: Mapping[str, str] = {
    "profile-saved": N_("Your profile is saved."),
    "password-changed": N_("Your password is changed."),
    "token-revoked": N_("The token is revoked."),
    "user-created": N_("The user is created. They must choose a new password at their first sign-in."),
    "user-saved": N_("The changes are saved."),
    "user-disabled": N_("The account is disabled and its sign-ins are ended."),
    "user-enabled": N_("The account is enabled."),
    "role-granted": N_("The role is granted."),
    "role-revoked": N_("The role is revoked."),
    "password-reset": N_("The password is reset; the user must change it at the next sign-in."),
    "user-unlocked": N_("The account is unlocked."),
    "tokens-revoked": N_("The user's active tokens are revoked."),
    "unit-created": N_("The unit is created."),
    "unit-renamed": N_("The unit is renamed."),
    "policy-saved": N_("The security policy is saved."),
}


def current_page(request: Request) -> str:
    """Where the language switch returns to: this page, or for a form's answer the page the form was on."""
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = urlsplit(request.headers.get("referer", ""))
    same_site = referer.netloc == request.url.netloc
    return local_path(referer.path + (f"?{referer.query}" if referer.query else "")) if same_site else "/"


def render(request: Request, template: str, context: Mapping[str, Any] | None = None, *, status: int = 200,
           principal: Principal | None = None) -> HTMLResponse:
    """Render a page for this request's user and language; never cached, since pages show private data."""
    principal = principal or getattr(request.state, "principal", None)
    language = language_of(request, principal)
    _ = Translator(language)
    zone = ZoneInfo(settings_of(request).timezone)
    session_csrf = principal.csrf_token if principal is not None else None
    csrf_token = session_csrf or login_csrf_token(request)
    base: dict[str, Any] = {
        "_": _,
        "request": request,
        "principal": principal,
        "lang": language,
        "html_lang": language.replace("_", "-"),
        "languages": i18n.LANGUAGES,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token,
        "nav": navigation(principal, request.url.path, _),
        "can": lambda permission, everywhere=False: allowed(principal, permission, everywhere),
        "role_label": lambda role: _(ROLE_LABELS.get(str(role), str(role))),
        "role_options": [(str(role), _(ROLE_LABELS[role])) for role in Role],
        "when": lambda value: format_time(value, zone),
        "here": current_page(request),
        "has_htmx": HAS_HTMX,
        "notice": _(NOTICES[key]) if (key := request.query_params.get("notice", "")) in NOTICES else "",
    }
    html = environment.get_template(template).render({**base, **(context or {})})
    response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
    if session_csrf is None and request.cookies.get(LOGIN_CSRF_COOKIE) != csrf_token:
        set_cookie(response, request, LOGIN_CSRF_COOKIE, str(csrf_token))
    return response


NextParam = Annotated[str, Query(alias="next", max_length=2000, description="Where to go afterwards.")]


def unit_options(units: Iterable[Any]) -> list[tuple[int, str]]:
    """(id, name) pairs of organisation units for a select field."""
    return [(unit.id, unit.name) for unit in units]


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def local_path(target: str | None, default: str = "/", avoid: tuple[str, ...] = ("/logout",)) -> str:
    """``target`` when it is a path on this site, else ``default``: no open redirects."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if any(ord(char) < 32 or char in "\\\x7f" for char in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path in avoid:
        return default
    return target


def wants_fragment(request: Request) -> bool:
    """An HTMX request, which swaps part of the page."""
    return request.headers.get("hx-request") == "true"


@dataclass(frozen=True)
class Pager:
    """Links of a paginated table, keeping the filters of the current query."""

    path: str
    total: int
    limit: int
    offset: int
    params: Mapping[str, str] = field(default_factory=dict)

    def url(self, offset: int) -> str:
        query = {key: value for key, value in self.params.items() if value}
        query.update(limit=str(self.limit), offset=str(max(offset, 0)))
        return f"{self.path}?{urlencode(query)}"

    @property
    def first(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last(self) -> int:
        return min(self.offset + self.limit, self.total)

    @property
    def previous_url(self) -> str | None:
        return self.url(self.offset - self.limit) if self.offset > 0 else None

    @property
    def next_url(self) -> str | None:
        return self.url(self.offset + self.limit) if self.offset + self.limit < self.total else None


# --- errors ----------------------------------------------------------------------------------------

ERROR_TITLES: Mapping[int, str] = {
    400: N_("Bad request"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Method not allowed"),
    409: N_("Conflict"),
    413: N_("Request too large"),
    422: N_("Invalid input"),
    429: N_("Too many requests"),
    503: N_("Service unavailable"),
}
FALLBACK_TITLE = N_("Something went wrong")
ERROR_HINTS: Mapping[int, str] = {
    403: N_("Your roles do not allow this page or action. If your work needs it, ask an administrator."),
    404: N_("There is no such page or record, or it lies outside your organisation units."),
    409: N_("The record's current state does not allow this change."),
    422: N_("Correct the input and try again."),
    503: N_("A store Vigil needs is not reachable. Try again shortly; the operators have been told in the log."),
}


def render_error(request: Request, status: int, title: str, detail: str) -> Response:
    """The friendly error page (app.state.render_error): translated title and hint, the detail below."""
    _ = translator(request)
    if title == CsrfFailed.title:
        heading, hint = _("The form has expired"), _(
            "The form was sent without a valid security token. Reload the page and send it again.")
    else:
        heading = _(ERROR_TITLES.get(status, FALLBACK_TITLE))
        hint = _(ERROR_HINTS[status]) if status in ERROR_HINTS else ""
    return render(request, "error.html", {"status": status, "heading": heading, "hint": hint, "detail": detail},
                  status=status)


# --- forms -----------------------------------------------------------------------------------------

FIELD_MESSAGES: Mapping[str, str] = {
    "missing": N_("This field is required."),
    "string_too_short": N_("This is too short."),
    "string_too_long": N_("This is too long."),
    "int_parsing": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "greater_than_equal": N_("Enter a number no smaller than %(limit)s."),
    "less_than_equal": N_("Enter a number no larger than %(limit)s."),
    "enum": N_("Choose one of the offered values."),
    "literal_error": N_("Choose one of the offered values."),
}
FIELD_VALUE_MESSAGES: Mapping[str, str] = {
    "username": N_("Use 2 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit."),
    "email": N_("Enter a valid e-mail address."),
}


def field_errors(exc: ValidationError, _: Translator) -> dict[str, str]:
    """Pydantic's complaints as one translated message per form field."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        kind = error["type"]
        if kind in FIELD_MESSAGES:
            limit = (error.get("ctx") or {}).get("ge", (error.get("ctx") or {}).get("le", ""))
            message = _(FIELD_MESSAGES[kind], limit=limit) if "%(limit)s" in FIELD_MESSAGES[kind] else _(
                FIELD_MESSAGES[kind])
        elif name in FIELD_VALUE_MESSAGES:
            message = _(FIELD_VALUE_MESSAGES[name])
        else:
            message = str(error["msg"])
        errors.setdefault(name, message)
    return errors


def validate(schema: type[M], data: Mapping[str, Any], _: Translator) -> tuple[M | None, dict[str, str]]:
    try:
        return schema.model_validate(dict(data)), {}
    except ValidationError as exc:
        return None, field_errors(exc, _)


async def read_form(request: Request) -> FormData:
    """The submitted form (Starlette keeps it, so the CSRF check and the view read it once)."""
    return await request.form()


FormDep = Annotated[FormData, Depends(read_form)]


def text_fields(form: FormData, *names: str) -> dict[str, str]:
    """Named text fields of a submitted form, stripped; an absent field is an empty string."""
    values: dict[str, str] = {}
    for name in names:
        value = form.get(name)
        values[name] = value.strip() if isinstance(value, str) else ""
    return values


def describe_error(exc: VigilError, _: Translator) -> str:
    """A service's refusal of a form, introduced in the user's language (the detail is the service's)."""
    intro: list[tuple[type[VigilError], str]] = [
        (BadInput, _("The input was not accepted:")),
        (Conflict, _("This change conflicts with the current state:")),
        (PermissionDenied, _("Refused:")),
        (NotFound, _("Not found:")),
    ]
    for kind, text in intro:
        if isinstance(exc, kind):
            return f"{text} {exc.detail}"
    return exc.detail


# --- guards ----------------------------------------------------------------------------------------


class PasswordChangeRequired(Exception):
    """The signed-in user must set a new password before using any other page."""


class PageRoute(APIRoute):
    """A page route: sends a user who must change their password to that form."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except PasswordChangeRequired:
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return redirect(f"/account/password?next={quote(here)}")
            return response

        return page


def page_guard(permission: Permission | None = None, *, everywhere: bool = False) -> Callable[..., Principal]:
    """The guard of a page: ``require(permission)`` like the API (or self-service when None), then the
    forced password change. Use as ``Annotated[Principal, Depends(page_guard(...))]``."""
    base: Callable[..., Principal] = require(permission, everywhere=everywhere) if permission else own_records

    # Depends as a default: an annotation naming the local ``base`` could not be resolved by FastAPI.
    def guard(session: SessionDep, principal: Principal = Depends(base)) -> Principal:
        if current_user(session, principal).must_change_password:
            raise PasswordChangeRequired
        return principal

    guard.__name__ = f"page_{base.__name__}"
    return guard
