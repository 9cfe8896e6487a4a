"""Detection rules as the SOC manages them: listing with filters, one rule, its settings (enabled, level
override, notes), bulk enable/disable, rule packs, and the enabled rules compiled for live detection.

Rules are platform-wide records (not unit-scoped). Service functions take a ``Context`` or a session,
write the audit trail for every change, and never commit: the caller owns the transaction. Importing
packs lives in ``rules_import``.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session, object_session

from vigil.core.context import Context
from vigil.core.db import Database, Scope, utcnow
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.pagination import Page, PageParams
from vigil.detection import placeholders_service
from vigil.detection.models import DetectionRule, RulePack
from vigil.detection.schemas_rules import RuleBulkResult, RuleFilters, RulePackRead, RuleRead, RuleUpdate
from vigil.detection.sigma import Rule, RuleError, load_rules, rule_from_yaml
from vigil.detection.sigma.load import CACHE_FORMAT, write_atomically
from vigil.detection.sigma.placeholders import Placeholders, used_in
from vigil.detection.sigma.placeholders import digest as placeholders_digest

log = logging.getLogger(__name__)

# The enterprise ATT&CK tactics, in kill-chain order, as Sigma tags name them (for filter menus).
TACTICS = ("reconnaissance", "resource-development", "initial-access", "execution", "persistence",
           "privilege-escalation", "defense-evasion", "credential-access", "discovery", "lateral-movement",
           "collection", "command-and-control", "exfiltration", "impact")
_TECHNIQUE = re.compile(r"^[Tt]\d{4}(?:\.\d{3})?$")
_TECHNIQUE_TAG = re.compile(r"^attack\.t\d{4}(?:\.\d{3})?$")
_GROUP_TAG = re.compile(r"^attack\.[gs]\d{4}$")


# --- shapes ----------------------------------------------------------------------------------------


def pack_read(pack: RulePack) -> RulePackRead:
    return RulePackRead.model_validate(pack)


def tactics_of(tags: Sequence[str]) -> list[str]:
    return [tag[7:].replace("_", "-") for tag in tags if tag.lower().startswith("attack.")
            and not _TECHNIQUE_TAG.match(tag.lower()) and not _GROUP_TAG.match(tag.lower())]


def techniques_of(tags: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(tag[7:].upper() for tag in tags if _TECHNIQUE_TAG.match(tag.lower())))


def rule_read(row: DetectionRule, pack: str) -> RuleRead:
    fields = {column.key: getattr(row, column.key) for column in DetectionRule.__table__.columns}
    return RuleRead.model_validate({**fields, "pack": pack, "effective_level": row.effective_level,
                                    "tactics": tactics_of(row.tags), "techniques": techniques_of(row.tags)})


# --- reading ---------------------------------------------------------------------------------------


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tag_holds(tag: str, *, prefix: bool = False) -> Any:
    """The rule's tags (a JSON list) hold ``tag`` (or, with ``prefix``, a tag starting ``tag.``)."""
    text = cast(DetectionRule.tags, String)
    exact = text.ilike(f'%"{_like(tag)}"%', escape="\\")
    return or_(exact, text.ilike(f'%"{_like(tag)}.%', escape="\\")) if prefix else exact


def _filtered(filters: RuleFilters) -> Any:
    query = select(DetectionRule, RulePack.name).join(RulePack, RulePack.id == DetectionRule.pack_id)
    if filters.level:
        query = query.where(func.coalesce(DetectionRule.level_override, DetectionRule.level) == filters.level)
    if filters.status:
        query = query.where(DetectionRule.status == filters.status.lower())
    if filters.tactic:
        tactic = filters.tactic.strip().lower().removeprefix("attack.")
        query = query.where(or_(_tag_holds(f"attack.{tactic.replace('_', '-')}"),
                                _tag_holds(f"attack.{tactic.replace('-', '_')}")))
    if filters.technique:
        technique = filters.technique.strip()
        if not _TECHNIQUE.fullmatch(technique):
            raise BadInput(f"{technique!r} is not an ATT&CK technique id such as T1059 or T1059.001")
        query = query.where(_tag_holds(f"attack.{technique.lower()}", prefix="." not in technique))
    for column, value in ((DetectionRule.product, filters.product), (DetectionRule.category, filters.category),
                          (DetectionRule.service, filters.service)):
        if value:
            query = query.where(column == value)
    if filters.pack:
        query = query.where(RulePack.name == filters.pack)
    if filters.enabled is not None:
        query = query.where(DetectionRule.enabled.is_(filters.enabled))
    if filters.q:
        query = query.where(or_(DetectionRule.title.ilike(f"%{_like(filters.q)}%", escape="\\"),
                                DetectionRule.rule_uid == filters.q.strip()))
    return query


