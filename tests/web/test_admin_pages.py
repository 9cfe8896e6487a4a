"""What administrators do through the pages: users, roles, tokens, units, the policy, the settings."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

from vigil.core.config import load_settings
from vigil.web.app import create_app

from .support import PASSWORD, audit_actions, browser, post_form, sign_in, signed_in, stored_user, text_of

NEW_USER = {"username": "new.analyst", "display_name": "New Analyst", "email": "new.analyst@example.com",
            "password": "Fresh-Account-Pass-1!"}


def test_the_system_administrator_creates_and_the_security_administrator_grants(app: FastAPI, world: Any) -> None:
    admin = signed_in(app, "sysadmin")
    listing = admin.get("/admin/users").text.split('id="create"')[1]
    assert 'name="role"' not in listing  # the create form offers no role to a system administrator
    assert "no role until the security administrator grants one" in text_of(admin.get("/admin/users"))
    created = post_form(admin, "/admin/users", {**NEW_USER, "unit_id": str(world.branch_a)})
    assert created.status_code == 303
    assert re.fullmatch(r"/admin/users/\d+\?notice=user-created", created.headers["location"])
    detail_path = created.headers["location"].split("?")[0]
    detail = admin.get(created.headers["location"])
    assert "The user is created." in text_of(detail) and "Shanghai branch" in text_of(detail)
    assert "No roles." in text_of(detail) and "Roles are granted and revoked by the security administrator." in (
        text_of(detail))
    assert f'action="{detail_path}/grants"' not in detail.text
    user = stored_user(world.database, "new.analyst")
    assert user is not None and user.must_change_password and user.email == "new.analyst@example.com"
    assert user.grants == []
    assert audit_actions(world.database, action="user.create", actor="sysadmin")

    # A role smuggled into the form is refused, and nothing is created.
    smuggled = post_form(admin, "/admin/users", {**NEW_USER, "username": "smuggler", "role": "audit_admin",
                                                 "unit_id": str(world.hq)}, page="/admin/users")
    assert smuggled.status_code == 422 and "Roles are granted by the security administrator" in text_of(smuggled)
    assert stored_user(world.database, "smuggler") is None
    # Nor may the system administrator grant through the page: 403, audited, nothing changes.
    refused = post_form(admin, f"{detail_path}/grants", {"role": "analyst", "unit_id": str(world.branch_a)},
                        page=detail_path)
    assert refused.status_code == 403 and "roles:assign" in text_of(refused)
    assert audit_actions(world.database, action="auth.denied", actor="sysadmin", target_id=f"POST {detail_path}/grants")

    security = signed_in(app, "secadmin")
    page = security.get(detail_path)
    assert f'action="{detail_path}/grants"' in page.text and "Reset password" not in text_of(page)
    granted = post_form(security, f"{detail_path}/grants", {"role": "analyst", "unit_id": str(world.branch_a)},
                        page=detail_path)
    assert granted.headers["location"] == f"{detail_path}?notice=role-granted"
    assert "Security analyst" in text_of(admin.get(detail_path))
    user = stored_user(world.database, "new.analyst")
    assert user is not None and [(g.role, g.unit_id, g.granted_by) for g in user.grants] == [
        ("analyst", world.branch_a, "secadmin")]
    assert audit_actions(world.database, action="user.role.grant", actor="secadmin")
    # The security administrator creates no account.
    assert 'id="create"' not in security.get("/admin/users").text
    assert post_form(security, "/admin/users", {**NEW_USER, "username": "by-secadmin", "unit_id": str(world.hq)},
                     page="/admin/users").status_code == 403
    assert stored_user(world.database, "by-secadmin") is None
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
    two_powers = post_form(signed_in(app, "secadmin"), f"{auditor_page}/grants",
                           {"role": "system_admin", "unit_id": str(world.hq)}, page=auditor_page)
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
    security = signed_in(app, "secadmin_a")  # a branch security administrator, for a user of the branch
    granted = post_form(security, f"{detail}/grants", {"role": "responder", "unit_id": str(world.line_a)},
                        page=detail)
    assert granted.headers["location"] == f"{detail}?notice=role-granted"
    user = stored_user(world.database, "staff_a")
    assert user is not None and user.display_name == "Staff A" and user.language == "zh_CN"
    responder = next(g for g in user.grants if g.role == "responder")
    assert f"/grants/{responder.id}/revoke" not in admin.get(detail).text
    revoked = post_form(security, f"{detail}/grants/{responder.id}/revoke", page=detail)
    assert revoked.headers["location"] == f"{detail}?notice=role-revoked"

    staff_browser = signed_in(app, "staff_a")
    assert post_form(admin, f"{detail}/disable", page=detail).headers["location"] == f"{detail}?notice=user-disabled"
    assert staff_browser.get("/", follow_redirects=False).status_code == 303  # the open session ended
    assert "Invalid user name or password." in text_of(sign_in(browser(app), "staff_a"))
    assert post_form(admin, f"{detail}/enable", page=detail).headers["location"] == f"{detail}?notice=user-enabled"
    assert sign_in(browser(app), "staff_a").status_code == 303

    own = f"/admin/users/{world.users['secadmin']}"
    page = text_of(signed_in(app, "secadmin").get(own))
    assert "You cannot change your own roles" in page and "Grant role" not in page


def test_administrator_accounts_are_out_of_reach_of_the_pages(app: FastAPI, world: Any) -> None:
    """The system administrator may not reset the password of, disable or move an administrator account:
    the page shows no such control, says why, and a form sent anyway is refused with 403."""
    admin = signed_in(app, "sysadmin")
    for username in ("auditor", "secadmin", "sysadmin_a"):
        detail = f"/admin/users/{world.users[username]}"
        page = admin.get(detail)
        shown = text_of(page)
        assert f"vigil user reset-password {username}" in shown, username
        assert f'action="{detail}/password"' not in page.text and f'action="{detail}/disable"' not in page.text
        assert 'name="unit_id"' not in page.text.split('action="' + detail + '"')[1].split("</form>")[0]
        before = stored_user(world.database, username)
        assert before is not None
        reset = post_form(admin, f"{detail}/password", {"password": "Taken-Over-Pass-12!"}, page=detail)
        assert reset.status_code == 403 and f"vigil user reset-password {username}" in text_of(reset)
        disabled = post_form(admin, f"{detail}/disable", page=detail)
        assert disabled.status_code == 403 and f"vigil user disable {username}" in text_of(disabled)
        moved = post_form(admin, detail, {"display_name": "Moved", "email": "", "unit_id": str(world.line_a),
                                          "language": ""})
        assert moved.status_code == 403 and f"vigil user move {username}" in text_of(moved)
        after = stored_user(world.database, username)
        assert after is not None
        assert (after.password_hash, after.disabled, after.unit_id, after.display_name) == (
            before.password_hash, before.disabled, before.unit_id, before.display_name)
        # Its name, e-mail and language stay editable, with no unit in the form.
        saved = post_form(admin, detail, {"display_name": f"{username} (renamed)", "email": "", "language": ""})
        assert saved.headers["location"] == f"{detail}?notice=user-saved"
        assert audit_actions(world.database, action="auth.denied", actor="sysadmin",
                             target_id=f"POST {detail}/password")
    sysadmin_a = stored_user(world.database, "sysadmin_a")
    assert sysadmin_a is not None and sysadmin_a.display_name == "sysadmin_a (renamed)"
    # An ordinary account's password is still the system administrator's to reset.
    detail = f"/admin/users/{world.users['responder']}"
    assert "Reset password" in text_of(admin.get(detail))
    reset = post_form(admin, f"{detail}/password", {"password": "Temporary-Pass-55!"}, page=detail)
    assert reset.headers["location"] == f"{detail}?notice=password-reset"


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
    taken = post_form(admin, f"/admin/units/{world.branch_a}/rename", {"name": "Beijing branch"}, page="/admin/units")
    assert taken.status_code == 422 and "is already named" in text_of(taken)
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
