"""Saved searches: each user's own, through the search page and /api/v1/saved-searches; audited; nobody sees
or deletes another user's."""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.api.support import assert_problem, audit_records, new_token
from tests.web.support import audit_actions, post_form, signed_in, text_of

from vigil.accounts.models import RoleGrant
from vigil.core.auth import Role
from vigil.core.db import Scope

API = "/api/v1/saved-searches"


def saved_links(page: Any) -> dict[str, str]:
    """Name to link of each saved search listed on the search page."""
    listing = page.text.split('id="saved-heading"')[1].split("</ul>")[0] if 'class="saved-list"' in page.text else ""
    return {html.unescape(name): html.unescape(url)
            for url, name in re.findall(r'<a href="(/siem/search[^"]*)" title="[^"]*">([^<]+)</a>', listing)}


def test_save_open_and_delete_on_the_page(app: FastAPI, world: Any) -> None:
    analyst = signed_in(app, "analyst")
    app.state.siem.store.append([{"@timestamp": "2026-11-28T01:00:00Z", "user": {"name": "root"},
                                  "message": "Failed password"}], unit_id=world.hq, source="auth")
    page = analyst.get("/siem/search")
    assert "You have no saved searches yet." in text_of(page)
    saved = post_form(analyst, "/siem/search/saved", {"name": "Root failures", "q": "user.name:root",
                                                      "range": "2026-11-27T00:00:00Z/2026-11-29T00:00:00Z"},
                      page="/siem/search")
    assert saved.status_code == 303
    assert saved.headers["location"].startswith("/siem/search?") and "done=saved" in saved.headers["location"]
    page = analyst.get(saved.headers["location"])
    assert "The search is saved." in text_of(page)
    links = saved_links(page)
    assert list(links) == ["Root failures"]
    opened = analyst.get(links["Root failures"])
    assert 'value="user.name:root"' in opened.text and "1 event " in text_of(opened)
    [created] = audit_actions(world.database, action="saved_search.create")
    assert created.actor == "analyst" and created.details["name"] == "Root failures"
    assert created.details["query"] == "user.name:root"

    # The same name again is refused and says why; nothing more is saved.
    again = post_form(analyst, "/siem/search/saved", {"name": "Root failures", "q": "*", "range": "24h"},
                      page="/siem/search")
    assert again.status_code == 422 and "You already have a saved search of this name." in text_of(again)
    # A search that does not run is not saved.
    broken = post_form(analyst, "/siem/search/saved", {"name": "Broken", "q": "user.name:(root", "range": "24h"},
                       page="/siem/search")
    assert broken.status_code == 422 and "Only a search that runs can be saved" in text_of(broken)
    unnamed = post_form(analyst, "/siem/search/saved", {"name": "  ", "q": "*", "range": "24h"}, page="/siem/search")
    assert unnamed.status_code == 422 and "Give the search a name" in text_of(unnamed)
    assert list(saved_links(analyst.get("/siem/search"))) == ["Root failures"]

    # Another analyst neither sees it nor deletes it.
    world.add_user("analyst2", Role.ANALYST, world.hq)
    other = signed_in(app, "analyst2")
    assert saved_links(other.get("/siem/search")) == {}
    saved_id = re.search(r'action="/siem/search/saved/(\d+)/delete"', page.text).group(1)  # type: ignore[union-attr]
    refused = post_form(other, f"/siem/search/saved/{saved_id}/delete", page="/siem/search")
    assert refused.status_code == 404
    assert list(saved_links(analyst.get("/siem/search"))) == ["Root failures"]

    deleted = post_form(analyst, f"/siem/search/saved/{saved_id}/delete", page="/siem/search")
    assert deleted.status_code == 303
    page = analyst.get(deleted.headers["location"])
    assert "The saved search is deleted." in text_of(page) and saved_links(page) == {}
    [removed] = audit_actions(world.database, action="saved_search.delete")
    assert removed.actor == "analyst" and removed.target_id == saved_id


