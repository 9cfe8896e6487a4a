"""Turning rule matches into alerts: suppressions first, then deduplication, then a new alert.

A batch of matches is recorded in one transaction. Matches of one rule whose event has the same unit,
host, user and source IP share a dedup key: while an alert with that key is open (new or
acknowledged) and was last seen within ``alert_dedup_minutes``, further matches raise its ``count``
and ``last_seen`` instead of opening another alert. A suppression (the tuning loop: a rule, or every
rule, and field conditions, with a reason and an expiry) swallows the matches whose event meets all
its conditions; it counts them so that nobody forgets it is there.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select

from vigil.core.db import Database, Scope
from vigil.detection.models import Alert, DetectionRule, Suppression
from vigil.detection.sigma import Rule
from vigil.detection.sigma.predicates import MISSING, as_text, field_value, scalars

OPEN_STATES = ("new", "acknowledged")
SUPPRESSION_OPS = ("equals", "contains", "startswith", "endswith", "cidr", "exists")
# An alert keeps its first event whole up to this size; a bigger one keeps only its short fields.
MAX_EVENT_BYTES = 64 * 1024
_HOST_FIELDS = ("host.hostname", "host.name", "Computer", "hostname")
_USER_FIELDS = ("user.name", "TargetUserName", "SubjectUserName", "User", "AccountName", "user")
_IP_FIELDS = ("source.ip", "IpAddress", "SourceIp", "src_ip", "id.orig_h", "c-ip")
_TIME_FIELDS = ("@timestamp", "TimeCreated_SystemTime", "timestamp")


@dataclass(frozen=True)
class Match:
    """One event matched by one rule, with where the event came from."""

    rule: Rule
    event: Mapping[str, Any]
    unit_id: int
    source: str
    origin: str = "sigma"
    key: str = ""  # more identity for deduplication than host, user and source IP (a silent source's name)


@dataclass(frozen=True)
class RecordResult:
    raised: int = 0
    deduplicated: int = 0
    suppressed: int = 0


def record_matches(db: Database, matches: Sequence[Match], *, dedup_minutes: int = 60,
                   now: datetime | None = None) -> RecordResult:
    """Record a batch of matches as alerts (one transaction); what became of them."""
    if not matches:
        return RecordResult()
    now = now or datetime.now(UTC)
    raised = deduplicated = suppressed = 0
    with db.transaction(Scope.system()) as session:
        suppressions = _active_suppressions(session, {m.unit_id for m in matches}, now)
        rules = _rule_rows(session, {m.rule.id for m in matches})
        pending: dict[str, Alert] = {}
        for match in matches:
            blocking = next((s for s in suppressions
                             if s.unit_id == match.unit_id and s.rule_uid in (None, match.rule.id)
                             and suppression_holds(s.conditions, match.event)), None)
            if blocking is not None:
                blocking.hits += 1
                blocking.last_hit_at = now
                suppressed += 1
                continue
            fields = alert_fields(match.event)
            seen = event_time(match.event) or now
            key = dedup_key(match.rule.id, match.unit_id, fields, match.key)
            alert = pending.get(key)
            if alert is None and dedup_minutes > 0:
                alert = session.scalars(
                    select(Alert).where(Alert.dedup_key == key, Alert.status.in_(OPEN_STATES),
                                        Alert.last_seen >= seen - timedelta(minutes=dedup_minutes))
                    .order_by(Alert.last_seen.desc()).limit(1)).first()
            row = rules.get(match.rule.id)
            if alert is not None:
                alert.count += 1
                alert.last_seen = max(alert.last_seen, seen)
                alert.updated_at = now
                pending[key] = alert
                deduplicated += 1
                continue
            alert = Alert(
                unit_id=match.unit_id, rule_id=row.id if row is not None else None, rule_uid=match.rule.id,
                title=match.rule.title, level=(row.effective_level if row is not None else match.rule.level),
                origin=match.origin, status="new", dedup_key=key,
                group_key=fields["host"] or fields["user_name"] or "", event_source=match.source,
                techniques=list(match.rule.techniques), count=1, first_seen=seen, last_seen=seen,
                event=_kept_event(match.event), created_at=now, updated_at=now, **fields,
            )
            session.add(alert)
            if dedup_minutes > 0:
                pending[key] = alert
            if row is not None:
                row.hits += 1
                row.last_hit_at = now
            raised += 1
    return RecordResult(raised=raised, deduplicated=deduplicated, suppressed=suppressed)


def alert_count(db: Database) -> int:
    """Every alert in the records store (all units): for the demo's summary."""
    with db.transaction(Scope.system()) as session:
        return int(session.scalar(select(func.count()).select_from(Alert)) or 0)


