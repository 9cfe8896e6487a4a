"""Feeds and imports: the feeds with their health, a form to add one from a preset or a format and URL, pulling
one now, turning it off or on, removing it; a feed's pulls with what each took and refused; and the import
page, where a file (or pasted text) is read in a format or a preset's layout and looked back for at once.

Everything goes through ``feeds_service``, ``service.take_in`` and the process's ``Intel``, as the API does.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any, BinaryIO

import httpx
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from vigil.core.errors import PayloadTooLarge
from vigil.intel import feeds_service, service
from vigil.intel.feeds.base import feed_parsers
from vigil.intel.feeds.presets import presets
from vigil.intel.models import RetroHunt
from vigil.intel.schemas import FeedCreate, FeedUpdate, PullRead
from vigil.intel.views.common import REFUSED, Reader, RecordId, Writer, done_of, intel_of
from vigil.web.deps import SessionDep, context, settings_of
from vigil.web.templating import (
    FormDep,
    PageRoute,
    Translator,
    describe_error,
    redirect,
    render,
    text_fields,
    translator,
    validate,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
FEED_FORMATS = ("csv", "lines", "stix", "misp", "misp-feed", "otx", "taxii")
PULLS_SHOWN = 30
FEED_FIELDS = ("name", "preset", "format", "url", "interval_minutes", "auth_value", "collection", "options", "tags")


def import_formats() -> list[str]:
    """What a file may be read as: the parsers' formats (the vigil.feeds group)."""
    return sorted(feed_parsers())


# --- the feeds ----------------------------------------------------------------------------------------


def _feeds(request: Request, session: Session, *, values: dict[str, str] | None = None,
           errors: dict[str, str] | None = None, error: str = "", status: int = 200) -> HTMLResponse:
    return render(request, "intel/feeds.html", {
        "feeds": [feeds_service.feed_read(feed) for feed in feeds_service.feeds(session)],
        "presets": list(presets().values()),
        "preset_options": [(p.name, p.title) for p in presets().values()],
        "format_options": [(name, name) for name in FEED_FORMATS],
        "values": values or {"interval_minutes": "60"},
        "errors": errors or {},
        "error": error,
        "done": done_of(request),
        "zone": settings_of(request).timezone,
    }, status=status)


@router.get("/intel/feeds")
def feeds_page(request: Request, principal: Reader, session: SessionDep) -> HTMLResponse:
    return _feeds(request, session)


def _feed_data(values: dict[str, str], _: Translator) -> tuple[FeedCreate | None, dict[str, str]]:
    """The add-feed form as a ``FeedCreate``: options as JSON, a TAXII collection, tags comma-separated."""
    options: dict[str, Any] = {}
    if values["options"]:
        try:
            loaded = orjson.loads(values["options"])
        except orjson.JSONDecodeError:
            loaded = None
        if not isinstance(loaded, dict):
            return None, {"options": _("Write the options as a JSON object, such as {\"type\": \"ipv4\"}.")}
        options = loaded
    if values["collection"]:
        options["collection"] = values["collection"]
    data: dict[str, Any] = {
        "name": values["name"], "preset": values["preset"] or None, "format": values["format"] or None,
        "url": values["url"] or None, "options": options, "auth_value": values["auth_value"],
        "tags": [tag.strip() for tag in values["tags"].split(",") if tag.strip()]}
    if values["interval_minutes"]:
        data["interval_minutes"] = values["interval_minutes"]
    return validate(FeedCreate, data, _)


@router.post("/intel/feeds")
def add_feed(request: Request, principal: Writer, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, *FEED_FIELDS)
    data, errors = _feed_data(values, _)
    shown = {**values, "auth_value": ""}  # a secret is never sent back
    if data is None:
        return _feeds(request, session, values=shown, errors=errors, error=_("Check the marked fields."), status=422)
    try:
        with session.begin_nested():
            feed = feeds_service.add_feed(context(request, session, principal), data)
    except REFUSED as exc:
        return _feeds(request, session, values=shown, error=describe_error(exc, _), status=exc.status)
    return redirect(f"/intel/feeds/{feed.id}?done=feed-added")


@router.get("/intel/feeds/{feed_id}")
def feed_page(feed_id: RecordId, request: Request, principal: Reader, session: SessionDep) -> HTMLResponse:
    feed = feeds_service.feed_read(feeds_service.get_feed(session, feed_id))
    pulls = [PullRead.model_validate(pull) for pull in feeds_service.pulls(session, feed_id=feed_id,
                                                                           limit=PULLS_SHOWN)]
    return render(request, "intel/feed.html", {
        "feed": feed, "pulls": pulls, "done": done_of(request), "zone": settings_of(request).timezone,
        "preset": presets().get(feed.preset or ""),
    })


