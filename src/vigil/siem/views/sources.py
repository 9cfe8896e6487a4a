"""The log-sources page: the SIEM's status, each source with its rates and silence, retention, and the
forms a security administrator configures sources with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.siem import retention, sources
from vigil.siem.parsers.registry import parsers
from vigil.siem.runtime import Siem
from vigil.siem.sources import SourceCreate, SourceUpdate
from vigil.web.deps import SessionDep, context, settings_of
from vigil.web.templating import (
    FormDep,
    PageRoute,
    Translator,
    describe_error,
    page_guard,
    redirect,
    render,
    text_fields,
    translator,
    unit_options,
    validate,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
SourcesReader = Annotated[Principal, Depends(page_guard(Permission.SOURCES_READ))]
SourcesWriter = Annotated[Principal, Depends(page_guard(Permission.SOURCES_WRITE))]
RetentionRunner = Annotated[Principal, Depends(page_guard(Permission.SOURCES_WRITE, everywhere=True))]
SourceId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]

FIELDS = ("name", "unit_id", "description", "format", "timezone", "retention_days", "expected_interval_minutes")
FORM_REFUSED = (BadInput, Conflict, NotFound)
# Confirmations after a redirect (``?done=key``): the template holds their fixed texts, never the URL's.
DONE = frozenset({"created", "saved", "deleted", "short", "pruned"})


@dataclass
class FormState:
    """A refused form shown again: the values sent, each field's complaint, a summary; ``target`` says which."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    error: str = ""
    target: str = ""


def siem_of(request: Request) -> Siem:
    siem: Siem = request.app.state.siem
    return siem


def _page(request: Request, principal: Principal, session: Session, *, status: int = 200,
          form: FormState | None = None) -> HTMLResponse:
    siem, settings = siem_of(request), settings_of(request)
    readable = principal.units_for(Permission.SOURCES_READ)
    units = list(accounts.list_units(session))
    writable = principal.units_for(Permission.SOURCES_WRITE)
    done = request.query_params.get("done", "")
    job = siem.retention
    return render(request, "siem/sources.html", {
        "status": sources.siem_status(siem.pipeline, siem.spool, siem.receivers),
        "listing": sources.source_statuses(session, siem.store, settings, unit_ids=readable,
                                           stats=siem.source_stats),
        "retention": retention.retention_status(session, siem.store, settings, unit_ids=readable),
        "job": job,
        "unit_names": {unit.id: unit.name for unit in units},
        "write_units": unit_options(unit for unit in units if unit.id in writable),
        "formats": [(name, name) for name in sorted(parsers())],
        "defaults": settings,
        "legal_minimum": sources.LEGAL_MINIMUM_DAYS,
        "form": form or FormState(),
        "done": done if done in DONE else "",
        "size": human_bytes,
    }, status=status)


def human_bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _values(form: FormDep) -> dict[str, Any]:
    values: dict[str, Any] = dict(text_fields(form, *FIELDS))
    values["keep_original"] = form.get("keep_original") in ("on", "true", "1")
    return values


def _data(values: dict[str, Any], *, create: bool) -> dict[str, Any]:
    """Form text to the schema's input: an empty field is "the default" (None)."""
    data: dict[str, Any] = {key: (value if value != "" else None) for key, value in values.items()}
    data["description"] = values.get("description", "")
    if not create:
        data.pop("name", None)
    return data


def _refused(_: Translator, values: dict[str, Any], errors: dict[str, str], target: str) -> FormState:
    # Our validators' own words (unknown format or zone), without Pydantic's "Value error, " in front.
    errors = {name: message.removeprefix("Value error, ") for name, message in errors.items()}
    return FormState(values, errors, _("Check the marked fields.") if errors else "", target)


def _done(days: int | None, default: str) -> Response:
    short = days is not None and days < sources.LEGAL_MINIMUM_DAYS
    return redirect(f"/siem/sources?done={'short' if short else default}")


def _refresh(request: Request, session: Session) -> None:
    directory = siem_of(request).directory
    if directory is not None:
        sources.after_commit(session, directory.invalidate)


@router.get("/siem/sources")
def sources_page(request: Request, principal: SourcesReader, session: SessionDep) -> HTMLResponse:
    return _page(request, principal, session)


@router.post("/siem/sources")
def create_source(request: Request, principal: SourcesWriter, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    values = _values(form)
    # A source configured from its row in the table (it sent before it had settings), or the form below it.
    target = "observed" if form.get("origin") == "observed" else "new"
    data, errors = validate(SourceCreate, _data(values, create=True), _)
    state = _refused(_, values, errors, target)
    if data is not None:
        try:
            with session.begin_nested():
                row = sources.create_source(context(request, session, principal), data=data)
            _refresh(request, session)
            return _done(row.retention_days, "created")
        except FORM_REFUSED as exc:
            state = FormState(values, {}, describe_error(exc, _), target)
    return _page(request, principal, session, status=422, form=state)


@router.post("/siem/sources/{source_id}")
def update_source(source_id: SourceId, request: Request, principal: SourcesWriter, session: SessionDep,
                  form: FormDep) -> Response:
    _ = translator(request)
    sources.get_source(session, source_id)  # 404 outside the caller's scope, before reading the form
    values = _values(form)
    data, errors = validate(SourceUpdate, _data(values, create=False), _)
    state = _refused(_, values, errors, str(source_id))
    if data is not None:
        try:
            with session.begin_nested():
                row = sources.update_source(context(request, session, principal), source_id=source_id, data=data)
            _refresh(request, session)
            return _done(row.retention_days, "saved")
        except FORM_REFUSED as exc:
            state = FormState(values, {}, describe_error(exc, _), str(source_id))
    return _page(request, principal, session, status=422, form=state)


@router.post("/siem/sources/{source_id}/delete")
def delete_source(source_id: SourceId, request: Request, principal: SourcesWriter, session: SessionDep) -> Response:
    sources.delete_source(context(request, session, principal), source_id=source_id)
    _refresh(request, session)
    return redirect("/siem/sources?done=deleted")


@router.post("/siem/retention/run")
def run_retention(request: Request, principal: RetentionRunner, session: SessionDep) -> Response:
    pruned = retention.prune_expired(session, siem_of(request).store, settings_of(request))
    retention.record_run(context(request, session, principal), pruned)
    return redirect("/siem/sources?done=pruned")
