"""`vigil alerts`: the alert queue and the tuning loop from the shell.

List and show alerts, acknowledge, escalate, close (``--as fp|tp``) and reopen them, assign them, suppress
what is noise (a suppression drafted from an alert's event), and read the per-rule statistics. The CLI acts
as the local operator (every unit; audited as ``cli:<login>``); the exit codes are those of ``vigil.cli.main``.
Several ids in one command are one step for all of them, or none (the refusal names each alert); ``--where
host=WS01`` steps every alert of a group instead, skipping those whose state refuses the step.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from vigil.accounts import service as accounts
from vigil.cli.runtime import EXIT_CODES_HELP, JsonOption, fail, local_time, operation, print_json, print_table
from vigil.core.config import Settings
from vigil.core.db import utcnow
from vigil.core.pagination import PageParams
from vigil.detection import alerts_service as service
from vigil.detection.schemas_alerts import (
    AlertAssign,
    AlertBulk,
    AlertFilter,
    AlertGroup,
    AlertMatchingBulk,
    AlertSummary,
    RuleAttribution,
    SuppressionCreate,
    SuppressionRead,
)
from vigil.detection.workflow import AlertAction, AlertStatus, Resolution, allowed_actions

app = typer.Typer(help="Alerts: the queue, their workflow, suppressions and per-rule statistics.",
                  no_args_is_help=True)

Ids = Annotated[list[int] | None, typer.Argument(help="Alert ids (or a group: --where).", min=1,
                                                   show_default=False)]
Where = Annotated[list[str] | None, typer.Option(
    "--where", "-w", help="Every alert of a group instead of ids: KEY=VALUE, repeat to narrow (host, user, rule, "
    "source_ip, without, status, level); alerts whose state refuses the step are skipped.", show_default=False)]
WHERE_KEYS = ("host", "user", "rule", "source_ip", "without", "status", "level")
AlertIdArg = Annotated[int, typer.Argument(help="An alert's id.", min=1, show_default=False)]
Comment = Annotated[str, typer.Option("--comment", "-m", help="Why; kept on the audit trail.")]


class GroupField(StrEnum):
    host = "host"
    user = "user"
    rule = "rule"
    source_ip = "source_ip"


class Missing(StrEnum):
    host = "host"
    user = "user"
    source_ip = "source_ip"


class Outcome(StrEnum):
    fp = "fp"
    tp = "tp"


OUTCOMES = {Outcome.fp: Resolution.FALSE_POSITIVE, Outcome.tp: Resolution.TRUE_POSITIVE}


def _since(value: str | None) -> datetime | None:
    """An ISO 8601 time (a time without a zone is UTC), or a number of hours, days or minutes back (24h, 7d)."""
    if value is None:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[:-1].isdigit() and value[-1:] in units:
        return utcnow() - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--since {value!r}: give an ISO 8601 time or a span such as 30m, 24h, 7d")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


@app.command("list", epilog=EXIT_CODES_HELP)
def list_alerts(
    status: Annotated[list[AlertStatus] | None, typer.Option("--status", "-s", help="Repeat for several.",
                                                             show_default=False)] = None,
    level: Annotated[list[str] | None, typer.Option("--level", "-l", help="Repeat for several.",
                                                    show_default=False)] = None,
    rule: Annotated[str, typer.Option("--rule", help="The rule's id (Sigma id).")] = "",
    host: Annotated[str, typer.Option("--host")] = "",
    user: Annotated[str, typer.Option("--user")] = "",
    text: Annotated[str, typer.Option("--text", "-q", help="In the title, rule id, host, user or address.")] = "",
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 time or 30m, 24h, 7d.",
                                              show_default=False)] = None,
    source_ip: Annotated[str, typer.Option("--source-ip", help="The source address, exactly.")] = "",
    without: Annotated[list[Missing] | None, typer.Option("--without", help="Only alerts with no value in this "
                                                          "field (repeat): the group '(none)'.",
                                                          show_default=False)] = None,
    group_by: Annotated[GroupField | None, typer.Option("--group-by", help="One row per host, user, rule or source "
                                                        "address: alerts, matches, highest level, last seen, "
                                                        "states.", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    as_json: JsonOption = False,
) -> None:
    """The queue, newest activity first (or grouped, most alerts first)."""
    pages = PageParams(limit=limit, offset=offset)
    with operation() as op, op.transaction() as ctx:
        filters = AlertFilter.model_validate({"status": status or [], "level": level or [], "rule": rule,
                                              "host": host, "user": user, "q": text, "since": _since(since),
                                              "source_ip": source_ip, "without": [str(w) for w in without or []]})
        if group_by is not None:
            groups, total = service.group_alerts(ctx.session, filters=filters, by=group_by.value, params=pages)
            _print_groups(op.settings, group_by, groups, total, pages, as_json=as_json)
            return
        found, total = service.list_alerts(ctx.session, filters=filters, params=pages)
        rows = [AlertSummary.model_validate(alert) for alert in found]
    if as_json:
        print_json({"items": [row.model_dump(mode="json") for row in rows], "total": total, "limit": limit,
                    "offset": offset})
        return
    print_table(["ID", "LEVEL", "STATUS", "TITLE", "HOST", "USER", "COUNT", "LAST SEEN"],
                [[str(r.id), r.level, r.status + (f" ({_short(r.resolution)})" if r.resolution else ""), r.title,
                  r.host or "", r.user_name or "", str(r.count), local_time(op.settings, r.last_seen)] for r in rows])
    typer.echo(f"{len(rows)} of {total} alerts")


def _print_groups(settings: Settings, by: GroupField, groups: list[AlertGroup], total: int, pages: PageParams,
                  *, as_json: bool) -> None:
    if as_json:
        print_json({"by": by.value, "items": [group.model_dump(mode="json") for group in groups], "total": total,
                    "limit": pages.limit, "offset": pages.offset})
        return
    heading = {"source_ip": "SOURCE IP"}.get(by.value, by.value.upper())
    print_table([heading, *(["TITLE"] if by is GroupField.rule else []), "ALERTS", "MATCHES", "LEVEL", "LAST SEEN",
                 "STATES"],
                [[group.key if group.key is not None else "(none)", *([group.label] if by is GroupField.rule else []),
                  str(group.alerts), str(group.matches), group.level, local_time(settings, group.last_seen),
                  " ".join(f"{state}:{count}" for state, count in group.statuses.items())] for group in groups])
    typer.echo(f"{len(groups)} of {total} groups")


def _short(resolution: str) -> str:
    return {"false_positive": "fp", "true_positive": "tp"}.get(resolution, resolution)


@app.command("show", epilog=EXIT_CODES_HELP)
def show_alert(alert_id: AlertIdArg, as_json: JsonOption = False) -> None:
    """One alert: its facts, the rule with its author and references, and the matching event."""
    with operation() as op, op.transaction() as ctx:
        alert = service.get_alert(ctx.session, alert_id)
        rule = service.rule_of(ctx.session, alert)
        summary = AlertSummary.model_validate(alert)
        attribution = RuleAttribution.model_validate(rule) if rule is not None else None
        event: dict[str, Any] = dict(alert.event)
    if as_json:
        print_json({**summary.model_dump(mode="json"), "event": event,
                    "rule": attribution.model_dump(mode="json") if attribution else None,
                    "actions": [str(a) for a in allowed_actions(summary.status)]})
        return
    facts = [("alert", str(summary.id)), ("title", summary.title), ("level", summary.level),
             ("status", summary.status + (f" ({summary.resolution})" if summary.resolution else "")),
             ("rule", summary.rule_uid), ("host", summary.host or "-"), ("user", summary.user_name or "-"),
             ("count", str(summary.count)), ("first seen", local_time(op.settings, summary.first_seen)),
             ("last seen", local_time(op.settings, summary.last_seen))]
    if attribution is not None:
        facts += [("author", attribution.author or "-"), ("references", ", ".join(attribution.references) or "-")]
    for name, value in facts:
        typer.echo(f"{name + ':':<12} {value}")
    typer.echo("event:")
    print_json(event)


def _group(where: Sequence[str]) -> AlertFilter:
    """``--where host=WS01`` (repeat; every one narrows): the alerts of a group, as ``--group-by`` shows it
    (``without=host`` for its "(none)" row); also ``user``, ``rule``, ``source_ip``, ``status``, ``level``."""
    given: dict[str, Any] = {}
    for item in where:
        key, sep, value = item.partition("=")
        if not sep or key not in WHERE_KEYS or not value:
            fail(f"--where {item!r}: give KEY=VALUE with KEY one of {', '.join(WHERE_KEYS)}")
        if key in ("status", "level", "without"):
            given.setdefault(key, []).append(value)
        else:
            given[key] = value
    try:
        return AlertFilter.model_validate(given)
    except ValidationError as exc:
        fail("--where: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))


def _step(ids: Sequence[int] | None, action: AlertAction, comment: str, resolution: Resolution | None = None,
          where: Sequence[str] | None = None) -> None:
    if bool(ids) == bool(where):
        fail("give alert ids, or a group with --where (e.g. --where host=WS01), not both")
    with operation() as op, op.transaction() as ctx:
        if ids:
            result = service.bulk_transition(ctx, data=AlertBulk(ids=list(ids), action=action,
                                                                 resolution=resolution, comment=comment))
            skipped: list[int] = []
        else:
            matched = service.bulk_matching(ctx, data=AlertMatchingBulk(
                filter=_group(where or ()), action=action, resolution=resolution, comment=comment))
            result, skipped = matched, matched.skipped
    for alert_id in result.changed:
        typer.echo(f"alert {alert_id}: {action} done")
    for alert_id in result.unchanged:
        typer.echo(f"alert {alert_id}: already there, left as it was")
    for alert_id in skipped:
        typer.echo(f"alert {alert_id}: its state refuses {action}, skipped")
    if where:
        typer.echo(f"{len(result.changed)} changed, {len(result.unchanged)} already there, {len(skipped)} skipped")


@app.command("ack", epilog=EXIT_CODES_HELP)
def acknowledge(ids: Ids = None, comment: Comment = "", where: Where = None) -> None:
    """Acknowledge new alerts: someone is looking at them."""
    _step(ids, AlertAction.ACKNOWLEDGE, comment, where=where)


@app.command("escalate", epilog=EXIT_CODES_HELP)
def escalate(ids: Ids = None, comment: Comment = "", where: Where = None) -> None:
    """Mark alerts escalated to an incident."""
    _step(ids, AlertAction.ESCALATE, comment, where=where)


@app.command("close", epilog=EXIT_CODES_HELP)
def close(outcome: Annotated[Outcome, typer.Option("--as", help="fp: a false positive (counted on the "
                                                                "rule); tp: a true positive.",
                                                       show_default=False)],
          ids: Ids = None, comment: Comment = "", where: Where = None) -> None:
    """Close alerts as a false (fp) or true (tp) positive."""
    _step(ids, AlertAction.CLOSE, comment, OUTCOMES[outcome], where=where)


@app.command("reopen", epilog=EXIT_CODES_HELP)
def reopen(ids: Ids = None, comment: Comment = "", where: Where = None) -> None:
    """Reopen closed alerts (they come back acknowledged)."""
    _step(ids, AlertAction.REOPEN, comment, where=where)


@app.command("assign", epilog=EXIT_CODES_HELP)
def assign(alert_id: AlertIdArg,
           username: Annotated[str, typer.Argument(help="The user; '-' removes the assignee.", show_default=False)],
           ) -> None:
    """Give an alert to a user who can read alerts of its unit."""
    with operation() as op, op.transaction() as ctx:
        assignee = None if username == "-" else accounts.find_user(ctx.session, username).id
        service.assign(ctx, alert_id=alert_id, data=AlertAssign(assignee_id=assignee))
    typer.echo(f"alert {alert_id}: " + ("unassigned" if assignee is None else f"assigned to {username}"))


@app.command("suppress", epilog=EXIT_CODES_HELP)
def suppress(
    alert_id: AlertIdArg,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why these alerts are noise.", show_default=False)],
    field: Annotated[list[str] | None, typer.Option("--field", "-f", help="Event field whose value must be equal "
                                                    "(repeat); default: host, user, process, source address.",
                                                    show_default=False)] = None,
    days: Annotated[int | None, typer.Option("--days", min=1, max=3650, help="Expire after this many days; "
                                             "default: never.", show_default=False)] = None,
    every_rule: Annotated[bool, typer.Option("--every-rule", help="Suppress these events for every rule, "
                                             "not only this alert's.")] = False,
) -> None:
    """Suppress matches like this alert: its rule, its unit, and equal values of the event's fields."""
    with operation() as op, op.transaction() as ctx:
        alert = service.get_alert(ctx.session, alert_id)
        draft = service.suppression_from_alert(alert, field or ())
        if not draft.conditions:
            fail("the alert's event has none of these fields; name others with --field")
        row = service.create_suppression(ctx, data=SuppressionCreate(
            rule_uid=None if every_rule else draft.rule_uid, unit_id=draft.unit_id, conditions=draft.conditions,
            reason=reason, expires_at=utcnow() + timedelta(days=days) if days else None))
        shown = SuppressionRead.model_validate(row)
    conditions = " and ".join(f"{c.field} {c.op} {c.value!r}" for c in shown.conditions)
    typer.echo(f"suppression {shown.id} saved: {shown.rule_uid or 'every rule'} where {conditions}"
               + (f", until {local_time(op.settings, shown.expires_at)}" if shown.expires_at else ""))


