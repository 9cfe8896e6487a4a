"""Hunts over stored events: Sigma rules run over a time window of the event store, recorded as ``Hunt``.

A hunt names its rules (Sigma ids; none: every enabled rule), a window and optionally an extra filter in
the search language; it reads only the events of the units where its author may read events. It is
recorded (who, rules, query, window, status, events scanned, hits per rule with the first matching
events) and audited when started. The matching itself runs in the store (``store_hunt``).

A window holding many events runs in a background thread (status ``running``, then ``done`` or
``failed``); a small one runs at once, so the caller gets the result in the same request. Service
functions take a ``Context`` or a session and never commit, except that ``run_hunt`` records the outcome
in a transaction of its own (it may run in another thread, after the request that started it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from vigil.core.context import Context
from vigil.core.db import Database, Scope, utcnow
from vigil.core.errors import BadInput, NotFound
from vigil.core.pagination import PageParams
from vigil.detection import placeholders_service, rules_service
from vigil.detection.models import DetectionRule, Hunt
from vigil.detection.schemas_hunts import HuntCreate, HuntEventRef, HuntRead, HuntRuleHits, HuntSummary
from vigil.detection.sigma import Rule, RuleError, rule_from_yaml
from vigil.detection.store_hunt import StoreHuntResult, Window, count_events, event_units, hunt_store
from vigil.siem import search
from vigil.siem.store.duckdb import DuckDBEventStore

log = logging.getLogger(__name__)

STATUSES = ("running", "done", "failed")
SAMPLE_EVENTS = 20  # events kept per rule in the record (the count covers them all)
# A window holding more events than this runs in the background.
BACKGROUND_EVENTS = 200_000


@dataclass(frozen=True)
class HuntPlan:
    """A recorded hunt ready to run: its id, rules and where it looks."""

    hunt_id: int
    rules: list[Rule]
    window: Window
    background: bool


# --- starting ----------------------------------------------------------------------------------------


def resolve_window(data: HuntCreate, *, now: datetime | None = None) -> search.TimeRange:
    """The hunt's window: ``start``/``end`` when given, else ``range`` (``24h``, ``START/END``)."""
    now = now or datetime.now(UTC)
    if data.start is None:
        if data.end is not None:
            raise BadInput("give the window's start with its end", errors=[{"field": "start", "message": "missing"}])
        return search.time_range(data.range or "24h", now=now)
    start, end = data.start.astimezone(UTC), (data.end or now).astimezone(UTC)
    if end <= start:
        raise BadInput("the window's end must be after its start", errors=[{"field": "end", "message": "too early"}])
    if end - start > search.MAX_RANGE:
        raise BadInput(f"a hunt covers at most {search.MAX_RANGE.days} days")
    return search.TimeRange(start, end)


def enabled_rules(database: Database) -> list[Rule]:
    """Every enabled rule, compiled (cached by ``rules_service``). It takes a transaction of its own: call it
    before the caller's session writes (on SQLite every transaction takes the write lock)."""
    return rules_service.enabled_rules(database)[1]


def select_rules(session: Session, enabled: Sequence[Rule], uids: Sequence[str]) -> list[Rule]:
    """The rules to hunt with: the named ones (enabled or not), or every enabled rule (``enabled``)."""
    if not uids:
        if not enabled:
            raise BadInput("no rule is enabled: enable rules or name the ones to hunt with")
        return list(enabled)
    wanted = list(dict.fromkeys(uid.strip() for uid in uids if uid.strip()))
    by_uid = {rule.id: rule for rule in enabled}
    rules = [by_uid[uid] for uid in wanted if uid in by_uid]
    missing = [uid for uid in wanted if uid not in by_uid]
    if missing:
        rows = session.execute(select(DetectionRule.rule_uid, DetectionRule.yaml, DetectionRule.path)
                               .where(DetectionRule.rule_uid.in_(missing)).order_by(DetectionRule.id)).all()
        found: dict[str, Rule] = {}
        placeholders = placeholders_service.values_of(session)
        for uid, text, path in rows:
            if uid in found:
                continue
            try:
                rule = rule_from_yaml(text, path=path, placeholders=placeholders)
            except RuleError as exc:
                raise BadInput(f"the rule {uid} does not compile: {exc}") from None
            found[uid] = rule if rule.id == uid else replace(rule, id=uid)
        unknown = [uid for uid in missing if uid not in found]
        if unknown:
            raise BadInput(f"no such rule: {', '.join(unknown[:10])}",
                           errors=[{"field": "rule_uids", "message": f"unknown: {', '.join(unknown[:10])}"}])
        rules += [found[uid] for uid in missing]
    if not rules:
        raise BadInput("name at least one rule, or none to hunt with every enabled rule")
    return rules


def begin_hunt(ctx: Context, *, enabled: Sequence[Rule], store: DuckDBEventStore, data: HuntCreate,
               units: Collection[int] | None, unit_id: int, now: datetime | None = None) -> tuple[Hunt, HuntPlan]:
    """Record a hunt (status ``running``) and audit it; the plan to hand to ``launch`` once committed.

    ``enabled``: ``enabled_rules()``; ``units``: the units whose events it reads (None: all, for the
    operator); ``unit_id``: the unit it is recorded in."""
    window = resolve_window(data, now=now)
    compiled = search.compile_text(data.query, now=window.end)  # a syntax error before anything is recorded
    rules = select_rules(ctx.session, enabled, data.rule_uids)
    scope = Window(window.start, window.end, None if units is None else sorted(units), compiled.sql,
                   compiled.params)
    background = data.background
    if background is None:
        background = count_events(store, scope) > BACKGROUND_EVENTS
    hunt = Hunt(unit_id=unit_id, name=data.name, created_by=ctx.actor.name,
                rule_uids=[rule.id for rule in rules] if data.rule_uids else [],
                query=search.canonical(data.query) if data.query.strip() else "",
                window_start=window.start, window_end=window.end, status="running")
    ctx.session.add(hunt)
    ctx.session.flush()
    ctx.audit("hunt.start", target_type="hunt", target_id=hunt.id, unit_id=hunt.unit_id,
              details={"name": hunt.name, "rules": len(rules), "rule_uids": hunt.rule_uids[:50],
                       "query": hunt.query, "window_start": window.start.isoformat(),
                       "window_end": window.end.isoformat()})
    return hunt, HuntPlan(hunt.id, rules, scope, background)


