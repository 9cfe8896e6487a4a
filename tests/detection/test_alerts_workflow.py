"""The alert workflow's transition table: every (state, action) pair is either a row of the table or refused
with a 409 that says why; closing needs a resolution, and only closing takes one."""

from __future__ import annotations

import itertools

import pytest

from vigil.core.errors import BadInput, InvalidTransition
from vigil.detection.workflow import (
    TRANSITIONS,
    AlertAction,
    AlertStatus,
    Resolution,
    allowed_actions,
    plan,
)

S, A = AlertStatus, AlertAction
EXPECTED = {
    (S.NEW, A.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.NEW, A.ESCALATE): S.ESCALATED,
    (S.NEW, A.CLOSE): S.CLOSED,
    (S.ACKNOWLEDGED, A.ESCALATE): S.ESCALATED,
    (S.ACKNOWLEDGED, A.CLOSE): S.CLOSED,
    (S.ESCALATED, A.CLOSE): S.CLOSED,
    (S.CLOSED, A.REOPEN): S.ACKNOWLEDGED,
}


def test_the_table_is_the_documented_workflow() -> None:
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(("status", "action"), sorted(itertools.product(S, A)))
def test_every_pair_is_allowed_or_refused_with_a_reason(status: AlertStatus, action: AlertAction) -> None:
    resolution = Resolution.FALSE_POSITIVE if action is A.CLOSE else None
    if (status, action) in EXPECTED:
        step = plan(status, action, resolution)
        assert (step.source, step.target, step.resolution) == (status, EXPECTED[status, action], resolution)
        return
    with pytest.raises(InvalidTransition) as refused:
        plan(status, action, resolution)
    assert refused.value.status == 409
    assert str(status) in refused.value.detail and "allowed:" in refused.value.detail


def test_closed_alerts_can_only_be_reopened_and_come_back_acknowledged() -> None:
    assert allowed_actions("closed") == [A.REOPEN]
    assert plan("closed", A.REOPEN).target is S.ACKNOWLEDGED
    with pytest.raises(InvalidTransition, match="cannot be acknowledged"):
        plan("closed", A.ACKNOWLEDGE)


def test_closing_needs_a_resolution_and_nothing_else_takes_one() -> None:
    with pytest.raises(BadInput, match="needs a resolution") as missing:
        plan("new", A.CLOSE)
    assert missing.value.extra["errors"][0]["field"] == "resolution"
    with pytest.raises(BadInput, match="only when closing"):
        plan("new", A.ACKNOWLEDGE, Resolution.TRUE_POSITIVE)
    assert plan("acknowledged", A.CLOSE, Resolution.TRUE_POSITIVE).resolution is Resolution.TRUE_POSITIVE


def test_an_unknown_stored_state_is_refused_not_crashed_on() -> None:
    with pytest.raises(InvalidTransition, match="unknown state"):
        plan("archived", A.CLOSE, Resolution.TRUE_POSITIVE)


def test_allowed_actions_offer_what_the_table_allows() -> None:
    assert allowed_actions("new") == [A.ACKNOWLEDGE, A.ESCALATE, A.CLOSE]
    assert allowed_actions("acknowledged") == [A.ESCALATE, A.CLOSE]
    assert allowed_actions("escalated") == [A.CLOSE]
    assert allowed_actions("whatever") == []
