"""The incident report and the post-mortem as Markdown, and publishing it to the knowledge base and git wiki.

``report_markdown`` renders the post-mortem's sections (summary, timeline, impact, root cause with the five
whys, what went well and badly, action items with owners, due dates and the state of their tasks) with the
incident's own data (reference, type, severity, the recorded times, SLA figures, scope, the full timeline with
paging and notifications). ``prefill`` fills the empty sections of a draft from the incident. ``publish``
writes the approved post-mortem into the knowledge base (``kb.service.publish_page``) and, when the git wiki
is configured, commits it there (``publish_to_git``); the post-mortem records the page, its version and the
commit, and the incident's timeline says so. A git refusal keeps the knowledge-base page and is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.core.config import Settings
from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import Conflict, NotFound
from vigil.core.i18n import N_
from vigil.incidents import activity, postmortem, sla
from vigil.incidents.common import get_incident, note, type_key, user_names
from vigil.incidents.models import Incident, PostMortem, Task
from vigil.incidents.response_timeline import merged_timeline
from vigil.kb import service as kb
from vigil.kb.gitwiki import GitWikiError
from vigil.kb.pdf import generated_footer, markdown_pdf

SECTION_KINDS = ("alert", "state_change", "task", "action", "manual", "sla", "escalation", "notification")


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "-"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or "-"


def timeline_lines(session: Session, incident: Incident) -> list[str]:
    """The incident's timeline (with paging and notifications) as Markdown list items, oldest first."""
    return [f"- {_when(entry.at)} {entry.summary}" for entry in
            merged_timeline(session, incident.id, activity.timeline_of(session, incident.id))
            if entry.kind in SECTION_KINDS]


def _sla_lines(session: Session, incident: Incident, now: datetime) -> list[str]:
    figures = sla.figures_of(session, incident, now, sla.targets(session), sla.calendar(session))
    lines = ["| target | due | done | minutes used | state |", "|---|---|---|---|---|"]
    lines += [f"| {f.metric} | {_when(f.due_at)} | {_when(f.done_at)} | {f.elapsed_minutes:.0f} of {f.target_minutes} "
              f"| {f.state} |"
              for f in figures]
    return lines if figures else []


def prefill(ctx: Context, *, incident_id: int) -> PostMortem:
    """Fill the empty sections of the draft from the incident: its full timeline, scope, cause, and what the SLA
    figures say went well (targets met) or badly (targets breached). Only a draft is filled."""
    incident = get_incident(ctx.session, incident_id)
    record = postmortem.postmortem_of(ctx.session, incident.id)
    if record is None:
        record = postmortem.draft(ctx, incident_id=incident_id)
    if record.status != "draft":
        raise Conflict(f"the post-mortem is {record.status}; only a draft is filled in")
    figures = sla.figures_of(ctx.session, incident, utcnow(), sla.targets(ctx.session), sla.calendar(ctx.session))
    met = [f"{f.metric} within its {f.target_minutes}-minute target" for f in figures if str(f.state) == "met"]
    breached = [f"{f.metric} missed its {f.target_minutes}-minute target" for f in figures
                if str(f.state) == "breached"]
    filled = {"timeline": "\n".join(timeline_lines(ctx.session, incident)),
              "impact": postmortem._impact_text(incident), "root_cause": incident.cause,
              "went_well": "\n".join(f"- {line}" for line in met),
              "went_badly": "\n".join(f"- {line}" for line in breached)}
    changed = sorted(key for key, value in filled.items() if value and not getattr(record, key))
    for key in changed:
        setattr(record, key, filled[key])
    record.updated_at = utcnow()
    ctx.session.flush()
    ctx.audit("incident.postmortem.prefill", target_type="incident", target_id=incident.id,
              unit_id=incident.unit_id, details={"ref": incident.ref, "fields": changed})
    return record


def report_markdown(session: Session, incident: Incident, *, now: datetime | None = None) -> str:
    """The incident report: the incident's facts and, when there is one, its post-mortem."""
    now = now or utcnow()
    record = postmortem.postmortem_of(session, incident.id)
    names = user_names(session, [incident.owner_id])
    lines = [f"# {incident.ref}: {incident.title}", "",
             "| | |", "|---|---|",
             f"| Type | {type_key(session, incident)} |", f"| Severity | {incident.severity} |",
             f"| Phase | {incident.phase} ({incident.status}) |",
             f"| Owner | {names.get(incident.owner_id, '-') if incident.owner_id else '-'} |",
             f"| Team | {_cell(incident.team)} |", f"| Opened | {_when(incident.created_at)} |",
             f"| Acknowledged | {_when(incident.acknowledged_at)} |", f"| Contained | {_when(incident.contained_at)} |",
             f"| Resolved | {_when(incident.resolved_at)} |", f"| Closed | {_when(incident.closed_at)} |", ""]
    summary = record.summary if record and record.summary else incident.description
    lines += ["## Summary", "", summary or "-", ""]
    sla_lines = _sla_lines(session, incident, now)
    if sla_lines:
        lines += ["## SLA", "", *sla_lines, ""]
    impact = (record.impact if record and record.impact else postmortem._impact_text(incident))
    lines += ["## Impact and scope", "", impact or "-", ""]
    timeline = record.timeline if record and record.timeline else "\n".join(timeline_lines(session, incident))
    lines += ["## Timeline", "", timeline or "-", ""]
    lines += ["## Root cause", "", (record.root_cause if record and record.root_cause else incident.cause) or "-", ""]
    if record is not None:
        if record.five_whys:
            lines += ["### Five whys", "", *[f"{n}. {why}" for n, why in enumerate(record.five_whys, 1)], ""]
        lines += ["## What went well", "", record.went_well or "-", "",
                  "## What went badly", "", record.went_badly or "-", ""]
        lines += ["## Action items", "", *_action_lines(session, record), ""]
        state = f"Post-mortem {record.status}"
        if record.approved_by:
            state += f", approved by {record.approved_by} at {_when(record.approved_at)}"
        lines += [f"*{state}; written by {record.author}.*", ""]
    return "\n".join(lines)


