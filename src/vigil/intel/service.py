"""Taking intelligence in: a file or a feed's download read by its format, indicators merged into the store,
actors, campaigns and the like recorded, warninglists and the allow-list applied, every refused item
listed with its position.

Service functions take a ``Context`` (who acts, the session) and never commit: the caller owns the
transaction. The indicator store (DuckDB) commits its own merge; a pull that fails before the merge
leaves the indicators already held untouched.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import BadInput, NotFound
from vigil.core.memory import collector_paused
from vigil.intel.attack_import import SOURCE as ATTACK_SOURCE
from vigil.intel.attack_import import attack_entities
from vigil.intel.feeds.base import feed_parsers
from vigil.intel.indicators import (
    TLP_LEVELS,
    IndicatorType,
    InvalidValue,
    ItemError,
    ParsedEntity,
    ParsedIndicator,
    ParsedItem,
    normalise,
)
from vigil.intel.models import IntelAllowlist, IntelEntity, IntelPull
from vigil.intel.staging import NativeRows, Stager, StagingParser
from vigil.intel.store import DecayPolicy, IntelStore, MergeResult
from vigil.intel.warninglists import WarninglistIndex

log = logging.getLogger(__name__)

KEPT_ERRORS = 100  # item errors kept on a pull's record (all are counted)


@dataclass
class Intake:
    """What a parse stream held besides indicators, collected while the indicators stream to the store."""

    entities: list[ParsedEntity] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    error_count: int = 0

    def split(self, items: Iterable[ParsedItem], defaults: Mapping[str, Any]) -> Iterator[ParsedIndicator]:
        apply = {k: v for k, v in defaults.items() if v}
        for item in items:
            if isinstance(item, ParsedIndicator):
                yield _with_defaults(item, apply) if apply else item
            elif isinstance(item, ParsedEntity):
                self.entities.append(item)
            else:
                self.refuse(item)

    def refuse(self, error: ItemError) -> None:
        self.error_count += 1
        if len(self.errors) < KEPT_ERRORS:
            self.errors.append(error)


def _with_defaults(item: ParsedIndicator, defaults: Mapping[str, Any]) -> ParsedIndicator:
    """A feed's own confidence, TLP and tags fill what its items leave out."""
    changes: dict[str, Any] = {}
    if item.confidence is None and defaults.get("confidence") is not None:
        changes["confidence"] = defaults["confidence"]
    if item.tlp is None and defaults.get("tlp"):
        changes["tlp"] = defaults["tlp"]
    if defaults.get("tags"):
        changes["tags"] = tuple(dict.fromkeys((*item.tags, *defaults["tags"])))
    return dataclasses.replace(item, **changes) if changes else item


def policies_of(decay: Mapping[str, Mapping[str, float]]) -> dict[str, DecayPolicy]:
    """Decay settings as a feed stores them ({type or "*": {...}}), checked."""
    policies: dict[str, DecayPolicy] = {}
    for kind, values in decay.items():
        if kind != "*":
            try:
                IndicatorType(kind)
            except ValueError:
                raise BadInput(f"decay: unknown indicator type {kind!r}") from None
        try:
            policy = DecayPolicy(**{k: float(v) for k, v in values.items()})
        except (TypeError, ValueError) as exc:
            raise BadInput(f"decay for {kind}: {exc}; give base_score, lifetime_days, decay_speed, threshold") from None
        if not (0 <= policy.base_score <= 100 and policy.lifetime_days > 0 and policy.decay_speed > 0
                and 0 <= policy.threshold <= 100):
            raise BadInput(f"decay for {kind}: base_score and threshold lie in 0..100, lifetime_days and "
                           "decay_speed above 0")
        policies[kind] = policy
    return policies


def check_tlp(tlp: str | None) -> str | None:
    if tlp is None or tlp == "":
        return None
    value = tlp.lower().removeprefix("tlp:")
    value = "clear" if value == "white" else value
    if value not in TLP_LEVELS:
        raise BadInput(f"TLP {tlp!r} is not one of {', '.join(TLP_LEVELS)}")
    return value


@dataclass(frozen=True)
class IntakeResult:
    pull: IntelPull
    merge: MergeResult