# --- running -----------------------------------------------------------------------------------------


def results_of(store: DuckDBEventStore, rules: Sequence[Rule], found: StoreHuntResult) -> list[dict[str, Any]]:
    """Per rule with hits: uid, title, level, count and the first events ([id, unit id]), most hits first."""
    by_uid = {rule.id: rule for rule in rules}
    samples = {uid: ids[:SAMPLE_EVENTS] for uid, ids in found.hits.items()}
    units = event_units(store, [event_id for ids in samples.values() for event_id in ids])
    results = [{"uid": uid, "title": by_uid[uid].title, "level": by_uid[uid].level, "count": len(ids),
                "events": [[event_id, units[event_id]] for event_id in samples[uid] if event_id in units]}
               for uid, ids in found.hits.items()]
    return sorted(results, key=lambda item: (-int(item["count"]), str(item["title"])))


def run_hunt(database: Database, store: DuckDBEventStore, plan: HuntPlan) -> None:
    """Run a recorded hunt and record its outcome (``done`` with hits, or ``failed`` with the reason)."""
    try:
        found = hunt_store(store, plan.rules, plan.window)
        results = results_of(store, plan.rules, found)
    except Exception as exc:  # any failure ends the hunt as failed, with the reason for whoever started it
        log.exception("hunt %s failed", plan.hunt_id)
        _finish(database, plan.hunt_id, status="failed", error=str(exc).splitlines()[0][:500] or type(exc).__name__)
        return
    _finish(database, plan.hunt_id, status="done", events=found.events_scanned,
            hits=sum(len(ids) for ids in found.hits.values()), results=results)


def _finish(database: Database, hunt_id: int, *, status: str, events: int = 0, hits: int = 0,
            results: list[dict[str, Any]] | None = None, error: str | None = None) -> None:
    with database.transaction(Scope.system()) as session:
        hunt = session.get(Hunt, hunt_id)
        if hunt is None:
            return
        hunt.status, hunt.events_scanned, hunt.hits = status, events, hits
        hunt.results, hunt.error, hunt.finished_at = results or [], error, datetime.now(UTC)


def launch(database: Database, store: DuckDBEventStore, plan: HuntPlan) -> threading.Thread | None:
    """Run the hunt: in a background thread when the plan says so (the thread is returned), else now."""
    if not plan.background:
        run_hunt(database, store, plan)
        return None
    thread = threading.Thread(target=run_hunt, args=(database, store, plan), name=f"vigil-hunt-{plan.hunt_id}",
                              daemon=True)
    thread.start()
    return thread


# --- reading -----------------------------------------------------------------------------------------


def fail_interrupted(database: Database) -> int:
    """Mark the hunts a stopped server left running as failed (at start-up); how many there were. An
    unreachable records store is no reason not to start (readiness says it is down): 0 then."""
    try:
        with database.transaction(Scope.system()) as session:
            running = list(session.scalars(select(Hunt).where(Hunt.status == "running")))
            for hunt in running:
                hunt.status, hunt.error, hunt.finished_at = ("failed", "the server stopped before the hunt ended",
                                                             utcnow())
    except SQLAlchemyError as exc:
        log.warning("hunts left running by a stopped server not checked: %s", str(exc).splitlines()[0])
        return 0
    return len(running)


def list_hunts(session: Session, *, params: PageParams) -> tuple[list[Hunt], int]:
    """Hunts of the session's units, newest first."""
    total = session.scalar(select(func.count()).select_from(Hunt)) or 0
    items = list(session.scalars(select(Hunt).order_by(Hunt.id.desc()).limit(params.limit).offset(params.offset)))
    return items, int(total)


def get_hunt(session: Session, hunt_id: int) -> Hunt:
    """One hunt of the session's units; ``NotFound`` for another unit's as for one that does not exist."""
    hunt = session.get(Hunt, hunt_id)
    if hunt is None:
        raise NotFound(f"No hunt {hunt_id}")
    return hunt


def search_url(hunt: Hunt) -> str:
    """The search page over the hunt's window and filter."""
    start = hunt.window_start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = hunt.window_end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "/siem/search?" + urlencode({"q": hunt.query, "range": f"{start}/{end}"})


def hunt_read(hunt: Hunt, *, units: Collection[int] | None) -> HuntRead:
    """The hunt with its per-rule hits; sample events only of ``units`` (None: all)."""
    rules: list[HuntRuleHits] = []
    link = search_url(hunt)
    for item in hunt.results or []:
        events = [HuntEventRef(id=int(event_id), unit_id=int(unit), url=f"/siem/events/{int(event_id)}")
                  for event_id, unit in item.get("events", []) if units is None or int(unit) in units]
        rules.append(HuntRuleHits(uid=str(item["uid"]), title=str(item["title"]), level=str(item["level"]),
                                  count=int(item["count"]), events=events, search_url=link))
    summary = HuntSummary.model_validate(hunt).model_dump()
    return HuntRead(**summary, rules=rules, rules_hunted=len(hunt.rule_uids) if hunt.rule_uids else None)
