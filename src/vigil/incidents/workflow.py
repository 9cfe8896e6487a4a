"""The five-step response as a transition table: identify -> contain -> eradicate -> recover -> review -> closed.

``TRANSITIONS`` holds every move a responder may make (forward one step, and back one step where work must be
redone); ``REOPEN_TO`` the phases a closed incident may be reopened into. Anything else is refused with
``InvalidTransition`` (409) saying why. Two guards apply on top of the table: the required tasks of the
phase being left must be done (the refusal names them), and closing needs an approved post-mortem.
``plan`` is pure: the service gathers the facts (open required tasks, post-mortem state), applies the
returned ``Step`` and records it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from vigil.core.errors import BadInput, InvalidTransition


class Phase(StrEnum):
    IDENTIFY = "identify"
    CONTAIN = "contain"
    ERADICATE = "eradicate"
    RECOVER = "recover"
    REVIEW = "review"
    CLOSED = "closed"


class Move(StrEnum):
    ADVANCE = "advance"  # the next step of the response
    RETURN = "return"  # back one step: containment failed, the root cause came back
    CLOSE = "close"
    REOPEN = "reopen"


P = Phase
TRANSITIONS: Mapping[tuple[Phase, Phase], Move] = {
    (P.IDENTIFY, P.CONTAIN): Move.ADVANCE,
    (P.CONTAIN, P.ERADICATE): Move.ADVANCE,
    (P.ERADICATE, P.RECOVER): Move.ADVANCE,
    (P.RECOVER, P.REVIEW): Move.ADVANCE,
    (P.REVIEW, P.CLOSED): Move.CLOSE,
    (P.ERADICATE, P.CONTAIN): Move.RETURN,
    (P.RECOVER, P.ERADICATE): Move.RETURN,
    (P.REVIEW, P.RECOVER): Move.RETURN,
}
REOPEN_TO: frozenset[Phase] = frozenset({P.IDENTIFY, P.CONTAIN, P.ERADICATE, P.RECOVER, P.REVIEW})
ORDER: Sequence[Phase] = (P.IDENTIFY, P.CONTAIN, P.ERADICATE, P.RECOVER, P.REVIEW, P.CLOSED)
# The SLA milestones: an incident is contained once it first reaches eradicate, resolved once it first
# reaches review (every affected system verified in recover).
CONTAINED_FROM: frozenset[Phase] = frozenset({P.ERADICATE, P.RECOVER, P.REVIEW, P.CLOSED})
RESOLVED_FROM: frozenset[Phase] = frozenset({P.REVIEW, P.CLOSED})


@dataclass(frozen=True)
class Facts:
    """What the guards need to know about the incident, gathered by the service."""

    open_required_tasks: Sequence[str] = ()  # titles of required tasks of the current phase not yet done
    postmortem_status: str | None = None  # draft | in_review | approved | None (none written)


@dataclass(frozen=True)
class Step:
    move: Move
    source: Phase
    target: Phase
    reason: str


def allowed_targets(phase: str) -> list[Phase]:
    """The phases the table offers from ``phase``, in the response's order (for buttons and help)."""
    if phase == P.CLOSED:
        return [p for p in ORDER if p in REOPEN_TO]
    return [target for (source, target) in TRANSITIONS if source == phase]


def _phase(value: str, what: str) -> Phase:
    try:
        return Phase(value)
    except ValueError as exc:
        raise BadInput(f"{what} {value!r} is no phase (phases: {', '.join(ORDER)})",
                       errors=[{"field": "phase", "message": "unknown phase"}]) from exc


def plan(current: str, target: str, facts: Facts, *, reason: str = "") -> Step:
    """The step from ``current`` to ``target``; ``InvalidTransition`` when the table or a guard refuses it."""
    source = _phase(current, "the incident's phase")
    goal = _phase(target, "the target")
    if source is P.CLOSED:
        if goal not in REOPEN_TO:
            raise InvalidTransition(f"a closed incident can be reopened into {', '.join(sorted(REOPEN_TO))} only",
                                    phase=str(source), target=str(goal))
        if not reason.strip():
            raise BadInput("reopening an incident needs a reason",
                           errors=[{"field": "reason", "message": "required to reopen"}])
        return Step(Move.REOPEN, source, goal, reason.strip())
    move = TRANSITIONS.get((source, goal))
    if move is None:
        offered = ", ".join(allowed_targets(source)) or "none"
        raise InvalidTransition(f"an incident in {source} cannot move to {goal} (allowed: {offered})",
                                phase=str(source), target=str(goal))
    if move is not Move.RETURN and facts.open_required_tasks:
        names = "; ".join(facts.open_required_tasks)
        raise InvalidTransition(f"the required tasks of {source} are not done: {names}",
                                phase=str(source), target=str(goal), open_tasks=list(facts.open_required_tasks))
    if move is Move.CLOSE and facts.postmortem_status != "approved":
        state = facts.postmortem_status or "not written"
        raise InvalidTransition(f"an incident closes only with an approved post-mortem (it is {state})",
                                phase=str(source), target=str(goal), postmortem=state)
    return Step(move, source, goal, reason.strip())


# --- the post-mortem's own small workflow ----------------------------------------------------------

class ReviewAction(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"


REVIEW_TRANSITIONS: Mapping[tuple[str, ReviewAction], str] = {
    ("draft", ReviewAction.SUBMIT): "in_review",
    ("in_review", ReviewAction.APPROVE): "approved",
    ("in_review", ReviewAction.REJECT): "draft",
}


def plan_review(status: str, action: ReviewAction) -> str:
    target = REVIEW_TRANSITIONS.get((status, action))
    if target is None:
        past = {ReviewAction.SUBMIT: "submitted", ReviewAction.APPROVE: "approved", ReviewAction.REJECT: "rejected"}
        raise InvalidTransition(f"a post-mortem that is {status} cannot be {past[action]}", postmortem=status)
    return target
