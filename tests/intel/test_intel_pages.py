"""The threat-intelligence pages as a browser uses them: a STIX file and a pasted list imported on the import page
(refused items with their positions, the retro-hunt's outcome), the overview's figures, indicators with their
provenance and warninglists, sightings kept to the user's units, the warninglist's hold-back explained on a
sighting's page, marking and allow-listing, feeds added, pulled, turned off and removed, the allow-list, an
actor's timeline and the observable lookup; viewers are refused; every change is on the audit trail."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import World
from tests.web.support import audit_actions, csrf_of, post_form, signed_in, text_of

from vigil.core.db import Scope
from vigil.intel import screen
from vigil.intel.models import IntelAllowlist, IntelFeed, IntelSighting
from vigil.siem.spool import BatchMeta

NOW = datetime.now(UTC).replace(microsecond=0)
C2 = "91.92.109.44"
ACTOR = "Matrix Panda"
BUNDLE = {
    "type": "bundle", "id": "bundle--6d0092c5-5f74-4287-9642-33f4c354e56d",
    "objects": [
        {"type": "intrusion-set", "spec_version": "2.1", "id": "intrusion-set--1a2b3c4d-0000-4000-8000-000000000001",
         "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z", "name": ACTOR,
         "aliases": ["APT-Matrix", "Bamboo Typhoon"],
         "external_references": [{"source_name": "mitre-attack", "external_id": "G9901"}]},
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
         "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z", "name": "C2",
         "pattern": f"[ipv4-addr:value = '{C2}']", "pattern_type": "stix",
         "valid_from": "2026-11-01T00:00:00Z", "confidence": 85},
        {"type": "relationship", "spec_version": "2.1", "id": "relationship--3e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
         "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z",
         "relationship_type": "indicates", "source_ref": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
         "target_ref": "intrusion-set--1a2b3c4d-0000-4000-8000-000000000001"},
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--2e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
         "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z", "name": "broken",
         "pattern": "[ipv4-addr:value = '999.1.1.1']", "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z"},
    ],
}


def import_page(browser: TestClient, *, files: dict[str, Any] | None = None, **fields: str) -> httpx.Response:
    token = csrf_of(browser.get("/intel/import"))
    return browser.post("/intel/import", data={"csrf_token": token, "retrohunt": "on", **fields}, files=files,
                        follow_redirects=False)


def sighting_of(world: World, value: str) -> IntelSighting:
    with world.database.transaction(Scope.system()) as session:
        return session.scalars(select(IntelSighting).where(IntelSighting.observed == value)).one()


@pytest.fixture
def loaded(client: TestClient, world: World) -> World:
    """Events of three units stored first; then the STIX file (the C2 address, its actor) and a list (a branch's
    address, a public resolver's network) imported on the page, whose retro-hunts make the sightings."""
    store = client.app.state.siem.store  # type: ignore[attr-defined]
    earlier = (NOW - timedelta(days=1)).isoformat()
    store.append([{"@timestamp": earlier, "destination": {"ip": C2}, "host": {"hostname": "pc-sh-1"},
                   "message": f"conn to {C2}"}], unit_id=world.line_a, source="fw-sh")
    store.append([{"@timestamp": earlier, "destination": {"ip": "45.9.148.7"}, "host": {"hostname": "pc-bj-2"}}],
                 unit_id=world.branch_b, source="fw-bj")
    store.append([{"@timestamp": earlier, "destination": {"ip": "8.8.8.8"}, "host": {"hostname": "dns-client-1"}}],
                 unit_id=world.hq, source="fw-hq")
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    answer = import_page(browser, format="stix", files={"file": ("c2.json", json.dumps(BUNDLE), "application/json")})
    assert answer.status_code == 200, text_of(answer)[:500]
    text = text_of(answer)
    assert "Imported as import:c2.json" in text
    assert ("Indicators read: 1 (added 1, updated 0); on a warninglist: 0; items refused: 1; "
            "actors, campaigns and the like: 1.") in text
    assert "objects[3]" in text and "999.1.1.1" in text  # the refused item, where it is and why
    assert re.search(r"New indicators looked for: 1, from .*; matching events: 1; new sightings: 1\.", text), text
    pasted = import_page(browser, format="lines", name="blocklist", text="45.9.148.7\n8.8.8.0/24\nnot-an-ioc!\n")
    assert pasted.status_code == 200
    # The resolver's network is itself on a warninglist: held, but not matched live.
    assert "Indicators read: 2 (added 2, updated 0); on a warninglist: 1; items refused: 1;" in text_of(pasted)
    assert "line 3" in text_of(pasted)
    return world


def test_the_overview_counts_what_is_held_and_seen(client: TestClient, loaded: World) -> None:
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    page = browser.get("/intel")
    assert page.status_code == 200
    figures = {name: re.search(rf'id="figure-{name}">([\d,]+)<', page.text) for name in
               ("indicators", "active", "sightings", "held", "troubled")}
    assert {name: found.group(1) for name, found in figures.items() if found} == {
        "indicators": "3", "active": "2", "sightings": "3", "held": "1", "troubled": "0"}
    text = text_of(page)
    assert "Recent sightings" in text and C2 in text and "dns-client-1" in text
    assert "import:c2.json" in text  # the retro-hunt it brought
    assert 'href="/intel"' in page.text and "IOC detection" in text  # the navigation's entry


def test_the_overview_shows_live_matching_in_the_pipeline(client: TestClient, loaded: World) -> None:
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    assert "No index yet: it is built when the first events arrive." in text_of(browser.get("/intel"))
    siem = client.app.state.siem  # type: ignore[attr-defined]
    now = datetime.now(UTC).isoformat()
    siem.submit([orjson.dumps({"@timestamp": now, "destination": {"ip": C2}, "host": {"hostname": "pc-sh-7"}}),
                 orjson.dumps({"@timestamp": now, "destination": {"ip": "10.9.9.9"}})],
                BatchMeta(source="http:fw", unit_id=loaded.line_a, format="json"))
    assert siem.drain(60)
    page = browser.get("/intel")
    facts = {name: re.search(rf'id="live-{name}">([\d,]+)', page.text) for name in ("indicators", "events", "hits")}
    assert {name: found.group(1) for name, found in facts.items() if found} == {"indicators": "2", "events": "2",
                                                                                "hits": "1"}
    live = browser.get("/api/v1/intel/live").json()
    assert live["running"] and (live["events"], live["hits"], live["bad_events"]) == (2, 1, 0)
    if screen.available():  # the screen read both documents and named the one holding the C2 address
        assert (live["screened"], live["named"]) == (2, 1)
        assert "1 of 2 events read here were named by the screen and matched" in text_of(page)
    viewer = client.get("/api/v1/intel/live", headers=loaded.headers("viewer"))
    assert viewer.status_code == 403


def test_a_viewer_is_refused_and_sees_no_entry(client: TestClient, loaded: World) -> None:
    viewer = signed_in(client.app, "viewer")  # type: ignore[arg-type]
    for path in ("/intel", "/intel/feeds", "/intel/indicators", "/intel/sightings", "/intel/actors",
                 f"/intel/lookup?value={C2}", "/intel/allowlist", "/intel/import"):
        answer = viewer.get(path)
        assert answer.status_code == 403, path
        assert answer.headers["content-type"].startswith("text/html")
    assert ">Intelligence<" not in viewer.get("/").text
    # An analyst reads everything but the import page needs intel:write at a root unit: secadmin_a lacks it.
    branch = signed_in(client.app, "secadmin_a")  # type: ignore[arg-type]
    assert branch.get("/intel/import").status_code == 403
    assert 'href="/intel/import"' not in branch.get("/intel").text


def test_a_branch_user_sees_only_its_units_sightings(client: TestClient, loaded: World) -> None:
    branch = signed_in(client.app, "secadmin_a")  # type: ignore[arg-type]
    listed = branch.get("/intel/sightings")
    assert listed.status_code == 200
    text = text_of(listed)
    assert C2 in text and "pc-sh-1" in text and "Payments" in text
    assert "45.9.148.7" not in text and "8.8.8.8" not in text
    theirs = sighting_of(loaded, "45.9.148.7")
    assert branch.get(f"/intel/sightings/{theirs.id}").status_code == 404
    ours = sighting_of(loaded, C2)
    assert branch.get(f"/intel/sightings/{ours.id}").status_code == 200
    looked = text_of(branch.get("/intel/lookup", params={"value": "45.9.148.7"}))
    assert "Sightings in your units" in looked and "pc-bj-2" not in looked
    overview = branch.get("/intel")
    assert re.search(r'id="figure-sightings">1<', overview.text)


def test_the_sighting_page_explains_the_warninglist_that_held_it_back(client: TestClient, loaded: World) -> None:
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    held = sighting_of(loaded, "8.8.8.8")
    assert held.alert_id is None and held.suppressed_by.startswith("warninglist: ")
    page = browser.get(f"/intel/sightings/{held.id}")
    assert page.status_code == 200
    text = text_of(page)
    assert "Held back by a warninglist: no alert was raised" in text
    assert "The observed value 8.8.8.8 is on these warninglists" in text
    (listed,) = re.findall(r'<ul id="held-back-lists">(.*?)</ul>', page.text, re.S)
    assert "DNS resolvers" in listed
    assert "8.8.8.0/24" in text and "import:blocklist" in text  # the indicator and its source at match time
    assert re.search(r"checked against \d{2,} warninglists at match time", text)
    assert "held back: warninglist" in text_of(browser.get("/intel/sightings?held=yes"))
    assert "8.8.8.8" not in text_of(browser.get("/intel/sightings?held=no"))


def test_the_sighting_page_shows_the_provenance_and_the_alert(client: TestClient, loaded: World) -> None:
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    sighting = sighting_of(loaded, C2)
    page = browser.get(f"/intel/sightings/{sighting.id}")
    text = text_of(page)
    assert sighting.alert_id is not None and f'href="/detection/alerts/{sighting.alert_id}"' in page.text
    assert "This sighting raised an alert" in text and "Held back" not in text
    assert "Provenance at match time" in text and "import:c2.json" in text
    (row,) = re.findall(r'<table id="provenance-sources">.*?<tbody>(.*?)</tbody>', page.text, re.S)
    assert "85" in row  # the source's confidence
    assert "destination.ip" in text and "pc-sh-1" in text and "by a retro-hunt" in text
    assert ACTOR in text and 'href="/intel/actors/' in page.text
    assert '&#34;hostname&#34;: &#34;pc-sh-1&#34;' in page.text  # the event itself
    assert 'href="/siem/search?q=destination.ip' in page.text


def test_marking_and_allow_listing_a_sighting_are_audited(client: TestClient, loaded: World) -> None:
    sighting = sighting_of(loaded, C2)
    path = f"/intel/sightings/{sighting.id}"
    branch = signed_in(client.app, "secadmin_a")  # type: ignore[arg-type]
    marked = post_form(branch, f"{path}/mark", {"status": "true-positive"}, page=path)
    assert marked.status_code == 303 and marked.headers["location"] == f"{path}?done=marked"
    assert 'data-status="true-positive"' in branch.get(path).text
    refused = post_form(branch, f"{path}/mark", {"status": "false-positive", "allow": "on", "reason": "x"},
                        page=path)
    assert refused.status_code == 422 and "needs intel:write at a root unit" in text_of(refused)
    analyst = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    allowed = post_form(analyst, f"{path}/mark", {"status": "false-positive", "allow": "on",
                                                  "reason": "our pentest box"}, page=path)
    assert allowed.status_code == 303
    assert "its value allow-listed" in text_of(analyst.get(allowed.headers["location"]))
    actions = [(r.action, r.actor) for r in audit_actions(loaded.database) if r.action.startswith("intel.")]
    assert ("intel.sighting.mark", "secadmin_a") in actions and ("intel.sighting.mark", "analyst") in actions
    assert ("intel.allowlist.add", "analyst") in actions
    listing = text_of(analyst.get("/intel/allowlist"))
    assert C2 in listing and "our pentest box" in listing and "analyst" in listing
    indicator = text_of(analyst.get(f"/intel/indicators/{sighting.indicator_id}"))
    assert "Allow-listed by analyst" in indicator and "our pentest box" in indicator


def test_indicators_search_and_provenance(client: TestClient, loaded: World) -> None:
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    found = browser.get("/intel/indicators", params={"q": "91.92"})
    assert found.status_code == 200
    rows = re.findall(r'<tr data-indicator="(\d+)">', found.text)
    assert len(rows) == 1 and "1 to 1 of 1" in text_of(found)
    assert len(re.findall(r"<tr data-indicator=", browser.get("/intel/indicators?type=cidr").text)) == 1
    by_source = browser.get("/intel/indicators", params={"source": "import:blocklist", "limit": 1})
    assert "1 to 1 of 2" in text_of(by_source) and 'rel="next"' in by_source.text
    page = browser.get(f"/intel/indicators/{rows[0]}")
    text = text_of(page)
    assert "Sources (provenance)" in text and "import:c2.json" in text and "85" in text
    assert "from 85 to 0 over 30 days" in text  # how its score decays
    assert ACTOR in text and "Sightings in your units" in text and "pc-sh-1" in text
    assert "Not allow-listed." in text


def test_a_warninglisted_indicator_is_explained(client: TestClient, loaded: World) -> None:
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    answer = import_page(browser, format="lines", name="resolvers", text="8.8.4.4\n")
    assert "on a warninglist: 1;" in text_of(answer)
    found = browser.get("/intel/indicators", params={"q": "8.8.4.4"})
    (indicator_id,) = re.findall(r'<tr data-indicator="(\d+)">', found.text)
    text = text_of(browser.get(f"/intel/indicators/{indicator_id}"))
    assert re.search(r"On the warninglist [^:]*DNS resolvers[^:]*: not matched live, sightings held back\.", text)
    looked = text_of(browser.get("/intel/lookup", params={"value": "8.8.4.4"}))
    assert "On warninglists:" in looked and "DNS resolvers" in looked


def test_the_lookup_finds_indicator_sighting_alert_and_events(client: TestClient, loaded: World) -> None:
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    page = browser.get("/intel/lookup", params={"value": "91.92.109[.]44"})
    assert page.status_code == 200
    text = text_of(page)
    sighting = sighting_of(loaded, C2)
    assert f'href="/intel/sightings/{sighting.id}"' in page.text
    assert f'href="/detection/alerts/{sighting.alert_id}"' in page.text
    assert f'href="/intel/indicators/{sighting.indicator_id}"' in page.text
    assert re.search(r'href="/siem/events/\d+"', page.text) and "fw-sh" in text
    assert "Retro-hunt match" in text and ACTOR in text
    assert "On no warninglist." in text and "Not allow-listed." in text
    assert "Type a value" in text_of(browser.get("/intel/lookup"))


def test_an_actor_with_its_timeline(client: TestClient, loaded: World) -> None:
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    listed = browser.get("/intel/actors", params={"kind": "intrusion-set"})
    (entity_id,) = re.findall(r'<tr data-entity="(\d+)">', listed.text)
    assert ACTOR in text_of(listed) and "Intrusion set" in text_of(listed)
    assert "No actor" in text_of(browser.get("/intel/actors", params={"kind": "campaign"}))
    page = browser.get(f"/intel/actors/{entity_id}")
    text = text_of(page)
    assert "APT-Matrix" in text and "G9901" in text
    (timeline,) = re.findall(r'<section class="card" id="timeline".*?</section>', page.text, re.S)
    timeline_text = " ".join(re.sub(r"<[^>]+>", " ", timeline).split())
    assert "pc-sh-1" in timeline_text and f"ipv4 {C2}" in timeline_text and "destination.ip" in timeline_text
    assert "G9901" in timeline_text and "Payments" in timeline_text


class _Blocklist(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"# a list\n91.92.109.50\n45.9.148.0/24\nnot-an-ioc\n")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def blocklist() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Blocklist)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/list.txt"
    server.shutdown()
    server.server_close()


