"""The TAXII 2.1 client against a real TAXII server on 127.0.0.1 (tests/intel/feeds/taxii_server.py):
discovery, collections, paginated objects, added_after, credentials, and servers that misbehave."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from tests.intel.feeds.stix_support import indicator, relationship, sdo
from tests.intel.feeds.taxii_server import (
    COLLECTION_ID,
    MEDIA_TYPE,
    PASSWORD,
    TOKEN,
    USER,
    TaxiiServer,
    running_taxii_server,
)

from vigil.core.errors import BadInput
from vigil.intel.feeds.taxii import TaxiiAuthRefused, TaxiiCollection, TaxiiError, poll
from vigil.intel.indicators import ItemError, ParsedEntity, ParsedIndicator, Related


@pytest.fixture
def server() -> Iterator[TaxiiServer]:
    with running_taxii_server() as running:
        yield running


def settings(server: TaxiiServer, **extra: Any) -> TaxiiCollection:
    values: dict[str, Any] = {"url": server.discovery_url, "collection_id": COLLECTION_ID, "username": USER,
                              "password": PASSWORD, **extra}
    return TaxiiCollection(**values)


def fill(server: TaxiiServer, count: int, *, day: int = 1) -> list[dict[str, Any]]:
    added = [indicator(day * 100 + n, f"[ipv4-addr:value = '192.0.{day}.{n}']") for n in range(count)]
    for n, obj in enumerate(added):
        server.add(obj, f"2024-05-{day:02d}T10:00:{n:02d}.000Z")
    return added


def ids(objects: Any) -> list[str]:
    return [obj["id"] for obj in objects]


def test_a_poll_goes_from_discovery_to_the_collections_objects(server: TaxiiServer) -> None:
    added = fill(server, 3)
    result = poll(settings(server))
    assert ids(result) == ids(added)
    assert result.added_after == "2024-05-01T10:00:02.000Z"
    assert (result.pages, result.objects) == (1, 3)
    assert [request.path for request in server.requests] == [
        "/taxii2/", "/api1/collections/", f"/api1/collections/{COLLECTION_ID}/objects/"]
    assert all(request.headers["Accept"] == MEDIA_TYPE for request in server.requests)
    assert all(request.headers["Authorization"].startswith("Basic ") for request in server.requests)


def test_the_next_poll_asks_for_what_was_added_after_the_last_one(server: TaxiiServer) -> None:
    fill(server, 3)
    first = poll(settings(server))
    assert len(list(first)) == 3
    newer = fill(server, 2, day=2)
    second = poll(settings(server), added_after=first.added_after)
    assert ids(second) == ids(newer)
    assert server.object_requests()[-1].query["added_after"] == "2024-05-01T10:00:02.000Z"
    assert second.added_after == "2024-05-02T10:00:01.000Z"
    third = poll(settings(server), added_after=second.added_after)
    assert list(third) == []
    assert third.added_after == second.added_after  # nothing new: the same mark next time


def test_pages_are_followed_with_next(server: TaxiiServer) -> None:
    added = fill(server, 5)
    result = poll(settings(server, page_size=2))
    assert ids(result) == ids(added)
    assert result.pages == 3
    queries = [request.query for request in server.object_requests()]
    assert queries == [{"limit": "2"}, {"limit": "2", "next": "2"}, {"limit": "2", "next": "4"}]
    assert result.added_after == "2024-05-01T10:00:04.000Z"


def test_pages_are_iterated_as_they_come(server: TaxiiServer) -> None:
    fill(server, 5)
    objects = iter(poll(settings(server, page_size=2)))
    next(objects)
    assert len(server.object_requests()) == 1  # the second page is asked for only when needed
    assert len(list(objects)) == 4
    assert len(server.object_requests()) == 3


def test_a_server_without_next_is_paged_by_added_after(server: TaxiiServer) -> None:
    server.mode = "no-next"
    added = fill(server, 5)
    result = poll(settings(server, page_size=2), added_after="2024-01-01T00:00:00Z")
    assert ids(result) == ids(added)
    assert [request.query.get("added_after") for request in server.object_requests()] == [
        "2024-01-01T00:00:00Z", "2024-05-01T10:00:01.000Z", "2024-05-01T10:00:03.000Z"]


def test_without_the_date_headers_the_newest_date_added_is_the_mark(server: TaxiiServer) -> None:
    server.mode = "no-headers"
    fill(server, 3)
    result = poll(settings(server))
    assert len(list(result)) == 3
    assert result.added_after == "2024-05-01T10:00:02.000Z"


def test_a_bearer_token_and_an_api_root_url_are_accepted(server: TaxiiServer) -> None:
    fill(server, 1)
    result = poll(TaxiiCollection(url=server.api_root_url.rstrip("/"), collection_id="Indicators", token=TOKEN))
    assert len(list(result)) == 1
    assert server.requests[0].path == "/api1/"
    assert all(request.headers["Authorization"] == f"Bearer {TOKEN}" for request in server.requests)


@pytest.mark.parametrize("credentials", [
    {"username": USER, "password": "wrong"}, {"username": "", "password": ""},
    {"username": "", "password": "", "token": "expired"}])
def test_refused_credentials_raise_a_clear_error(server: TaxiiServer, credentials: dict[str, str]) -> None:
    with pytest.raises(TaxiiAuthRefused) as raised:
        poll(settings(server, **credentials))
    assert "refused the credentials" in raised.value.detail
    assert "HTTP 401: Unauthorized - give valid credentials" in raised.value.detail


def test_a_collection_that_cannot_be_read_is_refused(server: TaxiiServer) -> None:
    server.can_read = False
    with pytest.raises(TaxiiAuthRefused, match="cannot be read"):
        poll(settings(server))


def test_an_unknown_collection_says_which_there_are(server: TaxiiServer) -> None:
    with pytest.raises(TaxiiError) as raised:
        poll(settings(server, collection_id="nope"))
    assert "no collection 'nope'" in raised.value.detail
    assert f"{COLLECTION_ID} (Indicators)" in raised.value.detail


@pytest.mark.parametrize(("mode", "message"), [
    ("html", "is not TAXII JSON (text/html"),
    ("broken-json", "is not TAXII JSON"),
    ("error", "answered HTTP 500 for "),
])
def test_garbage_answers_raise_a_clear_error(server: TaxiiServer, mode: str, message: str) -> None:
    server.mode = mode
    with pytest.raises(TaxiiError) as raised:
        poll(settings(server))
    assert message in raised.value.detail
    if mode == "error":
        assert raised.value.detail.endswith(": Database down - try again later")


def test_a_garbage_page_in_the_middle_raises_while_iterating(server: TaxiiServer) -> None:
    server.mode = "garbage-page-2"
    fill(server, 5)
    result = poll(settings(server, page_size=2))
    objects = iter(result)
    assert len([next(objects), next(objects)]) == 2
    with pytest.raises(TaxiiError, match="is not TAXII JSON"):
        next(objects)


def test_a_server_whose_next_never_moves_is_stopped(server: TaxiiServer) -> None:
    server.mode = "same-next"
    fill(server, 5)
    with pytest.raises(TaxiiError, match="same 'next'"):
        list(poll(settings(server, page_size=2)))


def test_a_server_that_is_not_there_raises_a_clear_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TaxiiError, match=f"cannot reach the TAXII server at http://127.0.0.1:{port}/taxii2/"):
        poll(TaxiiCollection(url=f"http://127.0.0.1:{port}/taxii2", collection_id=COLLECTION_ID, timeout=5))


@pytest.mark.parametrize(("values", "message"), [
    ({"url": "ftp://example.org/taxii2/"}, "not an http(s) URL"),
    ({"url": "taxii.example.org"}, "not an http(s) URL"),
    ({"collection_id": " "}, "needs its id"),
    ({"username": "a", "password": "b", "token": "c"}, "not both"),
    ({"page_size": 0}, "page_size must be positive"),
])
def test_wrong_settings_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        TaxiiCollection(**{"url": "https://taxii.example.org/taxii2/", "collection_id": COLLECTION_ID, **values})


def test_the_polls_items_are_read_like_a_bundle_relationships_across_pages_included(server: TaxiiServer) -> None:
    ind = indicator(1, "[domain-name:value = 'c2.example.org']")
    malware = sdo("malware", 1, "BadRAT", is_family=True)
    server.add(ind, "2024-05-01T10:00:00.000Z")
    server.add({"type": "note", "id": "broken"}, "2024-05-01T10:00:01.000Z")
    server.add(malware, "2024-05-01T10:00:02.000Z")
    server.add(relationship(1, ind["id"], "indicates", malware["id"]), "2024-05-01T10:00:03.000Z")
    result = poll(settings(server, page_size=1))
    items = list(result.items())
    assert result.pages == 4
    [found] = [item for item in items if isinstance(item, ParsedIndicator)]
    assert (found.value, found.related) == ("c2.example.org", (Related("malware", "BadRAT", malware["id"]),))
    assert [item.name for item in items if isinstance(item, ParsedEntity)] == ["BadRAT"]
    [error] = [item for item in items if isinstance(item, ItemError)]
    assert error.position == "objects[1]" and "without a valid id" in error.reason
    assert result.added_after == "2024-05-01T10:00:03.000Z"
