"""The detection rules pages: the filterable rules table (with an enabled switch for security
administrators), one rule (YAML, metadata with author and references for the Detection Rule License's
attribution, hit figures, its test results with the "try an event" form, its settings form), and the packs
page with the import form and the diff of the last import."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.errors import BadInput, Conflict, NotFound, PayloadTooLarge
from vigil.core.pagination import PageParams
from vigil.detection import placeholders_service, rule_tests, rules_import, rules_service
from vigil.detection.schemas_placeholders import PlaceholderRead, PlaceholderSet
from vigil.detection.schemas_rules import (
    MAX_BULK,
    EnablePolicy,
    ImportResult,
    RuleFilters,
    RuleTestCreate,
    RuleTestReport,
    RuleTestTry,
    RuleUpdate,
)
from vigil.detection.sigma import LEVELS
from vigil.detection.sigma.placeholders import MAX_VALUES
from vigil.web.deps import SessionDep, context, settings_of
from vigil.web.templating import (
    FormDep,
    Pager,
    PageRoute,
    Translator,
    describe_error,
    local_path,
    page_guard,
    redirect,
    render,
    translator,
    validate,
    wants_fragment,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
RulesReader = Annotated[Principal, Depends(page_guard(Permission.RULES_READ))]
RulesWriter = Annotated[Principal, Depends(page_guard(Permission.RULES_WRITE, everywhere=True))]
RuleId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]
CaseIndex = Annotated[int, Path(ge=0, le=10_000)]
PlaceholderName = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
PAGE_SIZE = 50
FILTER_KEYS = ("level", "status", "tactic", "technique", "product", "category", "service", "pack", "enabled", "q")
REFUSED = (BadInput, Conflict, NotFound, PayloadTooLarge)
# Confirmations after a redirect (``?done=key``): fixed texts in the template, never the URL's.
DONE = frozenset({"saved", "test_saved", "test_deleted"})
TABLE_DONE = frozenset({"enabled", "disabled"})


def _filter_values(request: Request) -> dict[str, str]:
    return {key: request.query_params.get(key, "")[:200] for key in FILTER_KEYS}


def rules_table_context(request: Request, session: Session, filters: RuleFilters, offset: int) -> dict[str, Any]:
    page = rules_service.list_rules(session, filters=filters, page=PageParams(limit=PAGE_SIZE, offset=offset))
    values = _filter_values(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    options = {name: [(value, value) for value in found] for name, found in rules_service.facets(session).items()}
    options["levels"] = [(level, level) for level in LEVELS]
    done = request.query_params.get("done", "")
    return {"page": page, "filters": values, "options": options, "done": done if done in TABLE_DONE else "",
            "pager": Pager("/detection/rules", page.total, PAGE_SIZE, offset, params=values), "back": here}


def page_filters(request: Request) -> RuleFilters:
    """The filter form's fields; an empty field (the "any" choice) filters nothing."""
    given = {key: value for key, value in _filter_values(request).items() if value.strip()}
    try:
        return RuleFilters.model_validate(given)
    except ValidationError as exc:
        raise BadInput("invalid filter: " + "; ".join(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                                                   for error in exc.errors())) from None


