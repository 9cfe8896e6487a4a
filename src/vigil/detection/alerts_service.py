"""The alert queue and the tuning loop: list and work alerts, suppress what is noise, see which rules are noisy.

Alerts are raised by ``vigil.detection.alerts.record_matches``; this module is what analysts do with them.
Every query runs in the session's organisation-unit scope, so another unit's alert or suppression is "not
found" exactly like one that does not exist. Every state change, assignment and suppression change is
on the audit trail. Functions never commit: the caller owns the transaction.

Closing an alert as a false positive counts on its rule (``DetectionRule.false_positives``); reopening
such an alert takes that count back, so the counter is the alerts closed as false positives right now.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, literal_column, or_, select, update
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.accounts.models import User
from vigil.core.auth import ROLE_PERMISSIONS, Permission, Role
from vigil.core.context import Context
from vigil.core.db import get_scope, utcnow
from vigil.core.errors import BadInput, InvalidTransition, NotFound
from vigil.core.pagination import PageParams, paginate
from vigil.detection.live import LiveDetection
from vigil.detection.models import Alert, DetectionRule, Suppression
from vigil.detection.schemas_alerts import (
    LEVELS,
    MAX_MATCHING_BULK,
    AlertAssign,
    AlertBulk,
    AlertFilter,
    AlertGroup,
    AlertMatchingBulk,
    AlertTransition,
    BulkResult,
    Condition,
    DetectionStatusRead,
    GroupBy,
    MatchingBulkResult,
    NoisyRule,
    RuleStats,
    SuppressionCreate,
    SuppressionProposal,
    SuppressionUpdate,
)
from vigil.detection.sigma.predicates import MISSING, as_text, field_value, scalars
from vigil.detection.workflow import TRANSITIONS, AlertAction, AlertStatus, Resolution, Transition, plan

UNSCOPED = {"vigil_unscoped": True}
MAX_VALUE = 1000  # a condition's value; a longer event value is proposed as its prefix (startswith)

# Fields a "suppress similar" proposal takes from the event when none are named: the first present of each
# group (host, user, process, source address: what the dedup key and the process say), native and ECS names.
DEFAULT_FIELD_GROUPS: tuple[tuple[str, ...], ...] = (
    ("Computer", "host.name", "host.hostname", "hostname", "host"),
    ("TargetUserName", "SubjectUserName", "User", "user.name", "AccountName", "user"),
    ("Image", "NewProcessName", "process.executable", "process.name"),
    ("source.ip", "IpAddress", "SourceIp", "src_ip", "id.orig_h", "c-ip"),
)


# The alert column behind each field an alert may lack, and behind each way of grouping the queue. Hosts and
# users group case-insensitively, as the host and user filters select them.
MISSABLE: dict[str, Any] = {"host": Alert.host, "user": Alert.user_name, "source_ip": Alert.source_ip}
LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}


# --- reading the queue -----------------------------------------------------------------------------


def _filtered(filters: AlertFilter) -> Select[Alert]:
    statement = select(Alert)
    if filters.status:
        statement = statement.where(Alert.status.in_([str(status) for status in filters.status]))
    if filters.level:
        statement = statement.where(Alert.level.in_(list(filters.level)))
    if filters.rule:
        statement = statement.where(Alert.rule_uid == filters.rule)
    if filters.host:
        statement = statement.where(func.lower(Alert.host) == filters.host.lower())
    if filters.user:
        statement = statement.where(func.lower(Alert.user_name) == filters.user.lower())
    if filters.origin:
        statement = statement.where(Alert.origin == filters.origin)
    if filters.assignee_id is not None:
        statement = statement.where(Alert.assignee_id == filters.assignee_id)
    if filters.since is not None:
        statement = statement.where(Alert.last_seen >= filters.since)
    if filters.until is not None:
        statement = statement.where(Alert.first_seen < filters.until)
    if filters.q:
        like = f"%{_escape_like(filters.q.lower())}%"
        statement = statement.where(or_(*(func.lower(column).like(like, escape="\\") for column in (
            Alert.title, Alert.rule_uid, Alert.host, Alert.user_name, Alert.source_ip))))
    if filters.source_ip:
        statement = statement.where(Alert.source_ip == filters.source_ip)
    for name in filters.without:
        column = MISSABLE[name]
        statement = statement.where(or_(column.is_(None), column == ""))
    if filters.raised_before is not None:
        statement = statement.where(Alert.created_at <= filters.raised_before)
    return statement


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_alerts(session: Session, *, filters: AlertFilter, params: PageParams) -> tuple[list[Alert], int]:
    """One page of the alerts the session may see, newest activity first."""
    return paginate(session, _filtered(filters).order_by(Alert.last_seen.desc(), Alert.id.desc()), params)


def _group_columns(by: GroupBy) -> tuple[Any, Any]:
    """The expression alerts are grouped on, and the value shown for a group."""
    if by == "rule":
        return Alert.rule_uid, func.max(Alert.title)
    column = MISSABLE[by]
    # The empty string inline, not a bound parameter: PostgreSQL matches the selected expression with the
    # GROUP BY one only when they are written alike (two parameters are two expressions to it).
    present = func.coalesce(column, literal_column("''"))
    return (func.lower(present) if by in ("host", "user") else present), func.min(column)


def group_alerts(session: Session, *, filters: AlertFilter, by: GroupBy, params: PageParams,
                 ) -> tuple[list[AlertGroup], int]:
    """The alerts the filters select, grouped by host, user, rule or source address: per group the alerts,
    the matches folded into them, the highest level, the newest activity and the alerts per state. Most
    alerts first (then the newest). Alerts without a value form one group whose key is None."""
    grouped, shown = _group_columns(by)
    rank = case(*((Alert.level == level, number) for level, number in LEVEL_RANK.items()), else_=-1)
    per_status = [func.coalesce(func.sum(case((Alert.status == str(state), 1), else_=0)), 0)
                  for state in AlertStatus]
    statement = (_filtered(filters).with_only_columns(
        grouped, shown, func.count(Alert.id), func.coalesce(func.sum(Alert.count), 0), func.max(rank),
        func.max(Alert.last_seen), *per_status).group_by(grouped))
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = session.execute(statement.order_by(func.count(Alert.id).desc(), func.max(Alert.last_seen).desc(),
                                              grouped).limit(params.limit).offset(params.offset)).all()
    groups = []
    for row in rows:
        key = None if row[0] == "" else str(row[1] if by != "rule" else row[0])
        label = str(row[1]) if by == "rule" else (key or "")
        statuses = {str(state): int(n) for state, n in zip(AlertStatus, row[6:], strict=True) if n}
        groups.append(AlertGroup(key=key, label=label, alerts=int(row[2]), matches=int(row[3]),
                                 level=LEVELS[int(row[4])] if 0 <= int(row[4]) < len(LEVELS) else "informational",
                                 last_seen=row[5], statuses=statuses, filter=group_selector(by, key)))
    return groups, int(total)


def group_selector(by: GroupBy, key: str | None) -> dict[str, str]:
    """The list parameter that selects one group: its field equal to the key, or ``without`` it."""
    if key is None:
        return {"without": by}
    return {by: key}


def matching_ids(session: Session, filters: AlertFilter) -> list[int]:
    """The ids of every alert the filters select, oldest first."""
    return list(session.scalars(_filtered(filters).with_only_columns(Alert.id).order_by(Alert.id)))


def get_alert(session: Session, alert_id: int) -> Alert:
    found = session.scalar(select(Alert).where(Alert.id == alert_id))
    if found is None:
        raise NotFound(f"alert {alert_id} does not exist or is outside your organisation units")
    return found


def rule_of(session: Session, alert: Alert) -> DetectionRule | None:
    """The rule that raised the alert, while it is still imported."""
    if alert.rule_id is not None:
        return session.get(DetectionRule, alert.rule_id)
    return session.scalar(select(DetectionRule).where(DetectionRule.rule_uid == alert.rule_uid)
                          .order_by(DetectionRule.id))


# --- working alerts --------------------------------------------------------------------------------


def _count_false_positive(session: Session, rule_id: int | None, change: int) -> None:
    if rule_id is None:
        return
    # In SQL, so concurrent closings of alerts of one rule add up instead of overwriting each other.
    counted = DetectionRule.false_positives + change
    session.execute(update(DetectionRule).where(DetectionRule.id == rule_id)
                    .values(false_positives=case((counted < 0, 0), else_=counted)))


def _apply(ctx: Context, alert: Alert, step: Transition, comment: str) -> None:
    previous = alert.resolution
    now = utcnow()
    alert.status = str(step.target)
    if step.action is AlertAction.CLOSE:
        alert.resolution = str(step.resolution)
        alert.closed_at = now
        alert.closed_by = ctx.actor.name
        if step.resolution is Resolution.FALSE_POSITIVE:
            _count_false_positive(ctx.session, alert.rule_id, +1)
    elif step.action is AlertAction.REOPEN:
        if previous == Resolution.FALSE_POSITIVE:
            _count_false_positive(ctx.session, alert.rule_id, -1)
        alert.resolution = None
        alert.closed_at = None
        alert.closed_by = None
    alert.updated_at = now
    details: dict[str, Any] = {"rule_uid": alert.rule_uid, "title": alert.title, "from": str(step.source),
                               "to": str(step.target)}
    if step.resolution is not None:
        details["resolution"] = str(step.resolution)
    if previous is not None and step.action is AlertAction.REOPEN:
        details["previous_resolution"] = previous
    if comment:
        details["comment"] = comment
    ctx.audit(f"alert.{step.action}", target_type="alert", target_id=alert.id, unit_id=alert.unit_id,
              details=details)


def transition(ctx: Context, *, alert_id: int, data: AlertTransition) -> Alert:
    """Move one alert through the workflow; ``InvalidTransition`` (409) when its state refuses the step."""
    alert = get_alert(ctx.session, alert_id)
    step = plan(alert.status, data.action, data.resolution)
    _apply(ctx, alert, step, data.comment)
    ctx.session.flush()
    return alert


def escalate(ctx: Context, *, alert_id: int, comment: str = "") -> Alert:
    """Mark the alert escalated to an incident (the incident itself is linked by the incidents domain)."""
    return transition(ctx, alert_id=alert_id, data=AlertTransition(action=AlertAction.ESCALATE, comment=comment))


def _target_of(action: AlertAction) -> AlertStatus:
    return next(target for (_, each), target in TRANSITIONS.items() if each is action)


def _already_there(alert: Alert, data: AlertTransition) -> bool:
    if alert.status != _target_of(data.action):
        return False
    return data.action is not AlertAction.CLOSE or alert.resolution == data.resolution


def bulk_transition(ctx: Context, *, data: AlertBulk) -> BulkResult:
    """The same step for many alerts, all or none: an unknown id (``NotFound``) or a refused step
    (``InvalidTransition``, naming each alert) changes nothing. Alerts already where the step leads are
    left alone and reported as unchanged."""
    wanted = list(dict.fromkeys(data.ids))
    alerts = {alert.id: alert for alert in ctx.session.scalars(select(Alert).where(Alert.id.in_(wanted)))}
    missing = [alert_id for alert_id in wanted if alert_id not in alerts]
    if missing:
        raise NotFound("these alerts do not exist or are outside your organisation units: "
                       + ", ".join(map(str, missing)), ids=missing)
    steps: list[tuple[Alert, Transition]] = []
    unchanged: list[int] = []
    refused: list[str] = []
    for alert_id in wanted:
        alert = alerts[alert_id]
        if _already_there(alert, data):
            unchanged.append(alert_id)
            continue
        try:
            steps.append((alert, plan(alert.status, data.action, data.resolution)))
        except InvalidTransition as exc:
            refused.append(f"alert {alert_id}: {exc.detail}")
    if refused:
        raise InvalidTransition("nothing was changed; " + "; ".join(refused))
    for alert, step in steps:
        _apply(ctx, alert, step, data.comment)
    ctx.session.flush()
    return BulkResult(changed=[alert.id for alert, _ in steps], unchanged=unchanged)


def _narrows(filters: AlertFilter) -> bool:
    return bool(filters.model_dump(exclude_defaults=True, exclude={"raised_before"}))


def bulk_matching(ctx: Context, *, data: AlertMatchingBulk) -> MatchingBulkResult:
    """The same step for every alert the filter selects (a group of the queue: one host's alerts...).
    Unlike ``bulk_transition`` it does not refuse as a whole: alerts whose state refuses the step are
    skipped and reported (closing a host's alerts as false positives leaves those already closed as true
    positives alone). A filter selecting nothing narrower than the whole queue, or more than
    ``MAX_MATCHING_BULK`` alerts, is refused (``BadInput``) and changes nothing."""
    if not _narrows(data.filter):
        raise BadInput("choose a group or a filter: a step for the whole queue at once is refused",
                       errors=[{"field": "filter", "message": "no filter"}])
    ids = matching_ids(ctx.session, data.filter)
    if len(ids) > MAX_MATCHING_BULK:
        raise BadInput(f"the filter selects {len(ids):,} alerts; narrow it to at most {MAX_MATCHING_BULK:,}",
                       errors=[{"field": "filter", "message": "too many alerts"}])
    step = AlertTransition(action=data.action, resolution=data.resolution, comment=data.comment)
    if step.action is AlertAction.CLOSE and step.resolution is None:
        plan(AlertStatus.NEW, step.action, step.resolution)  # raises the workflow's own refusal
    result = MatchingBulkResult(changed=[], unchanged=[], skipped=[])
    for alert in ctx.session.scalars(select(Alert).where(Alert.id.in_(ids)).order_by(Alert.id)):
        if _already_there(alert, step):
            result.unchanged.append(alert.id)
            continue
        try:
            planned = plan(alert.status, step.action, step.resolution)
        except InvalidTransition:
            result.skipped.append(alert.id)
            continue
        _apply(ctx, alert, planned, step.comment)
        result.changed.append(alert.id)
    ctx.session.flush()
    return result


def can_read_unit(session: Session, user_id: int, unit_id: int) -> bool:
    """Whether the user holds ``alerts:read`` on the unit (through a grant there or above it)."""
    tree = accounts.load_unit_tree(session)
    for role, granted_at in accounts.all_grants(session, user_id):
        if Permission.ALERTS_READ in ROLE_PERMISSIONS.get(Role(role), frozenset()) and unit_id in tree.subtree(
                granted_at):
            return True
    return False


def assign(ctx: Context, *, alert_id: int, data: AlertAssign) -> Alert:
    """Give the alert to a user who can read alerts of its unit, or to nobody."""
    alert = get_alert(ctx.session, alert_id)
    assignee: User | None = None
    if data.assignee_id is not None:
        assignee = ctx.session.scalar(select(User).where(User.id == data.assignee_id), execution_options=UNSCOPED)
        refusal = ""
        if assignee is None or assignee.disabled:
            refusal = f"user {data.assignee_id} does not exist or is disabled"
        elif not can_read_unit(ctx.session, assignee.id, alert.unit_id):
            refusal = f"{assignee.username} cannot read alerts of this alert's organisation unit"
        if refusal:
            raise BadInput(refusal, errors=[{"field": "assignee_id", "message": refusal}])
    if alert.assignee_id == data.assignee_id:
        return alert
    before = alert.assignee_id
    alert.assignee_id = data.assignee_id
    alert.updated_at = utcnow()
    ctx.session.flush()
    ctx.audit("alert.assign", target_type="alert", target_id=alert.id, unit_id=alert.unit_id,
              details={"rule_uid": alert.rule_uid, "title": alert.title, "from": before, "to": data.assignee_id,
                       "assignee": assignee.username if assignee else None})
    return alert


def user_names(session: Session, user_ids: Iterable[int | None]) -> dict[int, str]:
    """Usernames of assignees, for display (assignees may sit in units the reader does not see)."""
    wanted = {user_id for user_id in user_ids if user_id is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.username).where(User.id.in_(wanted)), execution_options=UNSCOPED)
    return {user_id: name for user_id, name in rows}


# --- suppressions ----------------------------------------------------------------------------------


def is_active(suppression: Suppression, now: datetime | None = None) -> bool:
    """Enabled and not expired: matches it covers raise nothing now."""
    moment = now or utcnow()
    return suppression.enabled and (suppression.expires_at is None or suppression.expires_at > moment)


def list_suppressions(session: Session, *, params: PageParams, rule_uid: str | None = None,
                      ) -> tuple[list[Suppression], int]:
    statement = select(Suppression).order_by(Suppression.created_at.desc(), Suppression.id.desc())
    if rule_uid is not None:
        statement = statement.where(Suppression.rule_uid == rule_uid)
    return paginate(session, statement, params)


def get_suppression(session: Session, suppression_id: int) -> Suppression:
    found = session.scalar(select(Suppression).where(Suppression.id == suppression_id))
    if found is None:
        raise NotFound(f"suppression {suppression_id} does not exist or is outside your organisation units")
    return found


def _check_conditions(conditions: Sequence[Condition]) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    for index, condition in enumerate(conditions):
        where = f"conditions.{index}.value"
        if condition.op == "exists":
            continue
        if condition.value == "":
            errors.append({"field": where, "message": f"{condition.op} needs a value"})
        elif condition.op == "cidr":
            try:
                ipaddress.ip_network(condition.value, strict=False)
            except ValueError:
                errors.append({"field": where, "message": f"{condition.value!r} is not an address or network"})
    if errors:
        raise BadInput("a condition is incomplete: " + "; ".join(e["message"] for e in errors), errors=errors)
    return [{"field": c.field, "op": c.op, "value": "" if c.op == "exists" else c.value} for c in conditions]


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= utcnow():
        raise BadInput("the expiry is in the past", errors=[{"field": "expires_at", "message": "in the past"}])


def _check_rule(session: Session, rule_uid: str) -> None:
    known = session.scalar(select(DetectionRule.id).where(DetectionRule.rule_uid == rule_uid).limit(1))
    if known is None:
        known = session.scalar(select(Alert.id).where(Alert.rule_uid == rule_uid).limit(1))
    if known is None:
        raise BadInput(f"no rule with the id {rule_uid!r} is imported or has raised an alert",
                       errors=[{"field": "rule_uid", "message": "unknown rule"}])


def _check_unit(ctx: Context, unit_id: int) -> None:
    """A unit outside the caller's scope is refused without telling whether it exists."""
    if not get_scope(ctx.session).allows(unit_id):
        raise NotFound(f"organisation unit {unit_id} does not exist or is outside your scope")


def _shown(row: Suppression) -> dict[str, Any]:
    return {"rule_uid": row.rule_uid, "conditions": row.conditions, "reason": row.reason,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None, "enabled": row.enabled}


def create_suppression(ctx: Context, *, data: SuppressionCreate) -> Suppression:
    unit_id = data.unit_id if data.unit_id is not None else ctx.actor.unit_id
    _check_unit(ctx, unit_id)
    conditions = _check_conditions(data.conditions)
    _check_expiry(data.expires_at)
    if data.rule_uid is not None:
        _check_rule(ctx.session, data.rule_uid)
    row = Suppression(unit_id=unit_id, rule_uid=data.rule_uid, conditions=conditions, reason=data.reason,
                      author=ctx.actor.name, expires_at=data.expires_at, enabled=data.enabled)
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit("suppression.create", target_type="suppression", target_id=row.id, unit_id=unit_id,
              details=_shown(row))
    return row


def update_suppression(ctx: Context, *, suppression_id: int, data: SuppressionUpdate) -> Suppression:
    row = get_suppression(ctx.session, suppression_id)
    given = data.model_fields_set
    for name in ("reason", "enabled", "conditions"):
        if name in given and getattr(data, name) is None:
            raise BadInput(f"{name} cannot be empty", errors=[{"field": name, "message": "required"}])
    before = _shown(row)
    if data.conditions is not None:
        row.conditions = _check_conditions(data.conditions)
    if data.reason is not None:
        row.reason = data.reason
    if data.enabled is not None:
        row.enabled = data.enabled
    if "expires_at" in given:
        _check_expiry(data.expires_at)
        row.expires_at = data.expires_at
    after = _shown(row)
    changes = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
    if changes:
        ctx.session.flush()
        ctx.audit("suppression.update", target_type="suppression", target_id=row.id, unit_id=row.unit_id,
                  details={"rule_uid": row.rule_uid, **changes})
    return row


def delete_suppression(ctx: Context, *, suppression_id: int) -> Suppression:
    row = get_suppression(ctx.session, suppression_id)
    ctx.audit("suppression.delete", target_type="suppression", target_id=row.id, unit_id=row.unit_id,
              details={**_shown(row), "hits": row.hits})
    ctx.session.delete(row)
    ctx.session.flush()
    return row


def _as_text(value: Any) -> str | None:
    """The first scalar of the value as conditions compare it; None for objects, null and a missing field."""
    if value is MISSING:
        return None
    return next((text for item in scalars(value) if (text := as_text(item)) is not None), None)


def _default_fields(event: Mapping[str, Any]) -> list[str]:
    chosen = []
    for group in DEFAULT_FIELD_GROUPS:
        found = next((name for name in group if _as_text(field_value(event, name)) not in (None, "")), None)
        if found is not None:
            chosen.append(found)
    return chosen


def suppression_from_alert(alert: Alert, fields: Sequence[str] = ()) -> SuppressionProposal:
    """A draft suppression for matches like this alert: its rule, its unit, and ``equals`` conditions on
    ``fields`` of its event (by default its host, user, process and source address, where the event has
    them). Fields the event lacks are left out; a value too long for a condition becomes a ``startswith``
    on its beginning."""
    conditions: list[Condition] = []
    for name in fields or _default_fields(alert.event):
        text = _as_text(field_value(alert.event, name))
        if text is None or text == "":
            continue
        if len(text) > MAX_VALUE:
            conditions.append(Condition(field=name, op="startswith", value=text[:MAX_VALUE]))
        else:
            conditions.append(Condition(field=name, op="equals", value=text))
    return SuppressionProposal(rule_uid=alert.rule_uid or None, unit_id=alert.unit_id, conditions=conditions)


# --- statistics ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Figures:
    rule_uid: str
    rule_id: int | None
    title: str
    level: str
    alerts: int
    events: int
    open: int
    true_positives: int
    false_positives: int
    last_seen: datetime | None


def _figures(session: Session, *, since: datetime | None, rule_uid: str | None) -> list[_Figures]:
    closed = str(AlertStatus.CLOSED)
    statement = select(
        Alert.rule_uid, func.max(Alert.rule_id), func.max(Alert.title), func.max(Alert.level), func.count(Alert.id),
        func.coalesce(func.sum(Alert.count), 0),
        func.coalesce(func.sum(case((Alert.status != closed, 1), else_=0)), 0),
        func.coalesce(func.sum(case((Alert.resolution == str(Resolution.TRUE_POSITIVE), 1), else_=0)), 0),
        func.coalesce(func.sum(case((Alert.resolution == str(Resolution.FALSE_POSITIVE), 1), else_=0)), 0),
        func.max(Alert.last_seen),
    ).group_by(Alert.rule_uid)
    if since is not None:
        statement = statement.where(Alert.first_seen >= since)
    if rule_uid is not None:
        statement = statement.where(Alert.rule_uid == rule_uid)
    rows = session.execute(statement).all()
    return [_Figures(row[0], row[1], row[2], row[3], int(row[4]), int(row[5]), int(row[6]), int(row[7]),
                     int(row[8]), row[9]) for row in rows]


def _stats(session: Session, figures: Sequence[_Figures]) -> list[RuleStats]:
    rule_ids = {f.rule_id for f in figures if f.rule_id is not None}
    rules = {rule.id: rule for rule in session.scalars(select(DetectionRule).where(DetectionRule.id.in_(rule_ids)))}
    result = []
    for f in figures:
        rule = rules.get(f.rule_id) if f.rule_id is not None else None
        resolved = f.true_positives + f.false_positives
        last_seen = f.last_seen
        result.append(RuleStats(
            rule_uid=f.rule_uid, rule_id=f.rule_id, title=rule.title if rule else f.title,
            level=rule.effective_level if rule else f.level, hits=rule.hits if rule else f.events,
            last_hit_at=rule.last_hit_at if rule else last_seen, alerts=f.alerts, events=f.events, open=f.open,
            true_positives=f.true_positives, false_positives=f.false_positives,
            false_positive_rate=round(f.false_positives / resolved, 4) if resolved else None, last_seen=last_seen))
    return result


def rule_stats(session: Session, *, rule_uid: str | None = None) -> list[RuleStats]:
    """Per rule with alerts in the session's units: hits, alerts, outcomes, false-positive rate, last hit;
    the rules with most alerts first."""
    stats = _stats(session, _figures(session, since=None, rule_uid=rule_uid))
    return sorted(stats, key=lambda s: (-s.alerts, -s.events, s.rule_uid))


def noisiest_rules(session: Session, *, days: int = 7, limit: int | None = 10, now: datetime | None = None,
                   ) -> list[NoisyRule]:
    """The rules that raised the most alerts in the last ``days`` days, with their false-positive rate there."""
    since = (now or utcnow()) - timedelta(days=days)
    stats = sorted(_stats(session, _figures(session, since=since, rule_uid=None)),
                   key=lambda s: (-s.alerts, -s.events, s.rule_uid))
    return [NoisyRule(**s.model_dump(), days=days) for s in (stats if limit is None else stats[:limit])]


# --- live detection --------------------------------------------------------------------------------


def detection_status(consumers: Iterable[object]) -> DetectionStatusRead:
    """The figures of the pipeline's live detection consumer (the one named ``detection``) since the
    process started; ``running`` is False when the pipeline has none (no records store, plugin not loaded)."""
    live = next((each for each in consumers if getattr(each, "name", None) == "detection"), None)
    if not isinstance(live, LiveDetection):
        return DetectionStatusRead(running=False)
    figures = live.status
    correlations = live.correlations
    engine = correlations.engine if correlations is not None else None
    return DetectionStatusRead(
        running=True, rules=figures.rules, rules_version=figures.version,
        correlation_rules=len(engine.correlations) if engine is not None else 0,
        correlation_version=correlations.version if correlations is not None else "",
        events=figures.events, matches=figures.matches, raised=figures.raised,
        deduplicated=figures.deduplicated, suppressed=figures.suppressed, seconds=round(figures.seconds, 6),
        ms_per_1000_events=round(figures.seconds * 1000 / figures.events * 1000, 3) if figures.events else None)