def list_rules(session: Session, *, filters: RuleFilters | None = None,
               page: PageParams | None = None) -> Page[RuleRead]:
    """Rules matching every filter given, by title."""
    filters = filters or RuleFilters()
    page = page or PageParams(limit=10_000, offset=0)
    query = _filtered(filters)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.execute(query.order_by(DetectionRule.title, DetectionRule.id).limit(page.limit)
                           .offset(page.offset)).all()
    return Page(items=[rule_read(row, name) for row, name in rows], total=total, limit=page.limit,
                offset=page.offset)


def matching_ids(session: Session, filters: RuleFilters) -> list[int]:
    """The ids of every rule matching the filters (for a bulk change of what a listing shows)."""
    query = _filtered(filters).with_only_columns(DetectionRule.id).order_by(DetectionRule.id)
    return list(session.scalars(query))


def get_rule(session: Session, rule_id: int) -> DetectionRule:
    row = session.get(DetectionRule, rule_id)
    if row is None:
        raise NotFound(f"no detection rule with id {rule_id}")
    return row


def read_rule(session: Session, rule_id: int) -> RuleRead:
    row = get_rule(session, rule_id)
    return rule_read(row, get_pack(session, row.pack_id).name)


def find_rule(session: Session, ref: str) -> DetectionRule:
    """A rule by its id, or by its Sigma id when only one pack holds it."""
    ref = ref.strip()
    if ref.isdigit() and len(ref) < 11:
        found = session.get(DetectionRule, int(ref))
        if found is not None:
            return found
    rows = list(session.scalars(select(DetectionRule).where(DetectionRule.rule_uid == ref)))
    if not rows:
        raise NotFound(f"no detection rule with id or Sigma id {ref!r}")
    if len(rows) > 1:
        raise Conflict(f"the Sigma id {ref} is in {len(rows)} packs; use one of the rule ids "
                       + ", ".join(str(row.id) for row in rows))
    return rows[0]


def list_packs(session: Session) -> list[RulePack]:
    return list(session.scalars(select(RulePack).order_by(RulePack.name)))


def get_pack(session: Session, pack_id: int) -> RulePack:
    pack = session.get(RulePack, pack_id)
    if pack is None:
        raise NotFound(f"no rule pack with id {pack_id}")
    return pack


def facets(session: Session) -> dict[str, list[str]]:
    """The values rules have, for filter menus: packs, statuses, products, categories, services."""
    def distinct(column: Any) -> list[str]:
        return sorted(str(value) for value in session.scalars(select(column).distinct()) if value)

    return {"packs": distinct(RulePack.name), "statuses": distinct(DetectionRule.status),
            "products": distinct(DetectionRule.product), "categories": distinct(DetectionRule.category),
            "services": distinct(DetectionRule.service), "tactics": list(TACTICS)}


# --- changing --------------------------------------------------------------------------------------


def update_rule(ctx: Context, *, rule_id: int, data: RuleUpdate) -> DetectionRule:
    """Change the fields given; audited with each change's old and new value (notes: only that they changed)."""
    row = get_rule(ctx.session, rule_id)
    given = data.model_fields_set
    changes: dict[str, Any] = {}
    if "enabled" in given and data.enabled is not None and data.enabled != row.enabled:
        changes["enabled"] = [row.enabled, data.enabled]
        row.enabled = data.enabled
    if "level_override" in given and data.level_override != row.level_override:
        changes["level_override"] = [row.level_override, data.level_override]
        row.level_override = data.level_override
    if "notes" in given and data.notes is not None and data.notes != row.notes:
        changes["notes"] = "changed"
        row.notes = data.notes
    if changes:
        row.updated_at, row.updated_by = utcnow(), ctx.actor.name
        ctx.session.flush()
        ctx.audit("detection.rule.update", target_type="detection_rule", target_id=row.id,
                  details={"rule_uid": row.rule_uid, "title": row.title, "changes": changes})
    return row


