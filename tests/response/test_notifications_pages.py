"""The notification pages as a browser uses them: a DingTalk channel added through the form, "send a test"
with its outcome shown (delivered, and failed with the reason), a refused form that stores nothing and
echoes no secret, the edit form keeping secrets left empty, and the delivery log in 简体中文."""

from __future__ import annotations

import re

from fastapi import FastAPI
from sqlalchemy import select
from tests.api.support import row_count
from tests.conftest import World
from tests.web.support import csrf_of, signed_in, text_of

from vigil.core.db import Scope
from vigil.response.notifications.models import NotificationChannel

from . import platforms

TOKEN, SECRET = "page-token-31c9aa", "SECpage-secret-5e0f2d"
PAGE = "/response/notifications"


def channel_form(world: World, url: str, **extra: str) -> dict[str, str]:
    return {"kind": "dingtalk", "name": "SOC DingTalk", "language": "en", "unit_id": str(world.hq),
            "max_attempts": "2", "cfg_url": f"{url}/robot/send", "cfg_access_token": TOKEN, "cfg_secret": SECRET,
            "cfg_at_mobiles": "", "description": "", "enabled": "on", **extra}


def test_add_a_channel_and_send_a_test_from_the_page(world: World, app: FastAPI) -> None:
    browser = signed_in(app, "secadmin")
    form_page = browser.get(f"{PAGE}?add=dingtalk")
    assert form_page.status_code == 200 and 'name="cfg_access_token"' in form_page.text
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as server:
        created = browser.post(PAGE, data={"csrf_token": csrf_of(form_page), **channel_form(world, server.url)},
                               follow_redirects=False)
        assert created.status_code == 303 and created.headers["location"] == f"{PAGE}?done=created"
        listing = browser.get(created.headers["location"])
        assert "The channel is added. Send a test to check it." in text_of(listing)
        assert TOKEN not in listing.text and SECRET not in listing.text
        assert "access_token : set" in text_of(listing)
        channel_id = int(re.search(r'action="/response/notifications/(\d+)/test"', listing.text).group(1))
        tested = browser.post(f"{PAGE}/{channel_id}/test", data={"csrf_token": csrf_of(listing)},
                              follow_redirects=False)
        assert tested.status_code == 303
        outcome = browser.get(tested.headers["location"])
    assert "Test message to SOC DingTalk" in text_of(outcome)
    assert "Delivered after 1 attempt(s). HTTP 200" in text_of(outcome)
    assert server.received[0].json()["markdown"]["title"] == "Test message from Vigil"


def test_a_failed_test_shows_why_in_chinese(world: World, app: FastAPI) -> None:
    browser = signed_in(app, "secadmin", **{"Accept-Language": "zh-CN"})
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as server:
        server.always_fail = True
        page = browser.get(f"{PAGE}?add=dingtalk")
        browser.post(PAGE, data={"csrf_token": csrf_of(page), **channel_form(world, server.url)})
        with world.database.transaction(Scope.system()) as session:
            channel_id = session.scalars(select(NotificationChannel.id)).one()
        tested = browser.post(f"{PAGE}/{channel_id}/test", data={"csrf_token": csrf_of(page)})
    text = text_of(tested)
    assert "发往 SOC DingTalk 的测试消息" in text
    assert "经过 2 次尝试仍未送达： HTTP 500 from http://127.0.0.1:" in text
    assert len(server.received) == 2


def test_a_refused_form_stores_nothing_and_echoes_no_secret(world: World, app: FastAPI) -> None:
    browser = signed_in(app, "secadmin")
    page = browser.get(f"{PAGE}?add=dingtalk")
    refused = browser.post(PAGE, data={"csrf_token": csrf_of(page),
                                       **channel_form(world, "gopher://oapi.dingtalk.com")})
    assert refused.status_code == 422
    assert "must be an http:// or https:// address" in text_of(refused)
    assert TOKEN not in refused.text and SECRET not in refused.text
    assert row_count(world.database, NotificationChannel) == 0
    missing = browser.post(PAGE, data={"csrf_token": csrf_of(page), **channel_form(world, "https://x.example"),
                                       "cfg_access_token": "", "name": ""})
    assert missing.status_code == 422 and "This field is required." in text_of(missing)
    assert row_count(world.database, NotificationChannel) == 0


def test_the_edit_form_keeps_secrets_left_empty(world: World, app: FastAPI) -> None:
    browser = signed_in(app, "secadmin")
    page = browser.get(f"{PAGE}?add=dingtalk")
    browser.post(PAGE, data={"csrf_token": csrf_of(page), **channel_form(world, "https://oapi.dingtalk.com")})
    with world.database.transaction(Scope.system()) as session:
        channel_id = session.scalars(select(NotificationChannel.id)).one()
    edit = browser.get(f"{PAGE}?edit={channel_id}")
    assert "Set; leave empty to keep it." in text_of(edit) and TOKEN not in edit.text
    saved = browser.post(f"{PAGE}/{channel_id}", data={
        "csrf_token": csrf_of(edit), **channel_form(world, "https://oapi.dingtalk.com", language="zh_CN",
                                                    cfg_access_token="", cfg_secret="", clear_secret="on")},
        follow_redirects=False)
    assert saved.status_code == 303, saved.text[:500]
    with world.database.transaction(Scope.system()) as session:
        channel = session.get(NotificationChannel, channel_id)
        assert channel is not None and channel.language == "zh_CN"
        assert channel.config["access_token"] == TOKEN and "secret" not in channel.config


def test_the_delivery_log_page_in_chinese_and_who_may_open_what(world: World, app: FastAPI) -> None:
    admin = signed_in(app, "secadmin")
    with platforms.serve(platforms.dingtalk(TOKEN, SECRET)) as server:
        page = admin.get(f"{PAGE}?add=dingtalk")
        admin.post(PAGE, data={"csrf_token": csrf_of(page), **channel_form(world, server.url)})
        with world.database.transaction(Scope.system()) as session:
            channel_id = session.scalars(select(NotificationChannel.id)).one()
        admin.post(f"{PAGE}/{channel_id}/test", data={"csrf_token": csrf_of(page)})
    analyst = signed_in(app, "analyst", **{"Accept-Language": "zh-CN"})
    log = analyst.get(f"{PAGE}/deliveries", params={"status": "sent"})
    assert log.status_code == 200
    text = text_of(log)
    assert "投递记录" in text and "SOC DingTalk" in text and "已送达" in text and "Test message from Vigil" in text
    assert analyst.get(f"{PAGE}/deliveries", params={"status": "failed"}).text.count("data-delivery=") == 0
    # The filter form as a browser sends it: empty fields are no filter.
    unfiltered = analyst.get(f"{PAGE}/deliveries", params={"channel": "", "incident": "", "status": ""})
    assert unfiltered.status_code == 200 and unfiltered.text.count("data-delivery=") == 1
    assert analyst.get(f"{PAGE}/deliveries", params={"channel": str(channel_id), "incident": "",
                                                     "status": "sent"}).text.count("data-delivery=") == 1
    assert analyst.get(PAGE).status_code == 403  # configuring channels is the security administrator's
    assert admin.get(f"{PAGE}/deliveries").status_code == 403  # the log is incident data
