"""Action plugins and configurations: load the ``vigil.actions`` plugins, configure actions per unit, dry-run.

A configuration's secrets (an API token) are never read back: reads, pages, audit records and dry-runs show
the settings without them and say only whether each is set, as notification channels do. Executions live in
``executions.py``. Like every service here: a ``Context`` (or a session for reads), keyword arguments, never a
commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cache
from importlib.metadata import EntryPoint
from types import MappingProxyType
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core import plugins
from vigil.core.context import Context
from vigil.core.db import get_scope, utcnow
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.inputs import merge_settings
from vigil.response.actions.base import Action, ConfigProblem, Plan, TargetRefused
from vigil.response.actions.models import ActionConfig
from vigil.response.actions.schemas import ActionCreate, ActionKind, ActionRead, ActionUpdate, DryRunRead

log = logging.getLogger(__name__)

GROUP = "vigil.actions"
UNSCOPED = {"vigil_unscoped": True}
# The built-ins as pyproject.toml declares them. An environment installed before they were declared has no
# entry points for them yet; they are then loaded from these same targets, through the same EntryPoint path.
BUILTINS: Mapping[str, str] = {
    "block_ip": "vigil.response.actions.builtin:BlockIp",
    "disable_account": "vigil.response.actions.builtin:DisableAccount",
    "isolate_host": "vigil.response.actions.builtin:IsolateHost",
    "run_script": "vigil.response.actions.builtin:RunScript",
}


@cache
def actions() -> Mapping[str, Action]:
    """Every installed action kind (built-in and third-party alike); broken ones are logged and left out."""
    loaded = plugins.load_group(GROUP, Action)  # type: ignore[type-abstract]
    for broken in loaded.broken:
        log.warning("response action %s (%s) is not available: %s", broken.name, broken.target, broken.reason)
    found = dict(loaded.plugins)
    for name, target in BUILTINS.items():
        if name not in found:
            plugin = EntryPoint(name=name, value=target, group=GROUP).load()()
            found[name] = plugin
    return MappingProxyType(found)


def action_kind(kind: str) -> Action:
    found = actions().get(kind)
    if found is None:
        raise BadInput(f"unknown action kind {kind!r}; known kinds: {', '.join(sorted(actions()))}",
                       errors=[{"field": "kind", "message": "unknown action kind"}])
    return found


def kinds() -> list[ActionKind]:
    return [ActionKind(kind=kind, target=plugin.target_label,
                       fields=[{"name": f.name, "type": f.type, "required": f.required, "secret": f.secret,
                                "default": f.default, "choices": list(f.choices)} for f in plugin.fields])
            for kind, plugin in sorted(actions().items())]


def secret_fields(kind: str) -> tuple[str, ...]:
    plugin = actions().get(kind)
    return tuple(f.name for f in plugin.fields if f.secret) if plugin else ()


def public_settings(action: ActionConfig) -> tuple[dict[str, Any], dict[str, str]]:
    hidden = secret_fields(action.kind)
    config = action.config or {}
    return ({key: value for key, value in config.items() if key not in hidden},
            {name: "set" if config.get(name) else "not set" for name in hidden})


def undo_plan(action: ActionConfig, target: str, parameters: Mapping[str, str]) -> Plan | None:
    return action_kind(action.kind).undo(action.config or {}, target, parameters)


def reversible(action: ActionConfig) -> bool:
    """Whether the configuration says how to undo (tried with a harmless documentation address or name)."""
    plugin = actions().get(action.kind)
    if plugin is None:
        return False
    sample = {"IP address": "192.0.2.1", "host": "host.example", "account": "account"}.get(plugin.target_label, "x")
    try:
        return plugin.undo(action.config or {}, sample, {}) is not None
    except TargetRefused:
        return True  # a sample refused by the configuration (a protected network) says nothing against undo


def action_read(action: ActionConfig) -> ActionRead:
    settings, secrets = public_settings(action)
    return ActionRead(id=action.id, unit_id=action.unit_id, name=action.name, kind=action.kind, enabled=action.enabled,
                      settings=settings, secrets=secrets, requires_approval=action.requires_approval,
                      rollback_after_seconds=action.rollback_after_seconds, reversible=reversible(action),
                      description=action.description, created_at=action.created_at, created_by=action.created_by,
                      updated_at=action.updated_at, updated_by=action.updated_by)


# --- configurations ---------------------------------------------------------------------------------


def _checked_config(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return action_kind(kind).check_config(config)
    except ConfigProblem as exc:
        errors = [{"field": f"config.{e['field']}", "message": e["message"]} for e in exc.errors]
        raise BadInput(f"the {kind} action's settings are not valid: {exc}", errors=errors) from None


def _check_unit(ctx: Context, unit_id: int) -> None:
    if not get_scope(ctx.session).allows(unit_id):
        raise NotFound(f"organisation unit {unit_id} does not exist or is outside your scope")
    accounts.get_unit(ctx.session, unit_id)


def _check_name_free(ctx: Context, name: str, *, other_than: int | None = None) -> None:
    # Names are global (playbooks and the CLI name actions): another unit's name clashes too.
    found = ctx.session.scalar(select(ActionConfig.id).where(ActionConfig.name == name), execution_options=UNSCOPED)
    if found is not None and found != other_than:
        raise Conflict(f"a response action named {name!r} exists")


def _audit_view(action: ActionConfig) -> dict[str, Any]:
    settings, secrets = public_settings(action)
    return {"name": action.name, "kind": action.kind, "enabled": action.enabled, "settings": settings,
            "secrets": secrets, "requires_approval": action.requires_approval,
            "rollback_after_seconds": action.rollback_after_seconds, "description": action.description}


def create_action(ctx: Context, *, data: ActionCreate) -> ActionConfig:
    unit_id = data.unit_id if data.unit_id is not None else ctx.actor.unit_id
    _check_unit(ctx, unit_id)
    config = _checked_config(data.kind, data.config)
    _check_name_free(ctx, data.name)
    action = ActionConfig(unit_id=unit_id, name=data.name, kind=data.kind, enabled=data.enabled, config=config,
                          requires_approval=data.requires_approval,
                          rollback_after_seconds=data.rollback_after_seconds, description=data.description,
                          created_by=ctx.actor.name, updated_by=ctx.actor.name)
    ctx.session.add(action)
    ctx.session.flush()
    ctx.audit("response.action.create", target_type="response_action", target_id=action.id, unit_id=unit_id,
              details=_audit_view(action))
    return action


def update_action(ctx: Context, *, action_id: int, data: ActionUpdate) -> ActionConfig:
    action = get_action(ctx.session, action_id)
    given = data.model_dump(include=data.model_fields_set)
    for name in ("name", "enabled", "requires_approval", "unit_id"):
        if name in given and given[name] is None:
            raise BadInput(f"{name} cannot be empty", errors=[{"field": name, "message": "required"}])
    if "unit_id" in given:
        _check_unit(ctx, given["unit_id"])
    if "name" in given:
        _check_name_free(ctx, given["name"], other_than=action.id)
    if given.get("config") is not None:
        given["config"] = _checked_config(action.kind, merge_settings(
            action.config, given["config"], secrets=secret_fields(action.kind)))
    else:
        given.pop("config", None)
    if "description" in given and given["description"] is None:
        given["description"] = ""
    before = {**_audit_view(action), "unit_id": action.unit_id}
    old_secrets = {name: (action.config or {}).get(name) for name in secret_fields(action.kind)}
    for name, value in given.items():
        setattr(action, name, value)
    after = {**_audit_view(action), "unit_id": action.unit_id}
    changes: dict[str, Any] = {key: [before[key], after[key]] for key in after
                               if before[key] != after[key] and key != "secrets"}
    changed_secrets = sorted(name for name, value in old_secrets.items() if (action.config or {}).get(name) != value)
    if changed_secrets:
        changes["secrets_changed"] = changed_secrets
    if changes:
        action.updated_at, action.updated_by = utcnow(), ctx.actor.name
        ctx.session.flush()
        ctx.audit("response.action.update", target_type="response_action", target_id=action.id,
                  unit_id=action.unit_id, details={"name": action.name, "changes": changes})
    return action


def delete_action(ctx: Context, *, action_id: int) -> ActionConfig:
    """Remove an action; its executions stay, under the action's name (a pending rollback still runs)."""
    action = get_action(ctx.session, action_id)
    ctx.audit("response.action.delete", target_type="response_action", target_id=action.id, unit_id=action.unit_id,
              details=_audit_view(action))
    ctx.session.delete(action)
    ctx.session.flush()
    return action