def set_enabled(ctx: Context, *, ids: Sequence[int], enabled: bool) -> RuleBulkResult:
    """Enable or disable many rules at once: all of them or, when one id is unknown, none."""
    wanted = sorted(set(ids))
    rows = list(ctx.session.scalars(select(DetectionRule).where(DetectionRule.id.in_(wanted))
                                    .order_by(DetectionRule.id)))
    missing = sorted(set(wanted) - {row.id for row in rows})
    if missing:
        raise NotFound("no detection rules with the ids " + ", ".join(str(i) for i in missing[:20])
                       + (" ..." if len(missing) > 20 else ""))
    changed = [row for row in rows if row.enabled != enabled]
    now = utcnow()
    for row in changed:
        row.enabled, row.updated_at, row.updated_by = enabled, now, ctx.actor.name
    if changed:
        ctx.session.flush()
        ctx.audit("detection.rule.enable" if enabled else "detection.rule.disable", target_type="detection_rule",
                  target_id=changed[0].id if len(changed) == 1 else "",
                  details={"ids": [row.id for row in changed], "count": len(changed)})
    return RuleBulkResult(changed=len(changed), ids=[row.id for row in changed])


# --- the enabled rules, compiled -------------------------------------------------------------------

# (YAML digest, Sigma id, digest of the placeholder values the YAML uses) -> compiled rule, for this process
_compiled: dict[tuple[str, str, str], Rule] = {}
_uses: dict[str, frozenset[str]] = {}  # YAML digest -> the placeholder names that YAML uses
_compiled_lock = threading.Lock()
COMPILED_CACHE = f"compiled-rules-{CACHE_FORMAT}.pickle"
_disk_loaded = False


def _key(digest: str, uid: str, text: str, placeholders: Placeholders | None) -> tuple[str, str, str]:
    """The compiled cache's key of a rule: its YAML, its id and the values of the placeholders it uses."""
    names = _uses.get(digest)
    if names is None:
        names = _uses[digest] = frozenset(used_in(text))
    return digest, uid, placeholders_digest({name: values for name, values in (placeholders or {}).items()
                                             if name in names})


def remember_compiled(digest: str, uid: str, rule: Rule, placeholders: Placeholders | None = None) -> None:
    """Keep a rule compiled at import (with these placeholder values), so live detection does not compile it
    again."""
    with _compiled_lock:
        _compiled[_key(digest, uid, rule.yaml, placeholders)] = rule if rule.id == uid else replace(rule, id=uid)


def _compile(uid: str, text: str, path: str, pack: str, placeholders: Placeholders | None = None) -> Rule:
    rule = rule_from_yaml(text, path=path, pack=pack, placeholders=placeholders)
    if rule.id == uid or "\n---" not in text:
        return rule if rule.id == uid else replace(rule, id=uid)
    # A multi-document file holds several rules; rule_from_yaml gives the first.
    with tempfile.TemporaryDirectory(prefix="vigil-rule-") as folder:
        file = Path(folder) / "rule.yml"
        file.write_text(text, encoding="utf-8")
        for candidate in load_rules([file], pack=pack, placeholders=placeholders).rules:
            if candidate.id == uid:
                return replace(candidate, path=path)
    raise RuleError(f"the rule {uid} is not in its stored YAML", path=path)


def compiled_rule(row: DetectionRule, pack: str, *, placeholders: Placeholders | None = None) -> Rule:
    """The rule as live detection runs it, compiled from its stored YAML (or kept from its import) with the
    placeholders' values (default: the table's, read through the row's session); ``RuleError`` when that
    YAML no longer compiles."""
    if placeholders is None:
        session = object_session(row)
        placeholders = placeholders_service.values_of(session) if session is not None else {}
    with _compiled_lock:
        rule = _compiled.get(_key(row.digest, row.rule_uid, row.yaml, placeholders))
    return rule if rule is not None else _compile(row.rule_uid, row.yaml, row.path, pack, placeholders)