@router.post("/intel/feeds/{feed_id}/pull")
def pull_feed(feed_id: RecordId, request: Request, principal: Writer, session: SessionDep,
              form: FormDep) -> Response:
    """Pull now (and look back for what is new), whatever the schedule; the feed's page shows the outcome."""
    feeds_service.get_feed(session, feed_id)
    force = text_fields(form, "force")["force"] in ("on", "true", "1")
    actor = context(request, session, principal).actor
    session.commit()  # the pull runs in transactions of its own
    with httpx.Client(timeout=60.0, follow_redirects=True) as client:
        intel_of(request).pull(feed_id, client=client, force=force, actor=actor)
    return redirect(f"/intel/feeds/{feed_id}?done=pulled")


@router.post("/intel/feeds/{feed_id}/enabled")
def enable_feed(feed_id: RecordId, request: Request, principal: Writer, session: SessionDep,
                form: FormDep) -> Response:
    """Turn a feed off (it is no longer pulled; what it stated stays) or back on."""
    enabled = text_fields(form, "enabled")["enabled"] in ("on", "true", "1")
    feeds_service.update_feed(context(request, session, principal), feed_id=feed_id,
                              data=FeedUpdate(enabled=enabled))
    return redirect(f"/intel/feeds/{feed_id}?done={'feed-enabled' if enabled else 'feed-disabled'}")


@router.post("/intel/feeds/{feed_id}/delete")
def delete_feed(feed_id: RecordId, request: Request, principal: Writer, session: SessionDep) -> Response:
    """Remove a feed and what it stated (indicators other sources state stay)."""
    feeds_service.delete_feed(context(request, session, principal), intel_of(request).store, feed_id=feed_id)
    return redirect("/intel/feeds?done=feed-deleted")


# --- importing a file -----------------------------------------------------------------------------------


def _import(request: Request, *, values: dict[str, str] | None = None, result: dict[str, Any] | None = None,
            error: str = "", status: int = 200) -> HTMLResponse:
    return render(request, "intel/import.html", {
        "formats": import_formats(),
        "presets": [p for p in presets().values() if p.format in feed_parsers()],
        "values": values or {"format": "stix", "retrohunt": "on"},
        "result": result,
        "error": error,
        "max_bytes": max(settings_of(request).max_body_bytes, settings_of(request).ingest_max_body_bytes),
        "lookback_days": settings_of(request).intel_lookback_days,
        "zone": settings_of(request).timezone,
    }, status=status)


@router.get("/intel/import")
def import_page(request: Request, principal: Writer) -> HTMLResponse:
    return _import(request)


@router.post("/intel/import")
def import_file(request: Request, principal: Writer, session: SessionDep, form: FormDep) -> HTMLResponse:
    """A file (or pasted text) read as a format or a preset's layout, merged as ``import:<name>``; then the
    retro-hunt for what it brought. The page shows the pull's counts, the refused items and the look-back."""
    _ = translator(request)
    values = text_fields(form, "format", "name", "text", "retrohunt")
    upload = form.get("file")
    has_file = isinstance(upload, UploadFile) and bool(upload.filename)
    chosen = presets().get(values["format"])
    fmt = chosen.format if chosen else values["format"]
    if fmt not in feed_parsers():
        return _import(request, values=values, error=_("Choose one of the offered formats."), status=422)
    if not has_file and not values["text"]:
        return _import(request, values=values, error=_("Choose a file to upload, or paste the indicators."),
                       status=422)
    name = (values["name"] or (upload.filename if has_file and isinstance(upload, UploadFile) else "") or "pasted")
    name = name[:200]
    intel = intel_of(request)
    try:
        with session.begin_nested():
            stream: BinaryIO
            if has_file and isinstance(upload, UploadFile):
                stream = upload.file
            else:
                stream = _pasted(str(form.get("text") or ""), settings_of(request).max_body_bytes)
            taken = service.take_in(context(request, session, principal), intel.store, stream=stream, fmt=fmt,
                                    options=dict(chosen.options) if chosen else {}, source=f"import:{name}",
                                    version=datetime.now(UTC).strftime("%Y%m%dT%H%M%S"),
                                    warninglists=intel.warninglists)
    except (*REFUSED, PayloadTooLarge) as exc:
        return _import(request, values=values, error=describe_error(exc, _), status=422)
    finally:
        if isinstance(upload, UploadFile):
            upload.file.close()
    pull = PullRead.model_validate(taken.pull)
    session.commit()  # the retro-hunt records its sightings in transactions of its own
    hunt = None
    if values["retrohunt"] in ("on", "true", "1"):
        found = intel.look_back(taken.merge.fresh, trigger=f"import:{name}")
        hunt = session.get(RetroHunt, found.hunt_id) if found is not None else None
    return _import(request, values={**values, "text": ""}, result={
        "pull": pull, "hunt": hunt, "fresh": len(taken.merge.fresh), "asked": values["retrohunt"] in ("on", "true"),
        "name": name})


def _pasted(text: str, limit: int) -> BinaryIO:
    """Pasted text as the binary stream a parser reads."""
    data = text.encode("utf-8")
    if len(data) > limit:
        raise PayloadTooLarge(f"the pasted text is larger than {limit:,} bytes")
    return io.BytesIO(data)

