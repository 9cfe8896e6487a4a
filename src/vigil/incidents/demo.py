"""Demo incidents, one in each state a SOC sees: a data leak still being identified, a phishing wave being
contained, a malware outbreak being eradicated (with the demo day's high alerts linked when there are some),
and an account compromise closed with its approved post-mortem; and one grouping rule (high alerts of one
host within an hour become one incident). Work is done as the demo analyst and approved by the demo
responder when the accounts demo created them. Idempotent: a second run finds the demo tag and does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select

from vigil.accounts import service as accounts
from vigil.accounts.models import User
from vigil.core import audit
from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.detection.models import Alert
from vigil.incidents import activity, intake, postmortem, service, tasks
from vigil.incidents.models import GroupingRule, Incident, Task
from vigil.incidents.schemas import (
    CommentCreate,
    GroupingRuleCreate,
    IncidentCreate,
    IncidentTransition,
    ObservableCreate,
    PostMortemUpdate,
)
from vigil.incidents.workflow import ReviewAction

DEMO_TAG = "demo"
CLOSED_TITLE = "账号失陷 Compromised VPN account"


def _as(ctx: Context, username: str) -> Context:
    """The demo user's context when the accounts demo made them, else the operator's."""
    user = ctx.session.scalar(select(User).where(User.username == username), execution_options=accounts.UNSCOPED)
    if user is None:
        return ctx
    return Context(session=ctx.session, actor=audit.Actor(user.id, user.username, user.unit_id))


def _walk(ctx: Context, incident: Incident, phases: list[str], start: datetime, step: timedelta) -> None:
    at = start
    for phase in phases:
        at += step
        for task in ctx.session.scalars(select(Task).where(Task.incident_id == incident.id,
                                                           Task.phase == incident.phase, Task.status == "open",
                                                           Task.required)):
            tasks.complete_task(ctx, incident_id=incident.id, task_id=task.id)
        service.transition(ctx, incident_id=incident.id, at=at,
                           data=IncidentTransition.model_validate({"phase": phase}))


def _open(ctx: Context, at: datetime, **fields: object) -> Incident:
    return service.open_incident(ctx, at=at, data=IncidentCreate.model_validate({**fields, "tags": [DEMO_TAG]}))


def load(ctx: Context) -> Mapping[str, int]:
    if ctx.session.scalar(select(Incident.id).where(Incident.title == CLOSED_TITLE).limit(1)) is not None:
        return {}
    analyst, responder = _as(ctx, "analyst"), _as(ctx, "responder")
    now = utcnow()
    owner = analyst.actor.user_id

    _open(analyst, now - timedelta(hours=2), title="客户数据疑似外泄 Suspected customer-data leak", type="data_leak",
          severity="P3", description="A file-share link with customer records was reported by a partner.",
          scope={"affected_data": ["customer contact list"], "business_lines": ["Retail Banking"]})

    phishing = _open(analyst, now - timedelta(hours=5), title="钓鱼邮件 Phishing wave: fake VPN renewal",
                     type="phishing", severity="P2", owner_id=owner, team="CSIRT",
                     scope={"affected_users": ["alice", "bob"], "business_lines": ["Payments"]})
    activity.add_observable(analyst, incident_id=phishing.id, data=ObservableCreate(
        value="vpn-renew[.]example-support[.]com", description="the landing page", malicious=True))
    activity.add_comment(analyst, incident_id=phishing.id, data=CommentCreate(
        body="@responder please purge the message from every mailbox; 23 recipients so far."))
    _walk(analyst, phishing, ["contain"], now - timedelta(hours=5), timedelta(minutes=25))

    malware = _open(analyst, now - timedelta(hours=30), title="勒索软件 Ransomware on a file server",
                    type="malware", severity="P1", owner_id=owner, team="CSIRT",
                    cause="A macro in an invoice attachment", scope={"affected_assets": ["FS01", "WS17"]})
    high = list(ctx.session.scalars(select(Alert.id).where(Alert.unit_id == malware.unit_id, Alert.status == "new",
                                                           Alert.level.in_(["high", "critical"]))
                                    .order_by(Alert.id).limit(3)))
    if high:
        activity.add_alerts(analyst, incident_id=malware.id, alert_ids=high)
    _walk(analyst, malware, ["contain", "eradicate"], now - timedelta(hours=30), timedelta(hours=2))

    compromise = _open(analyst, now - timedelta(days=6), title=CLOSED_TITLE, type="account_compromise",
                       severity="P2", owner_id=owner, team="CSIRT", cause="A reused password from a public breach",
                       scope={"affected_users": ["carol"]})
    _walk(analyst, compromise, ["contain", "eradicate", "recover", "review"], now - timedelta(days=6),
          timedelta(hours=6))
    postmortem.draft(analyst, incident_id=compromise.id)
    postmortem.update(analyst, incident_id=compromise.id, data=PostMortemUpdate(
        root_cause="The VPN accepted a password without a second factor.",
        five_whys=["The attacker logged in with carol's password",
                   "The password had leaked in a breach of another site",
                   "carol reused it", "Nothing checked passwords against known breaches",
                   "The VPN had no second factor"],
        went_well="The impossible-travel alert fired within minutes.",
        went_badly="Nobody was on call for the VPN at night.",
        action_items=[{"title": "Turn on MFA for every VPN account", "owner_id": owner}]))
    postmortem.review(analyst, incident_id=compromise.id, action=ReviewAction.SUBMIT)
    postmortem.review(responder, incident_id=compromise.id, action=ReviewAction.APPROVE)
    _walk(analyst, compromise, ["closed"], now - timedelta(days=5), timedelta(hours=1))

    rules = 0
    if ctx.session.scalar(select(GroupingRule.id).limit(1)) is None:
        intake.create_rule(ctx, data=GroupingRuleCreate(name="High alerts of one host within an hour",
                                                        match_on="host", window_minutes=60, min_level="high",
                                                        type="intrusion", severity="P2"))
        rules = 1
    loaded = {"incidents (identify, contain, eradicate, closed)": 4}
    if rules:
        loaded["alert grouping rules"] = rules
    return loaded