def get_action(session: Session, action_id: int) -> ActionConfig:
    found = session.scalar(select(ActionConfig).where(ActionConfig.id == action_id))
    if found is None:
        raise NotFound(f"response action {action_id} does not exist or is outside your scope")
    return found


def find_action(session: Session, ident: str) -> ActionConfig:
    """By id or by name."""
    if ident.isdigit():
        return get_action(session, int(ident))
    found = session.scalar(select(ActionConfig).where(ActionConfig.name == ident))
    if found is None:
        raise NotFound(f"response action {ident!r} does not exist or is outside your scope")
    return found


def actions_query(*, kind: str | None = None) -> Select[ActionConfig]:
    query = select(ActionConfig).order_by(ActionConfig.name)
    return query.where(ActionConfig.kind == kind) if kind else query


def list_actions(session: Session) -> list[ActionConfig]:
    return list(session.scalars(actions_query()))


# --- dry-run ----------------------------------------------------------------------------------------


def checked_target(action: ActionConfig, target: str) -> str:
    try:
        return action_kind(action.kind).check_target(action.config or {}, target)
    except TargetRefused as exc:
        raise BadInput(f"refused target for {action.name}: {exc}",
                       errors=[{"field": "target", "message": str(exc)}]) from None


def plans(action: ActionConfig, target: str, parameters: Mapping[str, str]) -> tuple[str, Plan, Plan | None]:
    """The checked target, and the plans that do and undo the action on it (``BadInput`` for a refused target)."""
    clean = checked_target(action, target)
    plugin = action_kind(action.kind)
    return clean, plugin.plan(action.config or {}, clean, parameters), plugin.undo(action.config or {}, clean,
                                                                                   parameters)


def dry_run(ctx: Context, *, action_id: int, target: str, reason: str = "") -> DryRunRead:
    """What a run on ``target`` would do, exactly, with secrets masked; runs nothing and stores no execution (the
    audit trail records that someone looked)."""
    action = get_action(ctx.session, action_id)
    clean, plan, undo = plans(action, target, {"reason": reason} if reason else {})
    ctx.audit("response.execution.dry_run", target_type="response_action", target_id=action.id,
              unit_id=action.unit_id, details={"action": action.name, "target": clean})
    return DryRunRead(action_id=action.id, action=action.name, kind=action.kind, target=clean, steps=plan.describe(),
                      undo_steps=undo.describe() if undo else [], requires_approval=action.requires_approval,
                      rollback_after_seconds=action.rollback_after_seconds if undo else None)
