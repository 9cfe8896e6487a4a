"""The event search page as an analyst uses it: query bar, time picker, histogram, field sidebar with top
values, event table, event detail with the original record; over a real DuckDB store filled through the
app's SIEM runtime, with events of headquarters and of a branch."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.web.support import signed_in, text_of

from vigil.core.auth import Role

NOW = datetime.now(UTC).replace(microsecond=0)
VALUES = "/siem/search/values"
SHANGHAI = ZoneInfo("Asia/Shanghai")  # Settings.timezone, the display zone, by default


def ago(minutes: int) -> str:
    return (NOW - timedelta(minutes=minutes)).isoformat()


def hq_events() -> list[dict[str, Any]]:
    """Six firewall events ten minutes apart on two hosts, deny and allow alternating."""
    return [{"@timestamp": ago(10 * i + 5), "host": {"name": f"fw0{1 + i % 2}"},
             "event": {"action": "deny" if i % 2 == 0 else "allow", "kind": "event"},
             "source": {"ip": f"10.0.0.{i}"}, "message": f"connection from 10.0.0.{i}"} for i in range(6)]


def branch_events() -> list[dict[str, Any]]:
    return [{"@timestamp": ago(3 + 20 * i), "host": {"name": "web-a"}, "user": {"name": "root"},
             "event": {"action": "login-failed", "original": f"<38>sshd[{i}]: Failed password for root"},
             "message": "Failed password for root"} for i in range(3)]


@pytest.fixture
def loaded(app: FastAPI, world: Any) -> Any:
    store = app.state.siem.store
    store.append(hq_events(), unit_id=world.hq, source="fw")
    store.append(branch_events(), unit_id=world.branch_a, source="auth-a")
    store.append([{"@timestamp": ago(1), "host": {"name": "db-b"}, "message": "secret of branch b"}],
                 unit_id=world.branch_b, source="db-b")
    world.add_user("analyst_a", Role.ANALYST, world.branch_a)
    return world


def histogram(page: Any) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="histogram-data">(.*?)</script>', page.text, re.S)
    assert found, "no histogram data on the page"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def event_links(page: Any) -> list[str]:
    return re.findall(r'<a href="(/siem/events/\d+)">', page.text)


def test_a_search_shows_count_histogram_table_and_fields(app: FastAPI, loaded: Any) -> None:
    analyst = signed_in(app, "analyst")
    page = analyst.get("/siem/search", params={"q": "event.action:deny OR event.action:login-failed",
                                               "range": "24h"})
    assert page.status_code == 200
    shown = text_of(page)
    assert "6 events" in shown and re.search(r"found in \d+ ms", shown)
    data = histogram(page)
    assert sum(data["counts"]) == 6 and len(data["counts"]) == len(data["labels"]) == len(data["ranges"])
    assert 20 <= len(data["counts"]) <= 61  # a bar per bucket of the day, empty ones included
    assert '<script src="/static/vendor/echarts.min.js"' in page.text and "/static/siem/search.js" in page.text
    # Newest first; times in the display zone (Asia/Shanghai by default).
    assert len(event_links(page)) == 6
    first_row = page.text.split('<table class="events">')[1].split("<tbody>")[1].split("</tr>")[0]
    local = datetime.fromisoformat(ago(3)).astimezone(SHANGHAI)
    assert local.strftime("%Y-%m-%d %H:%M:%S") in first_row and "web-a" in first_row, first_row
    assert "login-failed" in first_row and "Failed password for root" in first_row
    assert "fw01" in shown and "connection from 10.0.0.0" in shown
    assert "secret of branch b" in analyst.get("/siem/search").text  # headquarters sees every branch
    # The sidebar lists the fields of the page's events, with how many hold each.
    sidebar = page.text.split('id="fields-heading"')[1].split("</section>")[0]
    assert "<code>host.name</code>" in sidebar and "<code>user.name</code>" in sidebar
    assert "<code>message</code>" not in sidebar  # in the table already
    # Export links point at the API with the same query and range.
    exports = re.findall(r'href="(/api/v1/events/export\?[^"]+)"', page.text)
    assert {parse_qs(urlsplit(html.unescape(url)).query)["format"][0] for url in exports} == {"csv", "ndjson"}
    assert all(parse_qs(urlsplit(html.unescape(url)).query)["q"] == [
        "event.action:deny OR event.action:login-failed"] for url in exports)
    # ... and the signed-in browser downloads them with its session.
    csv_url = next(html.unescape(url) for url in exports if "format=csv" in url)
    exported = analyst.get(csv_url)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert len(exported.text.strip().splitlines()) == 1 + 6


def test_top_values_of_a_field_add_to_the_query(app: FastAPI, loaded: Any) -> None:
    analyst = signed_in(app, "analyst")
    partial = analyst.get(VALUES, params={"field": "host.name", "q": "event.action:deny", "range": "24h"},
                          headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.text  # only the piece HTMX swaps in
    values = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a> <span class="count">(\d+)</span>', partial.text)
    assert [(value, int(count)) for _, value, count in values] == [("fw01", 3)]
    url = html.unescape(values[0][0])
    assert parse_qs(urlsplit(url).query) == {"q": ['event.action:deny AND host.name:"fw01"'], "range": ["24h"]}
    narrowed = analyst.get(url)
    assert narrowed.status_code == 200 and "3 events" in text_of(narrowed)
    # An OR query is bracketed, so the added value narrows all of it.
    either = analyst.get(VALUES, params={"field": "host.name", "q": "event.action:deny OR event.action:allow"},
                         headers={"HX-Request": "true"})
    link = html.unescape(re.findall(r'<a href="([^"]+)"', either.text)[0])
    assert parse_qs(urlsplit(link).query)["q"] == ['(event.action:deny OR event.action:allow) AND host.name:"fw01"']
    assert "3 events" in text_of(analyst.get(link))
    # Without HTMX the values come as a page of their own; a bad field name is said, not a 500.
    assert "Top values of host.name" in text_of(analyst.get(VALUES, params={"field": "host.name"}))
    bad = analyst.get(VALUES, params={"field": "host name"}, headers={"HX-Request": "true"})
    assert bad.status_code == 422 and "Invalid field name" in text_of(bad)


def test_a_syntax_error_points_at_the_column(app: FastAPI, loaded: Any) -> None:
    analyst = signed_in(app, "analyst")
    page = analyst.get("/siem/search", params={"q": "host.name:(fw01 OR", "range": "24h"})
    assert page.status_code == 422
    shown = text_of(page)
    assert "The query could not be read:" in shown and re.search(r"line 1, column \d+", shown)
    column = int(re.search(r"line 1, column (\d+)", shown).group(1))  # type: ignore[union-attr]
    caret = re.search(r'<pre class="caret"[^>]*>(.*?)</pre>', page.text, re.S)
    assert caret, "no pointer under the query"
    line, pointer = html.unescape(caret.group(1)).split("\n")
    assert line == "host.name:(fw01 OR" and pointer == " " * (column - 1) + "^"
    assert 'value="host.name:(fw01 OR"' in page.text  # what was typed stays in the bar
    assert "No search was run." in shown and not event_links(page)
    # A time range that cannot be read is said too.
    bad_range = analyst.get("/siem/search", params={"range": "yesterday"})
    assert bad_range.status_code == 422 and "The time range could not be read:" in text_of(bad_range)


def test_custom_range_in_the_display_zone(app: FastAPI, loaded: Any) -> None:
    analyst = signed_in(app, "analyst")
    zone = SHANGHAI
    start = (NOW - timedelta(minutes=26)).astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")
    end = (NOW - timedelta(minutes=4)).astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")
    page = analyst.get("/siem/search", params={"range": "custom", "start": start, "end": end})
    assert page.status_code == 200
    # 5, 15 and 25 minutes ago (firewall), 23 minutes ago (branch): 4 events.
    assert "4 events" in text_of(page)
    assert f'name="start" value="{start}"' in page.text and f'name="end" value="{end}"' in page.text
    saved_range = re.search(r'<input type="hidden" name="range" value="([^"]+)">', page.text)
    assert saved_range and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
                                        saved_range.group(1))
    # The bounds come back as a START/END range (as a histogram bar's click sends it) and read the same.
    again = analyst.get("/siem/search", params={"range": saved_range.group(1)})
    assert "4 events" in text_of(again) and f'name="start" value="{start}"' in again.text
    unreadable = analyst.get("/siem/search", params={"range": "custom", "start": "soon"})
    assert unreadable.status_code == 422 and "Enter the start of the range" in text_of(unreadable)


def test_pages_of_events(app: FastAPI, loaded: Any) -> None:
    analyst = signed_in(app, "analyst")
    first = analyst.get("/siem/search", params={"range": "24h", "limit": "4"})
    assert len(event_links(first)) == 4 and "1 to 4 of 10" in text_of(first)
    following = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert following
    second = analyst.get(html.unescape(following.group(1)))
    assert len(event_links(second)) == 4 and "5 to 8 of 10" in text_of(second)
    assert not set(event_links(first)) & set(event_links(second))


def test_event_detail_shows_fields_document_and_original(app: FastAPI, loaded: Any) -> None:
    analyst = signed_in(app, "analyst")
    page = analyst.get("/siem/search", params={"q": "user.name:root", "range": "24h"})
    link = event_links(page)[0]
    detail = analyst.get(link, headers={"Referer": "https://testserver/siem/search?q=user.name%3Aroot&range=24h"})
    assert detail.status_code == 200
    original = re.search(r'<pre class="original" id="original-record">(.*?)</pre>', detail.text, re.S)
    assert original and html.unescape(original.group(1)) == "<38>sshd[0]: Failed password for root"
    fields = dict(re.findall(r'<tr><td><code>([^<]+)</code></td><td class="value">([^<]*)</td>', detail.text))
    assert fields["host.name"] == "web-a" and fields["user.name"] == "root"
    assert fields["vigil.source"] == "auth-a" and "event.original" not in fields
    document = re.search(r'<pre class="document">(.*?)</pre>', detail.text, re.S)
    assert document and json.loads(html.unescape(document.group(1)))["event"]["action"] == "login-failed"
    assert 'href="/siem/search?q=user.name%3Aroot&amp;range=24h"' in detail.text  # back to the same search
    # Each value is a way into a new search over the same time range.
    pivots = dict(re.findall(r'<td class="value">([^<]*)</td>\s*<td class="pivot"><a href="([^"]+)"', detail.text))
    assert parse_qs(urlsplit(html.unescape(pivots["web-a"])).query) == {"q": ['host.name:"web-a"'], "range": ["24h"]}
    assert "3 events" in text_of(analyst.get(html.unescape(pivots["web-a"])))
    assert fields["@timestamp"] not in pivots  # times are searched with the time picker
    # An event without a kept original says so.
    plain = analyst.get(event_links(analyst.get("/siem/search", params={"q": "host.name:fw01"}))[0])
    assert "The original record was not kept for this event" in text_of(plain)


def test_a_branch_analyst_sees_only_their_branch(app: FastAPI, loaded: Any) -> None:
    analyst_a = signed_in(app, "analyst_a")
    page = analyst_a.get("/siem/search", params={"range": "24h"})
    assert "3 events" in text_of(page) and "secret of branch b" not in page.text and "fw01" not in page.text
    values = analyst_a.get(VALUES, params={"field": "host.name"}, headers={"HX-Request": "true"})
    assert "web-a" in values.text and "fw01" not in values.text and "db-b" not in values.text
    # Another unit's event is "not found", exactly like an event that does not exist.
    hq_link = event_links(signed_in(app, "analyst").get("/siem/search", params={"q": "host.name:db-b"}))[0]
    other = analyst_a.get(hq_link)
    missing = analyst_a.get("/siem/events/987654321")
    assert other.status_code == missing.status_code == 404
    assert re.sub(r"\d+", "N", text_of(other)) == re.sub(r"\d+", "N", text_of(missing))
    assert "secret of branch b" not in other.text


def test_the_page_needs_events_read(app: FastAPI, loaded: Any) -> None:
    assert signed_in(app, "viewer").get("/siem/search").status_code == 403
    client = TestClient(app, base_url="https://testserver")
    answer = client.get("/siem/search", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")


def test_the_page_in_chinese(app: FastAPI, loaded: Any) -> None:
    analyst = signed_in(app, "analyst", **{"Accept-Language": "zh-CN"})
    analyst.cookies.set("vigil_lang", "zh_CN")
    page = analyst.get("/siem/search", params={"range": "24h"})
    shown = text_of(page)
    assert "事件搜索" in shown and "10 条事件" in shown and "保存的搜索" in shown and "最近 24 小时" in shown
    detail = analyst.get(event_links(page)[0])
    assert "原始记录" in text_of(detail)
    bad = analyst.get("/siem/search", params={"q": "a AND"})
    assert "无法解析查询：" in text_of(bad)


def test_odd_values_show_on_the_event_page(app: FastAPI, world: Any) -> None:
    """A number beyond 64 bits, a list of objects, an empty object, markup: shown, escaped, never a 500."""
    app.state.siem.store.append_json([
        f'{{"@timestamp": "{ago(2)}", "message": "<b>odd</b>", "bytes": {2**70}, '
        '"dns": {"answers": [{"data": "1.2.3.4"}, {"data": "5.6.7.8"}]}, "labels": {}, '
        '"Event Data": {"Logon Type": "3"}}'],
        unit_id=world.hq, source="odd")
    analyst = signed_in(app, "analyst")
    page = analyst.get("/siem/search", params={"q": "message:odd"})
    assert "&lt;b&gt;odd&lt;/b&gt;" in page.text and "<b>odd</b>" not in page.text
    # A key the search language cannot name is listed, but offers no column.
    assert "<code>Event Data.Logon Type</code>" in page.text and "Show Event Data.Logon Type" not in page.text
    detail = analyst.get(event_links(page)[0])
    assert detail.status_code == 200
    shown = text_of(detail)
    assert "bytes" in shown and '[{"data":"1.2.3.4"},{"data":"5.6.7.8"}]' in html.unescape(shown)


def test_fields_shown_as_columns_stay_through_pages_saves_and_exports(app: FastAPI, loaded: Any) -> None:
    analyst = signed_in(app, "analyst")
    page = analyst.get("/siem/search", params={"q": "event.action:deny", "range": "24h", "limit": "2"})
    add = re.search(r'<a class="column-toggle" href="([^"]+)"[^>]*aria-label="Show source.ip as a column"', page.text)
    assert add, "no way to show source.ip as a column"
    with_column = analyst.get(html.unescape(add.group(1)))
    head = with_column.text.split('<table class="events">')[1].split("</thead>")[0]
    assert "<th><code>source.ip</code></th>" in head
    cells = re.findall(r'<td class="extra">([^<]*)</td>', with_column.text)
    assert cells == ["10.0.0.0", "10.0.0.2", "10.0.0.4"]
    # The column stays on the next page, in the export and in a saved search.
    paged = analyst.get("/siem/search", params={"q": "event.action:deny", "range": "24h", "limit": "2",
                                                "columns": "source.ip"})
    following = re.search(r'<a href="([^"]+)" rel="next">', paged.text)
    assert following and "columns=source.ip" in following.group(1)
    assert re.findall(r'<td class="extra">([^<]*)</td>', analyst.get(html.unescape(following.group(1))).text) == [
        "10.0.0.4"]
    csv_url = html.unescape(re.search(r'href="(/api/v1/events/export\?[^"]*format=csv[^"]*)"',  # type: ignore[union-attr]
                                      with_column.text).group(1))
    header = analyst.get(csv_url).text.lstrip("\ufeff").splitlines()[0]  # a BOM first, for Excel
    assert header == "@timestamp,vigil.source,host.name,event.action,message,source.ip"
    token = re.search(r'name="csrf_token" value="([^"]+)"', with_column.text).group(1)  # type: ignore[union-attr]
    saved = analyst.post("/siem/search/saved", data={"csrf_token": token, "name": "Denies by address",
                                                     "q": "event.action:deny", "range": "24h",
                                                     "columns": "source.ip"}, follow_redirects=False)
    assert saved.status_code == 303 and "columns=source.ip" in saved.headers["location"]
    listed = analyst.get("/api/v1/saved-searches").json()["items"]
    assert [(item["name"], item["columns"]) for item in listed] == [("Denies by address", ["source.ip"])]
    # Removing the column: the same link again, now with a minus.
    remove = re.search(r'<a class="column-toggle" href="([^"]+)"[^>]*aria-label="Remove the column source.ip"',
                       with_column.text)
    assert remove and "columns" not in html.unescape(remove.group(1))
