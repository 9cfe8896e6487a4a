"""Incident tasks (create, change, complete, reopen, delete) and the task templates an incident gets per type
and phase. Required tasks of a phase gate leaving it (``workflow.plan``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from vigil.core.context import Context
from vigil.core.db import utcnow
from vigil.core.errors import Conflict, NotFound
from vigil.core.i18n import N_
from vigil.incidents.common import check_users, find_type, get_open_incident, note
from vigil.incidents.models import Incident, IncidentType, Task, TaskTemplate
from vigil.incidents.schemas import TaskCreate, TaskTemplateCreate, TaskUpdate


def get_task(session: Session, incident: Incident, task_id: int) -> Task:
    task = session.scalar(select(Task).where(Task.id == task_id, Task.incident_id == incident.id))
    if task is None:
        raise NotFound(f"incident {incident.ref} has no task {task_id}")
    return task


def tasks_of(session: Session, incident_id: int) -> list[Task]:
    return list(session.scalars(select(Task).where(Task.incident_id == incident_id).order_by(Task.id)))


def open_required(session: Session, incident: Incident, phase: str) -> list[str]:
    """Titles of the required tasks of ``phase`` not yet done."""
    return list(session.scalars(select(Task.title).where(
        Task.incident_id == incident.id, Task.phase == phase, Task.required, Task.status != "done").order_by(Task.id)))


def _audit(ctx: Context, action: str, incident: Incident, task: Task, **details: object) -> None:
    ctx.audit(action, target_type="incident", target_id=incident.id, unit_id=incident.unit_id,
              details={"ref": incident.ref, "task_id": task.id, "title": task.title, **details})


def create_task(ctx: Context, *, incident_id: int, data: TaskCreate) -> Task:
    incident = get_open_incident(ctx.session, incident_id)
    if data.assignee_id is not None:
        check_users(ctx.session, [data.assignee_id], incident.unit_id, "assignee_id")
    phase = data.phase or incident.phase
    task = Task(incident_id=incident.id, title=data.title, description=data.description, phase=phase,
                required=data.required, assignee_id=data.assignee_id, due_at=data.due_at, created_by=ctx.actor.name)
    ctx.session.add(task)
    ctx.session.flush()
    note(ctx, incident, "task", N_("Task added: %(title)s"), params={"title": task.title}, task_id=task.id,
         phase=phase, required=task.required)
    _audit(ctx, "incident.task.create", incident, task, phase=phase, required=task.required)
    return task


def update_task(ctx: Context, *, incident_id: int, task_id: int, data: TaskUpdate) -> Task:
    incident = get_open_incident(ctx.session, incident_id)
    task = get_task(ctx.session, incident, task_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("assignee_id") is not None:
        check_users(ctx.session, [changes["assignee_id"]], incident.unit_id, "assignee_id")
    for key, value in changes.items():
        setattr(task, key, value)
    ctx.session.flush()
    if changes:
        note(ctx, incident, "task", N_("Task changed: %(title)s"), params={"title": task.title}, task_id=task.id,
             fields=sorted(changes))
        _audit(ctx, "incident.task.update", incident, task, fields=sorted(changes))
    return task


def complete_task(ctx: Context, *, incident_id: int, task_id: int, done: bool = True) -> Task:
    """Mark the task done (or open again with ``done=False``); a task already there is left alone."""
    incident = get_open_incident(ctx.session, incident_id)
    task = get_task(ctx.session, incident, task_id)
    if (task.status == "done") == done:
        return task
    task.status = "done" if done else "open"
    task.done_by = ctx.actor.name if done else None
    task.done_at = utcnow() if done else None
    ctx.session.flush()
    said = N_("Task done: %(title)s") if done else N_("Task reopened: %(title)s")
    note(ctx, incident, "task", said, params={"title": task.title}, task_id=task.id, status=task.status)
    _audit(ctx, "incident.task.complete" if done else "incident.task.reopen", incident, task)
    return task


def delete_task(ctx: Context, *, incident_id: int, task_id: int) -> None:
    incident = get_open_incident(ctx.session, incident_id)
    task = get_task(ctx.session, incident, task_id)
    if task.required and task.template_id is not None:
        raise Conflict(f"task {task.title!r} is required by the response template; complete it instead")
    note(ctx, incident, "task", N_("Task removed: %(title)s"), params={"title": task.title}, task_id=task.id)
    _audit(ctx, "incident.task.delete", incident, task)
    ctx.session.delete(task)
    ctx.session.flush()


def apply_templates(ctx: Context, incident: Incident, phase: str) -> list[Task]:
    """Give the incident the templates' tasks of its type (and of every type) for ``phase``, except those it has
    from an earlier stay in the phase."""
    templates = ctx.session.scalars(select(TaskTemplate).where(
        TaskTemplate.phase == phase, or_(TaskTemplate.type_id.is_(None), TaskTemplate.type_id == incident.type_id))
        .order_by(TaskTemplate.position, TaskTemplate.id)).all()
    have = set(ctx.session.scalars(select(Task.template_id).where(Task.incident_id == incident.id,
                                                                  Task.template_id.is_not(None))))
    added: list[Task] = []
    for template in templates:
        if template.id in have:
            continue
        task = Task(incident_id=incident.id, template_id=template.id, title=template.title,
                    description=template.description, phase=phase, required=template.required,
                    created_by=ctx.actor.name)
        ctx.session.add(task)
        added.append(task)
    if added:
        ctx.session.flush()
        note(ctx, incident, "task", N_("%(count)s task(s) from the %(phase)s templates"),
             params={"count": len(added), "phase": phase}, task_ids=[task.id for task in added], phase=phase)
    return added


# --- templates (platform-wide) ---------------------------------------------------------------------


def list_templates(session: Session) -> Sequence[TaskTemplate]:
    return session.scalars(select(TaskTemplate).order_by(TaskTemplate.phase, TaskTemplate.position,
                                                         TaskTemplate.id)).all()


def create_template(ctx: Context, *, data: TaskTemplateCreate) -> TaskTemplate:
    kind: IncidentType | None = find_type(ctx.session, data.type) if data.type else None
    template = TaskTemplate(type_id=kind.id if kind else None, phase=data.phase, title=data.title,
                            description=data.description, required=data.required, position=data.position)
    ctx.session.add(template)
    ctx.session.flush()
    ctx.audit("incident.template.create", target_type="incident_task_template", target_id=template.id,
              details={"type": data.type, "phase": data.phase, "title": data.title, "required": data.required})
    return template


def delete_template(ctx: Context, *, template_id: int) -> None:
    template = ctx.session.get(TaskTemplate, template_id)
    if template is None:
        raise NotFound(f"task template {template_id} does not exist")
    ctx.audit("incident.template.delete", target_type="incident_task_template", target_id=template.id,
              details={"phase": template.phase, "title": template.title})
    ctx.session.delete(template)
    ctx.session.flush()

