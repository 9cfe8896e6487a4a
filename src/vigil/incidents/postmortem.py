"""The post-mortem record of an incident: drafted from the incident's own data, edited while a draft, submitted
for review, approved by someone other than its author (or sent back to draft). Approval turns its action
items into tasks of the review phase. Publishing it to the knowledge base and the wiki is not done here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import Conflict, NotFound, PermissionDenied
from vigil.core.events import emit
from vigil.core.i18n import N_
from vigil.incidents.activity import timeline_of
from vigil.incidents.common import check_users, event_fields, get_incident, note
from vigil.incidents.events import PostMortemApproved
from vigil.incidents.models import Incident, PostMortem, Task
from vigil.incidents.schemas import PostMortemUpdate
from vigil.incidents.workflow import ReviewAction, plan_review


def postmortem_of(session: Session, incident_id: int) -> PostMortem | None:
    return session.scalar(select(PostMortem).where(PostMortem.incident_id == incident_id))


def _get(session: Session, incident: Incident) -> PostMortem:
    found = postmortem_of(session, incident.id)
    if found is None:
        raise NotFound(f"incident {incident.ref} has no post-mortem yet; draft one first")
    return found


def _timeline_text(session: Session, incident: Incident) -> str:
    lines = [f"- {entry.at:%Y-%m-%d %H:%M} UTC {entry.summary}" for entry in timeline_of(session, incident.id)
             if entry.kind in ("alert", "state_change", "action", "manual", "sla")]
    return "\n".join(lines)


def _impact_text(incident: Incident) -> str:
    parts = [(label, values) for label, values in (
        ("Affected assets", incident.affected_assets), ("Affected users", incident.affected_users),
        ("Business lines", incident.business_lines), ("Affected data", incident.affected_data)) if values]
    return "\n".join(f"{label}: {', '.join(values)}" for label, values in parts)


def draft(ctx: Context, *, incident_id: int) -> PostMortem:
    """Start the post-mortem, filled from the incident: summary, timeline, impact and cause. One per incident
    (a second draft is refused, 409)."""
    incident = get_incident(ctx.session, incident_id)
    if postmortem_of(ctx.session, incident.id) is not None:
        raise Conflict(f"incident {incident.ref} already has a post-mortem")
    record = PostMortem(incident_id=incident.id, author_id=ctx.actor.user_id, author=ctx.actor.name,
                        summary=f"{incident.ref} {incident.title}\n\n{incident.description}".strip(),
                        timeline=_timeline_text(ctx.session, incident), impact=_impact_text(incident),
                        root_cause=incident.cause, five_whys=[], action_items=[])
    ctx.session.add(record)
    ctx.session.flush()
    note(ctx, incident, "state_change", N_("Post-mortem drafted"), params={}, postmortem_id=record.id)
    ctx.audit("incident.postmortem.draft", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "postmortem_id": record.id})
    return record


def update(ctx: Context, *, incident_id: int, data: PostMortemUpdate) -> PostMortem:
    """Edit the draft (a post-mortem in review or approved is not edited; reject it back to draft first)."""
    incident = get_incident(ctx.session, incident_id)
    record = _get(ctx.session, incident)
    if record.status != "draft":
        raise Conflict(f"the post-mortem is {record.status}; only a draft is edited")
    changes = data.model_dump(exclude_unset=True, mode="json")
    if changes.get("action_items"):
        owners = [item["owner_id"] for item in changes["action_items"] if item.get("owner_id") is not None]
        check_users(ctx.session, owners, incident.unit_id, "action_items")
    for key, value in changes.items():
        if value is not None:
            setattr(record, key, value)
    record.updated_at = utcnow()
    ctx.session.flush()
    ctx.audit("incident.postmortem.update", target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "fields": sorted(changes)})
    return record


def _tasks_from_actions(ctx: Context, incident: Incident, record: PostMortem) -> None:
    items = []
    for item in record.action_items:
        if item.get("task_id") is None:
            due = datetime.fromisoformat(item["due_at"]) if item.get("due_at") else None
            task = Task(incident_id=incident.id, title=item["title"], phase="review", required=False,
                        assignee_id=item.get("owner_id"), due_at=due, created_by=ctx.actor.name,
                        description=f"Action item of the post-mortem of {incident.ref}")
            ctx.session.add(task)
            ctx.session.flush()
            item = {**item, "task_id": task.id}
        items.append(item)
    record.action_items = items


def review(ctx: Context, *, incident_id: int, action: ReviewAction, note_text: str = "") -> PostMortem:
    """submit (draft -> in_review), approve (in_review -> approved; never by its author) or reject
    (in_review -> draft, with a note)."""
    incident = get_incident(ctx.session, incident_id)
    record = _get(ctx.session, incident)
    target = plan_review(record.status, action)
    now = utcnow()
    if action is ReviewAction.APPROVE:
        if (ctx.actor.user_id is not None and ctx.actor.user_id == record.author_id) or ctx.actor.name == record.author:
            raise PermissionDenied("the author of a post-mortem cannot approve it; another responder must")
        record.approved_by = ctx.actor.name
        record.approved_at = now
        _tasks_from_actions(ctx, incident, record)
    elif action is ReviewAction.SUBMIT:
        record.submitted_at = now
    record.review_note = note_text
    record.status = target
    record.updated_at = now
    ctx.session.flush()
    said = {ReviewAction.SUBMIT: N_("Post-mortem submitted for review"),
            ReviewAction.APPROVE: N_("Post-mortem approved"),
            ReviewAction.REJECT: N_("Post-mortem sent back to draft")}[action]
    note(ctx, incident, "state_change", said, params={}, postmortem_id=record.id, note=note_text)
    ctx.audit(f"incident.postmortem.{action}", target_type="incident", target_id=incident.id,
              unit_id=incident.unit_id, details={"ref": incident.ref, "postmortem_id": record.id, "note": note_text})
    if action is ReviewAction.APPROVE:
        emit(ctx.session, PostMortemApproved(**event_fields(ctx.session, ctx, incident), postmortem_id=record.id))
    return record