def test_the_api_keeps_each_users_own(client: TestClient, world: Any) -> None:
    world.add_user("analyst2", Role.ANALYST, world.hq)
    mine, theirs = world.headers("analyst"), world.headers("analyst2")
    created = client.post(API, headers=mine, json={"name": "Denied at the edge", "query": "event.action:deny",
                                                   "time_range": "7d", "columns": ["host.name", "source.ip"]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "Denied at the edge" and body["time_range"] == "7d"
    assert body["columns"] == ["host.name", "source.ip"]
    client.post(API, headers=theirs, json={"name": "Theirs", "query": "*"})
    listed = client.get(API, headers=mine).json()
    assert [item["name"] for item in listed["items"]] == ["Denied at the edge"] and listed["total"] == 1
    assert [item["name"] for item in client.get(API, headers=theirs).json()["items"]] == ["Theirs"]

    # Another user's id is "not found", exactly like an id that does not exist; nothing is deleted.
    refused = client.delete(f"{API}/{body['id']}", headers=theirs)
    absent = client.delete(f"{API}/987654", headers=theirs)
    assert_problem(refused, 404, "not-found") and assert_problem(absent, 404, "not-found")
    assert re.sub(r"\d+", "N", refused.json()["detail"]) == re.sub(r"\d+", "N", absent.json()["detail"])
    assert client.get(API, headers=mine).json()["total"] == 1

    assert client.delete(f"{API}/{body['id']}", headers=mine).status_code == 204
    assert client.get(API, headers=mine).json()["total"] == 0
    actions = [(r.action, r.actor, r.target_id) for r in audit_records(world.database, target_type="saved_search")]
    assert ("saved_search.create", "analyst", str(body["id"])) in actions
    assert ("saved_search.delete", "analyst", str(body["id"])) in actions


def test_the_api_refuses_what_would_not_run(client: TestClient, world: Any) -> None:
    h = world.headers("analyst")
    syntax = assert_problem(client.post(API, headers=h, json={"name": "x", "query": "a AND"}), 422, "query-syntax")
    assert "column" in syntax["detail"]
    time_range = assert_problem(client.post(API, headers=h, json={"name": "x", "time_range": "soon"}), 422)
    assert time_range["errors"][0]["field"] == "time_range"
    assert_problem(client.post(API, headers=h, json={"name": "", "query": "*"}), 422)
    assert_problem(client.post(API, headers=h, json={"name": "x", "columns": ["not a field"]}), 422)
    assert_problem(client.post(API, headers=h, json={"name": "x", "extra": 1}), 422)
    assert client.post(API, headers=h, json={"name": "Same"}).status_code == 201
    assert_problem(client.post(API, headers=h, json={"name": "Same", "query": "x"}), 409, "conflict")
    assert client.get(API, headers=h).json()["total"] == 1
    # Saving searches is part of searching events: a viewer may not.
    assert_problem(client.get(API, headers=world.headers("viewer")), 403, "permission-denied")


def test_an_analyst_of_another_unit_than_their_own_keeps_searches_in_their_own(client: TestClient,
                                                                               world: Any) -> None:
    """A user who works in headquarters but reads the events of a branch only: the saved search is theirs,
    kept in their own unit, and they see it."""
    user_id = world.add_user("hq_reader_of_a", None, world.hq)
    with world.database.transaction(Scope.system()) as session:
        session.add(RoleGrant(user_id=user_id, role=str(Role.ANALYST), unit_id=world.branch_a, granted_by="tests"))
    h = {"Authorization": f"Bearer {new_token(world.database, 'hq_reader_of_a')[0]}"}  # a token with the role
    created = client.post(API, headers=h, json={"name": "Branch A logins", "query": "event.action:login"})
    assert created.status_code == 201, created.text
    assert [item["name"] for item in client.get(API, headers=h).json()["items"]] == ["Branch A logins"]
    [record] = [r for r in audit_records(world.database, action="saved_search.create")]
    assert record.unit_id == world.hq


def test_saved_searches_follow_a_user_moved_to_another_unit(client: TestClient, world: Any) -> None:
    h = world.headers("analyst")
    first = client.post(API, headers=h, json={"name": "Before the move", "query": "*"}).json()
    assert client.patch(f"/api/v1/users/{world.users['analyst']}", headers=world.headers("sysadmin"),
                        json={"unit_id": world.branch_a}).status_code == 200
    listed = client.get(API, headers=h).json()
    assert [item["name"] for item in listed["items"]] == ["Before the move"] and listed["total"] == 1
    # The name is still taken, said as a conflict (not a database error).
    assert_problem(client.post(API, headers=h, json={"name": "Before the move"}), 409, "conflict")
    assert client.post(API, headers=h, json={"name": "After the move"}).status_code == 201
    assert client.delete(f"{API}/{first['id']}", headers=h).status_code == 204
    assert [item["name"] for item in client.get(API, headers=h).json()["items"]] == ["After the move"]
    [deleted] = audit_records(world.database, action="saved_search.delete")
    assert deleted.unit_id == world.branch_a
