"""Feeds pulled the way `vigil serve` pulls them, from servers on loopback: a TAXII 2.1 collection (polled
with added_after), a MISP feed (manifest.json and event files, one broken), a feed that sends garbage."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import World, cli_context
from tests.intel.feeds.taxii_server import COLLECTION_ID, TOKEN, TaxiiServer, running_taxii_server
from tests.intel.feeds.test_taxii import fill

from vigil.core.db import Scope
from vigil.intel import feeds_service
from vigil.intel.models import IntelFeed, IntelPull
from vigil.intel.runtime import Intel
from vigil.intel.schemas import FeedCreate


def add_feed(intel: Intel, **fields: object) -> int:
    with intel.db.transaction(Scope.system()) as session:
        return feeds_service.add_feed(cli_context(session), FeedCreate.model_validate(fields)).id


def pull(intel: Intel, feed_id: int) -> feeds_service.PullOutcome:
    with httpx.Client(timeout=10.0) as client:
        return intel.pull(feed_id, client=client)


def feed(intel: Intel, feed_id: int) -> IntelFeed:
    with intel.db.transaction(Scope.system()) as session:
        return feeds_service.get_feed(session, feed_id)


@pytest.fixture
def taxii() -> Iterator[TaxiiServer]:
    with running_taxii_server() as server:
        yield server


def test_a_taxii_feed_takes_what_was_added_since_its_last_poll(intel: Intel, world: World, taxii: TaxiiServer) -> None:
    fill(taxii, 3)
    feed_id = add_feed(intel, name="CERT TAXII", format="taxii", url=taxii.discovery_url,
                       options={"collection": COLLECTION_ID}, auth_header="Authorization", auth_value=TOKEN)
    first = pull(intel, feed_id)
    assert first.outcome == "ok" and len(first.fresh) == 3
    assert feed(intel, feed_id).cursor == "2024-05-01T10:00:02.000Z"
    fill(taxii, 2, day=2)
    second = pull(intel, feed_id)
    assert second.outcome == "ok" and len(second.fresh) == 2
    assert taxii.object_requests()[-1].query["added_after"] == "2024-05-01T10:00:02.000Z"
    assert intel.store.counts_by_source()[f"feed:{feed_id}"] == 5  # a TAXII feed adds; it does not replace


def test_a_taxii_server_refusing_the_token_is_a_failed_pull(intel: Intel, world: World, taxii: TaxiiServer) -> None:
    feed_id = add_feed(intel, name="CERT TAXII", format="taxii", url=taxii.discovery_url,
                       options={"collection": COLLECTION_ID}, auth_header="Authorization", auth_value="wrong")
    outcome = pull(intel, feed_id)
    assert (outcome.outcome == "error" and "401" in outcome.detail) or "refused" in outcome.detail.lower()
    assert feed(intel, feed_id).status == "error"


@pytest.fixture
def misp_feed(tmp_path: Path, intel_dir: Path) -> Iterator[str]:
    folder = tmp_path / "feed"
    folder.mkdir()
    event = intel_dir / "misp" / "57c4445b-c548-4654-af0b-4be3950d210f.json"
    shutil.copy(event, folder / event.name)
    (folder / "5f6e7d8c-0000-4000-8000-000000000001.json").write_text("{ not json", encoding="utf-8")
    manifest = {event.stem: {"info": "Ransomware - Xorist", "timestamp": "1700000000"},
                "5f6e7d8c-0000-4000-8000-000000000001": {"info": "broken", "timestamp": "1700000001"}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    handler = partial(QuietFiles, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return


def test_a_misp_feed_reads_its_manifest_then_each_newer_event(intel: Intel, world: World, misp_feed: str) -> None:
    feed_id = add_feed(intel, name="Partner MISP", format="misp-feed", url=misp_feed)
    first = pull(intel, feed_id)
    assert first.outcome == "ok" and first.fresh
    with intel.db.transaction(Scope.system()) as session:
        record = session.scalars(select(IntelPull).where(IntelPull.id == first.pull_id)).one()
        assert record.error_count == 1 and "5f6e7d8c-0000-4000-8000-000000000001" in record.errors[0]["position"]
        assert record.entities >= 1  # the event itself, as a report
    assert feed(intel, feed_id).cursor == "1700000001"
    again = pull(intel, feed_id)
    assert again.outcome == "not-modified"  # nothing in the manifest is newer


def test_garbage_from_a_feed_changes_its_health_not_its_indicators(intel: Intel, world: World,
                                                                   misp_feed: str) -> None:
    feed_id = add_feed(intel, name="List", format="lines", url=misp_feed + "list.txt")
    missing = pull(intel, feed_id)
    assert missing.outcome == "error" and "404" in missing.detail
    stix_feed = add_feed(intel, name="Not STIX", format="stix", url=misp_feed + "manifest.json")
    wrong = pull(intel, stix_feed)
    assert wrong.outcome == "error" and "STIX" in wrong.detail
    state = feed(intel, stix_feed)
    assert state.status == "error" and state.consecutive_failures == 1 and state.indicator_count == 0