def _load_disk_cache(cache_dir: Path | None) -> None:
    """Compiled rules a previous process kept (once per process): a restart does not compile SigmaHQ's
    3,000 rules again (about 20 s) before live detection has them."""
    global _disk_loaded
    if cache_dir is None or _disk_loaded:
        return
    _disk_loaded = True
    try:
        with (cache_dir / COMPILED_CACHE).open("rb") as handle:
            kept = pickle.load(handle)  # noqa: S301 - written by this module into the data folder
        if isinstance(kept, dict):
            with _compiled_lock:
                for key, rule in kept.items():
                    if isinstance(key, tuple) and len(key) == 3 and isinstance(rule, Rule):  # older caches: 2
                        _compiled.setdefault(key, rule)
                        _uses.setdefault(key[0], frozenset(used_in(rule.yaml)))
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return  # none yet, or from another version: compiled again


def _save_disk_cache(cache_dir: Path | None, keys: set[tuple[str, str, str]]) -> None:
    if cache_dir is None:
        return
    with _compiled_lock:
        kept = {key: _compiled[key] for key in keys if key in _compiled}
    error = write_atomically(cache_dir / COMPILED_CACHE, pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL))
    if error is not None:
        log.warning("compiled rules not cached in %s: %s", cache_dir, error)


def enabled_rules(db: Database, *, cache_dir: Path | None = None) -> tuple[str, list[Rule]]:
    """A version of the enabled set (it changes with the set, an override, a YAML or the values of a
    placeholder a rule uses), and its rules compiled with level overrides applied and the placeholders'
    values (``placeholders_service``). A Sigma id enabled in two packs runs once (the older pack's).
    ``cache_dir``: where compiled rules are kept across restarts."""
    _load_disk_cache(cache_dir)
    with db.transaction(Scope.system()) as session:
        placeholders = placeholders_service.values_of(session)
        rows = session.execute(
            select(DetectionRule.id, DetectionRule.rule_uid, DetectionRule.digest, DetectionRule.level_override,
                   RulePack.name)
            .join(RulePack, RulePack.id == DetectionRule.pack_id)
            .where(DetectionRule.enabled.is_(True), DetectionRule.kind != "correlation")
            .order_by(DetectionRule.pack_id, DetectionRule.id)).all()
        chosen: dict[str, Any] = {}
        for row in rows:
            chosen.setdefault(row.rule_uid, row)
        with _compiled_lock:
            # Rules never compiled here, or whose placeholders' values changed (or are not known yet).
            wanted = [row.id for row in chosen.values() if row.digest not in _uses
                      or _key(row.digest, row.rule_uid, "", placeholders) not in _compiled]
        texts: dict[int, tuple[str, str]] = {}
        for start in range(0, len(wanted), 500):
            for rule_id, text, path in session.execute(select(DetectionRule.id, DetectionRule.yaml,
                                                              DetectionRule.path)
                                                       .where(DetectionRule.id.in_(wanted[start:start + 500]))):
                texts[rule_id] = (text, path)
    digest = hashlib.sha256()
    rules: list[Rule] = []
    current: set[tuple[str, str, str]] = set()
    for uid, row in sorted(chosen.items()):
        text, path = texts.get(row.id, ("", ""))
        with _compiled_lock:
            if row.digest not in _uses and row.id not in texts:  # looked at, forgotten since: next call
                continue
            key = _key(row.digest, uid, text, placeholders)
            rule = _compiled.get(key)
        current.add(key)
        values = f"\0{key[2]}" if key[2] else ""  # only rules using placeholders: versions stay as they were
        digest.update(f"{uid}\0{row.digest}\0{row.level_override or ''}{values}\n".encode())
        if rule is None:
            if row.id not in texts:  # compiled when looked at, forgotten since: next call compiles it
                continue
            try:
                rule = _compile(uid, text, path, row.name, placeholders)
            except RuleError as exc:
                log.warning("detection rule %s (%s) no longer compiles and is skipped: %s", row.id, uid, exc)
                continue
            with _compiled_lock:
                _compiled[key] = rule
        rules.append(replace(rule, level=row.level_override) if row.level_override else rule)
    _forget_unused(current)
    if wanted:
        _save_disk_cache(cache_dir, current)
    return digest.hexdigest()[:32], rules


def _forget_unused(current: set[tuple[str, str, str]]) -> None:
    """Drop compiled rules of old YAML versions and disabled rules once they outnumber the enabled ones."""
    with _compiled_lock:
        if len(_compiled) > 2 * len(current) + 1_000:
            for key in [key for key in _compiled if key not in current]:
                del _compiled[key]
