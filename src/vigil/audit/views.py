"""The audit page: search the trail, export what is found as CSV, and verify the hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from vigil.accounts import service as accounts
from vigil.audit import service
from vigil.audit.schemas import AuditFilter
from vigil.core.audit import AuditRecord, Outcome
from vigil.core.auth import Permission, Principal
from vigil.core.pagination import PageParams, page_params
from vigil.web.deps import SessionDep, context, settings_of
from vigil.web.templating import N_, Pager, PageRoute, Translator, page_guard, render, translator, wants_fragment

router = APIRouter(route_class=PageRoute, include_in_schema=False)
AuditReader = Annotated[Principal, Depends(page_guard(Permission.AUDIT_READ))]
AuditVerifier = Annotated[Principal, Depends(page_guard(Permission.AUDIT_VERIFY, everywhere=True))]
Text = Annotated[str, Query(max_length=200)]

OUTCOME_LABELS: dict[str, str] = {
    Outcome.SUCCESS: N_("Success"),
    Outcome.FAILURE: N_("Failure"),
    Outcome.DENIED: N_("Denied"),
}
ACTION_LABELS: dict[str, str] = {
    "auth.login": N_("Sign-in"),
    "auth.logout": N_("Sign-out"),
    "auth.denied": N_("Access refused"),
    "auth.token": N_("Token refused"),
    "user.create": N_("User created"),
    "user.update": N_("User changed"),
    "user.disable": N_("User disabled"),
    "user.lock": N_("Account locked"),
    "user.unlock": N_("Account unlocked"),
    "user.role.grant": N_("Role granted"),
    "user.role.revoke": N_("Role revoked"),
    "user.password.change": N_("Password changed"),
    "user.password.reset": N_("Password reset"),
    "user.profile.update": N_("Profile changed"),
    "token.create": N_("API token created"),
    "token.revoke": N_("API token revoked"),
    "unit.create": N_("Unit created"),
    "unit.update": N_("Unit renamed"),
    "policy.update": N_("Security policy changed"),
    "audit.export": N_("Audit log exported"),
    "audit.verify": N_("Audit chain verified"),
    "events.exported": N_("Events exported"),
    "saved_search.create": N_("Saved search created"),
    "saved_search.delete": N_("Saved search deleted"),
    "siem.source.create": N_("Log source added"),
    "siem.source.update": N_("Log source changed"),
    "siem.source.delete": N_("Log source removed"),
    "alert.acknowledge": N_("Alert acknowledged"),
    "alert.escalate": N_("Alert escalated"),
    "alert.close": N_("Alert closed"),
    "alert.reopen": N_("Alert reopened"),
    "alert.assign": N_("Alert assigned"),
    "suppression.create": N_("Suppression created"),
    "suppression.update": N_("Suppression changed"),
    "suppression.delete": N_("Suppression removed"),
    "detection.rule.update": N_("Detection rule changed"),
    "detection.rule.enable": N_("Detection rule enabled"),
    "detection.rule.disable": N_("Detection rule disabled"),
    "detection.rule_pack.import": N_("Rule pack imported"),
    "hunt.start": N_("Hunt started"),
    "siem.retention.run": N_("Log retention run"),
    "intel.import": N_("Intelligence imported"),
    "intel.feed.add": N_("Intelligence feed added"),
    "intel.feed.update": N_("Intelligence feed changed"),
    "intel.feed.delete": N_("Intelligence feed removed"),
    "intel.feed.pull": N_("Intelligence feed pulled"),
    "intel.indicator.add": N_("Indicator added"),
    "intel.allowlist.add": N_("Value allow-listed"),
    "intel.allowlist.remove": N_("Allow-list entry removed"),
    "intel.sighting.mark": N_("Sighting marked"),
    "intel.retrohunt": N_("Retro-hunt run"),
    "intel.attack.import": N_("ATT&CK groups and software imported"),
    "oncall.schedule.create": N_("On-call schedule created"),
    "oncall.schedule.update": N_("On-call schedule changed"),
    "oncall.schedule.delete": N_("On-call schedule deleted"),
    "oncall.override.create": N_("On-call override added"),
    "oncall.override.delete": N_("On-call override removed"),
    "escalation.policy.create": N_("Escalation policy created"),
    "escalation.policy.update": N_("Escalation policy changed"),
    "escalation.policy.delete": N_("Escalation policy deleted"),
    "escalation.start": N_("Escalation started"),
    "escalation.escalate": N_("Escalated to the next level"),
    "escalation.exhaust": N_("Escalation ran out"),
    "escalation.acknowledge": N_("Escalation acknowledged"),
    "kb.page.create": N_("Knowledge-base page created"),
    "kb.page.update": N_("Knowledge-base page edited"),
    "kb.page.delete": N_("Knowledge-base page deleted"),
    "kb.page.publish": N_("Knowledge-base page published to git"),
    "notification.channel.create": N_("Notification channel added"),
    "notification.channel.update": N_("Notification channel changed"),
    "notification.channel.delete": N_("Notification channel removed"),
    "notification.send": N_("Notification sent"),
    "response.action.create": N_("Response action added"),
    "response.action.update": N_("Response action changed"),
    "response.action.delete": N_("Response action removed"),
    "response.execution.dry_run": N_("Response action dry run"),
    "response.execution.request": N_("Response action requested"),
    "response.execution.approve": N_("Response action approved"),
    "response.execution.reject": N_("Response action rejected"),
    "response.execution.run": N_("Response action run"),
    "response.execution.rollback": N_("Response action rolled back"),
    "playbook.create": N_("Playbook created"),
    "playbook.update": N_("Playbook changed"),
    "playbook.delete": N_("Playbook removed"),
    "playbook.run.start": N_("Playbook run started"),
    "playbook.run.approve": N_("Playbook step approved"),
    "playbook.run.reject": N_("Playbook step rejected"),
    "playbook.run.finish": N_("Playbook run finished"),
    "incident.create": N_("Incident opened"),
    "incident.update": N_("Incident changed"),
    "incident.assign": N_("Incident assigned"),
    "incident.acknowledge": N_("Incident acknowledged"),
    "incident.transition": N_("Incident moved to another phase"),
    "incident.close": N_("Incident closed"),
    "incident.reopen": N_("Incident reopened"),
    "incident.task.create": N_("Incident task added"),
    "incident.task.update": N_("Incident task changed"),
    "incident.task.complete": N_("Incident task done"),
    "incident.task.reopen": N_("Incident task reopened"),
    "incident.task.delete": N_("Incident task removed"),
    "incident.template.create": N_("Incident task template added"),
    "incident.template.delete": N_("Incident task template removed"),
    "incident.comment": N_("Incident comment added"),
    "incident.timeline.add": N_("Incident timeline entry added"),
    "incident.observable.add": N_("Observable added to an incident"),
    "incident.observable.remove": N_("Observable removed from an incident"),
    "incident.alert.link": N_("Alerts linked to an incident"),
    "incident.alert.unlink": N_("Alert unlinked from an incident"),
    "incident.postmortem.draft": N_("Post-mortem drafted"),
    "incident.postmortem.update": N_("Post-mortem changed"),
    "incident.postmortem.submit": N_("Post-mortem submitted for review"),
    "incident.postmortem.approve": N_("Post-mortem approved"),
    "incident.postmortem.reject": N_("Post-mortem sent back to draft"),
    "incident.type.create": N_("Incident type added"),
    "incident.field.create": N_("Incident custom field added"),
    "incident.field.delete": N_("Incident custom field removed"),
    "incident.sla.update": N_("Incident SLA target changed"),
    "incident.sla.calendar": N_("Incident SLA business hours changed"),
    "incident.evidence.add": N_("Incident evidence file stored"),
    "incident.evidence.download": N_("Incident evidence file downloaded"),
    "incident.evidence.handover": N_("Incident evidence file handed over"),
    "incident.evidence.verify": N_("Incident evidence file verified"),
    "incident.report.submit": N_("Suspected incident reported"),
    "incident.report.accept": N_("Incident report accepted"),
    "incident.report.reject": N_("Incident report rejected"),
    "incident.grouping.create": N_("Alert grouping rule added"),
    "incident.grouping.delete": N_("Alert grouping rule removed"),
}
TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def parse_local_time(value: str, zone: ZoneInfo) -> datetime | None:
    """A time typed in the platform's time zone (as a datetime-local field sends it), made aware."""
    for pattern in TIME_FORMATS:
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=zone)
        except ValueError:
            continue
    return None


