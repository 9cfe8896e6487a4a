"""Demo on-call: a 7x24 rota at headquarters (analysts and the responder weekly, an office-hours layer on
top), and the default escalation policy (the person on call, then the responder, then the head of security).

Idempotent: a second run finds the schedule and does nothing. Users the accounts demo did not make are left out.
"""

from __future__ import annotations

from datetime import date, time

from sqlalchemy import select

from vigil.accounts import service as accounts
from vigil.accounts.models import User
from vigil.core.context import Context
from vigil.response import oncall_service as service
from vigil.response.oncall_models import OncallSchedule
from vigil.response.oncall_schemas import (
    LayerIn,
    LevelIn,
    PolicyCreate,
    RestrictionIn,
    ScheduleCreate,
    TargetIn,
)

SCHEDULE = "SOC 7x24 一线值班"
POLICY = "P1/P2 default paging 默认升级"


def load(ctx: Context) -> dict[str, int]:
    root = accounts.root_unit_id(ctx.session)
    if ctx.session.scalar(select(OncallSchedule.id).where(OncallSchedule.name == SCHEDULE)) is not None:
        return {}
    ids = {u.username: u.id for u in ctx.session.scalars(
        select(User).where(User.username.in_(["analyst", "responder", "analyst.sh", "secadmin"])))}
    rota = [ids[name] for name in ("analyst", "responder", "analyst.sh") if name in ids]
    if not rota:
        return {}
    schedule = service.create_schedule(ctx, data=ScheduleCreate(
        name=SCHEDULE, time_zone="Asia/Shanghai", unit_id=root,
        description="Weekly rotation, hand-off Monday 09:00; the analyst covers office hours on weekdays.",
        layers=[
            LayerIn(name="weekly 7x24", participants=rota, rotation="weekly", handoff=time(9), start=date(2026, 1, 5)),
            LayerIn(name="office hours", participants=rota[:1], rotation="daily", handoff=time(9),
                    start=date(2026, 1, 5), restrictions=[RestrictionIn(days=[0, 1, 2, 3, 4], start=time(9),
                                                                        end=time(18))]),
        ]))
    levels = [LevelIn(timeout_minutes=10, targets=[TargetIn(kind="schedule", id=schedule.id)])]
    levels += [LevelIn(timeout_minutes=10 if name == "responder" else 15, targets=[TargetIn(kind="user", id=ids[name])])
               for name in ("responder", "secadmin") if name in ids]
    service.create_policy(ctx, data=PolicyCreate(name=POLICY, unit_id=root, repeat=1, levels=levels))
    return {"on-call schedules": 1, "escalation policies": 1}
