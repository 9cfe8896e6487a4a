"""Feeds: adding and changing them, and pulling them over HTTP.

A pull asks with ``If-None-Match`` / ``If-Modified-Since`` (a 304 costs nothing), streams the body to a
temporary file (never holding a feed whole), skips it when its digest equals the last one taken, and
then merges it. A transient failure (connection, timeout, 5xx, 429) is retried with back-off within the
pull; a feed that keeps failing is tried again later, after a back-off that doubles up to its
interval. Whatever goes wrong, the indicators already held stay as they are: only the feed's health
changes (status, last error, consecutive failures), and the pull is recorded with its reason.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.core import audit
from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import BadInput, Conflict, NotFound, VigilError
from vigil.intel.feeds import misp, taxii
from vigil.intel.feeds.base import feed_parsers
from vigil.intel.feeds.presets import preset
from vigil.intel.indicators import ParsedItem
from vigil.intel.models import IntelFeed, IntelPull
from vigil.intel.schemas import FeedCreate, FeedRead, FeedUpdate
from vigil.intel.service import IntakeResult, check_tlp, take_in
from vigil.intel.store import IntelStore
from vigil.intel.warninglists import WarninglistIndex

log = logging.getLogger(__name__)

MAX_FEED_BYTES = 2 * 1024**3  # a download larger than this is refused
RETRIES = 3
LIST_FORMATS = frozenset({"csv", "lines"})
_TRANSIENT = frozenset({429, 500, 502, 503, 504})


class PullFailed(Exception):
    """A pull that could not complete; the message says why, for the feed's health."""


@dataclass(frozen=True)
class PullOutcome:
    feed_id: int
    outcome: str  # ok | not-modified | error
    pull_id: int
    fresh: tuple[int, ...] = ()  # indicator ids to look back for
    detail: str = ""


def source_of(feed: IntelFeed) -> str:
    return f"feed:{feed.id}"


def stale(feed: IntelFeed, now: datetime | None = None) -> bool:
    """No successful pull for more than two intervals (or never, a day after it was added)."""
    now = now or datetime.now(UTC)
    since = feed.last_success_at or feed.created_at
    return feed.enabled and now - since > timedelta(minutes=max(2 * feed.interval_minutes, 60))


def feed_read(feed: IntelFeed) -> FeedRead:
    return FeedRead.model_validate({**{c: getattr(feed, c) for c in FeedRead.model_fields
                                       if c not in ("has_secret", "stale")},
                                    "has_secret": bool(feed.auth_value), "stale": stale(feed)})


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"feed URL {url!r}: an http:// or https:// address is needed")
    return url


def add_feed(ctx: Context, data: FeedCreate) -> IntelFeed:
    """Add a feed from a preset or a format and URL; its first pull is due at once."""
    fmt, url, options = data.format, data.url, dict(data.options)
    if data.preset:
        chosen = preset(data.preset)
        fmt = fmt or chosen.format  # type: ignore[assignment]
        url = url or chosen.url
        options = {**chosen.options, **options}
        auth_header = data.auth_header or chosen.api_key_header
    else:
        auth_header = data.auth_header
    if not fmt or not url:
        raise BadInput("a feed needs a preset, or a format and a URL")
    if fmt not in ("misp-feed", "taxii") and fmt not in feed_parsers():
        raise BadInput(f"unknown feed format {fmt!r}")
    if fmt == "taxii" and not str(options.get("collection", "")).strip():
        raise BadInput("a TAXII feed needs options.collection: the collection's id or title")
    if ctx.session.scalars(select(IntelFeed).where(IntelFeed.name == data.name)).first() is not None:
        raise Conflict(f"a feed named {data.name!r} exists")
    feed = IntelFeed(
        name=data.name, format=fmt, preset=data.preset, url=_check_url(url), options=options,
        auth_header=auth_header, auth_value=data.auth_value, enabled=data.enabled,
        interval_minutes=data.interval_minutes,
        replace=data.replace if data.replace is not None else fmt in LIST_FORMATS,
        decay={k: v.model_dump() for k, v in data.decay.items()}, confidence=data.confidence,
        tlp=check_tlp(data.tlp), tags=list(data.tags), created_by=ctx.actor.name, next_pull_at=utcnow())
    ctx.session.add(feed)
    ctx.session.flush()
    ctx.audit("intel.feed.add", target_type="intel_feed", target_id=feed.id,
              details={"name": feed.name, "format": fmt, "url": feed.url, "preset": data.preset})
    return feed