def report_pdf(session: Session, incident: Incident, *, now: datetime | None = None) -> bytes:
    """The incident report (``report_markdown``) as an A4 PDF."""
    now = now or utcnow()
    return markdown_pdf(report_markdown(session, incident, now=now), title=f"{incident.ref}: {incident.title}",
                        footer=generated_footer(f"{incident.ref} incident report", now))


def _action_lines(session: Session, record: PostMortem) -> list[str]:
    if not record.action_items:
        return ["-"]
    tasks = {t.id: t for t in session.scalars(select(Task).where(
        Task.id.in_([i["task_id"] for i in record.action_items if i.get("task_id")])))}
    owners = user_names(session, [i.get("owner_id") for i in record.action_items])
    rows = ["| action | owner | due | task |", "|---|---|---|---|"]
    for item in record.action_items:
        task = tasks.get(item.get("task_id") or 0)
        state = ("done" if task.done_at else "open") if task is not None else "not yet a task"
        rows.append(f"| {_cell(item.get('title', ''))} | {owners.get(item.get('owner_id') or 0, '-')} | "
                    f"{(item.get('due_at') or '-')[:10]} | {state} |")
    return rows


@dataclass(frozen=True)
class Publication:
    slug: str
    version: int
    git_commit: str | None
    git_error: str


def publish(ctx: Context, *, settings: Settings, incident_id: int) -> Publication:
    """Publish the approved post-mortem (again, after a change: a new page version) to the knowledge base and,
    with ``kb_git_path`` set, the git wiki. Refused (409) unless approved."""
    incident = get_incident(ctx.session, incident_id)
    record = postmortem.postmortem_of(ctx.session, incident.id)
    if record is None:
        raise NotFound(f"incident {incident.ref} has no post-mortem yet; draft one first")
    if record.status != "approved":
        raise Conflict(f"the post-mortem is {record.status}; only an approved post-mortem is published")
    slug = f"postmortem-{incident.ref.lower()}"
    page = kb.publish_page(ctx, slug=slug, title=f"Post-mortem {incident.ref}: {incident.title}"[:200],
                           markdown=report_markdown(ctx.session, incident), unit_id=incident.unit_id,
                           tags=["postmortem", type_key(ctx.session, incident)], source_kind="postmortem",
                           source_id=str(record.id), comment=f"approved by {record.approved_by}")
    commit, git_error = None, ""
    if settings.kb_git_path is not None:
        try:
            with ctx.session.begin_nested():
                commit = kb.publish_to_git(ctx, settings=settings, page=page).commit
        except GitWikiError as exc:  # the knowledge-base page stands; the wiki's refusal is shown and kept
            git_error = exc.detail
    record.kb_slug, record.kb_version, record.git_commit = page.slug, page.version, commit
    record.published_at, record.published_by = utcnow(), ctx.actor.name
    ctx.session.flush()
    published = (N_("Post-mortem published: knowledge base page %(slug)s (version %(version)s), git commit %(commit)s")
                 if commit else N_("Post-mortem published: knowledge base page %(slug)s (version %(version)s); git "
                                   "wiki refused: %(error)s") if git_error
                 else N_("Post-mortem published: knowledge base page %(slug)s (version %(version)s)"))
    note(ctx, incident, "action", published, params={"slug": page.slug, "version": page.version,
                                                     "commit": (commit or "")[:12], "error": git_error[:300]},
         postmortem_id=record.id,
         kb_slug=page.slug, kb_version=page.version, git_commit=commit, git_error=git_error[:500])
    ctx.audit("incident.postmortem.publish", target_type="incident", target_id=incident.id,
              unit_id=incident.unit_id, details={"ref": incident.ref, "slug": page.slug, "version": page.version,
                                                 "commit": commit, "git_error": git_error[:500]})
    return Publication(page.slug, page.version, commit, git_error)
