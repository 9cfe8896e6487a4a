"""Active intake: alerts become incidents, by hand (``escalate``) or by grouping rules (``group_alert``).

A grouping rule says which alerts belong together: those of the same detection rule, the same host, the same
user, or the same indicator (IOC alerts), within a window of minutes. An alert at or above the rule's level
joins the open incident of its unit that already holds an alert with the same key seen within the window;
when there is none, it opens an incident of the rule's type and severity. The first enabled rule (by
position) that applies decides. ``sweep`` runs the rules over new alerts not yet in an incident: the
server's incident clock calls it each minute, so the live alert path needs no change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.detection.models import Alert
from vigil.incidents import activity, service
from vigil.incidents.common import find_type, get_open_incident
from vigil.incidents.models import GroupingRule, Incident, IncidentAlert
from vigil.incidents.schemas import EscalateAlerts, GroupingRuleCreate, IncidentCreate

LEVELS = ("informational", "low", "medium", "high", "critical")
SWEEP_HOURS = 24
SWEEP_LIMIT = 1000


def escalate(ctx: Context, *, data: EscalateAlerts) -> Incident:
    """The chosen alerts into an open incident (``incident_id``), or into a new one titled after the first
    alert (or ``title``), all or none."""
    if data.incident_id is not None:
        incident = get_open_incident(ctx.session, data.incident_id)
    else:
        first = ctx.session.scalar(select(Alert).where(Alert.id == data.alert_ids[0]))
        if first is None:
            raise NotFound(f"alert {data.alert_ids[0]} does not exist or is outside your organisation units")
        incident = service.open_incident(ctx, source="alerts", data=IncidentCreate(
            title=data.title or first.title, type=data.type, severity=data.severity, unit_id=first.unit_id,
            description=f"Escalated from {len(data.alert_ids)} alert(s)."))
    activity.link_alerts(ctx, incident, data.alert_ids)
    return incident


# --- grouping rules ---------------------------------------------------------------------------------


def list_rules(session: Session) -> Sequence[GroupingRule]:
    return session.scalars(select(GroupingRule).order_by(GroupingRule.position, GroupingRule.id)).all()


def create_rule(ctx: Context, *, data: GroupingRuleCreate) -> GroupingRule:
    find_type(ctx.session, data.type)
    if ctx.session.scalar(select(GroupingRule.id).where(GroupingRule.name == data.name)) is not None:
        raise Conflict(f"a grouping rule named {data.name!r} exists already")
    rule = GroupingRule(name=data.name, match_on=data.match_on, window_minutes=data.window_minutes,
                        min_level=data.min_level, type_key=data.type, severity=data.severity, enabled=data.enabled,
                        position=data.position, created_by=ctx.actor.name)
    ctx.session.add(rule)
    ctx.session.flush()
    ctx.audit("incident.grouping.create", target_type="incident_grouping_rule", target_id=rule.id,
              details=data.model_dump())
    return rule


def delete_rule(ctx: Context, *, rule_id: int) -> None:
    rule = ctx.session.get(GroupingRule, rule_id)
    if rule is None:
        raise NotFound(f"grouping rule {rule_id} does not exist")
    ctx.audit("incident.grouping.delete", target_type="incident_grouping_rule", target_id=rule.id,
              details={"name": rule.name})
    ctx.session.delete(rule)
    ctx.session.flush()


def indicator_key(alert: Alert) -> str | None:
    """``type:value`` of the indicator an IOC alert is about, else None."""
    found: Any = (alert.event or {}).get("vigil.intel", {})
    indicator = found.get("indicator") if isinstance(found, dict) else None
    if not isinstance(indicator, dict) or not indicator.get("value"):
        return None
    return f"{indicator.get('type')}:{indicator['value']}"


def grouping_key(rule: GroupingRule, alert: Alert) -> str | None:
    value = {"rule": alert.rule_uid, "host": (alert.host or "").lower() or None,
             "user": (alert.user_name or "").lower() or None}.get(rule.match_on)
    if rule.match_on == "indicator":
        value = indicator_key(alert)
    return value or None


def _level_ok(rule: GroupingRule, alert: Alert) -> bool:
    try:
        return LEVELS.index(alert.level) >= LEVELS.index(rule.min_level)
    except ValueError:
        return False


def _joinable(session: Session, rule: GroupingRule, alert: Alert, key: str) -> Incident | None:
    """The open incident of the alert's unit holding an alert with the same key seen within the window."""
    since = alert.first_seen - timedelta(minutes=rule.window_minutes)
    query = (select(Incident, Alert).join(IncidentAlert, IncidentAlert.incident_id == Incident.id)
             .join(Alert, Alert.id == IncidentAlert.alert_id)
             .where(Incident.status == "open", Incident.unit_id == alert.unit_id, Alert.last_seen >= since)
             .order_by(Incident.created_at.desc()))
    if rule.match_on == "rule":
        query = query.where(Alert.rule_uid == key)
    elif rule.match_on == "host":
        query = query.where(func.lower(Alert.host) == key)
    elif rule.match_on == "user":
        query = query.where(func.lower(Alert.user_name) == key)
    else:
        query = query.where(Alert.origin == "ioc")
    for incident, linked in session.execute(query.limit(200)):
        if rule.match_on != "indicator" or indicator_key(linked) == key:
            return incident
    return None


def group_alert(ctx: Context, alert: Alert, rules: Sequence[GroupingRule], *, at: datetime | None = None
                ) -> Incident | None:
    """Put one alert (not yet in an incident) where the first applicable rule says; None when no rule applies."""
    for rule in rules:
        if not rule.enabled or not _level_ok(rule, alert):
            continue
        key = grouping_key(rule, alert)
        if key is None:
            continue
        incident = _joinable(ctx.session, rule, alert, key)
        if incident is None:
            try:
                incident = service.open_incident(ctx, source="grouping", at=at, data=IncidentCreate(
                    title=alert.title, type=rule.type_key, severity=rule.severity,
                    unit_id=alert.unit_id, description=f"Opened by the grouping rule {rule.name!r} ({rule.match_on}: "
                                                       f"{key})."))
            except BadInput:  # the rule names a type since removed: leave the alert to an analyst
                continue
        activity.link_alerts(ctx, incident, [alert.id], at=at)
        return incident
    return None


def sweep(ctx: Context, *, now: datetime | None = None) -> list[tuple[int, int]]:
    """Run the grouping rules over new alerts of the last day not in an incident; (alert id, incident id) of
    each one placed."""
    rules = [rule for rule in list_rules(ctx.session) if rule.enabled]
    if not rules:
        return []
    moment = now or utcnow()
    alerts = ctx.session.scalars(select(Alert).where(
        Alert.status == "new", Alert.incident_id.is_(None), Alert.created_at >= moment - timedelta(hours=SWEEP_HOURS))
        .order_by(Alert.first_seen, Alert.id).limit(SWEEP_LIMIT)).all()
    placed: list[tuple[int, int]] = []
    for alert in alerts:
        incident = group_alert(ctx, alert, rules, at=moment)
        if incident is not None:
            placed.append((alert.id, incident.id))
    return placed
