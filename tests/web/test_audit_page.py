"""The audit administrator's page: filters, CSV export of what is shown, and verifying the chain."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from vigil.core.db import Scope

from .support import csrf_of, signed_in, text_of


def rows_of(page: Any) -> list[str]:
    body = page.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in body.split("</tr>") if "<td" in row]


def test_filters_narrow_the_trail(app: FastAPI, world: Any) -> None:
    signed_in(app, "analyst").get("/admin/users")  # a refusal to find
    auditor = signed_in(app, "auditor")
    everything = rows_of(auditor.get("/audit"))
    assert any("user.create" in row for row in everything)
    denied = rows_of(auditor.get("/audit", params={"action": "auth.denied", "actor": "analyst"}))
    assert len(denied) == 1 and "GET /admin/users" in denied[0] and "Denied" in denied[0]
    family = rows_of(auditor.get("/audit", params={"action": "user", "limit": "500"}))
    assert family and all("user." in row for row in family)
    assert rows_of(auditor.get("/audit", params={"outcome": "denied"})) == denied
    assert rows_of(auditor.get("/audit", params={"q": "shanghai branch"}))  # found in the details
    assert rows_of(auditor.get("/audit", params={"since": "2999-01-01T00:00"})) == []
    assert rows_of(auditor.get("/audit", params={"until": "2000-01-01 00:00"})) == []
    wrong = auditor.get("/audit", params={"since": "yesterday", "outcome": "maybe"})
    assert wrong.status_code == 422
    assert "Enter a date and time such as" in text_of(wrong) and "Choose one of the offered values." in text_of(wrong)


def test_pages_of_the_trail(app: FastAPI, world: Any) -> None:
    auditor = signed_in(app, "auditor")
    first = auditor.get("/audit", params={"limit": "5", "action": "user"})
    assert len(rows_of(first)) == 5
    following = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert following is not None and "action=user" in unescape(following.group(1))
    second = auditor.get(unescape(following.group(1)))
    assert len(rows_of(second)) == 5 and set(rows_of(second)).isdisjoint(rows_of(first))
    assert re.search(r'rel="prev"', second.text)


def test_export_link_downloads_what_the_filters_show(app: FastAPI, world: Any) -> None:
    auditor = signed_in(app, "auditor")
    page = auditor.get("/audit", params={"action": "user.role.grant", "since": "2000-01-01T08:00"})
    link = unescape(re.search(r'<a href="(/api/v1/audit/export\.csv[^"]*)" download>', page.text).group(1))
    assert "action=user.role.grant" in link and "since=2000-01-01T08%3A00%3A00%2B08%3A00" in link  # with its zone
    export = auditor.get(link)  # the session cookie is enough for this GET
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    records = list(csv.DictReader(io.StringIO(export.text)))
    assert records and {r["action"] for r in records} == {"user.role.grant"}
    assert len(records) == len(rows_of(page))


def test_verifying_the_chain_in_place_and_after_tampering(app: FastAPI, world: Any) -> None:
    auditor = signed_in(app, "auditor")
    page = auditor.get("/audit")
    token = csrf_of(page)
    fragment = auditor.post("/audit/verify", headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="verification"')  # only the part HTMX swaps in
    assert re.search(r"The chain is intact: \d+ records checked\.", text_of(fragment))
    full = auditor.post("/audit/verify", data={"csrf_token": token})
    assert "<html" in full.text and "The chain is intact" in text_of(full)
    with world.database.transaction(Scope.system()) as session:
        session.execute(text("UPDATE audit_records SET actor = 'someone-else' WHERE seq = 3"))
    broken = auditor.post("/audit/verify", data={"csrf_token": token})
    assert "The chain is broken at record 3" in text_of(broken)
    assert auditor.post("/audit/verify", headers={"HX-Request": "true"}).status_code == 403  # no CSRF token
