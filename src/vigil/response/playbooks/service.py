"""Playbooks: create, edit (every change of the definition is a new version), remove, list, read versions.

A definition is checked as a whole before anything is stored: its schema (``schemas.Definition``), and that
every action, notification channel and incident type it names exists within the caller's units. Runs live in
``runs.py``. The caller owns the transaction: nothing here commits.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core.context import Context
from vigil.core.db import get_scope, utcnow
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.incidents.common import find_type
from vigil.response.actions import service as actions
from vigil.response.notifications import service as notifications
from vigil.response.playbooks.models import Playbook, PlaybookVersion
from vigil.response.playbooks.schemas import (
    ActStep,
    Definition,
    NotifyStep,
    PlaybookCreate,
    PlaybookRead,
    PlaybookUpdate,
)

UNSCOPED = {"vigil_unscoped": True}


def parse_definition(text: str) -> Definition:
    """A definition from the editor's text (JSON or YAML); ``BadInput`` naming the line or the field."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise BadInput(f"the definition is neither valid JSON nor YAML{where}",
                       errors=[{"field": "definition", "message": f"not JSON or YAML{where}"}]) from None
    if not isinstance(raw, dict):
        raise BadInput("the definition must be an object with a trigger and steps",
                       errors=[{"field": "definition", "message": "must be an object with trigger and steps"}])
    try:
        return Definition.model_validate(raw)
    except ValidationError as exc:
        errors = [{"field": "definition." + ".".join(str(p) for p in error["loc"]), "message": error["msg"]}
                  for error in exc.errors()]
        raise BadInput("the definition does not fit: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                       errors=errors) from None


def check_references(session: Session, definition: Definition) -> None:
    """Every action, channel and incident type named exists in the caller's units (else ``BadInput``)."""
    errors: list[dict[str, str]] = []
    for position, step in enumerate(definition.steps):
        try:
            if isinstance(step, ActStep):
                actions.get_action(session, step.action_id)
            elif isinstance(step, NotifyStep):
                notifications.get_channel(session, step.channel_id)
        except NotFound as exc:
            errors.append({"field": f"definition.steps.{position}", "message": exc.detail})
    for key in definition.trigger.incident_types:
        try:
            find_type(session, key)
        except BadInput as exc:
            errors.append({"field": "definition.trigger.incident_types", "message": exc.detail})
    if errors:
        raise BadInput("the definition names what does not exist: " + "; ".join(e["message"] for e in errors),
                       errors=errors)


def _check_unit(ctx: Context, unit_id: int) -> None:
    if not get_scope(ctx.session).allows(unit_id):
        raise NotFound(f"organisation unit {unit_id} does not exist or is outside your scope")
    accounts.get_unit(ctx.session, unit_id)


def _check_name_free(ctx: Context, name: str, *, other_than: int | None = None) -> None:
    found = ctx.session.scalar(select(Playbook.id).where(Playbook.name == name), execution_options=UNSCOPED)
    if found is not None and found != other_than:
        raise Conflict(f"a playbook named {name!r} exists")


def _stored(definition: Definition) -> dict[str, Any]:
    return definition.model_dump(mode="json", exclude_defaults=False)


def create_playbook(ctx: Context, *, data: PlaybookCreate) -> Playbook:
    unit_id = data.unit_id if data.unit_id is not None else ctx.actor.unit_id
    _check_unit(ctx, unit_id)
    _check_name_free(ctx, data.name)
    check_references(ctx.session, data.definition)
    playbook = Playbook(unit_id=unit_id, name=data.name, description=data.description, enabled=data.enabled,
                        version=1, created_by=ctx.actor.name, updated_by=ctx.actor.name)
    ctx.session.add(playbook)
    ctx.session.flush()
    ctx.session.add(PlaybookVersion(playbook_id=playbook.id, version=1, definition=_stored(data.definition),
                                    comment="created", created_by=ctx.actor.name))
    ctx.session.flush()
    ctx.audit("playbook.create", target_type="playbook", target_id=playbook.id, unit_id=unit_id,
              details={"name": playbook.name, "version": 1, "steps": len(data.definition.steps)})
    return playbook


def update_playbook(ctx: Context, *, playbook_id: int, data: PlaybookUpdate) -> Playbook:
    playbook = get_playbook(ctx.session, playbook_id)
    changes: dict[str, Any] = {}
    if data.name is not None and data.name != playbook.name:
        _check_name_free(ctx, data.name, other_than=playbook.id)
        changes["name"] = [playbook.name, data.name]
        playbook.name = data.name
    if data.description is not None and data.description != playbook.description:
        changes["description"] = "(changed)"
        playbook.description = data.description
    if data.enabled is not None and data.enabled != playbook.enabled:
        changes["enabled"] = [playbook.enabled, data.enabled]
        playbook.enabled = data.enabled
    if data.definition is not None:
        check_references(ctx.session, data.definition)
        stored = _stored(data.definition)
        if stored != definition_of(ctx.session, playbook):
            playbook.version += 1
            ctx.session.add(PlaybookVersion(playbook_id=playbook.id, version=playbook.version, definition=stored,
                                            comment=data.comment, created_by=ctx.actor.name))
            changes["version"] = playbook.version
    if changes:
        playbook.updated_at, playbook.updated_by = utcnow(), ctx.actor.name
        ctx.session.flush()
        ctx.audit("playbook.update", target_type="playbook", target_id=playbook.id, unit_id=playbook.unit_id,
                  details={"name": playbook.name, "changes": changes, "comment": data.comment})
    return playbook


def delete_playbook(ctx: Context, *, playbook_id: int) -> Playbook:
    """Remove a playbook and its versions; its runs stay, under its name."""
    playbook = get_playbook(ctx.session, playbook_id)
    ctx.audit("playbook.delete", target_type="playbook", target_id=playbook.id, unit_id=playbook.unit_id,
              details={"name": playbook.name, "version": playbook.version})
    ctx.session.delete(playbook)
    ctx.session.flush()
    return playbook


def get_playbook(session: Session, playbook_id: int) -> Playbook:
    found = session.scalar(select(Playbook).where(Playbook.id == playbook_id))
    if found is None:
        raise NotFound(f"playbook {playbook_id} does not exist or is outside your scope")
    return found


def find_playbook(session: Session, ident: str) -> Playbook:
    if ident.isdigit():
        return get_playbook(session, int(ident))
    found = session.scalar(select(Playbook).where(Playbook.name == ident))
    if found is None:
        raise NotFound(f"playbook {ident!r} does not exist or is outside your scope")
    return found


def playbooks_query() -> Select[Playbook]:
    return select(Playbook).order_by(Playbook.name)


def list_playbooks(session: Session) -> list[Playbook]:
    return list(session.scalars(playbooks_query()))


def get_version(session: Session, playbook: Playbook, version: int | None = None) -> PlaybookVersion:
    wanted = playbook.version if version is None else version
    found = session.scalar(select(PlaybookVersion).where(PlaybookVersion.playbook_id == playbook.id,
                                                         PlaybookVersion.version == wanted))
    if found is None:
        raise NotFound(f"playbook {playbook.name} has no version {wanted}")
    return found


def playbook_read(session: Session, playbook: Playbook) -> PlaybookRead:
    return PlaybookRead(id=playbook.id, unit_id=playbook.unit_id, name=playbook.name,
                        description=playbook.description, enabled=playbook.enabled, version=playbook.version,
                        definition=definition_of(session, playbook), created_at=playbook.created_at,
                        created_by=playbook.created_by, updated_at=playbook.updated_at, updated_by=playbook.updated_by)


def definition_of(session: Session, playbook: Playbook) -> dict[str, Any]:
    return dict(get_version(session, playbook).definition)


def versions_of(session: Session, playbook: Playbook) -> list[PlaybookVersion]:
    return list(session.scalars(select(PlaybookVersion).where(PlaybookVersion.playbook_id == playbook.id)
                                .order_by(PlaybookVersion.version.desc())))


def version_count(session: Session, playbook_id: int) -> int:
    return session.scalar(select(func.count()).select_from(PlaybookVersion)
                          .where(PlaybookVersion.playbook_id == playbook_id)) or 0