def test_a_feed_is_added_pulled_turned_off_and_removed(client: TestClient, world: World, blocklist: str) -> None:
    browser = signed_in(client.app, "secadmin")  # type: ignore[arg-type]
    bad = post_form(browser, "/intel/feeds", {"name": "", "format": "lines", "url": blocklist})
    assert bad.status_code == 422 and "Check the marked fields." in text_of(bad)
    added = post_form(browser, "/intel/feeds", {"name": "Local list", "format": "lines", "url": blocklist,
                                                "interval_minutes": "30", "tags": "local, test"})
    assert added.status_code == 303, text_of(added)[:300]
    path = added.headers["location"].split("?")[0]
    assert "its first pull is due now" in text_of(browser.get(added.headers["location"]))
    pulled = post_form(browser, f"{path}/pull", page=path)
    assert pulled.status_code == 303
    page = browser.get(pulled.headers["location"])
    text = text_of(page)
    assert "The feed was pulled" in text and "taken" in text
    assert re.search(r"taken 2 2 0 0 0 1", text), text  # read, added, updated, removed, warninglisted, refused
    assert "line 4" in text  # the refused item's position
    assert re.search(r'<a href="/intel/indicators\?source=feed:\d+">2</a>', page.text)
    off = post_form(browser, f"{path}/enabled", {"enabled": "false"}, page=path)
    assert "The feed is off" in text_of(browser.get(off.headers["location"]))
    health = text_of(browser.get("/intel/feeds"))
    assert "Local list" in health and "off" in health
    with world.database.transaction(Scope.system()) as session:
        assert session.scalars(select(IntelFeed)).one().enabled is False
    removed = post_form(browser, f"{path}/delete", page=path)
    assert removed.status_code == 303 and "The feed is removed" in text_of(browser.get(removed.headers["location"]))
    actions = [r.action for r in audit_actions(world.database, actor="secadmin")]
    for action in ("intel.feed.add", "intel.feed.pull", "intel.import", "intel.feed.update", "intel.feed.delete"):
        assert action in actions, action