def _active_suppressions(session: Any, units: set[int], now: datetime) -> list[Suppression]:
    found = session.scalars(select(Suppression).where(Suppression.enabled.is_(True), Suppression.unit_id.in_(units)))
    return [s for s in found if s.expires_at is None or s.expires_at > now]


def _rule_rows(session: Any, uids: set[str]) -> dict[str, DetectionRule]:
    rows = session.scalars(select(DetectionRule).where(DetectionRule.rule_uid.in_(uids)))
    found: dict[str, DetectionRule] = {}
    for row in rows:  # a rule in two packs: the enabled one counts
        if row.rule_uid not in found or row.enabled:
            found[row.rule_uid] = row
    return found


def suppression_holds(conditions: Sequence[Mapping[str, str]], event: Mapping[str, Any]) -> bool:
    """Whether the event meets every condition (case-insensitive; a list value: any element)."""
    return bool(conditions) and all(_condition_holds(condition, event) for condition in conditions)


def _condition_holds(condition: Mapping[str, str], event: Mapping[str, Any]) -> bool:
    op = condition.get("op", "equals")
    value = field_value(event, str(condition.get("field", "")))
    if op == "exists":
        return value is not MISSING
    if value is MISSING or value is None:
        return False
    wanted = str(condition.get("value", "")).lower()
    for item in scalars(value):
        text = as_text(item)
        if text is None:
            continue
        text = text.lower()
        if ((op == "equals" and text == wanted) or (op == "contains" and wanted in text)
                or (op == "startswith" and text.startswith(wanted)) or (op == "endswith" and text.endswith(wanted))
                or (op == "cidr" and _in_network(text, wanted))):
            return True
    return False


def _in_network(text: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(text.strip()) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def alert_fields(event: Mapping[str, Any]) -> dict[str, str | None]:
    """The host, user and source IP an alert is about, from ECS or native fields."""
    return {"host": _first(event, _HOST_FIELDS), "user_name": _first(event, _USER_FIELDS),
            "source_ip": _first(event, _IP_FIELDS)}


def _first(event: Mapping[str, Any], names: Sequence[str]) -> str | None:
    for name in names:
        value = field_value(event, name)
        if value is MISSING or value is None:
            continue
        text = as_text(value[0] if isinstance(value, list) and value else value)
        if text and text != "-":
            return text[:255]
    return None


def dedup_key(rule_uid: str, unit_id: int, fields: Mapping[str, str | None], extra: str = "") -> str:
    material = "\0".join([rule_uid, str(unit_id), *((fields.get(k) or "").lower() for k in
                                                   ("host", "user_name", "source_ip"))])
    if extra:  # only then: the keys of open alerts without one stay as they were
        material += "\0" + extra
    return hashlib.sha256(material.encode()).hexdigest()


def event_time(event: Mapping[str, Any]) -> datetime | None:
    """The event's own time, as an aware UTC datetime, when it has one."""
    for name in _TIME_FIELDS:
        value = field_value(event, name)
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _kept_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as JSON-ready data; a huge one keeps only its fields of up to 1 KiB."""
    data: dict[str, Any] = json.loads(_dumps(event))
    if len(_dumps(data)) <= MAX_EVENT_BYTES:
        return data
    small = {key: value for key, value in data.items() if len(_dumps(value)) <= 1024}
    small["vigil_truncated"] = True
    return small


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # integers beyond 64 bits: the standard library writes them
        return json.dumps(value, default=str).encode()
