"""Every page answers its users and refuses the others with the 403 page, like the API it mirrors."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI

from .support import audit_actions, post_form, signed_in, stored_user, text_of

# (page, a user whose roles open it, a user whose roles do not; None: every signed-in user may)
PAGES: list[tuple[str, str, str | None]] = [
    ("/", "nobody", None),
    ("/account", "nobody", None),
    ("/account/password", "nobody", None),
    ("/admin/users", "sysadmin", "analyst"),
    ("/admin/users/{staff_a}", "secadmin_a", "auditor"),
    ("/admin/units", "viewer", "nobody"),
    ("/admin/settings", "sysadmin", "sysadmin_a"),  # settings are platform-wide: held at headquarters
    ("/security/policy", "secadmin", "sysadmin"),
    ("/audit", "auditor_a", "sysadmin"),
]


def links_of(page: Any) -> set[str]:
    return set(re.findall(r'<a href="([^"]+)"', page.text))


@pytest.mark.parametrize(("template", "granted", "denied"), PAGES, ids=[p[0] for p in PAGES])
def test_page_opens_for_its_role_and_refuses_others(app: FastAPI, world: Any, template: str, granted: str,
                                                    denied: str | None) -> None:
    path = template.format(staff_a=world.users["staff_a"])
    page = signed_in(app, granted).get(path)
    assert page.status_code == 200, (path, granted, text_of(page)[:300])
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    if denied is None:
        return
    refused = signed_in(app, denied).get(path)
    assert refused.status_code == 403, (path, denied)
    assert refused.headers["content-type"].startswith("text/html")
    shown = text_of(refused)
    assert "Not allowed" in shown and "Your roles do not allow this page" in shown
    assert "Sign out" in shown  # still inside the signed-in layout
    assert audit_actions(world.database, action="auth.denied", actor=denied, target_id=f"GET {path}")


def test_navigation_links_only_the_pages_a_user_may_open(app: FastAPI, world: Any) -> None:
    admin_pages = {"/admin/users", "/admin/settings", "/security/policy", "/audit"}
    expected = {
        "sysadmin": {"/admin/users", "/admin/settings"},
        "secadmin": {"/admin/users", "/security/policy"},
        "auditor": {"/audit"},
        "analyst": set(),
        "nobody": set(),
    }
    for username, pages in expected.items():
        links = links_of(signed_in(app, username).get("/"))
        assert links & admin_pages == pages, username
        assert ("/admin/units" in links) == (username != "nobody"), username
    home = text_of(signed_in(app, "nobody").get("/"))
    for planned in ("SIEM: log collection", "Threat detection", "IOC detection", "Incidents", "Vulnerabilities",
                    "SRC portal", "Compliance", "Defence coverage", "planned"):
        assert planned in home, planned


def test_changes_are_refused_to_roles_without_the_write_permission(app: FastAPI, world: Any) -> None:
    database = world.database
    auditor = signed_in(app, "auditor")
    created = post_form(auditor, "/admin/users", {"username": "by-auditor", "password": "Fresh-Account-Pass-1!",
                                                  "unit_id": str(world.hq), "role": ""}, page="/audit")
    assert created.status_code == 403 and stored_user(database, "by-auditor") is None
    sysadmin = signed_in(app, "sysadmin")
    policy = post_form(sysadmin, "/security/policy", {"password_min_length": "8", "password_min_classes": "1",
                                                      "password_max_age_days": "0", "max_failed_logins": "100",
                                                      "lockout_minutes": "1", "token_max_days": "3650"}, page="/")
    assert policy.status_code == 403 and "Not allowed" in text_of(policy)
    assert 'name="max_failed_logins" value="5"' in signed_in(app, "secadmin").get("/security/policy").text
    branch_auditor = signed_in(app, "auditor_a")
    assert post_form(branch_auditor, "/audit/verify", page="/audit").status_code == 403  # the chain is platform-wide
    viewer = signed_in(app, "viewer")
    unit = post_form(viewer, "/admin/units", {"name": "Shadow unit", "kind": "branch", "parent_id": str(world.hq)},
                     page="/admin/units")
    assert unit.status_code == 403 and "Shadow unit" not in signed_in(app, "sysadmin").get("/admin/units").text


def test_a_branch_administrator_sees_and_manages_only_the_branch(app: FastAPI, world: Any) -> None:
    branch_admin = signed_in(app, "sysadmin_a")
    listing = branch_admin.get("/admin/users")
    names = set(re.findall(r'<a href="/admin/users/\d+">([^<]+)</a>', listing.text))
    assert names == {"sysadmin_a", "auditor_a", "secadmin_a", "staff_a"}
    options = set(re.findall(r'<option value="(\d+)"', listing.text.split('id="create"')[1]))
    assert options == {str(world.branch_a), str(world.line_a)}
    hidden = branch_admin.get(f"/admin/users/{world.users['analyst']}")
    assert hidden.status_code == 404 and "Not found" in text_of(hidden)
    units = text_of(branch_admin.get("/admin/units"))
    assert "Shanghai branch" in units and "Payments" in units and "Beijing branch" not in units
