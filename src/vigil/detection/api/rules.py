"""/api/v1/rules and /api/v1/rule-packs: detection rules, their settings and test cases, and importing packs.

Reading (and trying events on a rule, which stores nothing) needs ``rules:read``. Rules are platform-wide
(every unit's events meet them), so changing one (its test cases too) or importing a pack needs
``rules:write`` at headquarters. Every change is on the audit trail.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import PlainTextResponse

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.errors import BadInput, PayloadTooLarge
from vigil.core.pagination import Page, PageParams, page_params
from vigil.detection import rule_tests, rules_import, rules_service
from vigil.detection.schemas_rules import (
    EnablePolicy,
    ImportResult,
    Level,
    RuleBulkResult,
    RuleBulkUpdate,
    RuleFilters,
    RulePackRead,
    RuleRead,
    RuleTestCreate,
    RuleTestReport,
    RuleTestRun,
    RuleUpdate,
)
from vigil.web.deps import SessionDep, context, require, settings_of

router = APIRouter(prefix="/api/v1", tags=["detection rules"])
RulesReader = Annotated[Principal, Depends(require(Permission.RULES_READ))]
RulesWriter = Annotated[Principal, Depends(require(Permission.RULES_WRITE, everywhere=True))]
Id = Annotated[int, Path(ge=1, le=MAX_RECORD_ID, description="A rule's id (not its Sigma id).")]
CaseIndex = Annotated[int, Path(ge=0, le=10_000, description="The test case's position, from 0.")]
MAX_RULE_TEXT = 1024 * 1024


def rule_filters(
    level: Annotated[Level | None, Query(description="Effective level (override applied).")] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    tactic: Annotated[str | None, Query(max_length=100, description="ATT&CK tactic, e.g. execution.")] = None,
    technique: Annotated[str | None, Query(max_length=20, description="T1059 also finds T1059.001.")] = None,
    product: Annotated[str | None, Query(max_length=100)] = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    service: Annotated[str | None, Query(max_length=100)] = None,
    pack: Annotated[str | None, Query(max_length=200)] = None,
    enabled: bool | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the title, or a Sigma id.")] = None,
) -> RuleFilters:
    return RuleFilters(level=level, status=status, tactic=tactic, technique=technique, product=product,
                       category=category, service=service, pack=pack, enabled=enabled, q=q)


@router.get("/rules")
def list_rules(principal: RulesReader, session: SessionDep, filters: Annotated[RuleFilters, Depends(rule_filters)],
               pages: Annotated[PageParams, Depends(page_params)]) -> Page[RuleRead]:
    """Rules by title, narrowed by level, status, ATT&CK tactic or technique, log source, pack, enabled, text."""
    return rules_service.list_rules(session, filters=filters, page=pages)


@router.post("/rules/bulk")
def bulk_update(data: RuleBulkUpdate, request: Request, principal: RulesWriter, session: SessionDep) -> RuleBulkResult:
    """Enable or disable many rules at once (all, or none when an id is unknown)."""
    return rules_service.set_enabled(context(request, session, principal), ids=data.ids, enabled=data.enabled)


@router.get("/rules/{rule_id}")
def read_rule(rule_id: Id, principal: RulesReader, session: SessionDep) -> RuleRead:
    return rules_service.read_rule(session, rule_id)


@router.get("/rules/{rule_id}/yaml", response_class=PlainTextResponse,
            responses={200: {"content": {"application/yaml": {}}}})
def read_rule_yaml(rule_id: Id, principal: RulesReader, session: SessionDep) -> PlainTextResponse:
    """The rule's Sigma YAML as imported."""
    row = rules_service.get_rule(session, rule_id)
    return PlainTextResponse(row.yaml, media_type="application/yaml")