def test_a_feed_from_a_preset_and_the_presets_listed(client: TestClient, world: World) -> None:
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    form = browser.get("/intel/feeds")
    assert "abuse.ch Feodo Tracker" in text_of(form) and 'name="preset"' in form.text
    added = post_form(browser, "/intel/feeds", {"name": "Feodo", "preset": "feodotracker"})
    assert added.status_code == 303
    text = text_of(browser.get(added.headers["location"]))
    assert "https://feodotracker.abuse.ch/downloads/ipblocklist.csv" in text and "never pulled" in text
    twice = post_form(browser, "/intel/feeds", {"name": "Feodo", "preset": "feodotracker"})
    assert twice.status_code == 409 and "exists" in text_of(twice)


def test_the_allow_list_page_adds_and_removes(client: TestClient, world: World) -> None:
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    empty = post_form(browser, "/intel/allowlist", {"type": "domain", "value": "intranet.example.com", "reason": ""})
    assert empty.status_code == 422 and "say why the value is harmless" in text_of(empty)
    wrong = post_form(browser, "/intel/allowlist", {"type": "ipv4", "value": "intranet.example.com", "reason": "x"})
    assert wrong.status_code == 422 and "not an IPv4 address" in text_of(wrong)
    added = post_form(browser, "/intel/allowlist", {"type": "domain", "value": "Intranet.Example.com",
                                                    "reason": "our own portal"})
    assert added.status_code == 303
    text = text_of(browser.get(added.headers["location"]))
    assert "intranet.example.com" in text and "our own portal" in text and "analyst" in text
    with world.database.transaction(Scope.system()) as session:
        entry = session.scalars(select(IntelAllowlist)).one()
    removed = post_form(browser, f"/intel/allowlist/{entry.id}/delete", page="/intel/allowlist")
    assert removed.status_code == 303 and "The allow-list is empty." in text_of(browser.get("/intel/allowlist"))
    actions = [r.action for r in audit_actions(world.database, actor="analyst")]
    assert "intel.allowlist.add" in actions and "intel.allowlist.remove" in actions


def test_pages_in_chinese(client: TestClient, loaded: World) -> None:
    browser = signed_in(client.app, "analyst", **{"Accept-Language": "zh-CN"})  # type: ignore[arg-type]
    held = sighting_of(loaded, "8.8.8.8")
    text = text_of(browser.get(f"/intel/sightings/{held.id}"))
    assert "被警告列表拦下：未产生告警" in text
    assert "威胁情报" in text_of(browser.get("/intel"))