def take_in(ctx: Context, store: IntelStore, *, stream: BinaryIO, fmt: str, options: Mapping[str, Any],
            source: str, feed_id: int | None = None, replace: bool = False, version: str = "",
            decay: Mapping[str, Mapping[str, float]] | None = None, defaults: Mapping[str, Any] | None = None,
            warninglists: WarninglistIndex | None = None, items: Iterable[ParsedItem] | None = None) -> IntakeResult:
    """Read ``stream`` as ``fmt`` (or take ready ``items``, as the MISP feed and TAXII readers give) and merge
    it as ``source``. A source that is not of its format raises ``BadInput`` and changes nothing."""
    pull = IntelPull(feed_id=feed_id, source=source[:300], by=ctx.actor.name, started_at=utcnow())
    intake = Intake()
    stager = Stager({})  # the decay policies are checked below, after the format and its options, as ever
    lines: Iterable[str]
    native: NativeRows | None = None
    if items is None:
        parser = feed_parsers().get(fmt)
        if parser is None:
            raise BadInput(f"unknown intelligence format {fmt!r}; one of {', '.join(sorted(feed_parsers()))}")
        if isinstance(parser, StagingParser):  # rows straight to staging lines, the same as through items
            apply = {k: v for k, v in (defaults or {}).items() if v}
            finish: Callable[[ParsedIndicator], ParsedIndicator] = (
                (lambda item: _with_defaults(item, apply)) if apply else (lambda item: item))
            lines = parser.stage(stream, options, stager, refuse=intake.refuse, finish=finish)
            native = parser.native(stream, options, stager, refuse=intake.refuse, finish=finish)  # a big block list
        else:
            items = parser.parse(stream, options)
    if items is not None:
        lines = map(stager.line, itertools.count(), intake.split(items, defaults or {}))
    stager.policies = policies_of(decay or {})  # before any line is read: the lines name policies lazily
    with collector_paused():  # a million short-lived items: reference counting frees them, no cycle to find
        merged = store.merge_lines(lines, stager, source=source, version=version, replace=replace, native=native)
    ctx.session.add(pull)  # only now: a source refused whole leaves no pull behind (the caller records why)
    entities = record_entities(ctx.session, intake.entities, source=source)
    flagged = flag_indicators(ctx.session, store, source=source, warninglists=warninglists, ids=merged.fresh)
    pull.finished_at = utcnow()
    pull.outcome = "ok"
    pull.received, pull.added, pull.updated, pull.removed = (merged.received, merged.added, merged.updated,
                                                             merged.removed)
    pull.entities = entities
    pull.error_count = intake.error_count
    pull.errors = [{"position": e.position, "reason": e.reason} for e in intake.errors]
    pull.warninglisted = flagged
    ctx.session.flush()
    ctx.audit("intel.import", target_type="intel_pull", target_id=pull.id,
              details={"source": source, "format": fmt, "received": merged.received, "added": merged.added,
                       "errors": intake.error_count})
    return IntakeResult(pull=pull, merge=merged)


def record_entities(session: Session, entities: Sequence[ParsedEntity], *, source: str) -> int:
    """Actors, campaigns, malware, reports and techniques: one row per (kind, name), merged."""
    if not entities:
        return 0
    wanted = {(e.kind, e.name[:300]) for e in entities}
    rows = {(row.kind, row.name): row for row in session.scalars(
        select(IntelEntity).where(IntelEntity.name.in_([name for _, name in wanted])))}
    now = utcnow()
    for entity in entities:
        key = (entity.kind, entity.name[:300])
        row = rows.get(key)
        if row is None:
            row = IntelEntity(kind=entity.kind, name=key[1], external_id=entity.external_id[:200],
                              description=entity.description, aliases=[], attack_ids=[], related=[], sources=[],
                              created_at=now)
            session.add(row)
            rows[key] = row
        row.description = row.description or entity.description
        row.external_id = row.external_id or entity.external_id[:200]
        row.aliases = list(dict.fromkeys([*row.aliases, *entity.aliases]))
        row.attack_ids = list(dict.fromkeys([*row.attack_ids, *entity.attack_ids]))
        related = [{"kind": r.kind, "name": r.name, "external_id": r.external_id} for r in entity.related]
        row.related = [*row.related, *(r for r in related if r not in row.related)]
        row.sources = list(dict.fromkeys([*row.sources, source]))
        row.first_seen = _earliest(row.first_seen, entity.first_seen)
        row.last_seen = _latest(row.last_seen, entity.last_seen)
        row.updated_at = now
    session.flush()
    return len(wanted)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((x for x in (a, b) if x is not None), default=None, key=_utc)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((x for x in (a, b) if x is not None), default=None, key=_utc)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def flag_indicators(session: Session, store: IntelStore, *, source: str,
                    warninglists: WarninglistIndex | None, ids: Sequence[int] | None = None) -> int:
    """Mark what a source states (or only ``ids``: what is new from it) that sits on a warninglist, and
    (re)mark the allow-listed values. Returns how many of those are warninglisted."""
    flags: dict[int, list[str]] = {}
    if warninglists is not None:
        checked = store.triples(ids) if ids is not None else store.of_source(source)
        for indicator_id, kind, value in checked:
            if kind == IndicatorType.PATTERN:
                continue
            hits = warninglists.check(IndicatorType(kind), value)
            if hits:
                flags[indicator_id] = [hit.name for hit in hits]
    allowed = [(row.type, row.value) for row in session.scalars(select(IntelAllowlist))]
    store.set_flags(warninglists=flags, allowlisted=allowed)
    return len(flags)