def update_feed(ctx: Context, *, feed_id: int, data: FeedUpdate) -> IntelFeed:
    feed = get_feed(ctx.session, feed_id)
    changes: dict[str, Any] = {}
    for name in data.model_fields_set:
        value = getattr(data, name)
        if value is None and name != "confidence":
            continue
        if name == "url":
            value = _check_url(value)
        if name == "decay":
            value = {k: v.model_dump() for k, v in (data.decay or {}).items()}
        if getattr(feed, name) != value:
            changes[name] = "changed" if name == "auth_value" else [getattr(feed, name), value]
            setattr(feed, name, value)
    if changes:
        feed.updated_at = utcnow()
        if "url" in changes or "options" in changes:
            feed.etag, feed.last_modified, feed.version = "", "", ""  # the next pull takes the content whole
        ctx.session.flush()
        ctx.audit("intel.feed.update", target_type="intel_feed", target_id=feed.id,
                  details={"name": feed.name, "changes": changes})
    return feed


def delete_feed(ctx: Context, store: IntelStore, *, feed_id: int) -> None:
    """Remove a feed and what it stated (indicators other sources state stay)."""
    feed = get_feed(ctx.session, feed_id)
    dropped = store.drop_source(source_of(feed))
    ctx.session.delete(feed)
    ctx.session.flush()
    ctx.audit("intel.feed.delete", target_type="intel_feed", target_id=feed_id,
              details={"name": feed.name, "indicators_dropped": dropped})


def get_feed(session: Session, feed_id: int) -> IntelFeed:
    feed = session.get(IntelFeed, feed_id)
    if feed is None:
        raise NotFound(f"no feed {feed_id}")
    return feed


def feeds(session: Session) -> list[IntelFeed]:
    return list(session.scalars(select(IntelFeed).order_by(IntelFeed.name)))


def due(session: Session, now: datetime | None = None) -> list[int]:
    now = now or datetime.now(UTC)
    return [f.id for f in session.scalars(select(IntelFeed).where(IntelFeed.enabled.is_(True)))
            if f.next_pull_at is None or f.next_pull_at <= now]


def get_pull(session: Session, pull_id: int) -> IntelPull:
    pull = session.get(IntelPull, pull_id)
    if pull is None:
        raise NotFound(f"no pull {pull_id}")
    return pull


def pulls(session: Session, *, feed_id: int | None = None, limit: int = 20) -> list[IntelPull]:
    query = select(IntelPull).order_by(IntelPull.started_at.desc(), IntelPull.id.desc()).limit(limit)
    if feed_id is not None:
        query = query.where(IntelPull.feed_id == feed_id)
    return list(session.scalars(query))


# --- pulling ----------------------------------------------------------------------------------------


def _headers(feed: IntelFeed, conditional: bool) -> dict[str, str]:
    headers = {"User-Agent": "Vigil threat-intelligence feed reader"}
    if feed.auth_header and feed.auth_value:
        headers[feed.auth_header] = feed.auth_value
    if conditional and feed.etag:
        headers["If-None-Match"] = feed.etag
    if conditional and feed.last_modified:
        headers["If-Modified-Since"] = feed.last_modified
    return headers


