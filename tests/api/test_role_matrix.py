"""The whole role-by-endpoint matrix: every route of the app, every role, each denial and each grant.

``ROUTES`` says what every (method, path) needs: ``PUBLIC``, ``SIGNED_IN`` (self-service) or a
``Needs(permission, everywhere)``. A test enumerates the app's routes at run time and fails when one has
no row, so a new endpoint or page cannot ship without saying who may use it.

For every route and every caller (the six roles at headquarters, a user with no role, the system, audit
and security administrators of a branch, and nobody signed in): a denial is 403 (problem+json for the
API, an HTML page for the UI), writes an ``auth.denied`` audit record and nothing else; a grant is
neither 401 nor 403, and with the valid request each row builds, it succeeds, and a granted change is on
the audit trail.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from starlette.routing import Mount
from tests.detection.test_alerts_service import fresh_alert_id, fresh_suppression_id
from tests.detection.test_hunts_api import fresh_hunt_id, hunt_rule_uid
from tests.detection.test_rule_placeholders import matrix_placeholder
from tests.detection.test_rule_tests import WHOAMI, matrix_rule_with_case
from tests.detection.test_rules_api import matrix_rule_id
from tests.detection.test_rules_service import sigma_rule
from tests.incidents.test_incidents_api import (
    fresh_done_task_ids,
    fresh_field_id,
    fresh_grouping_rule_id,
    fresh_incident_id,
    fresh_linked_alert_ids,
    fresh_observable_ids,
    fresh_postmortem_incident,
    fresh_ready_incident,
    fresh_task_ids,
    fresh_template_id,
)
from tests.incidents.test_postmortem_publish import fresh_approved_incident
from tests.incidents.test_reports import fresh_evidence_ids, fresh_follow_token, fresh_report_id
from tests.intel.test_intel_api import (
    STIX_BUNDLE,
    fresh_allow_id,
    fresh_entity_id,
    fresh_feed_id,
    fresh_indicator_id,
    fresh_sighting_id,
)
from tests.kb.test_kb_api import fresh_kb_slug, with_git_wiki
from tests.response.test_actions_api import (
    fresh_action_id,
    fresh_execution_id,
    fresh_playbook_id,
    fresh_run_id,
    playbook_body,
)
from tests.response.test_notifications_api import channel_form, fresh_channel_id
from tests.response.test_oncall_api import (
    fresh_ack_path,
    fresh_escalation_id,
    fresh_override_path,
    fresh_policy_id,
    fresh_schedule_id,
)
from tests.response.test_paging import fresh_paging

from vigil.accounts.models import RoleGrant, User
from vigil.core.auth import ROLE_PERMISSIONS, Permission, Role
from vigil.core.config import load_settings
from vigil.core.db import Scope
from vigil.siem.models import LogSource, SavedSearch
from vigil.web.app import create_app
from vigil.web.deps import LOGIN_CSRF_COOKIE, SESSION_COOKIE

from .support import assert_problem, audit_state, new_token, web_session

P = Permission
PUBLIC = "public"
SIGNED_IN = "signed-in"
PASSWORD = "Correct-Horse-42!"  # conftest.PASSWORD: every world user's password
NEW_PASSWORD = "Quite-Different-Secret-17!"
LOGIN_CSRF = "login-form-token-for-tests"


@dataclass(frozen=True)
class Needs:
    permission: Permission
    everywhere: bool = False  # held on the root unit (platform-wide settings and policies)


Requirement = str | Needs


# --- who calls --------------------------------------------------------------------------------------

# Every caller's grants: (role, unit name). The six roles and "nobody" sit at headquarters.
CALLERS: dict[str | None, list[tuple[Role, str]]] = {
    "sysadmin": [(Role.SYSTEM_ADMIN, "hq")],
    "secadmin": [(Role.SECURITY_ADMIN, "hq")],
    "auditor": [(Role.AUDIT_ADMIN, "hq")],
    "analyst": [(Role.ANALYST, "hq")],
    "responder": [(Role.RESPONDER, "hq")],
    "viewer": [(Role.VIEWER, "hq")],
    "nobody": [],
    "sysadmin_a": [(Role.SYSTEM_ADMIN, "branch_a")],
    "auditor_a": [(Role.AUDIT_ADMIN, "branch_a")],
    "secadmin_a": [(Role.SECURITY_ADMIN, "branch_a")],
    None: [],  # not signed in
}


def allowed(needs: Requirement, caller: str | None) -> bool:
    if needs == PUBLIC:
        return True
    if caller is None:
        return False
    if needs == SIGNED_IN:
        return True
    assert isinstance(needs, Needs)
    return any(
        needs.permission in ROLE_PERMISSIONS[role] and (unit == "hq" or not needs.everywhere)
        for role, unit in CALLERS[caller]
    )


@dataclass
class Caller:
    """What a request builder knows: the world, who calls, and a way to make fresh records."""

    world: Any
    username: str | None
    app: Any = None  # the app under test, for rows that need records outside the records store (events)

    @property
    def name(self) -> str:
        return self.username or "anonymous"

    def own_token_id(self) -> int:
        return new_token(self.world.database, self.username or "viewer")[1]

    def token_of(self, username: str) -> int:
        return new_token(self.world.database, username)[1]

    def grant_id(self, username: str, role: Role, unit_id: int) -> int:
        """The id of this grant, created when missing (a previous caller may have revoked it)."""
        user_id = self.world.users[username]
        with self.world.database.transaction(Scope.system()) as session:
            found = session.scalar(select(RoleGrant.id).where(
                RoleGrant.user_id == user_id, RoleGrant.role == str(role), RoleGrant.unit_id == unit_id))
            if found is not None:
                return found
            row = RoleGrant(user_id=user_id, role=str(role), unit_id=unit_id, granted_by="tests")
            session.add(row)
            session.flush()
            return row.id

    def event_id(self) -> int:
        """The id of a fresh event of headquarters in the app's event store."""
        store = self.app.state.siem.store
        marker = f"matrix-{self.name}-{len(store.search(limit=10_000))}"
        store.append([{"message": marker}], unit_id=self.world.hq, source="matrix")
        return int(store.search("message = ?", [marker], limit=1)[0].id)

    def saved_search_id(self) -> int:
        """The id of a fresh saved search of the caller (of the viewer for a caller not signed in)."""
        user_id = self.world.users[self.username or "viewer"]
        with self.world.database.transaction(Scope.system()) as session:
            unit_id = session.scalar(select(User.unit_id).where(User.id == user_id))
            row = SavedSearch(user_id=user_id, unit_id=unit_id, name=f"matrix {uuid.uuid4().hex}", query="*")
            session.add(row)
            session.flush()
            return row.id

    def without_grant(self, username: str, role: Role, unit_id: int) -> None:
        """Remove this grant if a previous caller created it, so granting it again can succeed."""
        user_id = self.world.users[username]
        with self.world.database.transaction(Scope.system()) as session:
            session.execute(delete(RoleGrant).where(
                RoleGrant.user_id == user_id, RoleGrant.role == str(role), RoleGrant.unit_id == unit_id))


@dataclass
class Req:
    path: str
    json: Any = None
    data: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None  # a raw request body (an evidence upload)
    files: dict[str, Any] | None = None  # a form's file fields


@dataclass(frozen=True)
class Row:
    needs: Requirement
    build: Callable[[Caller], Req]
    reads_only: bool = False  # a POST that changes nothing (a search with its query in the body): no audit record


def fixed(path: str) -> Callable[[Caller], Req]:
    return lambda c: Req(path)


def policy_body() -> dict[str, int]:
    return {"password_min_length": 12, "password_min_classes": 3, "password_max_age_days": 90,
            "max_failed_logins": 5, "lockout_minutes": 15, "token_max_days": 365}


def static_file() -> str:
    static = Path(__file__).resolve().parents[2] / "src" / "vigil" / "web" / "static"
    return "/static/" + sorted(p.name for p in static.glob("*.css"))[0]


def login_form(c: Caller) -> Req:
    return Req("/login", data={"username": c.username or "viewer", "password": PASSWORD, "next": "/",
                               "csrf_token": LOGIN_CSRF}, cookies={LOGIN_CSRF_COOKIE: LOGIN_CSRF})


def language_form(c: Caller) -> Req:
    if c.username is None:  # signed out: the sign-in page's CSRF cookie protects the form
        return Req("/language", data={"language": "zh_CN", "next": "/login", "csrf_token": LOGIN_CSRF},
                   cookies={LOGIN_CSRF_COOKIE: LOGIN_CSRF})
    return Req("/language", data={"language": "zh_CN", "next": "/"})


# Targets: staff_a (a viewer in line_a, below branch_a) and line_a, so a branch administrator's grant
# is as valid as headquarters'.
def staff_a(c: Caller) -> int:
    return int(c.world.users["staff_a"])


def log_source_id(c: Caller) -> int:
    """A fresh configured log source of line_a (below branch_a), for the caller to read, change or remove."""
    with c.world.database.transaction(Scope.system()) as session:
        row = LogSource(name=f"matrix-{uuid.uuid4().hex}", unit_id=c.world.line_a)
        session.add(row)
        session.flush()
        return row.id


def source_form(c: Caller) -> dict[str, str]:
    return {"unit_id": str(c.world.line_a), "description": f"set by {c.name}", "format": "syslog",
            "timezone": "UTC", "retention_days": "200", "expected_interval_minutes": "15", "keep_original": "on"}

def evidence_ids(c: Caller) -> tuple[int, int]:
    """(incident id, evidence id) of a fresh evidence file of line_a, in the app's evidence folder."""
    return fresh_evidence_ids(c.world, c.app.state.settings.evidence_dir)