def action_label(_: Translator, action: str) -> str:
    return _(ACTION_LABELS[action]) if action in ACTION_LABELS else ""


@router.get("/audit")
def audit_page(
    request: Request,
    principal: AuditReader,
    session: SessionDep,
    pages: Annotated[PageParams, Depends(page_params)],
    q: Text = "",
    actor: Text = "",
    action: Text = "",
    outcome: Text = "",
    since: Text = "",
    until: Text = "",
) -> HTMLResponse:
    _ = translator(request)
    zone = ZoneInfo(settings_of(request).timezone)
    shown = {"q": q, "actor": actor, "action": action, "outcome": outcome, "since": since, "until": until}
    errors: dict[str, str] = {}
    times: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        times[name] = parse_local_time(shown[name], zone) if shown[name] else None
        if shown[name] and times[name] is None:
            errors[name] = _("Enter a date and time such as 2026-01-31 08:00.")
    if outcome and outcome not in OUTCOME_LABELS:
        errors["outcome"] = _("Choose one of the offered values.")
    filters = AuditFilter(q=q.strip(), actor=actor.strip(), action=action.strip(),
                          outcome=outcome if "outcome" not in errors else "", **times)
    records: list[AuditRecord] = []
    total = 0
    if not errors:
        records, total = service.search(context(request, session, principal), filters=filters, params=pages)
    exported = {key: str(value) for key, value in filters.model_dump(mode="json", exclude_defaults=True).items()}
    return render(request, "audit/audit.html", {
        "records": records,
        "filters": shown,
        "errors": errors,
        "pager": Pager("/audit", total, pages.limit, pages.offset, shown),
        "export_url": "/api/v1/audit/export.csv" + (f"?{urlencode(exported)}" if exported else ""),
        "unit_names": {unit.id: unit.name for unit in accounts.list_units(session)},
        "outcomes": OUTCOME_LABELS,
        "outcome_options": [(code, _(label)) for code, label in OUTCOME_LABELS.items()],
        "action_label": lambda code: action_label(_, code),
        "details": lambda value: orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode() if value else "",
        "verification": None,
    }, status=422 if errors else 200)


@router.post("/audit/verify")
def verify_chain(request: Request, principal: AuditVerifier, session: SessionDep) -> HTMLResponse:
    """Walk the whole chain; HTMX swaps the result into the audit page, a plain form gets a page."""
    result = service.verify(context(request, session, principal))
    template = "audit/_verification.html" if wants_fragment(request) else "audit/verification.html"
    return render(request, template, {"verification": result})
