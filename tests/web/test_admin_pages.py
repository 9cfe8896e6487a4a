"""What administrators do through the pages: users, roles, tokens, units, the policy, the settings."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

from vigil.core.config import load_settings
from vigil.web.app import create_app

from .support import PASSWORD, audit_actions, browser, post_form, sign_in, signed_in, stored_user, text_of

NEW_USER = {"username": "new.analyst", "display_name": "New Analyst", "email": "new.analyst@example.com",
            "role": "analyst", "password": "Fresh-Account-Pass-1!"}


def test_creating_a_user_through_the_form(app: FastAPI, world: Any) -> None:
    admin = signed_in(app, "sysadmin")
    created = post_form(admin, "/admin/users", {**NEW_USER, "unit_id": str(world.branch_a)})
    assert created.status_code == 303
    assert re.fullmatch(r"/admin/users/\d+\?notice=user-created", created.headers["location"])
    detail = text_of(admin.get(created.headers["location"]))
    assert "The user is created." in detail and "Security analyst" in detail and "Shanghai branch" in detail
    user = stored_user(world.database, "new.analyst")
    assert user is not None and user.must_change_password and user.email == "new.analyst@example.com"
    assert [(g.role, g.unit_id) for g in user.grants] == [("analyst", world.branch_a)]
    assert audit_actions(world.database, action="user.create", actor="sysadmin")
    assert "new.analyst" in text_of(admin.get("/admin/users", params={"q": "new.ana"}))
    assert "new.analyst" not in text_of(admin.get("/admin/users", params={"q": "nobody-like-this"}))


def test_a_refused_user_form_is_shown_again_and_saves_nothing(app: FastAPI, world: Any) -> None:
    admin = signed_in(app, "sysadmin")
    bad = post_form(admin, "/admin/users", {**NEW_USER, "username": "x y", "email": "not-an-address",
                                            "unit_id": str(world.hq)})
    assert bad.status_code == 422
    shown = text_of(bad)
    assert "Check the marked fields." in shown and "Enter a valid e-mail address." in shown
    assert 'value="New Analyst"' in bad.text  # what was typed stays
    weak = post_form(admin, "/admin/users", {**NEW_USER, "password": "weak", "unit_id": str(world.hq)})
    assert weak.status_code == 422 and "password policy" in text_of(weak)
    taken = post_form(admin, "/admin/users", {**NEW_USER, "username": "analyst", "unit_id": str(world.hq)})
    assert taken.status_code == 422 and "is taken" in text_of(taken)
    auditor_page = f"/admin/users/{world.users['auditor']}"
    two_powers = post_form(admin, f"{auditor_page}/grants", {"role": "system_admin", "unit_id": str(world.hq)},
                           page=auditor_page)
    assert two_powers.status_code == 422 and "separation of duties" in text_of(two_powers)
    assert stored_user(world.database, "new.analyst") is None
    auditor = stored_user(world.database, "auditor")
    assert auditor is not None and [g.role for g in auditor.grants] == ["audit_admin"]


def test_editing_disabling_and_role_changes(app: FastAPI, world: Any) -> None:
    admin = signed_in(app, "sysadmin")
    staff = world.users["staff_a"]
    detail = f"/admin/users/{staff}"
    edited = post_form(admin, detail, {"display_name": "Staff A", "email": "", "unit_id": str(world.line_a),
                                       "language": "zh_CN"})
    assert edited.headers["location"] == f"{detail}?notice=user-saved"
    granted = post_form(admin, f"{detail}/grants", {"role": "responder", "unit_id": str(world.line_a)}, page=detail)
    assert granted.headers["location"] == f"{detail}?notice=role-granted"
    user = stored_user(world.database, "staff_a")
    assert user is not None and user.display_name == "Staff A" and user.language == "zh_CN"
    responder = next(g for g in user.grants if g.role == "responder")
    revoked = post_form(admin, f"{detail}/grants/{responder.id}/revoke", page=detail)
    assert revoked.headers["location"] == f"{detail}?notice=role-revoked"

    staff_browser = signed_in(app, "staff_a")
    assert post_form(admin, f"{detail}/disable", page=detail).headers["location"] == f"{detail}?notice=user-disabled"
    assert staff_browser.get("/", follow_redirects=False).status_code == 303  # the open session ended
    assert "Invalid user name or password." in text_of(sign_in(browser(app), "staff_a"))
    assert post_form(admin, f"{detail}/enable", page=detail).headers["location"] == f"{detail}?notice=user-enabled"
    assert sign_in(browser(app), "staff_a").status_code == 303

    own = f"/admin/users/{world.users['sysadmin']}"
    page = text_of(admin.get(own))
    assert "You cannot change your own roles" in page and "Disable account" not in page


def test_unlocking_and_revoking_a_users_tokens(app: FastAPI, world: Any, client: Any) -> None:
    admin = signed_in(app, "sysadmin")
    viewer = world.users["viewer"]
    detail = f"/admin/users/{viewer}"
    for _ in range(5):
        sign_in(browser(app), "viewer", "Wrong-Password-1!")
    assert "locked" in text_of(admin.get(detail))
    assert post_form(admin, f"{detail}/unlock", page=detail).headers["location"] == f"{detail}?notice=user-unlocked"
    assert sign_in(browser(app), "viewer", PASSWORD).status_code == 303

    assert client.get("/api/v1/me", headers=world.headers("viewer")).status_code == 200
    revoked = post_form(admin, f"{detail}/tokens/revoke", page=detail)
    assert revoked.headers["location"] == f"{detail}?notice=tokens-revoked"
    assert client.get("/api/v1/me", headers=world.headers("viewer")).status_code == 401
    assert "revoked" in text_of(admin.get(detail))


def test_own_api_token_is_shown_once_and_can_be_revoked(app: FastAPI, world: Any, client: Any) -> None:
    me = signed_in(app, "analyst")
    created = post_form(me, "/account/tokens", {"name": "siem-script", "expires_in_days": "30", "roles": "analyst"},
                        page="/account")
    assert created.status_code == 201
    secret = re.search(r'<code id="new-token" class="token">([^<]+)</code>', created.text)
    assert secret and secret.group(1).startswith("vgl_")
    assert "shown only this once" in text_of(created)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret.group(1)}"}).status_code == 200
    later = me.get("/account")
    assert secret.group(1) not in later.text and "siem-script" in later.text
    too_long = post_form(me, "/account/tokens", {"name": "forever", "expires_in_days": "9999"}, page="/account")
    assert too_long.status_code == 422 and "forever" not in text_of(me.get("/account"))
    token_id = re.findall(r'action="/account/tokens/(\d+)/revoke"', later.text)[0]
    assert post_form(me, f"/account/tokens/{token_id}/revoke", page="/account").status_code == 303
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret.group(1)}"}).status_code == 401
    someone_else = re.findall(r'action="/account/tokens/(\d+)/revoke"', signed_in(app, "viewer").get("/account").text)
    assert post_form(me, f"/account/tokens/{someone_else[0]}/revoke", page="/account").status_code == 404


def test_profile_of_ones_own_account(app: FastAPI, world: Any) -> None:
    me = signed_in(app, "responder")
    saved = post_form(me, "/account/profile", {"display_name": "On-call Responder", "language": ""}, page="/account")
    assert saved.headers["location"] == "/account?notice=profile-saved"
    page = text_of(me.get(saved.headers["location"]))
    assert "Your profile is saved." in page and "Hello" not in page
    assert "Hello, On-call Responder" in text_of(me.get("/"))


def test_units_are_created_and_renamed_in_the_tree(app: FastAPI, world: Any) -> None:
    admin = signed_in(app, "sysadmin")
    created = post_form(admin, "/admin/units", {"name": "Shenzhen subsidiary", "kind": "subsidiary",
                                                "parent_id": str(world.hq)})
    assert created.headers["location"] == "/admin/units?notice=unit-created"
    clash = post_form(admin, "/admin/units", {"name": "Payments", "kind": "business_line",
                                              "parent_id": str(world.branch_a)})
    assert clash.status_code == 422 and "already has a unit named" in text_of(clash)
    renamed = post_form(admin, f"/admin/units/{world.line_a}/rename", {"name": "Payments and cards"},
                        page="/admin/units")
    assert renamed.headers["location"] == "/admin/units?notice=unit-renamed"
    tree = admin.get("/admin/units").text
    assert tree.index("Shanghai branch") < tree.index("Payments and cards")
    assert "Shenzhen subsidiary" in tree and "Subsidiary" in tree
    empty = post_form(admin, f"/admin/units/{world.line_a}/rename", {"name": ""}, page="/admin/units")
    assert empty.status_code == 422 and "This is too short." in text_of(empty)


def test_security_policy_is_edited_by_the_security_administrator(app: FastAPI, world: Any) -> None:
    secadmin = signed_in(app, "secadmin")
    values = {"password_min_length": "14", "password_min_classes": "3", "password_max_age_days": "180",
              "max_failed_logins": "3", "lockout_minutes": "30", "token_max_days": "90"}
    saved = post_form(secadmin, "/security/policy", values)
    assert saved.headers["location"] == "/security/policy?notice=policy-saved"
    page = secadmin.get("/security/policy")
    assert 'name="max_failed_logins" value="3"' in page.text and "secadmin" in text_of(page)
    bad = post_form(secadmin, "/security/policy", {**values, "max_failed_logins": "0", "lockout_minutes": "x"})
    assert bad.status_code == 422
    assert "Enter a number no smaller than 1." in text_of(bad) and "Enter a whole number." in text_of(bad)
    assert audit_actions(world.database, action="policy.update", actor="secadmin")


def test_settings_page_masks_secrets(world: Any, database: Any, tmp_path: Any) -> None:
    settings = load_settings(data_dir=tmp_path / "var", database_url=database.url,
                             secret_key="do-not-show-this-key-anywhere")
    app = create_app(settings, database)
    page = signed_in(app, "sysadmin").get("/admin/settings")
    assert page.status_code == 200
    assert "do-not-show-this-key-anywhere" not in page.text
    assert "********" in page.text and "VIGIL_SECRET_KEY" in page.text and "Asia/Shanghai" in page.text