@app.command("suppressions", epilog=EXIT_CODES_HELP)
def list_suppressions(as_json: JsonOption = False) -> None:
    """Every suppression: rule, conditions, reason, author, expiry, and matches suppressed."""
    with operation() as op, op.transaction() as ctx:
        rows, total = service.list_suppressions(ctx.session, params=PageParams(limit=500))
        now = utcnow()
        shown = [SuppressionRead.model_validate({**SuppressionRead.model_validate(row).model_dump(),
                                                 "active": service.is_active(row, now)}) for row in rows]
    if as_json:
        print_json([row.model_dump(mode="json") for row in shown])
        return
    print_table(["ID", "RULE", "CONDITIONS", "REASON", "AUTHOR", "EXPIRES", "HITS", "STATE"],
                [[str(s.id), s.rule_uid or "(every rule)", " and ".join(f"{c.field} {c.op} {c.value}"
                                                                       for c in s.conditions),
                  s.reason, s.author, local_time(op.settings, s.expires_at) if s.expires_at else "never", str(s.hits),
                  "active" if s.active else ("off" if not s.enabled else "expired")] for s in shown])
    typer.echo(f"{total} suppressions")


@app.command("unsuppress", epilog=EXIT_CODES_HELP)
def unsuppress(suppression_id: Annotated[int, typer.Argument(help="A suppression's id.", min=1,
                                                              show_default=False)]) -> None:
    """Remove a suppression: its matches raise alerts again."""
    with operation() as op, op.transaction() as ctx:
        service.delete_suppression(ctx, suppression_id=suppression_id)  # not found: exit 1 naming it
    typer.echo(f"suppression {suppression_id} removed")


@app.command("stats", epilog=EXIT_CODES_HELP)
def stats(
    days: Annotated[int | None, typer.Option("--noisiest", help="Only the noisiest rules of the last N days.",
                                             min=1, max=366, show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Per rule: hits, alerts, open, true and false positives, false-positive rate, last hit."""
    with operation() as op, op.transaction() as ctx:
        found = (service.noisiest_rules(ctx.session, days=days, limit=20) if days
                 else service.rule_stats(ctx.session))
    if as_json:
        print_json([row.model_dump(mode="json") for row in found])
        return
    print_table(["RULE", "TITLE", "LEVEL", "HITS", "ALERTS", "OPEN", "TP", "FP", "FP RATE", "LAST HIT"],
                [[s.rule_uid, s.title, s.level, str(s.hits), str(s.alerts), str(s.open), str(s.true_positives),
                  str(s.false_positives),
                  "-" if s.false_positive_rate is None else f"{s.false_positive_rate:.0%}",
                  local_time(op.settings, s.last_hit_at)] for s in found])