@router.patch("/rules/{rule_id}")
def update_rule(rule_id: Id, data: RuleUpdate, request: Request, principal: RulesWriter,
                session: SessionDep) -> RuleRead:
    """Enable or disable the rule, override its level (``null`` restores the rule's own), keep notes."""
    rules_service.update_rule(context(request, session, principal), rule_id=rule_id, data=data)
    return rules_service.read_rule(session, rule_id)


@router.get("/rules/{rule_id}/tests")
def read_tests(rule_id: Id, principal: RulesReader, session: SessionDep) -> RuleTestReport:
    """The rule's test cases, each run through the parsers and the engine: passed or failed, expected and
    got (``unreadable`` with the parser's reason for a record that does not parse)."""
    return rule_tests.run_tests(session, rule_id=rule_id)


@router.post("/rules/{rule_id}/tests/run")
def try_events(rule_id: Id, data: RuleTestRun, principal: RulesReader, session: SessionDep) -> RuleTestReport:
    """Try events on the rule (at most 50, each at most 64 KiB); nothing is stored. Each event names its
    ``format`` (a parser; none: detected) and, optionally, what it ``expect``s."""
    return rule_tests.try_events(session, rule_id=rule_id, events=data.events)


@router.post("/rules/{rule_id}/tests", status_code=201)
def add_test(rule_id: Id, data: RuleTestCreate, request: Request, principal: RulesWriter,
             session: SessionDep) -> RuleTestReport:
    """Store a test case on the rule (at most 50; its record must parse with its format); the rule's cases,
    run."""
    return rule_tests.add_test(context(request, session, principal), rule_id=rule_id, data=data)


@router.delete("/rules/{rule_id}/tests/{index}")
def delete_test(rule_id: Id, index: CaseIndex, request: Request, principal: RulesWriter,
                session: SessionDep) -> RuleTestReport:
    """Remove the test case at ``index`` (from 0, as listed); the remaining cases, run."""
    return rule_tests.delete_test(context(request, session, principal), rule_id=rule_id, index=index)


@router.get("/rule-packs")
def list_packs(principal: RulesReader, session: SessionDep,
               pages: Annotated[PageParams, Depends(page_params)]) -> Page[RulePackRead]:
    """Imported packs by name: source, version (git commit, archive or digest), rule count, rules that did
    not load."""
    packs = rules_service.list_packs(session)
    return Page(items=[rules_service.pack_read(pack) for pack in packs[pages.offset:pages.offset + pages.limit]],
                total=len(packs), limit=pages.limit, offset=pages.offset)


@router.post("/rule-packs/import")
def import_pack(
    request: Request,
    principal: RulesWriter,
    session: SessionDep,
    file: Annotated[UploadFile | None, File(description="A .zip of Sigma rules or one .yml/.yaml rule.")] = None,
    yaml: Annotated[str | None, Form(max_length=MAX_RULE_TEXT, description="Or the text of one rule.")] = None,
    pack: Annotated[str | None, Form(max_length=200, description="Pack name; default: the file's name.")] = None,
    enable: Annotated[EnablePolicy, Form(description="Which new rules start enabled.")] = EnablePolicy.stable_test,
) -> ImportResult:
    """Import (or update) a pack from an uploaded zip or rule file; the upload replaces that pack's rules.
    The answer is the diff: rules added, updated, removed, unchanged, and those that did not load (with
    file and line). Without a file, ``yaml`` holds one rule, added to ``pack`` (default ``local``) without
    removing the pack's other rules."""
    ctx = context(request, session, principal)
    if (file is None) == (yaml is None):
        raise BadInput("send either a file (a .zip or .yml) or the text of one rule in yaml")
    if file is not None:
        limit = settings_of(request).max_body_bytes
        content = file.file.read(limit + 1)
        if len(content) > limit:
            raise PayloadTooLarge(f"the upload is larger than {limit:,} bytes")
        return rules_import.import_upload(ctx, filename=file.filename or "", content=content, name=pack or None,
                                          enable=enable)
    assert yaml is not None
    return rules_import.add_rule_text(ctx, text=yaml, pack=pack or "local", enable=enable)
