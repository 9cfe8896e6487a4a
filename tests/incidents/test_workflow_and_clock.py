"""The transition table and its guards, and the SLA clocks (24x7 and business hours), without a store."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from vigil.core.errors import BadInput, InvalidTransition
from vigil.incidents.sla import Calendar, add_business, business_minutes, check_calendar
from vigil.incidents.workflow import Facts, Move, Phase, ReviewAction, allowed_targets, plan, plan_review

SHANGHAI = Calendar(zone=ZoneInfo("Asia/Shanghai"), weekdays=frozenset({0, 1, 2, 3, 4}), start=time(9),
                    end=time(18), warn_ratio=0.8)


def test_the_five_steps_go_forward_one_at_a_time() -> None:
    order = ["identify", "contain", "eradicate", "recover", "review"]
    for source, target in itertools.pairwise(order):
        assert plan(source, target, Facts()).move is Move.ADVANCE
    with pytest.raises(InvalidTransition, match=r"cannot move to recover .allowed: contain"):
        plan("identify", "recover", Facts())
    assert plan("eradicate", "contain", Facts()).move is Move.RETURN
    assert allowed_targets("recover") == [Phase.REVIEW, Phase.ERADICATE]


def test_required_tasks_gate_leaving_a_phase_and_the_refusal_names_them() -> None:
    facts = Facts(open_required_tasks=["Isolate WS01", "Reset the password of alice"])
    with pytest.raises(InvalidTransition) as refused:
        plan("contain", "eradicate", facts)
    assert "Isolate WS01; Reset the password of alice" in refused.value.detail
    assert refused.value.extra["open_tasks"] == ["Isolate WS01", "Reset the password of alice"]
    assert plan("eradicate", "contain", Facts(open_required_tasks=["x"])).target is Phase.CONTAIN  # going back is free


def test_closing_needs_an_approved_post_mortem() -> None:
    for state, shown in [(None, "not written"), ("draft", "draft"), ("in_review", "in_review")]:
        with pytest.raises(InvalidTransition, match=rf"approved post-mortem .it is {shown}"):
            plan("review", "closed", Facts(postmortem_status=state))
    assert plan("review", "closed", Facts(postmortem_status="approved")).move is Move.CLOSE


def test_reopening_names_a_phase_and_needs_a_reason() -> None:
    step = plan("closed", "eradicate", Facts(), reason=" the attacker came back ")
    assert (step.move, step.target, step.reason) == (Move.REOPEN, Phase.ERADICATE, "the attacker came back")
    with pytest.raises(BadInput, match="needs a reason"):
        plan("closed", "contain", Facts())
    with pytest.raises(InvalidTransition):
        plan("closed", "closed", Facts(), reason="x")
    with pytest.raises(BadInput, match="is no phase"):
        plan("identify", "triage", Facts())


def test_the_post_mortem_review_steps() -> None:
    assert plan_review("draft", ReviewAction.SUBMIT) == "in_review"
    assert plan_review("in_review", ReviewAction.REJECT) == "draft"
    assert plan_review("in_review", ReviewAction.APPROVE) == "approved"
    with pytest.raises(InvalidTransition, match="draft cannot be approved"):
        plan_review("draft", ReviewAction.APPROVE)


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in November 2026, Shanghai local (UTC+8), as aware UTC. 27 Nov is a Friday."""
    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


def test_business_minutes_count_only_working_hours_in_the_calendars_time_zone() -> None:
    # Friday 17:00 -> Monday 10:00 in Shanghai: one hour on Friday, one on Monday.
    assert business_minutes(SHANGHAI, shanghai(27, 17), shanghai(30, 10)) == 120
    # Saturday is no working day; the night is no working time.
    assert business_minutes(SHANGHAI, shanghai(28, 10), shanghai(28, 17)) == 0
    assert business_minutes(SHANGHAI, shanghai(26, 18), shanghai(27, 9)) == 0
    assert business_minutes(SHANGHAI, shanghai(26, 8), shanghai(26, 20)) == 9 * 60


def test_a_business_hours_due_time_skips_nights_and_weekends() -> None:
    # Four working hours from Friday 16:00: two on Friday, two on Monday -> Monday 11:00 Shanghai.
    assert add_business(SHANGHAI, shanghai(27, 16), 240) == shanghai(30, 11)
    # Opened on a Sunday night: the clock starts on Monday at 09:00.
    assert add_business(SHANGHAI, shanghai(29, 23), 30) == shanghai(30, 9, 30)
    start = shanghai(25, 10, 15)
    due = add_business(SHANGHAI, start, 1000)
    assert business_minutes(SHANGHAI, start, due) == 1000


def test_a_calendar_the_clock_cannot_run_on_is_refused() -> None:
    with pytest.raises(BadInput) as refused:
        check_calendar(timezone="Mars/Olympus", weekdays=[], day_start="18:00", day_end="09:00", warn_ratio=1.5)
    assert {e["field"] for e in refused.value.extra["errors"]} == {"timezone", "weekdays", "day_end", "warn_ratio"}
