"""The hunts page as a browser uses it: pick rules (filtered by title or tactic), a window and a filter, start
a hunt, land on its results (hits per rule, links to the events and to the search page); past hunts listed;
bad input shown back on the form; other units' hunts answer 404; the page in Chinese."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from tests.web.support import csrf_of, signed_in, text_of

from vigil.core.auth import Role
from vigil.detection.rules_import import install_starter_pack

from .test_hunts_api import WHOAMI, whoami

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def loaded(client: TestClient, world: Any) -> Any:
    install_starter_pack(world.database)
    store = client.app.state.siem.store  # type: ignore[attr-defined]
    recent = [{**whoami("HQ-WS01", 0), "@timestamp": (NOW - timedelta(hours=2)).isoformat()},
              {**whoami("HQ-WS02", 0), "@timestamp": (NOW - timedelta(hours=3)).isoformat()}]
    store.append(recent, unit_id=world.hq, source="sysmon-hq")
    store.append([{**whoami("BR-WS01", 0), "@timestamp": (NOW - timedelta(hours=1)).isoformat()}],
                 unit_id=world.branch_a, source="sysmon-a")
    world.add_user("analyst_a", Role.ANALYST, world.branch_a)
    return world


def start(browser: TestClient, **fields: Any) -> Any:
    form = browser.get("/detection/hunts")
    return browser.post("/detection/hunts", data={"csrf_token": csrf_of(form), "range": "24h", **fields},
                        follow_redirects=False)


def test_pick_a_rule_hunt_and_read_the_results(client: TestClient, loaded: Any) -> None:
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    page = browser.get("/detection/hunts")
    assert page.status_code == 200 and "New hunt" in text_of(page) and "No hunt yet." in text_of(page)
    assert f'value="{WHOAMI}"' in page.text
    filtered = browser.get("/detection/hunts", params={"rule_q": "whoami"})
    assert len(re.findall(r'name="rule" value=', filtered.text)) == 1
    by_tactic = browser.get("/detection/hunts", params={"tactic": "discovery"})
    assert f'value="{WHOAMI}"' in by_tactic.text
    assert "Shadow Copy" not in text_of(by_tactic)  # an impact rule
    answer = start(browser, rule=WHOAMI, name="whoami sweep")
    assert answer.status_code == 303
    result = browser.get(answer.headers["location"])
    text = text_of(result)
    assert "whoami sweep" in text and "done" in text and "Whoami Listing Privileges Or Groups" in text
    assert len(re.findall(r'href="/siem/events/\d+"', result.text)) == 3
    assert 'href="/siem/search?' in result.text
    listing = text_of(browser.get("/detection/hunts"))
    assert "whoami sweep" in listing and "analyst" in listing


def test_every_enabled_rule_with_a_query_and_a_custom_window(client: TestClient, loaded: Any) -> None:
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    zone = ZoneInfo(client.app.state.settings.timezone)  # type: ignore[attr-defined]
    start_local = (NOW - timedelta(hours=2, minutes=30)).astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")
    answer = start(browser, range="custom", start=start_local, end="", q="host.name:HQ-*")
    assert answer.status_code == 303
    text = text_of(browser.get(answer.headers["location"]))
    assert "all enabled" in text and "host.name:HQ-*" in text
    assert re.search(r"Events scanned 1 Hits 1", text), text


def test_bad_input_is_shown_on_the_form(client: TestClient, loaded: Any) -> None:
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    bad_query = start(browser, q="host.name:(a")
    assert bad_query.status_code == 422 and "The query is not valid search language." in text_of(bad_query)
    unknown = start(browser, rule="no-such-rule")
    assert unknown.status_code == 422 and "does not exist" in text_of(unknown)
    bad_window = start(browser, range="custom", start="yesterday")
    assert bad_window.status_code == 422 and "The time window is not valid" in text_of(bad_window)
    assert "No hunt yet." in text_of(browser.get("/detection/hunts"))
    refused = browser.post("/detection/hunts", data={"range": "24h"}, follow_redirects=False)
    assert refused.status_code == 403  # no CSRF token


def test_other_units_hunts_are_not_found_and_viewers_cannot_hunt(client: TestClient, loaded: Any) -> None:
    hq = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    location = start(hq, rule=WHOAMI).headers["location"]
    branch = signed_in(client.app, "analyst_a")  # type: ignore[arg-type]
    assert branch.get(location).status_code == 404
    own = branch.get(start(branch, rule=WHOAMI).headers["location"])
    assert len(re.findall(r'href="/siem/events/\d+"', own.text)) == 1  # only the branch's event
    assert signed_in(client.app, "viewer").get("/detection/hunts").status_code == 403  # type: ignore[arg-type]


def test_the_page_in_chinese(client: TestClient, loaded: Any) -> None:
    browser = signed_in(client.app, "analyst", **{"Accept-Language": "zh-CN"})  # type: ignore[arg-type]
    text = text_of(browser.get("/detection/hunts"))
    assert "新建狩猎" in text and "开始狩猎" in text