@router.get("/detection/rules")
def rules_page(request: Request, principal: RulesReader, session: SessionDep,
               filters: Annotated[RuleFilters, Depends(page_filters)],
               offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> HTMLResponse:
    return render(request, "detection/rules.html", rules_table_context(request, session, filters, offset))


@router.post("/detection/rules/{rule_id}/enabled")
def switch_rule(rule_id: RuleId, request: Request, principal: RulesWriter, session: SessionDep,
                form: FormDep) -> Response:
    """The enabled switch of a table row: the new row for HTMX, else back to the table."""
    enabled = form.get("enabled") in ("true", "on", "1")
    rules_service.set_enabled(context(request, session, principal), ids=[rule_id], enabled=enabled)
    if wants_fragment(request):
        rule = rules_service.read_rule(session, rule_id)
        return render(request, "detection/rules_row.html", {"rule": rule, "back": ""})
    back = form.get("next")
    return redirect(local_path(back if isinstance(back, str) else None, "/detection/rules"))


@router.post("/detection/rules/bulk")
def bulk_switch(request: Request, principal: RulesWriter, session: SessionDep, form: FormDep) -> Response:
    """Enable or disable every rule the table's filters match (all its pages), then back to the table."""
    given = {key: value.strip() for key in FILTER_KEYS if isinstance(value := form.get(key), str) and value.strip()}
    try:
        filters = RuleFilters.model_validate(given)
    except ValidationError as exc:
        raise BadInput("invalid filter: " + "; ".join(str(error["msg"]) for error in exc.errors())) from None
    ids = rules_service.matching_ids(session, filters)
    if len(ids) > MAX_BULK:
        raise BadInput(f"the filters match {len(ids):,} rules; narrow them to at most {MAX_BULK:,}")
    enabled = form.get("set") == "on"
    if ids:
        rules_service.set_enabled(context(request, session, principal), ids=ids, enabled=enabled)
    return redirect("/detection/rules?" + urlencode({**given, "done": "enabled" if enabled else "disabled"}))


@router.get("/detection/rules/packs")
def packs_page(request: Request, principal: RulesReader, session: SessionDep) -> HTMLResponse:
    return _packs(request, session)


def _packs(request: Request, session: Session, *, result: ImportResult | None = None, error: str = "",
           values: dict[str, str] | None = None, status: int = 200, placeholder_error: str = "",
           placeholder_errors: dict[str, str] | None = None, placeholder_values: dict[str, str] | None = None,
           placeholder_done: PlaceholderRead | None = None, placeholder_removed: str = "") -> HTMLResponse:
    packs = [rules_service.pack_read(pack) for pack in rules_service.list_packs(session)]
    return render(request, "detection/rules_packs.html", {
        "packs": packs, "result": result, "error": error, "values": values or {},
        "max_bytes": settings_of(request).max_body_bytes,
        "placeholders": placeholders_service.read_all(session), "placeholder_error": placeholder_error,
        "placeholder_errors": placeholder_errors or {}, "placeholder_values": placeholder_values or {},
        "placeholder_done": placeholder_done, "placeholder_removed": placeholder_removed,
        "max_placeholder_values": MAX_VALUES,
    }, status=status)


@router.post("/detection/rules/packs/import")
def import_pack(request: Request, principal: RulesWriter, session: SessionDep, form: FormDep) -> HTMLResponse:
    """An uploaded zip or rule file (or a pasted rule) imported; the page shows what changed."""
    _ = translator(request)
    values = {key: value.strip() if isinstance(value := form.get(key), str) else ""
              for key in ("pack", "enable", "yaml")}
    upload = form.get("file")
    has_file = isinstance(upload, UploadFile) and bool(upload.filename)
    try:
        policy = EnablePolicy(values["enable"] or EnablePolicy.stable_test)
    except ValueError:
        return _packs(request, session, error=_("Choose one of the offered values."), values=values, status=422)
    ctx = context(request, session, principal)
    try:
        with session.begin_nested():
            if has_file and isinstance(upload, UploadFile):
                limit = settings_of(request).max_body_bytes
                try:
                    content = upload.file.read(limit + 1)
                finally:
                    upload.file.close()
                if len(content) > limit:
                    raise PayloadTooLarge(f"the upload is larger than {limit:,} bytes")
                result = rules_import.import_upload(ctx, filename=upload.filename or "", content=content,
                                                    name=values["pack"] or None, enable=policy)
            elif values["yaml"]:
                result = rules_import.add_rule_text(ctx, text=str(form.get("yaml")), pack=values["pack"] or "local",
                                                    enable=policy)
            else:
                return _packs(request, session, error=_("Choose a file to upload, or paste a rule."), values=values,
                              status=422)
    except REFUSED as exc:
        return _packs(request, session, error=describe_error(exc, _), values=values, status=422)
    return _packs(request, session, result=result)


@router.post("/detection/rules/packs/placeholders")
def set_placeholder(request: Request, principal: RulesWriter, session: SessionDep, form: FormDep) -> HTMLResponse:
    """A placeholder's values set (one per line) from the packs page; the page says which packs to import
    again for rules refused while it had none."""
    _ = translator(request)
    entered = {key: _text(form, key).strip() for key in ("name", "values", "description")}
    name = entered["name"].strip("%")
    data, errors = validate(PlaceholderSet, {
        "values": [line.strip() for line in entered["values"].split("\n") if line.strip()],
        "description": entered["description"]}, _)
    if data is None:
        return _packs(request, session, placeholder_error=_("Check the marked fields."), placeholder_errors=errors,
                      placeholder_values=entered, status=422)
    try:
        with session.begin_nested():
            row = placeholders_service.set_placeholder(context(request, session, principal), name=name, data=data)
    except REFUSED as exc:
        return _packs(request, session, placeholder_error=describe_error(exc, _), placeholder_values=entered,
                      status=422)
    return _packs(request, session, placeholder_done=placeholders_service.read(session, row))


@router.post("/detection/rules/packs/placeholders/{name}/delete")
def remove_placeholder(name: PlaceholderName, request: Request, principal: RulesWriter,
                       session: SessionDep) -> HTMLResponse:
    _ = translator(request)
    try:
        with session.begin_nested():
            placeholders_service.remove_placeholder(context(request, session, principal), name=name)
    except REFUSED as exc:
        return _packs(request, session, placeholder_error=describe_error(exc, _), status=422)
    return _packs(request, session, placeholder_removed=name)


@router.get("/detection/rules/{rule_id}")
def rule_page(rule_id: RuleId, request: Request, principal: RulesReader, session: SessionDep) -> HTMLResponse:
    return _rule(request, session, rule_id)


def _rule(request: Request, session: Session, rule_id: int, *, errors: dict[str, str] | None = None,
          error: str = "", values: dict[str, Any] | None = None, status: int = 200,
          tried: RuleTestReport | None = None, try_error: str = "", try_values: dict[str, str] | None = None,
          test_error: str = "") -> HTMLResponse:
    rule = rules_service.read_rule(session, rule_id)
    row = rules_service.get_rule(session, rule_id)
    done = request.query_params.get("done", "")
    rate = rule.false_positives / rule.hits if rule.hits else None
    return render(request, "detection/rule.html", {
        "rule": rule, "yaml": row.yaml, "level_options": [(level, level) for level in LEVELS],
        "errors": errors or {}, "error": error,
        "values": values if values is not None else {"enabled": rule.enabled, "level_override": rule.level_override
                                                     or "", "notes": rule.notes},
        "fp_rate": rate, "done": done if done in DONE else "",
        "tests": rule_tests.run_tests(session, rule_id=rule_id), "tried": tried, "try_error": try_error,
        "try_values": try_values or {"format": "", "record": ""}, "test_error": test_error,
        "format_options": [(name, name) for name in rule_tests.format_names()],
    }, status=status)


@router.post("/detection/rules/{rule_id}")
def save_rule(rule_id: RuleId, request: Request, principal: RulesWriter, session: SessionDep,
              form: FormDep) -> Response:
    _: Translator = translator(request)
    notes = form.get("notes")
    level = form.get("level_override")
    values: dict[str, Any] = {"enabled": form.get("enabled") in ("on", "true", "1"),
                              "level_override": level.strip() if isinstance(level, str) else "",
                              "notes": notes.replace("\r\n", "\n") if isinstance(notes, str) else ""}
    data, errors = validate(RuleUpdate, {**values, "level_override": values["level_override"] or None}, _)
    if data is None:
        return _rule(request, session, rule_id, errors=errors, error=_("Check the marked fields."), values=values,
                     status=422)
    try:
        with session.begin_nested():
            rules_service.update_rule(context(request, session, principal), rule_id=rule_id, data=data)
    except REFUSED as exc:
        return _rule(request, session, rule_id, error=describe_error(exc, _), values=values, status=422)
    return redirect(f"/detection/rules/{rule_id}?done=saved")


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: "
                     f"{str(error['msg']).removeprefix('Value error, ')}" for error in exc.errors())