def _download(client: httpx.Client, url: str, headers: dict[str, str], into: BinaryIO, *,
              retry_delay: float) -> httpx.Response:
    """GET ``url`` into ``into`` (streamed, size-capped), retrying what may pass; the response's headers."""
    last = ""
    for attempt in range(RETRIES):
        if attempt:
            time.sleep(retry_delay * 2 ** (attempt - 1))
        try:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code in _TRANSIENT:
                    last = f"HTTP {response.status_code} from {url}"
                    continue
                if response.status_code == 304:
                    return response
                if response.status_code >= 400:
                    raise PullFailed(f"HTTP {response.status_code} from {url}")
                into.seek(0)
                into.truncate()
                size = 0
                for chunk in response.iter_bytes(1 << 20):
                    size += len(chunk)
                    if size > MAX_FEED_BYTES:
                        raise PullFailed(f"{url} sent more than {MAX_FEED_BYTES:,} bytes")
                    into.write(chunk)
                into.flush()
                into.seek(0)
                return response
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__} fetching {url}: {exc}"
    raise PullFailed(last or f"no answer from {url}")


def _digest(stream: BinaryIO) -> str:
    stream.seek(0)
    digest = hashlib.sha256()
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


def pull_feed(ctx: Context, store: IntelStore, *, feed_id: int, client: httpx.Client,
              warninglists: WarninglistIndex | None = None, force: bool = False,
              retry_delay: float = 1.0, now: datetime | None = None) -> PullOutcome:
    """Pull one feed now. Never raises for what the feed's server does: the outcome says it (and the audit
    trail records it)."""
    outcome = _pull_feed(ctx, store, feed_id=feed_id, client=client, warninglists=warninglists, force=force,
                         retry_delay=retry_delay, now=now)
    ctx.audit("intel.feed.pull", target_type="intel_feed", target_id=feed_id,
              outcome=audit.Outcome.SUCCESS if outcome.outcome != "error" else audit.Outcome.FAILURE,
              details={"outcome": outcome.outcome, "pull": outcome.pull_id, "detail": outcome.detail[:500],
                       "new_indicators": len(outcome.fresh)})
    return outcome


def _pull_feed(ctx: Context, store: IntelStore, *, feed_id: int, client: httpx.Client,
               warninglists: WarninglistIndex | None, force: bool, retry_delay: float,
               now: datetime | None) -> PullOutcome:
    feed = get_feed(ctx.session, feed_id)
    now = now or datetime.now(UTC)
    feed.last_attempt_at = now
    try:
        with tempfile.TemporaryFile(prefix="vigil-feed-") as body:
            result = _pull(ctx, store, feed, client, body, warninglists=warninglists, force=force,
                           retry_delay=retry_delay)
    except (PullFailed, BadInput, taxii.TaxiiError) as exc:
        return _failed(ctx, feed, str(exc.detail if isinstance(exc, VigilError) else exc), now)
    feed.consecutive_failures = 0
    feed.last_error = ""
    feed.next_pull_at = now + timedelta(minutes=feed.interval_minutes)
    if result is None:
        feed.status = "not-modified"
        feed.last_success_at = now
        pull = IntelPull(feed_id=feed.id, source=source_of(feed), started_at=now, finished_at=utcnow(),
                         outcome="not-modified", by=ctx.actor.name)
        ctx.session.add(pull)
        ctx.session.flush()
        return PullOutcome(feed.id, "not-modified", pull.id)
    feed.status = "ok"
    feed.last_success_at = now
    feed.indicator_count = store.counts_by_source().get(source_of(feed), 0)
    ctx.session.flush()
    return PullOutcome(feed.id, "ok", result.pull.id, fresh=result.merge.fresh)


def _failed(ctx: Context, feed: IntelFeed, reason: str, now: datetime) -> PullOutcome:
    feed.status = "error"
    feed.last_error = reason[:2000]
    feed.consecutive_failures += 1
    backoff = min(feed.interval_minutes, 2 ** min(feed.consecutive_failures, 10))
    feed.next_pull_at = now + timedelta(minutes=backoff)
    pull = IntelPull(feed_id=feed.id, source=source_of(feed), started_at=now, finished_at=utcnow(),
                     outcome="error", detail=reason[:2000], by=ctx.actor.name)
    ctx.session.add(pull)
    ctx.session.flush()
    log.warning("intel: feed %s (%d) failed: %s", feed.name, feed.id, reason)
    return PullOutcome(feed.id, "error", pull.id, detail=reason)


