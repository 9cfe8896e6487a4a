"""The language of a page: the user's own setting, else the language cookie, else Accept-Language."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from vigil.web.deps import LANGUAGE_COOKIE

from .support import audit_actions, browser, csrf_of, post_form, sign_in, signed_in, stored_user, text_of

ZH = "zh-CN,zh;q=0.9,en;q=0.5"


def test_a_user_who_chose_chinese_gets_chinese_pages(app: FastAPI, world: Any, client: Any) -> None:
    chosen = client.patch("/api/v1/me", headers=world.headers("analyst"), json={"language": "zh_CN"})
    assert chosen.status_code == 200
    browser_in_english = signed_in(app, "analyst", **{"Accept-Language": "en-GB"})
    home = browser_in_english.get("/")
    assert home.status_code == 200
    assert '<html lang="zh-CN">' in home.text
    shown = text_of(home)
    for words in ("您好", "退出登录", "安全分析员", "组织单元", "规划中", "威胁检测", "平台模块"):
        assert words in shown, words
    assert "Sign out" not in shown
    denied = browser_in_english.get("/admin/users")
    assert denied.status_code == 403
    assert "无权访问" in text_of(denied)


def test_a_signed_out_visitor_gets_the_browser_language(app: FastAPI, world: Any) -> None:
    chinese = browser(app, **{"Accept-Language": ZH})
    page = chinese.get("/login")
    assert '<html lang="zh-CN">' in page.text and "登录 Vigil" in text_of(page)
    missing = chinese.get("/no-such-page")
    assert missing.status_code == 404 and "未找到" in text_of(missing)
    assert "Sign in to Vigil" in text_of(browser(app, **{"Accept-Language": "en-US,en;q=0.9"}).get("/login"))
    assert "Sign in to Vigil" in text_of(browser(app, **{"Accept-Language": "fr-FR"}).get("/login"))  # default


def test_switching_language_when_signed_out_keeps_it_in_a_cookie(app: FastAPI, world: Any) -> None:
    visitor = browser(app, **{"Accept-Language": "en-US"})
    form = visitor.get("/login")
    refused = visitor.post("/language", data={"language": "zh_CN", "next": "/login"}, follow_redirects=False)
    assert refused.status_code == 403 and LANGUAGE_COOKIE not in visitor.cookies
    switched = visitor.post("/language", data={"language": "zh_CN", "next": "/login", "csrf_token": csrf_of(form)},
                            follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/login"
    assert visitor.cookies[LANGUAGE_COOKIE] == "zh_CN"
    assert "登录 Vigil" in text_of(visitor.get("/login"))  # the cookie beats Accept-Language
    assert sign_in(visitor, "viewer").status_code == 303
    assert "退出登录" in text_of(visitor.get("/"))  # a user without a setting of their own keeps it


def test_switching_language_when_signed_in_stores_it_on_the_user(app: FastAPI, world: Any) -> None:
    database = world.database
    client = signed_in(app, "viewer")
    switched = post_form(client, "/language", {"language": "zh_CN", "next": "/account"}, page="/")
    assert switched.status_code == 303 and switched.headers["location"] == "/account"
    user = stored_user(database, "viewer")
    assert user is not None and user.language == "zh_CN"
    assert audit_actions(database, action="user.profile.update", actor="viewer")[-1].details == {"language": "zh_CN"}
    elsewhere = signed_in(app, "viewer", **{"Accept-Language": "en-US"})  # another browser, same person
    assert "退出登录" in text_of(elsewhere.get("/"))
    post_form(client, "/language", {"language": "en", "next": "/"}, page="/")
    assert "Sign out" in text_of(elsewhere.get("/"))


def test_an_unknown_language_is_refused(app: FastAPI, world: Any) -> None:
    client = signed_in(app, "viewer")
    refused = post_form(client, "/language", {"language": "tlh", "next": "/"}, page="/")
    assert refused.status_code == 422 and "Invalid input" in text_of(refused)
    user = stored_user(world.database, "viewer")
    assert user is not None and user.language is None


def test_the_switch_on_a_refused_form_returns_to_the_page_of_the_form(app: FastAPI, world: Any) -> None:
    admin = signed_in(app, "sysadmin")
    token = csrf_of(admin.get("/admin/units"))
    form = {"csrf_token": token, "name": "", "kind": "branch", "parent_id": str(world.hq)}
    refused = admin.post("/admin/units", data=form, headers={"Referer": "https://testserver/admin/units?x=1"})
    assert refused.status_code == 422
    assert 'name="next" value="/admin/units?x=1"' in refused.text  # not the POST-only path
    foreign = admin.post("/admin/units", data=form, headers={"Referer": "https://evil.example/admin/units"})
    assert 'name="next" value="/"' in foreign.text
