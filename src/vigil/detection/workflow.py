"""The life of an alert: new, acknowledged, escalated (to an incident), closed as a true or false positive.

``TRANSITIONS`` is the whole workflow, one row per (state, action) an analyst may take; anything else is
refused with ``InvalidTransition`` (409) saying why. Closing needs a resolution; reopening a closed alert
brings it back as acknowledged (someone has looked at it before) and is recorded like any other step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from vigil.core.errors import BadInput, InvalidTransition


class AlertStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    CLOSED = "closed"


class AlertAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ESCALATE = "escalate"
    CLOSE = "close"
    REOPEN = "reopen"


class Resolution(StrEnum):
    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"


S, A = AlertStatus, AlertAction
TRANSITIONS: Mapping[tuple[AlertStatus, AlertAction], AlertStatus] = {
    (S.NEW, A.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.NEW, A.ESCALATE): S.ESCALATED,
    (S.NEW, A.CLOSE): S.CLOSED,
    (S.ACKNOWLEDGED, A.ESCALATE): S.ESCALATED,
    (S.ACKNOWLEDGED, A.CLOSE): S.CLOSED,
    (S.ESCALATED, A.CLOSE): S.CLOSED,
    (S.CLOSED, A.REOPEN): S.ACKNOWLEDGED,
}
OPEN_STATES: frozenset[AlertStatus] = frozenset({S.NEW, S.ACKNOWLEDGED, S.ESCALATED})


@dataclass(frozen=True)
class Transition:
    """One allowed step, ready to apply: where the alert is, where it goes, and the resolution it gets."""

    action: AlertAction
    source: AlertStatus
    target: AlertStatus
    resolution: Resolution | None


def allowed_actions(status: str) -> list[AlertAction]:
    """The actions the table offers from ``status``, in the table's order (for buttons and help)."""
    return [action for (source, action) in TRANSITIONS if source == status]


def plan(status: str, action: AlertAction, resolution: Resolution | None = None) -> Transition:
    """The transition ``action`` makes from ``status``; ``InvalidTransition`` when the table has no such row."""
    try:
        source = AlertStatus(status)
    except ValueError as exc:
        raise InvalidTransition(f"the alert is in an unknown state {status!r}") from exc
    target = TRANSITIONS.get((source, action))
    if target is None:
        offered = ", ".join(allowed_actions(source)) or "none"
        raise InvalidTransition(f"an alert that is {source} cannot be {_past(action)} (allowed: {offered})",
                                alert_status=str(source), alert_action=str(action))
    if action is AlertAction.CLOSE and resolution is None:
        raise BadInput("closing an alert needs a resolution: true_positive or false_positive",
                       errors=[{"field": "resolution", "message": "required to close"}])
    if action is not AlertAction.CLOSE and resolution is not None:
        raise BadInput("a resolution is given only when closing",
                       errors=[{"field": "resolution", "message": "only with close"}])
    return Transition(action, source, target, resolution)


def _past(action: AlertAction) -> str:
    return {A.ACKNOWLEDGE: "acknowledged", A.ESCALATE: "escalated", A.CLOSE: "closed", A.REOPEN: "reopened"}[action]
