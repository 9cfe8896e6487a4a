"""The rotation arithmetic: hand-offs, layers, restrictions, overrides, time zones with and without DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from vigil.response.oncall import (
    OVERRIDE,
    Layer,
    Override,
    Restriction,
    ScheduleSpec,
    final_shifts,
    on_call_at,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
ALICE, BOB, CAROL, DAVE = 1, 2, 3, 4


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


def daily(*people: int, start: date = date(2026, 3, 2), at: time = time(9)) -> Layer:
    return Layer(name="primary", participants=people, rotation="daily", handoff=at, start=start)


def who(spec: ScheduleSpec, instant: datetime) -> int | None:
    shift = on_call_at(spec, instant)
    return shift.user_id if shift else None


def test_daily_rotation_hands_off_at_the_local_time() -> None:
    spec = ScheduleSpec("Asia/Shanghai", (daily(ALICE, BOB, CAROL),))
    assert who(spec, local(SHANGHAI, 2026, 3, 2, 8, 59)) is None  # before the first hand-off
    assert who(spec, local(SHANGHAI, 2026, 3, 2, 9, 0)) == ALICE
    assert who(spec, local(SHANGHAI, 2026, 3, 3, 8, 59, 59)) == ALICE
    assert who(spec, local(SHANGHAI, 2026, 3, 3, 9, 0)) == BOB
    assert who(spec, local(SHANGHAI, 2026, 3, 4, 23, 0)) == CAROL
    assert who(spec, local(SHANGHAI, 2026, 3, 5, 9, 0)) == ALICE  # round again
    shift = on_call_at(spec, local(SHANGHAI, 2026, 3, 3, 12, 0))
    assert shift is not None
    assert (shift.start, shift.end) == (local(SHANGHAI, 2026, 3, 3, 9), local(SHANGHAI, 2026, 3, 4, 9))
    assert shift.start.tzinfo == UTC and shift.start.hour == 1  # 09:00 +08:00


def test_weekly_rotation_across_berlin_spring_forward_keeps_the_local_hand_off() -> None:
    # DST starts in Berlin on Sunday 29 March 2026 (02:00 -> 03:00).
    layer = Layer(name="weekly", participants=(ALICE, BOB), rotation="weekly", handoff=time(9), start=date(2026, 3, 23))
    spec = ScheduleSpec("Europe/Berlin", (layer,))
    shifts = final_shifts(spec, local(BERLIN, 2026, 3, 23, 9), local(BERLIN, 2026, 4, 6, 9))
    assert [(s.user_id, s.start, s.end) for s in shifts] == [
        (ALICE, local(BERLIN, 2026, 3, 23, 9), local(BERLIN, 2026, 3, 30, 9)),
        (BOB, local(BERLIN, 2026, 3, 30, 9), local(BERLIN, 2026, 4, 6, 9)),
    ]
    assert shifts[0].end - shifts[0].start == timedelta(days=7, hours=-1)  # the week that lost an hour
    assert shifts[0].end.hour == 7  # 09:00 CEST is 07:00 UTC
    assert shifts[0].start.hour == 8  # 09:00 CET is 08:00 UTC


def test_daily_rotation_across_berlin_fall_back_and_a_hand_off_in_the_gap() -> None:
    # DST ends in Berlin on Sunday 25 October 2026 (03:00 -> 02:00): that day lasts 25 hours.
    spec = ScheduleSpec("Europe/Berlin", (daily(ALICE, BOB, start=date(2026, 10, 24)),))
    shifts = final_shifts(spec, local(BERLIN, 2026, 10, 24, 9), local(BERLIN, 2026, 10, 26, 9))
    assert [s.end - s.start for s in shifts] == [timedelta(hours=25), timedelta(hours=24)]
    assert who(spec, local(BERLIN, 2026, 10, 25, 8, 59)) == ALICE
    assert who(spec, local(BERLIN, 2026, 10, 25, 9, 0)) == BOB
    # A 02:30 hand-off on the spring-forward day happens when the clocks jump (03:30 CEST = 01:30 UTC).
    gap = ScheduleSpec("Europe/Berlin", (daily(ALICE, BOB, start=date(2026, 3, 28), at=time(2, 30)),))
    assert who(gap, datetime(2026, 3, 29, 1, 29, tzinfo=UTC)) == ALICE
    assert who(gap, datetime(2026, 3, 29, 1, 30, tzinfo=UTC)) == BOB


def test_hours_rotation_counts_real_hours_across_dst() -> None:
    layer = Layer(name="12h", participants=(ALICE, BOB), rotation="hours", hours=12, handoff=time(8),
                  start=date(2026, 3, 28))
    spec = ScheduleSpec("Europe/Berlin", (layer,))
    shifts = final_shifts(spec, local(BERLIN, 2026, 3, 28, 8), local(BERLIN, 2026, 3, 30, 8))
    assert all(s.end - s.start == timedelta(hours=12) for s in shifts[:-1])
    # After the jump the 12-hour turns start at 09:00 and 21:00 local.
    assert shifts[2].start == local(BERLIN, 2026, 3, 29, 9)


def test_restricted_layer_overrides_only_inside_its_window() -> None:
    # The base layer is Alice all the time; a weekday-office layer puts Bob on call Mon-Fri 09:00-18:00,
    # and a night layer Carol from 22:00 to 06:00 every night.
    base = Layer(name="base", participants=(ALICE,), rotation="weekly", handoff=time(0), start=date(2026, 1, 5))
    office = Layer(name="office", participants=(BOB,), rotation="daily", handoff=time(0), start=date(2026, 1, 5),
                   restrictions=(Restriction(frozenset(range(5)), time(9), time(18)),))
    nights = Layer(name="nights", participants=(CAROL,), rotation="daily", handoff=time(0), start=date(2026, 1, 5),
                   restrictions=(Restriction(frozenset(range(7)), time(22), time(6)),))
    spec = ScheduleSpec("Asia/Shanghai", (base, office, nights))
    assert who(spec, local(SHANGHAI, 2026, 3, 4, 10)) == BOB  # Wednesday, office hours
    assert who(spec, local(SHANGHAI, 2026, 3, 4, 19)) == ALICE  # evening: base layer
    assert who(spec, local(SHANGHAI, 2026, 3, 4, 23)) == CAROL
    assert who(spec, local(SHANGHAI, 2026, 3, 5, 5, 59)) == CAROL  # the night runs into the next day
    assert who(spec, local(SHANGHAI, 2026, 3, 7, 10)) == ALICE  # Saturday: the office layer is off
    day = final_shifts(spec, local(SHANGHAI, 2026, 3, 4, 6), local(SHANGHAI, 2026, 3, 5, 6))
    assert [(s.user_id, s.start.astimezone(SHANGHAI).hour, s.layer) for s in day] == [
        (ALICE, 6, "base"), (BOB, 9, "office"), (ALICE, 18, "base"), (CAROL, 22, "nights"),
    ]


def test_override_replaces_whoever_is_on_call_and_later_overrides_win() -> None:
    first = Override(DAVE, local(SHANGHAI, 2026, 3, 3, 12), local(SHANGHAI, 2026, 3, 3, 20))
    second = Override(CAROL, local(SHANGHAI, 2026, 3, 3, 18), local(SHANGHAI, 2026, 3, 3, 19))
    spec = ScheduleSpec("Asia/Shanghai", (daily(ALICE, BOB),), (first, second))
    shifts = final_shifts(spec, local(SHANGHAI, 2026, 3, 3, 9), local(SHANGHAI, 2026, 3, 4, 9))
    assert [(s.user_id, s.start.astimezone(SHANGHAI).hour, s.end.astimezone(SHANGHAI).hour, s.layer)
            for s in shifts] == [
        (BOB, 9, 12, "primary"), (DAVE, 12, 18, OVERRIDE), (CAROL, 18, 19, OVERRIDE), (DAVE, 19, 20, OVERRIDE),
        (BOB, 20, 9, "primary"),
    ]
    assert who(spec, local(SHANGHAI, 2026, 3, 3, 20)) == BOB  # the override ends exactly at 20:00


def test_nobody_on_call_in_gaps_and_without_participants() -> None:
    office = Layer(name="office", participants=(BOB,), rotation="daily", handoff=time(9), start=date(2026, 1, 5),
                   restrictions=(Restriction(frozenset(range(5)), time(9), time(18)),))
    spec = ScheduleSpec("Asia/Shanghai", (office,))
    assert who(spec, local(SHANGHAI, 2026, 3, 4, 20)) is None
    empty = ScheduleSpec("Asia/Shanghai", (Layer("none", (), "daily", time(9), date(2026, 1, 1)),))
    assert final_shifts(empty, local(SHANGHAI, 2026, 3, 1), local(SHANGHAI, 2026, 3, 8)) == []