def _text(form: Any, key: str) -> str:
    value = form.get(key)
    return value.replace("\r\n", "\n") if isinstance(value, str) else ""


@router.post("/detection/rules/{rule_id}/tests/try")
def try_rule(rule_id: RuleId, request: Request, principal: RulesReader, session: SessionDep,
             form: FormDep) -> HTMLResponse:
    """Events pasted in the form run through the rule (stored nowhere); the page shows each outcome."""
    _: Translator = translator(request)
    values = {"format": _text(form, "format").strip()[:64], "record": _text(form, "record")}
    try:
        records = rule_tests.split_records(values["record"])
        events = [RuleTestTry.model_validate({"format": values["format"] or None, "record": record})
                  for record in records]
        tried = rule_tests.try_events(session, rule_id=rule_id, events=events)
    except ValidationError as exc:
        return _rule(request, session, rule_id, try_error=f'{_("The input was not accepted:")} {_problems(exc)}',
                     try_values=values, status=422)
    except REFUSED as exc:
        return _rule(request, session, rule_id, try_error=describe_error(exc, _), try_values=values, status=422)
    return _rule(request, session, rule_id, tried=tried, try_values=values)


@router.post("/detection/rules/{rule_id}/tests")
def save_test(rule_id: RuleId, request: Request, principal: RulesWriter, session: SessionDep,
              form: FormDep) -> Response:
    """A tried event saved as a test case that must fire (or must not)."""
    _: Translator = translator(request)
    given = {"name": _text(form, "name").strip(), "expect": _text(form, "expect"), "format": _text(form, "format"),
             "record": _text(form, "record")}
    try:
        data = RuleTestCreate.model_validate(given)
        with session.begin_nested():
            rule_tests.add_test(context(request, session, principal), rule_id=rule_id, data=data)
    except ValidationError as exc:
        return _rule(request, session, rule_id, test_error=f'{_("The input was not accepted:")} {_problems(exc)}',
                     status=422)
    except REFUSED as exc:
        return _rule(request, session, rule_id, test_error=describe_error(exc, _), status=422)
    return redirect(f"/detection/rules/{rule_id}?done=test_saved#tests")


@router.post("/detection/rules/{rule_id}/tests/{index}/delete")
def delete_test(rule_id: RuleId, index: CaseIndex, request: Request, principal: RulesWriter, session: SessionDep,
                form: FormDep) -> Response:
    """A saved test case removed."""
    _: Translator = translator(request)
    try:
        with session.begin_nested():
            rule_tests.delete_test(context(request, session, principal), rule_id=rule_id, index=index)
    except REFUSED as exc:
        return _rule(request, session, rule_id, test_error=describe_error(exc, _), status=422)
    return redirect(f"/detection/rules/{rule_id}?done=test_deleted#tests")