def _pull(ctx: Context, store: IntelStore, feed: IntelFeed, client: httpx.Client, body: BinaryIO, *,
          warninglists: WarninglistIndex | None, force: bool, retry_delay: float) -> IntakeResult | None:
    """The pull's work; None when nothing changed since the last one."""
    common: dict[str, Any] = {
        "source": source_of(feed), "feed_id": feed.id, "replace": feed.replace, "decay": feed.decay,
        "defaults": {"confidence": feed.confidence, "tlp": feed.tlp, "tags": feed.tags},
        "warninglists": warninglists}
    if feed.format == "taxii":
        polled = taxii.poll(_taxii_collection(feed), added_after=feed.cursor or None)
        result = take_in(ctx, store, stream=body, fmt="stix", options=feed.options, items=polled.items(),
                         version=polled.requested_after or "", **common)
        feed.cursor = polled.added_after or feed.cursor
        return result
    if feed.format == "misp-feed":
        return _pull_misp_feed(ctx, store, feed, client, body, retry_delay=retry_delay, common=common)
    response = _download(client, feed.url, _headers(feed, not force), body, retry_delay=retry_delay)
    if response.status_code == 304:
        return None
    digest = _digest(body)
    if digest == feed.version and not force:
        return None
    result = take_in(ctx, store, stream=body, fmt=feed.format, options=feed.options, version=digest[:16], **common)
    feed.version = digest
    feed.etag = response.headers.get("ETag", "")
    feed.last_modified = response.headers.get("Last-Modified", "")
    return result


def _taxii_collection(feed: IntelFeed) -> taxii.TaxiiCollection:
    """The feed's URL is the server's discovery or API-root address; ``options.collection`` names the
    collection; the secret is a bearer token, or ``user:password`` for basic authentication."""
    collection = str(feed.options.get("collection", ""))
    user, sep, password = feed.auth_value.partition(":")
    if feed.auth_value and sep and feed.auth_header.lower() == "basic":
        return taxii.TaxiiCollection(url=feed.url, collection_id=collection, username=user, password=password)
    return taxii.TaxiiCollection(url=feed.url, collection_id=collection,
                                 token=feed.auth_value.removeprefix("Bearer ").strip())


def _pull_misp_feed(ctx: Context, store: IntelStore, feed: IntelFeed, client: httpx.Client, body: BinaryIO, *,
                    retry_delay: float, common: dict[str, Any]) -> IntakeResult | None:
    """A MISP feed: its manifest, then each event file newer than the last pull."""
    base = feed.url if feed.url.endswith("/") else feed.url + "/"
    _download(client, urljoin(base, "manifest.json"), _headers(feed, False), body, retry_delay=retry_delay)
    try:
        manifest = orjson.loads(body.read())
    except orjson.JSONDecodeError:
        raise PullFailed("the feed's manifest.json is not JSON") from None
    if not isinstance(manifest, dict):
        raise PullFailed("the feed's manifest.json is not a MISP manifest (an object of events)")
    since = int(feed.cursor or 0)
    newer = {uuid: meta for uuid, meta in manifest.items()
             if isinstance(meta, dict) and int(str(meta.get("timestamp", 0) or 0)) > since}
    if not newer:
        return None
    folder = Path(tempfile.mkdtemp(prefix="vigil-misp-"))

    def open_event(name: str) -> BinaryIO:
        """One event file; a failed download is this event's error (``OSError``), the others are read."""
        path = folder / f"{hashlib.sha256(name.encode()).hexdigest()}.json"
        with path.open("w+b") as into:
            try:
                _download(client, urljoin(base, name), _headers(feed, False), into, retry_delay=retry_delay)
            except PullFailed as exc:
                raise OSError(str(exc)) from None
        return path.open("rb")

    try:
        items: Iterator[ParsedItem] = misp.misp_feed(newer, open_event, feed.options)
        result = take_in(ctx, store, stream=body, fmt="misp", options=feed.options, items=items, **common)
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    feed.cursor = str(max(int(str(meta.get("timestamp", 0) or 0)) for meta in newer.values()))
    return result

