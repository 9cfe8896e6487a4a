"""Demo response automation: an edge firewall's block-list API (approval required, unblocked after a day) and a
P1 intrusion playbook that enriches the observables, blocks the attacker's addresses once approved, and adds
a containment task.

The firewall address is in ``.invalid``: a run fails, recorded with its reason, until an operator points the
action at a real firewall. Idempotent: a second run finds the action and does nothing.
"""

from __future__ import annotations

from sqlalchemy import select

from vigil.accounts import service as accounts
from vigil.core.context import Context
from vigil.response.actions import service
from vigil.response.actions.models import ActionConfig
from vigil.response.actions.schemas import ActionCreate
from vigil.response.playbooks import service as playbooks
from vigil.response.playbooks.schemas import PlaybookCreate

ACTION = "Edge firewall block list 边界防火墙封禁"
PLAYBOOK = "P1 intrusion containment 入侵遏制"


def load(ctx: Context) -> dict[str, int]:
    if ctx.session.scalar(select(ActionConfig.id).where(ActionConfig.name == ACTION)) is not None:
        return {}
    root = accounts.root_unit_id(ctx.session)
    action = service.create_action(ctx, data=ActionCreate(
        name=ACTION, kind="block_ip", requires_approval=True, rollback_after_seconds=86_400, unit_id=root,
        description="Demo: the firewall's block-list API. Point url and undo_url at your firewall and set its token.",
        config={"mode": "http", "url": "https://firewall.example.invalid/api/blocklist",
                "undo_url": "https://firewall.example.invalid/api/blocklist/remove", "undo_method": "POST",
                "protected_networks": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}))
    playbooks.create_playbook(ctx, data=PlaybookCreate.model_validate({
        "name": PLAYBOOK, "unit_id": root,
        "description": "Demo: contain a P1 intrusion (enrich, block the attacker once approved, add a task).",
        "definition": {
            "trigger": {"on": ["opened", "severity_changed", "type_changed"], "incident_types": ["intrusion"],
                        "min_severity": "P1"},
            "steps": [{"kind": "enrich", "name": "Look the observables up"},
                      {"kind": "act", "name": "Block the attacker", "action_id": action.id,
                       "target": "{observable.ipv4}", "requires_approval": True,
                       "reason": "P1 intrusion: block the attacker's address"},
                      {"kind": "create_task", "title": "Confirm the block on the edge firewall", "phase": "contain",
                       "required": True}]}}))
    return {"response actions": 1, "playbooks": 1}
