"""Helpers shared by the incident tests: acting as a world user, opening incidents, walking the phases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import select

from vigil.accounts import service as accounts
from vigil.accounts import signin
from vigil.core.auth import Permission
from vigil.core.context import Context
from vigil.core.db import Database, Scope, set_scope
from vigil.incidents import postmortem, service, tasks
from vigil.incidents.models import Incident, Task
from vigil.incidents.schemas import IncidentCreate, IncidentTransition
from vigil.incidents.workflow import ReviewAction


@contextmanager
def acting(database: Database, username: str, permission: Permission = Permission.INCIDENTS_WRITE
           ) -> Iterator[Context]:
    """A transaction as the signed-in user, scoped as the API's guard scopes it for ``permission``."""
    with database.transaction(Scope.system()) as session:
        user = accounts.find_user(session, username)
        principal = signin.principal_for(user, tree=accounts.load_unit_tree(session))
        set_scope(session, Scope(principal.units_for(permission)))
        yield Context.of(session, principal, "203.0.113.7")


def open_one(database: Database, username: str = "analyst", *, at: datetime | None = None,
             **fields: Any) -> int:
    data = {"title": "Ransomware on WS01", "type": "malware", "severity": "P2", **fields}
    with acting(database, username) as ctx:
        return service.open_incident(ctx, data=IncidentCreate.model_validate(data), at=at).id


def finish_tasks(ctx: Context, incident_id: int) -> None:
    incident = service.get_incident(ctx.session, incident_id)
    for task in ctx.session.scalars(select(Task).where(Task.incident_id == incident_id, Task.phase == incident.phase,
                                                       Task.status == "open")):
        tasks.complete_task(ctx, incident_id=incident_id, task_id=task.id)


def walk_to(database: Database, incident_id: int, phase: str, username: str = "analyst",
            at: datetime | None = None) -> None:
    """Finish the current phase's tasks and move one step to ``phase``."""
    with acting(database, username) as ctx:
        finish_tasks(ctx, incident_id)
        service.transition(ctx, incident_id=incident_id, data=IncidentTransition.model_validate({"phase": phase}),
                           at=at)


def approve_postmortem(database: Database, incident_id: int, author: str = "analyst",
                       approver: str = "responder") -> None:
    with acting(database, author) as ctx:
        postmortem.draft(ctx, incident_id=incident_id)
        postmortem.review(ctx, incident_id=incident_id, action=ReviewAction.SUBMIT)
    with acting(database, approver) as ctx:
        postmortem.review(ctx, incident_id=incident_id, action=ReviewAction.APPROVE)


def stored(database: Database, incident_id: int) -> Incident:
    with database.transaction(Scope.system()) as session:
        found = session.get(Incident, incident_id)
        assert found is not None
        session.expunge(found)
        return found