ROUTES: dict[tuple[str, str], Row] = {
    # --- system -----------------------------------------------------------------------------------
    ("GET", "/healthz"): Row(PUBLIC, fixed("/healthz")),
    ("GET", "/readyz"): Row(PUBLIC, fixed("/readyz")),
    ("GET", "/metrics"): Row(Needs(P.METRICS_READ), fixed("/metrics")),
    ("GET", "/api/openapi.json"): Row(PUBLIC, fixed("/api/openapi.json")),
    ("GET", "/api/docs"): Row(PUBLIC, fixed("/api/docs")),
    ("GET", "/docs/oauth2-redirect"): Row(PUBLIC, fixed("/docs/oauth2-redirect")),
    ("GET", "/static/{path}"): Row(PUBLIC, lambda c: Req(static_file())),
    ("GET", "/api/v1/settings"): Row(Needs(P.SETTINGS_READ, everywhere=True), fixed("/api/v1/settings")),
    # --- the signed-in user -------------------------------------------------------------------------
    ("GET", "/api/v1/me"): Row(SIGNED_IN, fixed("/api/v1/me")),
    ("PATCH", "/api/v1/me"): Row(SIGNED_IN, lambda c: Req("/api/v1/me", json={"display_name": f"{c.name} (new)"})),
    ("POST", "/api/v1/me/password"): Row(SIGNED_IN, lambda c: Req(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
    ("GET", "/api/v1/me/tokens"): Row(SIGNED_IN, fixed("/api/v1/me/tokens")),
    ("POST", "/api/v1/me/tokens"): Row(SIGNED_IN, lambda c: Req("/api/v1/me/tokens", json={"name": "matrix"})),
    ("DELETE", "/api/v1/me/tokens/{token_id}"): Row(
        SIGNED_IN, lambda c: Req(f"/api/v1/me/tokens/{c.own_token_id()}")),
    # --- users --------------------------------------------------------------------------------------
    ("GET", "/api/v1/users"): Row(Needs(P.USERS_READ), fixed("/api/v1/users")),
    ("POST", "/api/v1/users"): Row(Needs(P.USERS_WRITE), lambda c: Req("/api/v1/users", json={
        "username": f"made-by-{c.name}", "password": "Fresh-Account-Pass-1!", "unit_id": c.world.branch_a})),
    ("GET", "/api/v1/users/{user_id}"): Row(Needs(P.USERS_READ), lambda c: Req(f"/api/v1/users/{staff_a(c)}")),
    ("PATCH", "/api/v1/users/{user_id}"): Row(Needs(P.USERS_WRITE), lambda c: Req(
        f"/api/v1/users/{staff_a(c)}", json={"display_name": f"renamed by {c.name}"})),
    ("POST", "/api/v1/users/{user_id}/grants"): Row(Needs(P.ROLES_ASSIGN), lambda c: (
        c.without_grant("staff_a", Role.ANALYST, c.world.line_a),
        Req(f"/api/v1/users/{staff_a(c)}/grants", json={"role": "analyst", "unit_id": c.world.line_a}))[1]),
    ("DELETE", "/api/v1/users/{user_id}/grants/{grant_id}"): Row(Needs(P.ROLES_ASSIGN), lambda c: Req(
        f"/api/v1/users/{staff_a(c)}/grants/{c.grant_id('staff_a', Role.ANALYST, c.world.line_a)}")),
    ("POST", "/api/v1/users/{user_id}/password"): Row(Needs(P.USERS_WRITE), lambda c: Req(
        f"/api/v1/users/{staff_a(c)}/password", json={"password": "Reset-By-Admin-Pass-9!"})),
    ("POST", "/api/v1/users/{user_id}/unlock"): Row(
        Needs(P.USERS_WRITE), lambda c: Req(f"/api/v1/users/{staff_a(c)}/unlock")),
    ("GET", "/api/v1/users/{user_id}/tokens"): Row(
        Needs(P.USERS_READ), lambda c: Req(f"/api/v1/users/{staff_a(c)}/tokens")),
    ("DELETE", "/api/v1/users/{user_id}/tokens/{token_id}"): Row(Needs(P.USERS_WRITE), lambda c: Req(
        f"/api/v1/users/{staff_a(c)}/tokens/{c.token_of('staff_a')}")),
    ("GET", "/api/v1/roles"): Row(Needs(P.USERS_READ), fixed("/api/v1/roles")),
    # --- organisation units -------------------------------------------------------------------------
    ("GET", "/api/v1/units"): Row(Needs(P.UNITS_READ), fixed("/api/v1/units")),
    ("POST", "/api/v1/units"): Row(Needs(P.UNITS_WRITE), lambda c: Req("/api/v1/units", json={
        "name": f"Unit of {c.name}", "kind": "subsidiary", "parent_id": c.world.branch_a})),
    ("GET", "/api/v1/units/{unit_id}"): Row(Needs(P.UNITS_READ), lambda c: Req(f"/api/v1/units/{c.world.line_a}")),
    ("PATCH", "/api/v1/units/{unit_id}"): Row(Needs(P.UNITS_WRITE), lambda c: Req(
        f"/api/v1/units/{c.world.line_a}", json={"name": f"Payments ({c.name})"})),
    # --- security policy ----------------------------------------------------------------------------
    ("GET", "/api/v1/security/policy"): Row(Needs(P.POLICY_READ, everywhere=True), fixed("/api/v1/security/policy")),
    ("PUT", "/api/v1/security/policy"): Row(Needs(P.POLICY_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/security/policy", json=policy_body())),
    # --- audit trail --------------------------------------------------------------------------------
    ("GET", "/api/v1/audit"): Row(Needs(P.AUDIT_READ), fixed("/api/v1/audit")),
    ("GET", "/api/v1/audit/export.csv"): Row(Needs(P.AUDIT_READ), fixed("/api/v1/audit/export.csv")),
    ("POST", "/api/v1/audit/verify"): Row(Needs(P.AUDIT_VERIFY, everywhere=True), fixed("/api/v1/audit/verify")),
    # --- events (SIEM search) -----------------------------------------------------------------------
    ("GET", "/api/v1/events/search"): Row(Needs(P.EVENTS_READ), lambda c: Req(
        "/api/v1/events/search", params={"q": "message:matrix*", "range": "1h"})),
    ("POST", "/api/v1/events/search"): Row(Needs(P.EVENTS_READ), lambda c: Req(
        "/api/v1/events/search", json={"q": "message:matrix*", "range": "1h"}), reads_only=True),
    ("GET", "/api/v1/events/histogram"): Row(Needs(P.EVENTS_READ), fixed("/api/v1/events/histogram")),
    ("GET", "/api/v1/events/top-values"): Row(Needs(P.EVENTS_READ), lambda c: Req(
        "/api/v1/events/top-values", params={"field": "vigil.source"})),
    ("POST", "/api/v1/events/aggregations"): Row(Needs(P.EVENTS_READ), lambda c: Req(
        "/api/v1/events/aggregations", json={"fields": ["vigil.source"]}), reads_only=True),
    ("GET", "/api/v1/events/export"): Row(Needs(P.EVENTS_READ), lambda c: Req(
        "/api/v1/events/export", params={"format": "ndjson", "range": "1h"})),
    ("GET", "/api/v1/events/{event_id}"): Row(Needs(P.EVENTS_READ), lambda c: Req(f"/api/v1/events/{c.event_id()}")),
    # --- saved searches (each user's own) --------------------------------------------------------------
    ("GET", "/api/v1/saved-searches"): Row(Needs(P.EVENTS_READ), fixed("/api/v1/saved-searches")),
    ("POST", "/api/v1/saved-searches"): Row(Needs(P.EVENTS_READ), lambda c: Req(
        "/api/v1/saved-searches", json={"name": f"matrix {c.name} api", "query": "message:matrix*"})),
    ("DELETE", "/api/v1/saved-searches/{saved_id}"): Row(Needs(P.EVENTS_READ), lambda c: Req(
        f"/api/v1/saved-searches/{c.saved_search_id()}")),
    # --- UI: event search -----------------------------------------------------------------------------
    ("GET", "/siem/search"): Row(Needs(P.EVENTS_READ), lambda c: Req(
        "/siem/search", params={"q": "message:matrix*", "range": "1h"})),
    ("GET", "/siem/search/values"): Row(Needs(P.EVENTS_READ), lambda c: Req(
        "/siem/search/values", params={"field": "vigil.source"})),
    ("GET", "/siem/events/{event_id}"): Row(Needs(P.EVENTS_READ), lambda c: Req(f"/siem/events/{c.event_id()}")),
    ("POST", "/siem/search/saved"): Row(Needs(P.EVENTS_READ), lambda c: Req("/siem/search/saved", data={
        "name": f"matrix {c.name} page", "q": "message:matrix*", "range": "1h"})),
    ("POST", "/siem/search/saved/{saved_id}/delete"): Row(Needs(P.EVENTS_READ), lambda c: Req(
        f"/siem/search/saved/{c.saved_search_id()}/delete", data={})),
    # --- log sources, retention, SIEM status -------------------------------------------------------------
    ("GET", "/api/v1/siem/sources"): Row(Needs(P.SOURCES_READ), fixed("/api/v1/siem/sources")),
    ("POST", "/api/v1/siem/sources"): Row(Needs(P.SOURCES_WRITE), lambda c: Req("/api/v1/siem/sources", json={
        "name": f"matrix-api-{c.name}", "unit_id": c.world.line_a, "timezone": "UTC"})),
    ("GET", "/api/v1/siem/sources/{source_id}"): Row(Needs(P.SOURCES_READ), lambda c: Req(
        f"/api/v1/siem/sources/{log_source_id(c)}")),
    ("PATCH", "/api/v1/siem/sources/{source_id}"): Row(Needs(P.SOURCES_WRITE), lambda c: Req(
        f"/api/v1/siem/sources/{log_source_id(c)}", json={"retention_days": 365})),
    ("DELETE", "/api/v1/siem/sources/{source_id}"): Row(Needs(P.SOURCES_WRITE), lambda c: Req(
        f"/api/v1/siem/sources/{log_source_id(c)}")),
    ("GET", "/api/v1/siem/status"): Row(Needs(P.SOURCES_READ), fixed("/api/v1/siem/status")),
    ("GET", "/api/v1/siem/retention"): Row(Needs(P.SOURCES_READ), fixed("/api/v1/siem/retention")),
    ("POST", "/api/v1/siem/retention/run"): Row(Needs(P.SOURCES_WRITE, everywhere=True),
                                                fixed("/api/v1/siem/retention/run")),
    ("GET", "/siem/sources"): Row(Needs(P.SOURCES_READ), fixed("/siem/sources")),
    ("POST", "/siem/sources"): Row(Needs(P.SOURCES_WRITE), lambda c: Req("/siem/sources", data={
        **source_form(c), "name": f"matrix-page-{c.name}"})),
    ("POST", "/siem/sources/{source_id}"): Row(Needs(P.SOURCES_WRITE), lambda c: Req(
        f"/siem/sources/{log_source_id(c)}", data=source_form(c))),
    ("POST", "/siem/sources/{source_id}/delete"): Row(Needs(P.SOURCES_WRITE), lambda c: Req(
        f"/siem/sources/{log_source_id(c)}/delete", data={})),
    ("POST", "/siem/retention/run"): Row(Needs(P.SOURCES_WRITE, everywhere=True), lambda c: Req(
        "/siem/retention/run", data={})),
    # --- UI: sign-in, language, home ----------------------------------------------------------------
    ("GET", "/login"): Row(PUBLIC, fixed("/login")),
    ("POST", "/login"): Row(PUBLIC, login_form),
    ("POST", "/logout"): Row(SIGNED_IN, lambda c: Req("/logout", data={})),
    ("POST", "/language"): Row(PUBLIC, language_form),
    ("GET", "/"): Row(SIGNED_IN, fixed("/")),
    ("GET", "/admin/settings"): Row(Needs(P.SETTINGS_READ, everywhere=True), fixed("/admin/settings")),
    # --- UI: one's own account ----------------------------------------------------------------------
    ("GET", "/account"): Row(SIGNED_IN, fixed("/account")),
    ("POST", "/account/profile"): Row(SIGNED_IN, lambda c: Req(
        "/account/profile", data={"display_name": f"{c.name} (new)", "language": "en"})),
    ("POST", "/account/tokens"): Row(SIGNED_IN, lambda c: Req(
        "/account/tokens", data={"name": "matrix", "expires_in_days": "30"})),
    ("POST", "/account/tokens/{token_id}/revoke"): Row(
        SIGNED_IN, lambda c: Req(f"/account/tokens/{c.own_token_id()}/revoke", data={})),
    ("GET", "/account/password"): Row(SIGNED_IN, fixed("/account/password")),
    ("POST", "/account/password"): Row(SIGNED_IN, lambda c: Req("/account/password", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})),
    # --- UI: users ----------------------------------------------------------------------------------
    ("GET", "/admin/users"): Row(Needs(P.USERS_READ), fixed("/admin/users")),
    ("POST", "/admin/users"): Row(Needs(P.USERS_WRITE), lambda c: Req("/admin/users", data={
        "username": f"made-by-{c.name}", "password": "Fresh-Account-Pass-1!", "unit_id": str(c.world.branch_a),
        "display_name": "", "email": ""})),
    ("GET", "/admin/users/{user_id}"): Row(Needs(P.USERS_READ), lambda c: Req(f"/admin/users/{staff_a(c)}")),
    ("POST", "/admin/users/{user_id}"): Row(Needs(P.USERS_WRITE), lambda c: Req(f"/admin/users/{staff_a(c)}", data={
        "display_name": f"renamed by {c.name}", "email": "", "unit_id": str(c.world.line_a), "language": ""})),
    ("POST", "/admin/users/{user_id}/disable"): Row(
        Needs(P.USERS_WRITE), lambda c: Req(f"/admin/users/{staff_a(c)}/disable", data={})),
    ("POST", "/admin/users/{user_id}/enable"): Row(
        Needs(P.USERS_WRITE), lambda c: Req(f"/admin/users/{staff_a(c)}/enable", data={})),
    ("POST", "/admin/users/{user_id}/grants"): Row(Needs(P.ROLES_ASSIGN), lambda c: (
        c.without_grant("staff_a", Role.ANALYST, c.world.line_a),
        Req(f"/admin/users/{staff_a(c)}/grants", data={"role": "analyst", "unit_id": str(c.world.line_a)}))[1]),
    ("POST", "/admin/users/{user_id}/grants/{grant_id}/revoke"): Row(Needs(P.ROLES_ASSIGN), lambda c: Req(
        f"/admin/users/{staff_a(c)}/grants/{c.grant_id('staff_a', Role.ANALYST, c.world.line_a)}/revoke",
        data={})),
    ("POST", "/admin/users/{user_id}/password"): Row(Needs(P.USERS_WRITE), lambda c: Req(
        f"/admin/users/{staff_a(c)}/password", data={"password": "Reset-By-Admin-Pass-9!"})),
    ("POST", "/admin/users/{user_id}/unlock"): Row(
        Needs(P.USERS_WRITE), lambda c: Req(f"/admin/users/{staff_a(c)}/unlock", data={})),
    ("POST", "/admin/users/{user_id}/tokens/revoke"): Row(Needs(P.USERS_WRITE), lambda c: Req(
        f"/admin/users/{staff_a(c)}/tokens/revoke", data={"token_id": str(c.token_of("staff_a"))})),
    # --- UI: organisation units, security policy, audit ---------------------------------------------
    ("GET", "/admin/units"): Row(Needs(P.UNITS_READ), fixed("/admin/units")),
    ("POST", "/admin/units"): Row(Needs(P.UNITS_WRITE), lambda c: Req("/admin/units", data={
        "name": f"Unit of {c.name}", "kind": "subsidiary", "parent_id": str(c.world.branch_a)})),
    ("POST", "/admin/units/{unit_id}/rename"): Row(Needs(P.UNITS_WRITE), lambda c: Req(
        f"/admin/units/{c.world.line_a}/rename", data={"name": f"Payments ({c.name})"})),
    ("GET", "/security/policy"): Row(Needs(P.POLICY_READ, everywhere=True), fixed("/security/policy")),
    ("POST", "/security/policy"): Row(Needs(P.POLICY_WRITE, everywhere=True), lambda c: Req(
        "/security/policy", data={k: str(v) for k, v in policy_body().items()})),
    ("GET", "/audit"): Row(Needs(P.AUDIT_READ), fixed("/audit")),
    ("POST", "/audit/verify"): Row(Needs(P.AUDIT_VERIFY, everywhere=True), lambda c: Req("/audit/verify", data={})),
    # --- SIEM ingestion: shipper tokens only (ingestion is not audited on purpose: a record per batch) ------
    ("POST", "/api/v1/ingest"): Row(Needs(P.EVENTS_INGEST), lambda c: Req(
        "/api/v1/ingest", json=[{"message": f"matrix {c.name}"}]), reads_only=True),
    # --- Elasticsearch-compatible ingestion (errors in Elasticsearch's shape; see is_elastic) --------------
    # ("GET", "/") of a client with credentials is the cluster-info route; the row above covers the page.
    ("GET", "/_license"): Row(Needs(P.EVENTS_INGEST), fixed("/_license")),
    ("GET", "/_xpack"): Row(Needs(P.EVENTS_INGEST), fixed("/_xpack")),
    ("GET", "/_nodes"): Row(Needs(P.EVENTS_INGEST), fixed("/_nodes")),
    ("GET", "/_cluster/health"): Row(Needs(P.EVENTS_INGEST), fixed("/_cluster/health")),
    ("GET", "/_cat/{what:path}"): Row(Needs(P.EVENTS_INGEST), fixed("/_cat/indices")),
    ("GET", "/_index_template/{name}"): Row(Needs(P.EVENTS_INGEST), fixed("/_index_template/filebeat")),
    ("PUT", "/_index_template/{name}"): Row(Needs(P.EVENTS_INGEST), lambda c: Req(
        "/_index_template/filebeat", json={"index_patterns": ["filebeat-*"]}), reads_only=True),
    ("GET", "/_template/{name}"): Row(Needs(P.EVENTS_INGEST), fixed("/_template/filebeat")),
    ("PUT", "/_template/{name}"): Row(Needs(P.EVENTS_INGEST), lambda c: Req(
        "/_template/filebeat", json={"index_patterns": ["filebeat-*"]}), reads_only=True),
    ("GET", "/_ilm/policy/{name}"): Row(Needs(P.EVENTS_INGEST), fixed("/_ilm/policy/filebeat")),
    ("PUT", "/_ilm/policy/{name}"): Row(Needs(P.EVENTS_INGEST), lambda c: Req(
        "/_ilm/policy/filebeat", json={"policy": {"phases": {}}}), reads_only=True),
    ("GET", "/_ingest/pipeline/{name}"): Row(Needs(P.EVENTS_INGEST), fixed("/_ingest/pipeline/p1")),
    ("PUT", "/_ingest/pipeline/{name}"): Row(Needs(P.EVENTS_INGEST), lambda c: Req(
        "/_ingest/pipeline/p1", json={"processors": []}), reads_only=True),
    ("POST", "/_bulk"): Row(Needs(P.EVENTS_INGEST), lambda c: Req(
        "/_bulk", json={"create": {"_index": "logs"}}), reads_only=True),
    ("PUT", "/_bulk"): Row(Needs(P.EVENTS_INGEST), lambda c: Req(
        "/_bulk", json={"create": {"_index": "logs"}}), reads_only=True),
    ("POST", "/{index}/_bulk"): Row(Needs(P.EVENTS_INGEST), lambda c: Req(
        "/logs/_bulk", json={"create": {}}), reads_only=True),
    ("PUT", "/{index}/_bulk"): Row(Needs(P.EVENTS_INGEST), lambda c: Req(
        "/logs/_bulk", json={"create": {}}), reads_only=True),
    # --- ATT&CK coverage (rules are platform-wide; alerts counted in the caller's alerts:read units) ------
    ("GET", "/api/v1/coverage"): Row(Needs(P.RULES_READ), lambda c: Req("/api/v1/coverage", params={"days": 30})),
    ("GET", "/api/v1/coverage/navigator"): Row(Needs(P.RULES_READ), lambda c: Req(
        "/api/v1/coverage/navigator", params={"days": 30})),
    ("GET", "/detection/coverage"): Row(Needs(P.RULES_READ), lambda c: Req("/detection/coverage", params={"days": 7})),
    # --- alerts and suppressions (records of line_a, below branch_a) ----------------------------------------
    ("GET", "/api/v1/alerts"): Row(Needs(P.ALERTS_READ), lambda c: Req("/api/v1/alerts", params={"status": "new"})),
    ("GET", "/api/v1/alerts/stats/rules"): Row(Needs(P.ALERTS_READ), fixed("/api/v1/alerts/stats/rules")),
    ("GET", "/api/v1/alerts/stats/noisiest"): Row(Needs(P.ALERTS_READ), fixed("/api/v1/alerts/stats/noisiest")),
    ("POST", "/api/v1/alerts/bulk"): Row(Needs(P.ALERTS_WRITE), lambda c: Req("/api/v1/alerts/bulk", json={
        "ids": [fresh_alert_id(c.world)], "action": "acknowledge"})),
    ("GET", "/api/v1/alerts/{alert_id}"): Row(Needs(P.ALERTS_READ), lambda c: Req(
        f"/api/v1/alerts/{fresh_alert_id(c.world)}")),
    ("POST", "/api/v1/alerts/{alert_id}/transition"): Row(Needs(P.ALERTS_WRITE), lambda c: Req(
        f"/api/v1/alerts/{fresh_alert_id(c.world)}/transition", json={"action": "close",
                                                                      "resolution": "false_positive"})),
    ("POST", "/api/v1/alerts/{alert_id}/assign"): Row(Needs(P.ALERTS_WRITE), lambda c: Req(
        f"/api/v1/alerts/{fresh_alert_id(c.world)}/assign", json={"assignee_id": c.world.users["analyst"]})),
    ("GET", "/api/v1/alerts/{alert_id}/suppression"): Row(Needs(P.ALERTS_READ), lambda c: Req(
        f"/api/v1/alerts/{fresh_alert_id(c.world)}/suppression")),
    ("GET", "/api/v1/suppressions"): Row(Needs(P.ALERTS_READ), fixed("/api/v1/suppressions")),
    ("POST", "/api/v1/suppressions"): Row(Needs(P.ALERTS_WRITE), lambda c: Req("/api/v1/suppressions", json={
        "conditions": [{"field": "Computer", "value": "WS01"}], "reason": "matrix", "unit_id": c.world.line_a})),
    ("GET", "/api/v1/suppressions/{suppression_id}"): Row(Needs(P.ALERTS_READ), lambda c: Req(
        f"/api/v1/suppressions/{fresh_suppression_id(c.world)}")),
    ("PATCH", "/api/v1/suppressions/{suppression_id}"): Row(Needs(P.ALERTS_WRITE), lambda c: Req(
        f"/api/v1/suppressions/{fresh_suppression_id(c.world)}", json={"enabled": False})),
    ("DELETE", "/api/v1/suppressions/{suppression_id}"): Row(Needs(P.ALERTS_WRITE), lambda c: Req(
        f"/api/v1/suppressions/{fresh_suppression_id(c.world)}")),
    ("GET", "/detection/alerts"): Row(Needs(P.ALERTS_READ), lambda c: Req("/detection/alerts", params={"q": "x"})),
    ("POST", "/detection/alerts/bulk"): Row(Needs(P.ALERTS_WRITE), lambda c: Req("/detection/alerts/bulk", data={
        "ids": str(fresh_alert_id(c.world)), "action": "escalate"})),
    ("GET", "/detection/alerts/{alert_id}"): Row(Needs(P.ALERTS_READ), lambda c: Req(
        f"/detection/alerts/{fresh_alert_id(c.world)}")),
    ("POST", "/detection/alerts/{alert_id}/transition"): Row(Needs(P.ALERTS_WRITE), lambda c: Req(
        f"/detection/alerts/{fresh_alert_id(c.world)}/transition", data={"action": "acknowledge"})),
    ("POST", "/detection/alerts/{alert_id}/assign"): Row(Needs(P.ALERTS_WRITE), lambda c: Req(
        f"/detection/alerts/{fresh_alert_id(c.world)}/assign", data={"assignee": "me"})),
    ("POST", "/detection/alerts/{alert_id}/suppress"): Row(Needs(P.ALERTS_WRITE), lambda c: Req(
        f"/detection/alerts/{fresh_alert_id(c.world)}/suppress", data={
            "field_0": "Computer", "op_0": "equals", "value_0": "WS01", "on_0": "on", "scope": "all",
            "reason": "matrix", "expires_days": "7"})),
    ("GET", "/detection/suppressions"): Row(Needs(P.ALERTS_READ), fixed("/detection/suppressions")),
    ("POST", "/detection/suppressions/{suppression_id}"): Row(Needs(P.ALERTS_WRITE), lambda c: Req(
        f"/detection/suppressions/{fresh_suppression_id(c.world)}", data={"enabled": "false"})),
    ("POST", "/detection/suppressions/{suppression_id}/delete"): Row(Needs(P.ALERTS_WRITE), lambda c: Req(
        f"/detection/suppressions/{fresh_suppression_id(c.world)}/delete", data={})),
    # --- detection rules and packs (platform-wide: changes need rules:write at headquarters) ---------------
    ("GET", "/api/v1/rules"): Row(Needs(P.RULES_READ), lambda c: Req("/api/v1/rules", params={"enabled": "true"})),
    ("POST", "/api/v1/rules/bulk"): Row(Needs(P.RULES_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/rules/bulk", json={"ids": [matrix_rule_id(c.world.database)], "enabled": False})),
    ("GET", "/api/v1/rules/{rule_id}"): Row(Needs(P.RULES_READ), lambda c: Req(
        f"/api/v1/rules/{matrix_rule_id(c.world.database)}")),
    ("GET", "/api/v1/rules/{rule_id}/yaml"): Row(Needs(P.RULES_READ), lambda c: Req(
        f"/api/v1/rules/{matrix_rule_id(c.world.database)}/yaml")),
    ("PATCH", "/api/v1/rules/{rule_id}"): Row(Needs(P.RULES_WRITE, everywhere=True), lambda c: Req(
        f"/api/v1/rules/{matrix_rule_id(c.world.database)}", json={"level_override": "low", "notes": c.name})),
    ("GET", "/api/v1/rules/{rule_id}/tests"): Row(Needs(P.RULES_READ), lambda c: Req(
        f"/api/v1/rules/{matrix_rule_id(c.world.database)}/tests")),
    ("POST", "/api/v1/rules/{rule_id}/tests/run"): Row(Needs(P.RULES_READ), lambda c: Req(
        f"/api/v1/rules/{matrix_rule_id(c.world.database)}/tests/run", json={"events": [{"record": WHOAMI}]}),
        reads_only=True),
    ("POST", "/api/v1/rules/{rule_id}/tests"): Row(Needs(P.RULES_WRITE, everywhere=True), lambda c: Req(
        f"/api/v1/rules/{matrix_rule_id(c.world.database)}/tests", json={
            "name": c.name, "expect": "match", "format": "windows_json", "record": WHOAMI})),
    ("DELETE", "/api/v1/rules/{rule_id}/tests/{index}"): Row(Needs(P.RULES_WRITE, everywhere=True), lambda c: Req(
        f"/api/v1/rules/{matrix_rule_with_case(c.world.database)}/tests/0")),
    ("GET", "/api/v1/rule-packs"): Row(Needs(P.RULES_READ), fixed("/api/v1/rule-packs")),
    ("POST", "/api/v1/rule-packs/import"): Row(Needs(P.RULES_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/rule-packs/import", data={"pack": "matrix", "yaml": sigma_rule(f"API {uuid.uuid4().hex}")})),
    ("GET", "/detection/rules"): Row(Needs(P.RULES_READ), lambda c: Req("/detection/rules", params={"level": "high"})),
    ("GET", "/detection/rules/packs"): Row(Needs(P.RULES_READ), fixed("/detection/rules/packs")),
    ("POST", "/detection/rules/packs/import"): Row(Needs(P.RULES_WRITE, everywhere=True), lambda c: Req(
        "/detection/rules/packs/import", data={"pack": "matrix", "yaml": sigma_rule(f"Page {uuid.uuid4().hex}")})),
    ("GET", "/detection/rules/{rule_id}"): Row(Needs(P.RULES_READ), lambda c: Req(
        f"/detection/rules/{matrix_rule_id(c.world.database)}")),
    ("POST", "/detection/rules/{rule_id}"): Row(Needs(P.RULES_WRITE, everywhere=True), lambda c: Req(
        f"/detection/rules/{matrix_rule_id(c.world.database)}", data={"enabled": "on", "level_override": "medium",
                                                                      "notes": f"page {c.name}"})),
    ("POST", "/detection/rules/{rule_id}/tests/try"): Row(Needs(P.RULES_READ), lambda c: Req(
        f"/detection/rules/{matrix_rule_id(c.world.database)}/tests/try", data={"format": "", "record": WHOAMI}),
        reads_only=True),
    ("POST", "/detection/rules/{rule_id}/tests"): Row(Needs(P.RULES_WRITE, everywhere=True), lambda c: Req(
        f"/detection/rules/{matrix_rule_id(c.world.database)}/tests", data={
            "name": c.name, "expect": "no_match", "format": "windows_json", "record": WHOAMI})),
    ("POST", "/detection/rules/{rule_id}/tests/{index}/delete"): Row(Needs(P.RULES_WRITE, everywhere=True),
                                                                     lambda c: Req(
        f"/detection/rules/{matrix_rule_with_case(c.world.database)}/tests/0/delete", data={})),
    ("GET", "/api/v1/rule-placeholders"): Row(Needs(P.RULES_READ), fixed("/api/v1/rule-placeholders")),
    ("GET", "/api/v1/rule-placeholders-missing"): Row(Needs(P.RULES_READ), fixed("/api/v1/rule-placeholders-missing")),
    ("GET", "/api/v1/rule-placeholders/{name}"): Row(Needs(P.RULES_READ), lambda c: Req(
        f"/api/v1/rule-placeholders/{matrix_placeholder(c.world.database)}")),
    ("PUT", "/api/v1/rule-placeholders/{name}"): Row(Needs(P.RULES_WRITE, everywhere=True), lambda c: Req(
        f"/api/v1/rule-placeholders/m_{uuid.uuid4().hex[:12]}", json={"values": [c.name]})),
    ("DELETE", "/api/v1/rule-placeholders/{name}"): Row(Needs(P.RULES_WRITE, everywhere=True), lambda c: Req(
        f"/api/v1/rule-placeholders/{matrix_placeholder(c.world.database)}")),
    ("POST", "/detection/rules/packs/placeholders"): Row(Needs(P.RULES_WRITE, everywhere=True), lambda c: Req(
        "/detection/rules/packs/placeholders", data={"name": f"p_{uuid.uuid4().hex[:12]}", "values": c.name})),
    ("POST", "/detection/rules/packs/placeholders/{name}/delete"): Row(Needs(P.RULES_WRITE, everywhere=True),
                                                                       lambda c: Req(
        f"/detection/rules/packs/placeholders/{matrix_placeholder(c.world.database)}/delete", data={})),
    ("POST", "/detection/rules/{rule_id}/enabled"): Row(Needs(P.RULES_WRITE, everywhere=True), lambda c: Req(
        f"/detection/rules/{matrix_rule_id(c.world.database)}/enabled", data={"enabled": "false"})),
    ("POST", "/detection/rules/bulk"): Row(Needs(P.RULES_WRITE, everywhere=True), lambda c: (
        matrix_rule_id(c.world.database),  # a fresh enabled rule, so disabling the pack's enabled rules changes one
        Req("/detection/rules/bulk", data={"pack": "matrix", "enabled": "true", "set": "off"}))[1]),
    # --- hunts over stored events (records of line_a, below branch_a; a hunt reads the caller's units) ---------
    ("POST", "/api/v1/hunts"): Row(Needs(P.EVENTS_READ), lambda c: Req("/api/v1/hunts", json={
        "rule_uids": [hunt_rule_uid(c.world)], "range": "1h"})),
    ("GET", "/api/v1/hunts"): Row(Needs(P.EVENTS_READ), fixed("/api/v1/hunts")),
    ("GET", "/api/v1/hunts/{hunt_id}"): Row(Needs(P.EVENTS_READ), lambda c: Req(
        f"/api/v1/hunts/{fresh_hunt_id(c.world)}")),
    ("GET", "/detection/hunts"): Row(Needs(P.EVENTS_READ), lambda c: Req("/detection/hunts", params={"rule_q": "x"})),
    ("POST", "/detection/hunts"): Row(Needs(P.EVENTS_READ), lambda c: Req("/detection/hunts", data={
        "rule": hunt_rule_uid(c.world), "range": "1h"})),
    ("GET", "/detection/hunts/{hunt_id}"): Row(Needs(P.EVENTS_READ), lambda c: Req(
        f"/detection/hunts/{fresh_hunt_id(c.world)}")),
    ("GET", "/api/v1/alerts/groups"): Row(Needs(P.ALERTS_READ), lambda c: Req(
        "/api/v1/alerts/groups", params={"by": "host", "status": "new"})),
    ("GET", "/api/v1/alerts/status"): Row(Needs(P.ALERTS_READ), fixed("/api/v1/alerts/status")),
    ("POST", "/api/v1/alerts/bulk/matching"): Row(Needs(P.ALERTS_WRITE), lambda c: (
        fresh_alert_id(c.world),  # a new alert of the matrix rule, so the step changes one
        Req("/api/v1/alerts/bulk/matching", json={"filter": {"rule": "matrix-rule"}, "action": "acknowledge"}))[1]),
    ("POST", "/detection/alerts/bulk-matching"): Row(Needs(P.ALERTS_WRITE), lambda c: (
        fresh_alert_id(c.world),
        Req("/detection/alerts/bulk-matching", data={"rule": "matrix-rule", "action": "acknowledge"}))[1]),
    # --- threat intelligence (platform-wide; sightings of line_a, below branch_a) -------------------------
    ("GET", "/api/v1/intel/presets"): Row(Needs(P.INTEL_READ), fixed("/api/v1/intel/presets")),
    ("GET", "/api/v1/intel/feeds"): Row(Needs(P.INTEL_READ), fixed("/api/v1/intel/feeds")),
    ("POST", "/api/v1/intel/feeds"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/intel/feeds", json={"name": f"feed of {c.name} {uuid.uuid4().hex[:8]}", "preset": "feodotracker"})),
    ("GET", "/api/v1/intel/feeds/{feed_id}"): Row(Needs(P.INTEL_READ), lambda c: Req(
        f"/api/v1/intel/feeds/{fresh_feed_id(c.world)}")),
    ("PATCH", "/api/v1/intel/feeds/{feed_id}"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req(
        f"/api/v1/intel/feeds/{fresh_feed_id(c.world)}", json={"interval_minutes": 77})),
    ("DELETE", "/api/v1/intel/feeds/{feed_id}"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req(
        f"/api/v1/intel/feeds/{fresh_feed_id(c.world)}")),
    ("POST", "/api/v1/intel/feeds/{feed_id}/pull"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req(
        f"/api/v1/intel/feeds/{fresh_feed_id(c.world)}/pull")),
    ("GET", "/api/v1/intel/pulls"): Row(Needs(P.INTEL_READ), fixed("/api/v1/intel/pulls")),
    ("POST", "/api/v1/intel/imports"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/intel/imports", params={"format": "stix", "name": c.name, "retrohunt": "false"}, json=STIX_BUNDLE)),
    ("GET", "/api/v1/intel/indicators"): Row(Needs(P.INTEL_READ), fixed("/api/v1/intel/indicators")),
    ("POST", "/api/v1/intel/indicators"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/intel/indicators", json={"type": "domain", "value": f"{uuid.uuid4().hex[:12]}.example.net"})),
    ("GET", "/api/v1/intel/indicators/{indicator_id}"): Row(Needs(P.INTEL_READ), lambda c: Req(
        f"/api/v1/intel/indicators/{fresh_indicator_id(c.app)}")),
    ("GET", "/api/v1/intel/lookup"): Row(Needs(P.INTEL_READ), lambda c: Req(
        "/api/v1/intel/lookup", params={"value": "91.92.109.44"})),
    ("GET", "/api/v1/intel/live"): Row(Needs(P.INTEL_READ), lambda c: Req("/api/v1/intel/live")),
    ("GET", "/api/v1/intel/export"): Row(Needs(P.INTEL_READ), fixed("/api/v1/intel/export")),
    ("GET", "/api/v1/intel/sightings"): Row(Needs(P.INTEL_READ), fixed("/api/v1/intel/sightings")),
    ("GET", "/api/v1/intel/sightings/{sighting_id}"): Row(Needs(P.INTEL_READ), lambda c: Req(
        f"/api/v1/intel/sightings/{fresh_sighting_id(c.world)}")),
    ("PATCH", "/api/v1/intel/sightings/{sighting_id}"): Row(Needs(P.INTEL_WRITE), lambda c: Req(
        f"/api/v1/intel/sightings/{fresh_sighting_id(c.world)}", json={"status": "true-positive"})),
    ("GET", "/api/v1/intel/entities"): Row(Needs(P.INTEL_READ), fixed("/api/v1/intel/entities")),
    ("POST", "/api/v1/intel/entities/attack"): Row(Needs(P.INTEL_WRITE, everywhere=True),
                                                   fixed("/api/v1/intel/entities/attack")),
    ("GET", "/api/v1/intel/entities/{entity_id}"): Row(Needs(P.INTEL_READ), lambda c: Req(
        f"/api/v1/intel/entities/{fresh_entity_id(c.world)}")),
    ("GET", "/api/v1/intel/allowlist"): Row(Needs(P.INTEL_READ), fixed("/api/v1/intel/allowlist")),
    ("POST", "/api/v1/intel/allowlist"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/intel/allowlist", json={"type": "domain", "value": f"{uuid.uuid4().hex[:12]}.example.net",
                                         "reason": f"added by {c.name}"})),
    ("DELETE", "/api/v1/intel/allowlist/{allow_id}"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req(
        f"/api/v1/intel/allowlist/{fresh_allow_id(c.app, c.world)}")),
    ("GET", "/api/v1/intel/retrohunts"): Row(Needs(P.INTEL_READ), fixed("/api/v1/intel/retrohunts")),
    ("POST", "/api/v1/intel/retrohunts"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/intel/retrohunts", params={"days": 7})),
    # --- UI: threat intelligence (feeds, imports and the allow-list platform-wide; sightings of line_a) ----------
    ("GET", "/intel"): Row(Needs(P.INTEL_READ), fixed("/intel")),
    ("GET", "/intel/lookup"): Row(Needs(P.INTEL_READ), lambda c: Req(
        "/intel/lookup", params={"value": "91.92.109.44"})),
    ("GET", "/intel/feeds"): Row(Needs(P.INTEL_READ), fixed("/intel/feeds")),
    ("POST", "/intel/feeds"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req("/intel/feeds", data={
        "name": f"page feed of {c.name} {uuid.uuid4().hex[:8]}", "preset": "feodotracker"})),
    ("GET", "/intel/feeds/{feed_id}"): Row(Needs(P.INTEL_READ), lambda c: Req(
        f"/intel/feeds/{fresh_feed_id(c.world)}")),
    ("POST", "/intel/feeds/{feed_id}/pull"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req(
        f"/intel/feeds/{fresh_feed_id(c.world)}/pull", data={})),
    ("POST", "/intel/feeds/{feed_id}/enabled"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req(
        f"/intel/feeds/{fresh_feed_id(c.world)}/enabled", data={"enabled": "false"})),
    ("POST", "/intel/feeds/{feed_id}/delete"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req(
        f"/intel/feeds/{fresh_feed_id(c.world)}/delete", data={})),
    ("GET", "/intel/import"): Row(Needs(P.INTEL_WRITE, everywhere=True), fixed("/intel/import")),
    ("POST", "/intel/import"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req("/intel/import", data={
        "format": "lines", "name": f"page {c.name}", "text": f"{uuid.uuid4().hex[:12]}.example.net\n"})),
    ("GET", "/intel/indicators"): Row(Needs(P.INTEL_READ), lambda c: Req("/intel/indicators", params={"q": "example"})),
    ("GET", "/intel/indicators/{indicator_id}"): Row(Needs(P.INTEL_READ), lambda c: Req(
        f"/intel/indicators/{fresh_indicator_id(c.app)}")),
    ("GET", "/intel/sightings"): Row(Needs(P.INTEL_READ), lambda c: Req("/intel/sightings", params={"found": "live"})),
    ("GET", "/intel/sightings/{sighting_id}"): Row(Needs(P.INTEL_READ), lambda c: Req(
        f"/intel/sightings/{fresh_sighting_id(c.world)}")),
    ("POST", "/intel/sightings/{sighting_id}/mark"): Row(Needs(P.INTEL_WRITE), lambda c: Req(
        f"/intel/sightings/{fresh_sighting_id(c.world)}/mark", data={"status": "true-positive"})),
    ("GET", "/intel/actors"): Row(Needs(P.INTEL_READ), lambda c: Req(
        "/intel/actors", params={"kind": "intrusion-set"})),
    ("GET", "/intel/actors/{entity_id}"): Row(Needs(P.INTEL_READ), lambda c: Req(
        f"/intel/actors/{fresh_entity_id(c.world)}")),
    ("GET", "/intel/allowlist"): Row(Needs(P.INTEL_READ), fixed("/intel/allowlist")),
    ("POST", "/intel/allowlist"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req("/intel/allowlist", data={
        "type": "domain", "value": f"{uuid.uuid4().hex[:12]}.example.net", "reason": f"added by {c.name} (page)"})),
    ("POST", "/intel/allowlist/{allow_id}/delete"): Row(Needs(P.INTEL_WRITE, everywhere=True), lambda c: Req(
        f"/intel/allowlist/{fresh_allow_id(c.app, c.world)}/delete", data={})),
    # --- on-call and escalation (records of headquarters) ----------------------------------------------
    ("GET", "/api/v1/oncall/schedules"): Row(Needs(P.INCIDENTS_READ), fixed("/api/v1/oncall/schedules")),
    ("POST", "/api/v1/oncall/schedules"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        "/api/v1/oncall/schedules", json={"name": f"rota of {c.name} {uuid.uuid4().hex[:8]}", "layers": [
            {"name": "primary", "participants": [c.world.users["viewer"]], "start": "2026-01-05"}]})),
    ("GET", "/api/v1/oncall/schedules/{schedule_id}"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/api/v1/oncall/schedules/{fresh_schedule_id(c.world)}")),
    ("PATCH", "/api/v1/oncall/schedules/{schedule_id}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/oncall/schedules/{fresh_schedule_id(c.world)}", json={"description": "changed"})),
    ("PUT", "/api/v1/oncall/schedules/{schedule_id}/layers"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/oncall/schedules/{fresh_schedule_id(c.world)}/layers", json=[
            {"name": "only", "participants": [c.world.users["viewer"]], "start": "2026-01-05"}])),
    ("DELETE", "/api/v1/oncall/schedules/{schedule_id}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/oncall/schedules/{fresh_schedule_id(c.world)}")),
    ("GET", "/api/v1/oncall/schedules/{schedule_id}/overrides"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/api/v1/oncall/schedules/{fresh_schedule_id(c.world)}/overrides")),
    ("POST", "/api/v1/oncall/schedules/{schedule_id}/overrides"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/oncall/schedules/{fresh_schedule_id(c.world)}/overrides", json={
            "user_id": c.world.users["viewer"], "starts_at": "2026-12-01T09:00:00+08:00",
            "ends_at": "2026-12-01T18:00:00+08:00"})),
    ("DELETE", "/api/v1/oncall/schedules/{schedule_id}/overrides/{override_id}"): Row(
        Needs(P.INCIDENTS_WRITE), lambda c: Req("/api/v1" + fresh_override_path(c.world))),
    ("GET", "/api/v1/oncall/schedules/{schedule_id}/now"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/api/v1/oncall/schedules/{fresh_schedule_id(c.world)}/now")),
    ("GET", "/api/v1/oncall/schedules/{schedule_id}/shifts"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/api/v1/oncall/schedules/{fresh_schedule_id(c.world)}/shifts")),
    ("GET", "/api/v1/oncall/now"): Row(Needs(P.INCIDENTS_READ), fixed("/api/v1/oncall/now")),
    ("GET", "/api/v1/escalation-policies"): Row(Needs(P.INCIDENTS_READ), fixed("/api/v1/escalation-policies")),
    ("POST", "/api/v1/escalation-policies"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        "/api/v1/escalation-policies", json={"name": f"policy of {c.name} {uuid.uuid4().hex[:8]}", "levels": [
            {"timeout_minutes": 5, "targets": [{"kind": "user", "id": c.world.users["viewer"]}]}]})),
    ("GET", "/api/v1/escalation-policies/{policy_id}"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/api/v1/escalation-policies/{fresh_policy_id(c.world)}")),
    ("PATCH", "/api/v1/escalation-policies/{policy_id}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/escalation-policies/{fresh_policy_id(c.world)}", json={"repeat": 2})),
    ("DELETE", "/api/v1/escalation-policies/{policy_id}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/escalation-policies/{fresh_policy_id(c.world)}")),
    ("GET", "/api/v1/escalations"): Row(Needs(P.INCIDENTS_READ), fixed("/api/v1/escalations")),
    ("POST", "/api/v1/escalations"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req("/api/v1/escalations", json={
        "incident_id": 1 + uuid.uuid4().int % 10**6, "title": f"paged by {c.name}",
        "policy_id": fresh_policy_id(c.world)})),
    ("GET", "/api/v1/escalations/{escalation_id}"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/api/v1/escalations/{fresh_escalation_id(c.world, c.app)}")),
    ("POST", "/api/v1/escalations/{escalation_id}/acknowledge"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/escalations/{fresh_escalation_id(c.world, c.app)}/acknowledge")),
    # The signed link: its token is the credential, whoever opens it (a GET only shows what it acknowledges).
    ("GET", "/ack/{token}"): Row(PUBLIC, lambda c: Req(fresh_ack_path(c.world, c.app))),
    ("POST", "/ack/{token}"): Row(PUBLIC, lambda c: Req(fresh_ack_path(c.world, c.app), data={})),
    # --- UI: on-call ----------------------------------------------------------------------------------------
    ("GET", "/oncall"): Row(Needs(P.INCIDENTS_READ), fixed("/oncall")),
    ("GET", "/oncall/schedules/new"): Row(Needs(P.INCIDENTS_WRITE), fixed("/oncall/schedules/new")),
    ("POST", "/oncall/schedules"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req("/oncall/schedules", data={
        "name": f"page rota of {c.name} {uuid.uuid4().hex[:8]}", "time_zone": "Asia/Shanghai", "layer_count": "1",
        "layer0_name": "primary", "layer0_participants": "viewer", "layer0_start": "2026-01-05"})),
    ("GET", "/oncall/schedules/{schedule_id}"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/oncall/schedules/{fresh_schedule_id(c.world)}")),
    ("POST", "/oncall/schedules/{schedule_id}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/oncall/schedules/{fresh_schedule_id(c.world)}", data={
            "name": f"renamed by {c.name} {uuid.uuid4().hex[:8]}", "time_zone": "Europe/Berlin", "layer_count": "0"})),
    ("POST", "/oncall/schedules/{schedule_id}/delete"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/oncall/schedules/{fresh_schedule_id(c.world)}/delete", data={})),
    ("POST", "/oncall/schedules/{schedule_id}/overrides"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/oncall/schedules/{fresh_schedule_id(c.world)}/overrides", data={
            "username": "viewer", "starts_at": "2026-12-01T09:00", "ends_at": "2026-12-01T18:00"})),
    ("POST", "/oncall/schedules/{schedule_id}/overrides/{override_id}/delete"): Row(
        Needs(P.INCIDENTS_WRITE), lambda c: Req(fresh_override_path(c.world) + "/delete", data={})),
    ("GET", "/oncall/policies"): Row(Needs(P.INCIDENTS_READ), fixed("/oncall/policies")),
    ("POST", "/oncall/policies"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req("/oncall/policies", data={
        "name": f"page policy of {c.name} {uuid.uuid4().hex[:8]}", "repeat": "0", "level_count": "1",
        "level0_targets": "viewer", "level0_timeout": "5"})),
    ("GET", "/oncall/policies/{policy_id}"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/oncall/policies/{fresh_policy_id(c.world)}")),
    ("POST", "/oncall/policies/{policy_id}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/oncall/policies/{fresh_policy_id(c.world)}", data={
            "name": f"changed by {c.name} {uuid.uuid4().hex[:8]}", "repeat": "1", "level_count": "1",
            "level0_targets": "viewer", "level0_timeout": "7"})),
    ("POST", "/oncall/policies/{policy_id}/delete"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/oncall/policies/{fresh_policy_id(c.world)}/delete", data={})),
    ("GET", "/oncall/escalations"): Row(Needs(P.INCIDENTS_READ), fixed("/oncall/escalations")),
    ("GET", "/oncall/escalations/{escalation_id}"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/oncall/escalations/{fresh_escalation_id(c.world, c.app)}")),
    ("POST", "/oncall/escalations/{escalation_id}/acknowledge"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/oncall/escalations/{fresh_escalation_id(c.world, c.app)}/acknowledge", data={})),
    # --- knowledge base (pages of line_a, below branch_a) ---------------------------------------------------
    ("GET", "/api/v1/kb/pages"): Row(Needs(P.KB_READ), lambda c: Req("/api/v1/kb/pages", params={"q": "matrix 页"})),
    ("POST", "/api/v1/kb/pages"): Row(Needs(P.KB_WRITE), lambda c: Req("/api/v1/kb/pages", json={
        "title": f"Page of {c.name}", "slug": f"api-{uuid.uuid4().hex[:12]}", "body": "text",
        "unit_id": c.world.line_a})),
    ("GET", "/api/v1/kb/pages/{slug}"): Row(Needs(P.KB_READ), lambda c: Req(
        f"/api/v1/kb/pages/{fresh_kb_slug(c.world)}")),
    ("PATCH", "/api/v1/kb/pages/{slug}"): Row(Needs(P.KB_WRITE), lambda c: Req(
        f"/api/v1/kb/pages/{fresh_kb_slug(c.world)}", json={"body": f"edited by {c.name}"})),
    ("DELETE", "/api/v1/kb/pages/{slug}"): Row(Needs(P.KB_WRITE), lambda c: Req(
        f"/api/v1/kb/pages/{fresh_kb_slug(c.world)}")),
    ("GET", "/api/v1/kb/pages/{slug}/versions"): Row(Needs(P.KB_READ), lambda c: Req(
        f"/api/v1/kb/pages/{fresh_kb_slug(c.world)}/versions")),
    ("GET", "/api/v1/kb/pages/{slug}/versions/{number}"): Row(Needs(P.KB_READ), lambda c: Req(
        f"/api/v1/kb/pages/{fresh_kb_slug(c.world)}/versions/1")),
    ("GET", "/api/v1/kb/pages/{slug}/versions/{number}/diff"): Row(Needs(P.KB_READ), lambda c: Req(
        f"/api/v1/kb/pages/{fresh_kb_slug(c.world)}/versions/1/diff")),
    ("GET", "/api/v1/kb/pages/{slug}/export.md"): Row(Needs(P.KB_READ), lambda c: Req(
        f"/api/v1/kb/pages/{fresh_kb_slug(c.world)}/export.md")),
    ("POST", "/api/v1/kb/pages/{slug}/publish"): Row(Needs(P.KB_WRITE), lambda c: (
        with_git_wiki(c.app), Req(f"/api/v1/kb/pages/{fresh_kb_slug(c.world)}/publish"))[1]),
    ("GET", "/kb"): Row(Needs(P.KB_READ), lambda c: Req("/kb", params={"q": "matrix"})),
    ("GET", "/kb/new"): Row(Needs(P.KB_WRITE), fixed("/kb/new")),
    ("POST", "/kb/new"): Row(Needs(P.KB_WRITE), lambda c: Req("/kb/new", data={
        "title": f"Page of {c.name}", "slug": f"page-{uuid.uuid4().hex[:12]}", "body": "text", "tags": "matrix",
        "unit_id": str(c.world.line_a)})),
    ("GET", "/kb/pages/{slug}"): Row(Needs(P.KB_READ), lambda c: Req(f"/kb/pages/{fresh_kb_slug(c.world)}")),
    ("GET", "/kb/pages/{slug}/edit"): Row(Needs(P.KB_WRITE), lambda c: Req(f"/kb/pages/{fresh_kb_slug(c.world)}/edit")),
    ("POST", "/kb/pages/{slug}/edit"): Row(Needs(P.KB_WRITE), lambda c: Req(
        f"/kb/pages/{fresh_kb_slug(c.world)}/edit", data={"title": "Edited", "body": f"by {c.name}", "tags": ""})),
    ("POST", "/kb/pages/{slug}/delete"): Row(Needs(P.KB_WRITE), lambda c: Req(
        f"/kb/pages/{fresh_kb_slug(c.world)}/delete", data={})),
    ("GET", "/kb/pages/{slug}/history"): Row(Needs(P.KB_READ), lambda c: Req(
        f"/kb/pages/{fresh_kb_slug(c.world)}/history")),
    ("GET", "/kb/pages/{slug}/versions/{number}"): Row(Needs(P.KB_READ), lambda c: Req(
        f"/kb/pages/{fresh_kb_slug(c.world)}/versions/1")),
    ("GET", "/kb/pages/{slug}/versions/{number}/diff"): Row(Needs(P.KB_READ), lambda c: Req(
        f"/kb/pages/{fresh_kb_slug(c.world)}/versions/1/diff")),
    ("GET", "/kb/pages/{slug}/export.md"): Row(Needs(P.KB_READ), lambda c: Req(
        f"/kb/pages/{fresh_kb_slug(c.world)}/export.md")),
    ("GET", "/kb/pages/{slug}/export.pdf"): Row(Needs(P.KB_READ), lambda c: Req(
        f"/kb/pages/{fresh_kb_slug(c.world)}/export.pdf")),
    ("GET", "/api/v1/kb/pages/{slug}/export.pdf"): Row(Needs(P.KB_READ), lambda c: Req(
        f"/api/v1/kb/pages/{fresh_kb_slug(c.world)}/export.pdf")),
    ("GET", "/kb/pages/{slug}/print"): Row(Needs(P.KB_READ), lambda c: Req(
        f"/kb/pages/{fresh_kb_slug(c.world)}/print")),
    ("POST", "/kb/pages/{slug}/publish"): Row(Needs(P.KB_WRITE), lambda c: (
        with_git_wiki(c.app), Req(f"/kb/pages/{fresh_kb_slug(c.world)}/publish", data={}))[1]),
    # --- response actions and playbooks (of line_a, below branch_a) ---------------------------------------
    ("GET", "/api/v1/action-kinds"): Row(Needs(P.INTEGRATIONS_WRITE), fixed("/api/v1/action-kinds")),
    ("GET", "/api/v1/response-actions"): Row(Needs(P.INTEGRATIONS_WRITE), fixed("/api/v1/response-actions")),
    ("POST", "/api/v1/response-actions"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        "/api/v1/response-actions", json={"name": f"api action {c.name} {uuid.uuid4().hex[:8]}", "kind": "block_ip",
                                          "config": {"mode": "command", "command": ["/bin/true", "{ip}"]},
                                          "unit_id": c.world.line_a})),
    ("GET", "/api/v1/response-actions/{action_id}"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/api/v1/response-actions/{fresh_action_id(c.world)}")),
    ("PATCH", "/api/v1/response-actions/{action_id}"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/api/v1/response-actions/{fresh_action_id(c.world)}", json={"description": "changed"})),
    ("DELETE", "/api/v1/response-actions/{action_id}"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/api/v1/response-actions/{fresh_action_id(c.world)}")),
    ("POST", "/api/v1/response-actions/{action_id}/dry-run"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/api/v1/response-actions/{fresh_action_id(c.world)}/dry-run", json={"target": "192.0.2.7"})),
    ("POST", "/api/v1/action-executions"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        "/api/v1/action-executions", json={"action_id": fresh_action_id(c.world), "target": "192.0.2.7"})),
    ("GET", "/api/v1/action-executions"): Row(Needs(P.RESPONSE_EXECUTE), fixed("/api/v1/action-executions")),
    ("GET", "/api/v1/action-executions/{execution_id}"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        f"/api/v1/action-executions/{fresh_execution_id(c.world)}")),
    ("POST", "/api/v1/action-executions/{execution_id}/approve"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        f"/api/v1/action-executions/{fresh_execution_id(c.world)}/approve", json={})),
    ("POST", "/api/v1/action-executions/{execution_id}/reject"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        f"/api/v1/action-executions/{fresh_execution_id(c.world)}/reject", json={"comment": "no"})),
    ("POST", "/api/v1/action-executions/{execution_id}/rollback"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        f"/api/v1/action-executions/{fresh_execution_id(c.world, status='succeeded')}/rollback")),
    ("GET", "/api/v1/playbooks"): Row(Needs(P.INTEGRATIONS_WRITE), fixed("/api/v1/playbooks")),
    ("POST", "/api/v1/playbooks"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req("/api/v1/playbooks", json={
        **playbook_body(fresh_action_id(c.world), f"api playbook {c.name} {uuid.uuid4().hex[:8]}"),
        "unit_id": c.world.line_a})),
    ("GET", "/api/v1/playbooks/{playbook_id}"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/api/v1/playbooks/{fresh_playbook_id(c.world)}")),
    ("PATCH", "/api/v1/playbooks/{playbook_id}"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/api/v1/playbooks/{fresh_playbook_id(c.world)}", json={"description": "changed"})),
    ("DELETE", "/api/v1/playbooks/{playbook_id}"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/api/v1/playbooks/{fresh_playbook_id(c.world)}")),
    ("GET", "/api/v1/playbooks/{playbook_id}/versions"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/api/v1/playbooks/{fresh_playbook_id(c.world)}/versions")),
    ("POST", "/api/v1/playbooks/{playbook_id}/runs"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        f"/api/v1/playbooks/{fresh_playbook_id(c.world)}/runs", json={"incident_id": fresh_incident_id(c.world)})),
    ("GET", "/api/v1/playbook-runs"): Row(Needs(P.RESPONSE_EXECUTE), fixed("/api/v1/playbook-runs")),
    ("GET", "/api/v1/playbook-runs/{run_id}"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        f"/api/v1/playbook-runs/{fresh_run_id(c.world)}")),
    ("POST", "/api/v1/playbook-runs/{run_id}/approve"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        f"/api/v1/playbook-runs/{fresh_run_id(c.world)}/approve", json={})),
    ("POST", "/api/v1/playbook-runs/{run_id}/reject"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        f"/api/v1/playbook-runs/{fresh_run_id(c.world)}/reject", json={})),
    ("GET", "/response/actions"): Row(Needs(P.INTEGRATIONS_WRITE), fixed("/response/actions")),
    ("POST", "/response/actions"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req("/response/actions", data={
        "kind": "block_ip", "name": f"page action {c.name} {uuid.uuid4().hex[:8]}", "unit_id": str(c.world.line_a),
        "config": '{"mode": "command", "command": ["/bin/true", "{ip}"]}', "enabled": "on"})),
    ("POST", "/response/actions/{action_id}"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/response/actions/{fresh_action_id(c.world)}", data={
            "name": f"page action {c.name} {uuid.uuid4().hex[:8]}", "unit_id": str(c.world.line_a),
            "config": '{"mode": "command", "command": ["/bin/true", "{ip}"]}', "description": "changed"})),
    ("POST", "/response/actions/{action_id}/delete"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/response/actions/{fresh_action_id(c.world)}/delete", data={})),
    ("POST", "/response/actions/{action_id}/dry-run"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/response/actions/{fresh_action_id(c.world)}/dry-run", data={"target": "192.0.2.7"})),
    ("GET", "/response/executions"): Row(Needs(P.RESPONSE_EXECUTE), fixed("/response/executions")),
    ("POST", "/response/executions"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req("/response/executions", data={
        "action_id": str(fresh_action_id(c.world)), "target": "192.0.2.7", "incident_id": "", "reason": ""})),
    ("POST", "/response/executions/{execution_id}/approve"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        f"/response/executions/{fresh_execution_id(c.world)}/approve", data={})),
    ("POST", "/response/executions/{execution_id}/reject"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        f"/response/executions/{fresh_execution_id(c.world)}/reject", data={})),
    ("POST", "/response/executions/{execution_id}/rollback"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        f"/response/executions/{fresh_execution_id(c.world, status='succeeded')}/rollback", data={})),
    ("GET", "/response/playbooks"): Row(Needs(P.INTEGRATIONS_WRITE), fixed("/response/playbooks")),
    ("GET", "/response/playbooks/new"): Row(Needs(P.INTEGRATIONS_WRITE), fixed("/response/playbooks/new")),
    ("POST", "/response/playbooks"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req("/response/playbooks", data={
        "name": f"page playbook {c.name} {uuid.uuid4().hex[:8]}", "unit_id": str(c.world.line_a), "enabled": "on",
        "definition": "trigger: {incident_types: [insider]}\nsteps:\n  - kind: enrich\n"})),
    ("GET", "/response/playbooks/{playbook_id}"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/response/playbooks/{fresh_playbook_id(c.world)}")),
    ("POST", "/response/playbooks/{playbook_id}"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/response/playbooks/{fresh_playbook_id(c.world)}", data={
            "name": f"page playbook {c.name} {uuid.uuid4().hex[:8]}", "enabled": "on",
            "definition": "trigger: {incident_types: [insider]}\nsteps:\n  - kind: enrich\n",
            "comment": "enrich only"})),
    ("POST", "/response/playbooks/{playbook_id}/delete"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/response/playbooks/{fresh_playbook_id(c.world)}/delete", data={})),
    ("GET", "/response/playbook-runs"): Row(Needs(P.RESPONSE_EXECUTE), fixed("/response/playbook-runs")),
    ("POST", "/response/playbook-runs"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req("/response/playbook-runs", data={
        "playbook_id": str(fresh_playbook_id(c.world)), "incident": str(fresh_incident_id(c.world))})),
    ("POST", "/response/playbook-runs/{run_id}/approve"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        f"/response/playbook-runs/{fresh_run_id(c.world)}/approve", data={})),
    ("POST", "/response/playbook-runs/{run_id}/reject"): Row(Needs(P.RESPONSE_EXECUTE), lambda c: Req(
        f"/response/playbook-runs/{fresh_run_id(c.world)}/reject", data={})),
    # --- notification channels (of line_a, below branch_a) and the delivery log ----------------------------
    ("GET", "/api/v1/notification-kinds"): Row(Needs(P.INTEGRATIONS_WRITE), fixed("/api/v1/notification-kinds")),
    ("GET", "/api/v1/notification-channels"): Row(Needs(P.INTEGRATIONS_WRITE), fixed("/api/v1/notification-channels")),
    ("POST", "/api/v1/notification-channels"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        "/api/v1/notification-channels", json={"name": f"api channel {c.name} {uuid.uuid4().hex[:8]}",
                                               "kind": "wecom", "config": {"key": "k"}, "unit_id": c.world.line_a})),
    ("GET", "/api/v1/notification-channels/{channel_id}"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/api/v1/notification-channels/{fresh_channel_id(c.world)}")),
    ("PATCH", "/api/v1/notification-channels/{channel_id}"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/api/v1/notification-channels/{fresh_channel_id(c.world)}", json={"language": "zh_CN"})),
    ("DELETE", "/api/v1/notification-channels/{channel_id}"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/api/v1/notification-channels/{fresh_channel_id(c.world)}")),
    ("POST", "/api/v1/notification-channels/{channel_id}/test"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/api/v1/notification-channels/{fresh_channel_id(c.world)}/test")),
    ("GET", "/api/v1/notification-deliveries"): Row(Needs(P.INCIDENTS_READ), fixed("/api/v1/notification-deliveries")),
    ("GET", "/response/notifications"): Row(Needs(P.INTEGRATIONS_WRITE), fixed("/response/notifications")),
    ("POST", "/response/notifications"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        "/response/notifications", data=channel_form(c.name, c.world.line_a))),
    ("POST", "/response/notifications/{channel_id}"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/response/notifications/{fresh_channel_id(c.world)}", data=channel_form(c.name, c.world.line_a))),
    ("POST", "/response/notifications/{channel_id}/delete"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/response/notifications/{fresh_channel_id(c.world)}/delete", data={})),
    ("POST", "/response/notifications/{channel_id}/test"): Row(Needs(P.INTEGRATIONS_WRITE), lambda c: Req(
        f"/response/notifications/{fresh_channel_id(c.world)}/test", data={})),
    ("GET", "/response/notifications/deliveries"): Row(Needs(P.INCIDENTS_READ),
                                                       fixed("/response/notifications/deliveries")),
    # --- incidents (records of line_a, below branch_a; settings platform-wide) --------------------------
    ("GET", "/api/v1/incidents"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        "/api/v1/incidents", params={"status": "open", "sla": "ok"})),
    ("POST", "/api/v1/incidents"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req("/api/v1/incidents", json={
        "title": f"Opened by {c.name}", "type": "malware", "severity": "P3", "unit_id": c.world.line_a})),
    ("GET", "/api/v1/incidents/metrics"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        "/api/v1/incidents/metrics", params={"group_by": "type"})),
    ("GET", "/api/v1/incidents/{incident_id}"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}")),
    ("PATCH", "/api/v1/incidents/{incident_id}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}", json={"severity": "P2"})),
    ("POST", "/api/v1/incidents/{incident_id}/assign"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}/assign", json={
            "owner_id": c.world.users["responder"], "team": "CSIRT"})),
    ("POST", "/api/v1/incidents/{incident_id}/acknowledge"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}/acknowledge")),
    ("POST", "/api/v1/incidents/{incident_id}/transition"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_ready_incident(c.world)}/transition", json={"phase": "contain"})),
    ("POST", "/api/v1/incidents/{incident_id}/alerts"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}/alerts", json={"alert_ids": [fresh_alert_id(c.world)]})),
    ("DELETE", "/api/v1/incidents/{incident_id}/alerts/{alert_id}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        "/api/v1/incidents/{}/alerts/{}".format(*fresh_linked_alert_ids(c.world)))),
    ("POST", "/api/v1/incidents/{incident_id}/observables"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}/observables", json={"value": "evil.example.net"})),
    ("DELETE", "/api/v1/incidents/{incident_id}/observables/{observable_id}"): Row(
        Needs(P.INCIDENTS_WRITE), lambda c: Req("/api/v1/incidents/{}/observables/{}".format(
            *fresh_observable_ids(c.world)))),
    ("POST", "/api/v1/incidents/{incident_id}/tasks"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}/tasks", json={"title": f"task of {c.name}"})),
    ("PATCH", "/api/v1/incidents/{incident_id}/tasks/{task_id}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        "/api/v1/incidents/{}/tasks/{}".format(*fresh_task_ids(c.world)), json={"title": "renamed"})),
    ("POST", "/api/v1/incidents/{incident_id}/tasks/{task_id}/complete"): Row(
        Needs(P.INCIDENTS_WRITE), lambda c: Req("/api/v1/incidents/{}/tasks/{}/complete".format(
            *fresh_task_ids(c.world)))),
    ("POST", "/api/v1/incidents/{incident_id}/tasks/{task_id}/reopen"): Row(
        Needs(P.INCIDENTS_WRITE), lambda c: Req("/api/v1/incidents/{}/tasks/{}/reopen".format(
            *fresh_done_task_ids(c.world)))),
    ("DELETE", "/api/v1/incidents/{incident_id}/tasks/{task_id}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        "/api/v1/incidents/{}/tasks/{}".format(*fresh_task_ids(c.world)))),
    ("POST", "/api/v1/incidents/{incident_id}/comments"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}/comments", json={"body": f"@viewer from {c.name}"})),
    ("POST", "/api/v1/incidents/{incident_id}/timeline"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}/timeline", json={"summary": "Called the ISP"})),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}/postmortem")),
    ("PATCH", "/api/v1/incidents/{incident_id}/postmortem"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_postmortem_incident(c.world)}/postmortem", json={"impact": "two laptops"})),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/{action}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_postmortem_incident(c.world, 'in_review')}/postmortem/approve")),
    # --- wiring: paging of new incidents, the report, publishing the post-mortem -------------------------
    ("GET", "/api/v1/incident-paging"): Row(Needs(P.INCIDENTS_READ), fixed("/api/v1/incident-paging")),
    ("PUT", "/api/v1/incident-paging/{severity}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        "/api/v1/incident-paging/P4", json={})),
    ("DELETE", "/api/v1/incident-paging/{severity}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incident-paging/{fresh_paging(c.world)}")),
    ("POST", "/oncall/paging"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req("/oncall/paging",
                                                                           data={"severity": "P4"})),
    ("POST", "/oncall/paging/{severity}/delete"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/oncall/paging/{fresh_paging(c.world)}/delete", data={})),
    ("GET", "/api/v1/incidents/{incident_id}/report.md"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}/report.md")),
    ("GET", "/incidents/{incident_id}/report.md"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/incidents/{fresh_incident_id(c.world)}/report.md")),
    ("GET", "/api/v1/incidents/{incident_id}/report.pdf"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}/report.pdf")),
    ("GET", "/incidents/{incident_id}/report.pdf"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/incidents/{fresh_incident_id(c.world)}/report.pdf")),
    ("GET", "/incidents/{incident_id}/report"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/incidents/{fresh_incident_id(c.world)}/report")),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/prefill"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}/postmortem/prefill")),
    ("POST", "/api/v1/incidents/{incident_id}/postmortem/publish"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_approved_incident(c.world)}/postmortem/publish")),
    ("GET", "/api/v1/incident-settings/types"): Row(Needs(P.INCIDENTS_READ), fixed("/api/v1/incident-settings/types")),
    ("POST", "/api/v1/incident-settings/types"): Row(Needs(P.INCIDENTS_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/incident-settings/types", json={"key": f"t_{uuid.uuid4().hex[:12]}", "names": {"en": "Matrix"}})),
    ("GET", "/api/v1/incident-settings/fields"): Row(Needs(P.INCIDENTS_READ),
                                                     fixed("/api/v1/incident-settings/fields")),
    ("POST", "/api/v1/incident-settings/fields"): Row(Needs(P.INCIDENTS_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/incident-settings/fields", json={"key": f"f_{uuid.uuid4().hex[:12]}", "label": "Ticket",
                                                  "kind": "text"})),
    ("DELETE", "/api/v1/incident-settings/fields/{field_id}"): Row(
        Needs(P.INCIDENTS_WRITE, everywhere=True), lambda c: Req(
            f"/api/v1/incident-settings/fields/{fresh_field_id(c.world)}")),
    ("GET", "/api/v1/incident-settings/templates"): Row(Needs(P.INCIDENTS_READ),
                                                        fixed("/api/v1/incident-settings/templates")),
    ("POST", "/api/v1/incident-settings/templates"): Row(Needs(P.INCIDENTS_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/incident-settings/templates", json={"phase": "contain", "title": f"by {c.name}"})),
    ("DELETE", "/api/v1/incident-settings/templates/{template_id}"): Row(
        Needs(P.INCIDENTS_WRITE, everywhere=True), lambda c: Req(
            f"/api/v1/incident-settings/templates/{fresh_template_id(c.world)}")),
    ("GET", "/api/v1/incident-settings/sla"): Row(Needs(P.INCIDENTS_READ), fixed("/api/v1/incident-settings/sla")),
    ("PUT", "/api/v1/incident-settings/sla/{severity}"): Row(Needs(P.INCIDENTS_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/incident-settings/sla/P4", json={"acknowledge_minutes": 60 + len(c.name), "contain_minutes": 600,
                                                  "resolve_minutes": 6000, "clock": "business"})),
    ("POST", "/api/v1/incidents/escalate"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        "/api/v1/incidents/escalate", json={"alert_ids": [fresh_alert_id(c.world)], "type": "intrusion"})),
    ("GET", "/api/v1/incident-settings/grouping-rules"): Row(Needs(P.INCIDENTS_READ),
                                                             fixed("/api/v1/incident-settings/grouping-rules")),
    ("POST", "/api/v1/incident-settings/grouping-rules"): Row(Needs(P.INCIDENTS_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/incident-settings/grouping-rules", json={"name": f"rule {uuid.uuid4().hex[:8]}", "match_on": "host",
                                                          "window_minutes": 60})),
    ("DELETE", "/api/v1/incident-settings/grouping-rules/{rule_id}"): Row(
        Needs(P.INCIDENTS_WRITE, everywhere=True), lambda c: Req(
            f"/api/v1/incident-settings/grouping-rules/{fresh_grouping_rule_id(c.world)}")),
    ("GET", "/incidents"): Row(Needs(P.INCIDENTS_READ), lambda c: Req("/incidents", params={"phase": "identify"})),
    ("GET", "/incidents/{incident_id}"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/incidents/{fresh_incident_id(c.world)}")),
    ("GET", "/api/v1/incident-settings/calendar"): Row(Needs(P.INCIDENTS_READ),
                                                       fixed("/api/v1/incident-settings/calendar")),
    ("PUT", "/api/v1/incident-settings/calendar"): Row(Needs(P.INCIDENTS_WRITE, everywhere=True), lambda c: Req(
        "/api/v1/incident-settings/calendar", json={"timezone": "Asia/Shanghai", "weekdays": [0, 1, 2, 3, 4],
                                                    "day_start": "09:00", "day_end": "18:00", "warn_ratio": 0.8})),

    # --- incident work: evidence, reports, the incident page's forms -----------------------------------
    ("POST", "/api/v1/incidents/{incident_id}/evidence"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incidents/{fresh_incident_id(c.world)}/evidence", params={"name": "capture.pcap"},
        content=b"matrix upload")),
    ("GET", "/api/v1/incidents/{incident_id}/evidence"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        f"/api/v1/incidents/{evidence_ids(c)[0]}/evidence")),
    ("GET", "/api/v1/incidents/{incident_id}/evidence/{evidence_id}"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        "/api/v1/incidents/{}/evidence/{}".format(*evidence_ids(c)))),
    ("GET", "/api/v1/incidents/{incident_id}/evidence/{evidence_id}/download"): Row(
        Needs(P.INCIDENTS_READ), lambda c: Req("/api/v1/incidents/{}/evidence/{}/download".format(*evidence_ids(c)))),
    ("POST", "/api/v1/incidents/{incident_id}/evidence/{evidence_id}/handover"): Row(
        Needs(P.INCIDENTS_WRITE), lambda c: Req("/api/v1/incidents/{}/evidence/{}/handover".format(
            *evidence_ids(c)), json={"to": "responder"})),
    ("POST", "/api/v1/incidents/{incident_id}/evidence/{evidence_id}/verify"): Row(
        Needs(P.INCIDENTS_WRITE), lambda c: Req("/api/v1/incidents/{}/evidence/{}/verify".format(*evidence_ids(c)))),
    ("POST", "/api/v1/incident-reports"): Row(SIGNED_IN, lambda c: Req(
        "/api/v1/incident-reports", json={"title": f"reported by {c.name}"})),
    ("GET", "/api/v1/incident-reports/mine"): Row(SIGNED_IN, fixed("/api/v1/incident-reports/mine")),
    ("GET", "/api/v1/incident-reports/follow/{token}"): Row(PUBLIC, lambda c: Req(
        f"/api/v1/incident-reports/follow/{fresh_follow_token(c.world)}")),
    ("GET", "/api/v1/incident-reports"): Row(Needs(P.INCIDENTS_WRITE), fixed("/api/v1/incident-reports")),
    ("GET", "/api/v1/incident-reports/{report_id}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incident-reports/{fresh_report_id(c.world)}")),
    ("POST", "/api/v1/incident-reports/{report_id}/accept"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incident-reports/{fresh_report_id(c.world)}/accept", json={"severity": "P4"})),
    ("POST", "/api/v1/incident-reports/{report_id}/reject"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/api/v1/incident-reports/{fresh_report_id(c.world)}/reject", json={"reason": "not an incident"})),
    ("GET", "/reports/new"): Row(SIGNED_IN, fixed("/reports/new")),
    ("POST", "/reports/new"): Row(SIGNED_IN, lambda c: Req("/reports/new", data={"title": f"page report by {c.name}"})),
    ("GET", "/reports/mine"): Row(SIGNED_IN, fixed("/reports/mine")),
    ("GET", "/reports/follow/{token}"): Row(PUBLIC, lambda c: Req(f"/reports/follow/{fresh_follow_token(c.world)}")),
    ("GET", "/reports/triage"): Row(Needs(P.INCIDENTS_WRITE), fixed("/reports/triage")),
    ("POST", "/reports/triage/{report_id}/accept"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/reports/triage/{fresh_report_id(c.world)}/accept", data={"severity": "P4"})),
    ("POST", "/reports/triage/{report_id}/reject"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/reports/triage/{fresh_report_id(c.world)}/reject", data={"reason": "not an incident"})),
    ("GET", "/incidents/new"): Row(Needs(P.INCIDENTS_WRITE), fixed("/incidents/new")),
    ("POST", "/incidents/new"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req("/incidents/new", data={
        "title": f"opened by {c.name}", "type": "malware", "severity": "P4"})),
    ("POST", "/incidents/escalate"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req("/incidents/escalate", data={
        "ids": [str(fresh_alert_id(c.world))], "confirm": "1", "type": "malware", "severity": "P3"})),
    ("POST", "/incidents/{incident_id}/acknowledge"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/incidents/{fresh_incident_id(c.world)}/acknowledge", data={})),
    ("POST", "/incidents/{incident_id}/assign"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/incidents/{fresh_incident_id(c.world)}/assign", data={"team": c.name, "owner": "responder"})),
    ("POST", "/incidents/{incident_id}/transition"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/incidents/{fresh_ready_incident(c.world)}/transition", data={"phase": "contain"})),
    ("POST", "/incidents/{incident_id}/edit"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/incidents/{fresh_incident_id(c.world)}/edit", data={"title": "edited", "type": "malware", "severity": "P2",
                                                                "tags": "matrix"})),
    ("POST", "/incidents/{incident_id}/tasks"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/incidents/{fresh_incident_id(c.world)}/tasks", data={"title": "page task", "required": "on"})),
    ("POST", "/incidents/{incident_id}/tasks/{task_id}/complete"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        "/incidents/{}/tasks/{}/complete".format(*fresh_task_ids(c.world)), data={})),
    ("POST", "/incidents/{incident_id}/tasks/{task_id}/reopen"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        "/incidents/{}/tasks/{}/reopen".format(*fresh_done_task_ids(c.world)), data={})),
    ("POST", "/incidents/{incident_id}/tasks/{task_id}/assign"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        "/incidents/{}/tasks/{}/assign".format(*fresh_task_ids(c.world)), data={"assignee": "responder"})),
    ("POST", "/incidents/{incident_id}/comments"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/incidents/{fresh_incident_id(c.world)}/comments", data={"body": f"from {c.name}"})),
    ("POST", "/incidents/{incident_id}/timeline"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/incidents/{fresh_incident_id(c.world)}/timeline", data={"summary": f"seen by {c.name}"})),
    ("POST", "/incidents/{incident_id}/observables"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/incidents/{fresh_incident_id(c.world)}/observables", data={"value": "198.51.100.23"})),
    ("POST", "/incidents/{incident_id}/postmortem"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/incidents/{fresh_incident_id(c.world)}/postmortem", data={})),
    ("POST", "/incidents/{incident_id}/postmortem/edit"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/incidents/{fresh_postmortem_incident(c.world)}/postmortem/edit", data={"impact": "matrix"})),
    ("POST", "/incidents/{incident_id}/postmortem/{action}"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/incidents/{fresh_postmortem_incident(c.world)}/postmortem/submit", data={})),
    ("POST", "/incidents/{incident_id}/evidence"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        f"/incidents/{fresh_incident_id(c.world)}/evidence", data={"description": "page upload"},
        files={"file": ("notes.txt", b"page evidence", "text/plain")})),
    ("GET", "/incidents/{incident_id}/evidence/{evidence_id}/download"): Row(Needs(P.INCIDENTS_READ), lambda c: Req(
        "/incidents/{}/evidence/{}/download".format(*evidence_ids(c)))),
    ("POST", "/incidents/{incident_id}/evidence/{evidence_id}/verify"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        "/incidents/{}/evidence/{}/verify".format(*evidence_ids(c)), data={})),
    ("POST", "/incidents/{incident_id}/evidence/{evidence_id}/handover"): Row(Needs(P.INCIDENTS_WRITE), lambda c: Req(
        "/incidents/{}/evidence/{}/handover".format(*evidence_ids(c)), data={"to": "responder"})),
}


# --- the app's routes -------------------------------------------------------------------------------


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path template) the app serves; a static mount counts as one GET route."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            found.add(("GET", f"{route.path}/{{path}}"))
            continue
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, str(route.path)))
    return found


def is_api(path: str) -> bool:
    return path.startswith("/api/") or path in {"/healthz", "/readyz", "/metrics"}


def is_elastic(path: str) -> bool:
    """The Elasticsearch-compatible endpoints: called with tokens, refusing in Elasticsearch's error shape."""
    return "/_" in path


def assert_elastic_error(response: Any, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["x-elastic-product"] == "Elasticsearch"
    body = response.json()
    assert body["status"] == status and body["error"]["type"] == "security_exception", body


def test_every_route_has_a_row_in_the_matrix(tmp_path: Path) -> None:
    app = create_app(load_settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'unused.db'}"))
    served = app_routes(app)
    missing = sorted(served - ROUTES.keys())
    assert not missing, (
        "these routes have no row in tests/api/test_role_matrix.py ROUTES; add one per route saying what it "
        "needs (PUBLIC, SIGNED_IN or Needs(permission)) and how to build a valid request: "
        + ", ".join(f"{m} {p}" for m, p in missing)
    )
    stale = sorted(ROUTES.keys() - served)
    assert not stale, "ROUTES has rows for routes the app no longer serves; remove them: " + ", ".join(
        f"{m} {p}" for m, p in stale)


# --- walking the matrix -----------------------------------------------------------------------------


@pytest.fixture
def sessions(world: Any) -> dict[str, tuple[str, str]]:
    """A browser session (cookie value, CSRF token) for every signed-in caller."""
    return {name: web_session(world.database, name) for name in CALLERS if name is not None}


def send(client: TestClient, world: Any, sessions: dict[str, tuple[str, str]], method: str, caller: str | None,
         req: Req) -> Any:
    headers: dict[str, str] = {}
    cookies = dict(req.cookies)
    data = dict(req.data) if req.data is not None else None
    if is_api(req.path) or is_elastic(req.path) or req.path.startswith(("/api/", "/static/", "/docs/")):
        if caller is not None:
            headers.update(world.headers(caller))
    elif caller is not None:
        secret, csrf = sessions[caller]
        cookies[SESSION_COOKIE] = secret
        if method != "GET":
            data = {"csrf_token": csrf, **(data or {})}
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    client.cookies.clear()
    return client.request(method, req.path, json=req.json, data=data, params=req.params, headers=headers,
                          follow_redirects=False, content=req.content, files=req.files)


@pytest.mark.parametrize("key", sorted(ROUTES), ids=[f"{m} {p}" for m, p in sorted(ROUTES)])
def test_route_grants_and_denies_each_role(key: tuple[str, str], world: Any, client: TestClient,
                                           sessions: dict[str, tuple[str, str]]) -> None:
    method, _template = key
    row = ROUTES[key]
    for caller in CALLERS:
        req = row.build(Caller(world, caller, client.app))
        before_records, before_denials = audit_state(world.database, caller or "anonymous", method, req.path)
        response = send(client, world, sessions, method, caller, req)
        who = f"{method} {req.path} as {caller or 'anonymous'}"
        if allowed(row.needs, caller):
            assert response.status_code not in (401, 403), (who, response.status_code, response.text[:300])
            assert response.status_code < 400, (who, response.status_code, response.text[:300])
            if method != "GET" and caller is not None and not row.reads_only:  # every change is on the audit trail
                records = audit_state(world.database, caller, method, req.path)[0]
                assert records > before_records, f"{who}: changed something without an audit record"
            continue
        if caller is None:
            if is_elastic(req.path):
                assert_elastic_error(response, 401)
                assert 'Bearer realm="security"' in response.headers.get_list("www-authenticate")
            elif is_api(req.path):
                assert_problem(response, 401, "not-authenticated")
                assert response.headers["www-authenticate"] == "Bearer"
            else:  # a page sends the visitor to sign in, and back afterwards
                assert response.status_code == 303, (who, response.status_code)
                assert response.headers["location"].startswith("/login?next=")
            assert audit_state(world.database, "anonymous", method, req.path)[0] == before_records, (
                f"{who}: a refused visit changed state")
            continue
        if is_elastic(req.path):
            assert_elastic_error(response, 403)
        elif is_api(req.path):
            assert_problem(response, 403, "permission-denied")
        else:
            assert response.status_code == 403, (who, response.status_code, response.text[:300])
            assert response.headers["content-type"].startswith("text/html"), who
        records, denied = audit_state(world.database, caller, method, req.path)
        assert denied == before_denials + 1, f"{who}: not audited"
        assert records == before_records + 1, f"{who}: a denied request changed state"


# --- separation of duties (三权分立), stated on its own --------------------------------------------


def test_system_administrator_cannot_touch_audit_trail_or_security_policy(world: Any, client: TestClient) -> None:
    h = world.headers("sysadmin")
    assert_problem(client.get("/api/v1/audit", headers=h), 403)
    assert_problem(client.get("/api/v1/audit/export.csv", headers=h), 403)
    assert_problem(client.post("/api/v1/audit/verify", headers=h), 403)
    assert_problem(client.get("/api/v1/security/policy", headers=h), 403)
    assert_problem(client.put("/api/v1/security/policy", headers=h, json={**policy_body(), "max_failed_logins": 99}),
                   403)
    # ... nor grant or revoke a role, which is the security administrator's job ...
    staff = world.users["staff_a"]
    assert_problem(client.post(f"/api/v1/users/{staff}/grants", headers=h, json={"role": "viewer",
                                                                               "unit_id": world.hq}), 403)
    # ... but manages users and reads the settings.
    assert client.get("/api/v1/users", headers=h).status_code == 200
    assert client.get("/api/v1/settings", headers=h).status_code == 200
    policy = client.get("/api/v1/security/policy", headers=world.headers("secadmin")).json()
    assert policy["max_failed_logins"] == 5


def test_audit_administrator_can_only_read_and_verify(world: Any, client: TestClient) -> None:
    h = world.headers("auditor")
    assert client.get("/api/v1/audit", headers=h).status_code == 200
    assert client.post("/api/v1/audit/verify", headers=h).json()["ok"] is True
    staff = world.users["staff_a"]
    changes = [
        ("POST", "/api/v1/users", {"username": "x-by-auditor", "password": "Fresh-Account-Pass-1!",
                                   "unit_id": world.hq}),
        ("PATCH", f"/api/v1/users/{staff}", {"display_name": "x"}),
        ("PATCH", f"/api/v1/users/{staff}", {"disabled": True}),
        ("POST", f"/api/v1/users/{staff}/grants", {"role": "analyst", "unit_id": world.hq}),
        ("POST", f"/api/v1/users/{staff}/password", {"password": "Reset-By-Auditor-9!"}),
        ("POST", f"/api/v1/users/{staff}/unlock", None),
        ("POST", "/api/v1/units", {"name": "x", "kind": "branch", "parent_id": world.hq}),
        ("PATCH", f"/api/v1/units/{world.hq}", {"name": "x"}),
        ("PUT", "/api/v1/security/policy", policy_body()),
    ]
    for method, path, body in changes:
        assert_problem(client.request(method, path, headers=h, json=body), 403, "permission-denied")
    for method, path in [("GET", "/api/v1/users"), ("GET", "/api/v1/security/policy"), ("GET", "/api/v1/settings"),
                         ("GET", "/metrics")]:
        assert_problem(client.request(method, path, headers=h), 403, "permission-denied")


def test_security_administrator_grants_roles_but_cannot_manage_accounts(world: Any, client: TestClient) -> None:
    h = world.headers("secadmin")
    staff = world.users["staff_a"]
    refused = [
        ("POST", "/api/v1/users", {"username": "x-by-secadmin", "password": "Fresh-Account-Pass-1!",
                                   "unit_id": world.hq}),
        ("PATCH", f"/api/v1/users/{staff}", {"disabled": True}),
        ("PATCH", f"/api/v1/users/{staff}", {"display_name": "x"}),
        ("POST", f"/api/v1/users/{staff}/password", {"password": "Reset-By-Secadmin-9!"}),
        ("POST", f"/api/v1/users/{staff}/unlock", None),
        ("POST", "/api/v1/units", {"name": "x", "kind": "branch", "parent_id": world.hq}),
        ("GET", "/api/v1/audit", None),
        ("POST", "/api/v1/audit/verify", None),
        ("GET", "/api/v1/settings", None),
    ]
    for method, path, body in refused:
        assert_problem(client.request(method, path, headers=h, json=body), 403, "permission-denied")
    # ... reads the accounts to find whom to grant to, grants and revokes roles, and owns the policy.
    assert client.get("/api/v1/users", headers=h).status_code == 200
    assert client.get(f"/api/v1/users/{staff}", headers=h).status_code == 200
    granted = client.post(f"/api/v1/users/{staff}/grants", headers=h, json={"role": "analyst", "unit_id": world.hq})
    assert granted.status_code == 201
    assert client.delete(f"/api/v1/users/{staff}/grants/{granted.json()['id']}", headers=h).status_code == 204
    response = client.put("/api/v1/security/policy", headers=h, json={**policy_body(), "max_failed_logins": 7})
    assert response.status_code == 200
    assert response.json()["max_failed_logins"] == 7