# --- the allow-list ---------------------------------------------------------------------------------


def allow(ctx: Context, store: IntelStore, *, kind: str, value: str, reason: str,
          sighting_id: int | None = None) -> IntelAllowlist:
    """Allow-list a value: it raises no alert any more, whatever states it."""
    try:
        canonical = normalise(kind, value)
    except InvalidValue as exc:
        raise BadInput(str(exc)) from None
    if not reason.strip():
        raise BadInput("say why the value is harmless: the reason is what the next analyst reads")
    row = ctx.session.scalars(select(IntelAllowlist).where(IntelAllowlist.type == str(IndicatorType(kind)),
                                                           IntelAllowlist.value == canonical)).first()
    if row is None:
        row = IntelAllowlist(type=str(IndicatorType(kind)), value=canonical, reason=reason.strip(),
                             sighting_id=sighting_id, created_by=ctx.actor.name)
        ctx.session.add(row)
        ctx.session.flush()
        ctx.audit("intel.allowlist.add", target_type="intel_allowlist", target_id=row.id,
                  details={"type": row.type, "value": canonical, "reason": row.reason})
    _refresh_allowlist(ctx.session, store)
    return row


def disallow(ctx: Context, store: IntelStore, *, allow_id: int) -> None:
    row = ctx.session.get(IntelAllowlist, allow_id)
    if row is None:
        raise NotFound(f"no allow-list entry {allow_id}")
    ctx.session.delete(row)
    ctx.session.flush()
    ctx.audit("intel.allowlist.remove", target_type="intel_allowlist", target_id=allow_id,
              details={"type": row.type, "value": row.value})
    _refresh_allowlist(ctx.session, store)


def allowlist(session: Session) -> list[IntelAllowlist]:
    return list(session.scalars(select(IntelAllowlist).order_by(IntelAllowlist.created_at.desc())))


def _refresh_allowlist(session: Session, store: IntelStore) -> None:
    store.set_flags(allowlisted=[(row.type, row.value) for row in session.scalars(select(IntelAllowlist))])


# --- entities ---------------------------------------------------------------------------------------


def import_attack(ctx: Context) -> int:
    """ATT&CK's groups, campaigns and software (offline data) as entities; how many."""
    found = list(attack_entities())
    count = record_entities(ctx.session, found, source=ATTACK_SOURCE)
    ctx.audit("intel.attack.import", target_type="intel_entities", details={"source": ATTACK_SOURCE,
                                                                             "entities": count})
    return count


def entities_query(*, kind: str | None = None, text: str = "") -> Select[IntelEntity]:
    """Actors, campaigns and the rest by kind and name."""
    query = select(IntelEntity).order_by(IntelEntity.kind, IntelEntity.name)
    if kind:
        query = query.where(IntelEntity.kind == kind)
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(IntelEntity.name.ilike(f"%{escaped}%", escape="\\"))
    return query


def entity(session: Session, entity_id: int) -> IntelEntity:
    row = session.get(IntelEntity, entity_id)
    if row is None:
        raise NotFound(f"no actor, campaign or other entity {entity_id}")
    return row
