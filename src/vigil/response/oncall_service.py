"""On-call schedules, their overrides and escalation policies: keeping them, and asking who is on call.

Records belong to a unit (default: the caller's); participants, override users and policy targets must be
users and schedules the caller can see. Service functions never commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from vigil.accounts.models import User
from vigil.accounts.service import UNSCOPED
from vigil.core.context import Context
from vigil.core.db import get_scope, utcnow
from vigil.core.errors import BadInput, Conflict, NotFound, PermissionDenied
from vigil.response.notifications.models import NotificationChannel
from vigil.response.oncall import Layer, Override, Restriction, ScheduleSpec, Shift, final_shifts, on_call_at
from vigil.response.oncall_models import EscalationPolicy, OncallOverride, OncallSchedule
from vigil.response.oncall_schemas import (
    LayerIn,
    LevelIn,
    OnCallRead,
    OverrideCreate,
    PolicyCreate,
    PolicyUpdate,
    ScheduleCreate,
    ScheduleUpdate,
    ShiftRead,
)

MAX_RANGE = timedelta(days=92)  # the longest calendar one request computes


# --- helpers -----------------------------------------------------------------------------------------


def _owning_unit(ctx: Context, unit_id: int | None) -> int:
    unit = unit_id if unit_id is not None else ctx.actor.unit_id
    if unit is None or not get_scope(ctx.session).allows(unit):
        raise PermissionDenied("you cannot keep on-call records in that unit")
    return unit


def user_names(session: Session, ids: Iterable[int]) -> dict[int, User]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(wanted)))}


def user_ids_by_name(session: Session, names: Sequence[str], field: str) -> list[int]:
    """The ids of these user names (in order) among the users the caller can see; BadInput naming the unknown."""
    wanted = [n for n in names if n]
    found = {u.username: u.id for u in session.scalars(select(User).where(User.username.in_(wanted)))} \
        if wanted else {}
    missing = [n for n in wanted if n not in found]
    if missing:
        raise BadInput(f"no such user in your units: {', '.join(missing)}",
                       errors=[{"field": field, "message": f"unknown user {m}"} for m in missing])
    return [found[n] for n in wanted]


def schedule_by_name(session: Session, name: str) -> OncallSchedule:
    found = session.scalars(select(OncallSchedule).where(OncallSchedule.name == name)).first()
    if found is None:
        raise NotFound(f"no schedule called {name!r} in your units")
    return found


def policy_by_name(session: Session, name: str) -> EscalationPolicy:
    found = session.scalars(select(EscalationPolicy).where(EscalationPolicy.name == name)).first()
    if found is None:
        raise NotFound(f"no escalation policy called {name!r} in your units")
    return found


def _check_users(session: Session, ids: Sequence[int], field: str) -> None:
    known = user_names(session, ids)
    missing = [str(i) for i in ids if i not in known]
    if missing:
        raise BadInput(f"no such user in your units: {', '.join(missing)}",
                       errors=[{"field": field, "message": f"unknown user id {m}"} for m in missing])


def _layers_json(layers: Sequence[LayerIn]) -> list[dict[str, Any]]:
    return [layer.model_dump(mode="json") for layer in layers]


def layer_specs(schedule: OncallSchedule) -> tuple[Layer, ...]:
    found = []
    for raw in schedule.layers:
        data = LayerIn.model_validate(raw)
        found.append(Layer(
            name=data.name, participants=tuple(data.participants), rotation=data.rotation, handoff=data.handoff,
            start=data.start, hours=data.hours,
            restrictions=tuple(Restriction(frozenset(r.days), r.start, r.end) for r in data.restrictions),
        ))
    return tuple(found)


# --- schedules ---------------------------------------------------------------------------------------


def schedules_query() -> Select[OncallSchedule]:
    return select(OncallSchedule).order_by(OncallSchedule.name, OncallSchedule.id)


def get_schedule(session: Session, schedule_id: int) -> OncallSchedule:
    found = session.get(OncallSchedule, schedule_id)
    # session.get may answer from the identity map, which the scope does not filter: check again.
    if found is None or not get_scope(session).allows(found.unit_id):
        raise NotFound(f"schedule {schedule_id} does not exist or is outside your scope")
    return found


def _check_name_free(session: Session, model: type[OncallSchedule] | type[EscalationPolicy], unit_id: int,
                     name: str, keep_id: int | None = None) -> None:
    clash = session.scalar(select(model.id).where(model.unit_id == unit_id, model.name == name))
    if clash is not None and clash != keep_id:
        raise Conflict(f"the name {name!r} is taken in this unit")


def create_schedule(ctx: Context, *, data: ScheduleCreate) -> OncallSchedule:
    unit = _owning_unit(ctx, data.unit_id)
    _check_name_free(ctx.session, OncallSchedule, unit, data.name)
    for index, layer in enumerate(data.layers):
        _check_users(ctx.session, layer.participants, f"layers.{index}.participants")
    schedule = OncallSchedule(unit_id=unit, name=data.name, description=data.description, time_zone=data.time_zone,
                              layers=_layers_json(data.layers), created_by=ctx.actor.name)
    ctx.session.add(schedule)
    ctx.session.flush()
    ctx.audit("oncall.schedule.create", target_type="oncall_schedule", target_id=schedule.id, unit_id=unit,
              details={"name": data.name, "time_zone": data.time_zone, "layers": len(data.layers)})
    return schedule


def update_schedule(ctx: Context, *, schedule_id: int, data: ScheduleUpdate) -> OncallSchedule:
    schedule = get_schedule(ctx.session, schedule_id)
    changes = data.model_dump(exclude_unset=True)
    if data.name is not None:
        _check_name_free(ctx.session, OncallSchedule, schedule.unit_id, data.name, schedule.id)
        schedule.name = data.name
    if data.description is not None:
        schedule.description = data.description
    if data.time_zone is not None:
        schedule.time_zone = data.time_zone
    if data.layers is not None:
        for index, layer in enumerate(data.layers):
            _check_users(ctx.session, layer.participants, f"layers.{index}.participants")
        schedule.layers = _layers_json(data.layers)
        changes["layers"] = len(data.layers)
    schedule.updated_at = utcnow()
    ctx.audit("oncall.schedule.update", target_type="oncall_schedule", target_id=schedule.id,
              unit_id=schedule.unit_id, details={k: v for k, v in changes.items() if v is not None})
    return schedule


def delete_schedule(ctx: Context, *, schedule_id: int) -> None:
    schedule = get_schedule(ctx.session, schedule_id)
    # Every unit's policies (a headquarters policy may page a branch's schedule); only visible names are told.
    scope = get_scope(ctx.session)
    in_use = [p for p in ctx.session.scalars(select(EscalationPolicy), execution_options=UNSCOPED)
              if any(t["kind"] == "schedule" and t["id"] == schedule.id for lv in p.levels for t in lv["targets"])]
    if in_use:
        names = [p.name for p in in_use if scope.allows(p.unit_id)]
        hidden = len(in_use) - len(names)
        told = ", ".join(names + ([f"{hidden} outside your units"] if hidden else []))
        raise Conflict(f"escalation policies page this schedule: {told}; change them first")
    for override in ctx.session.scalars(select(OncallOverride).where(OncallOverride.schedule_id == schedule.id)):
        ctx.session.delete(override)
    ctx.session.delete(schedule)
    ctx.audit("oncall.schedule.delete", target_type="oncall_schedule", target_id=schedule_id,
              unit_id=schedule.unit_id, details={"name": schedule.name})


# --- overrides ---------------------------------------------------------------------------------------


def overrides_of(session: Session, schedule_id: int, *, ending_after: datetime | None = None) -> list[OncallOverride]:
    query = select(OncallOverride).where(OncallOverride.schedule_id == schedule_id)
    if ending_after is not None:
        query = query.where(OncallOverride.ends_at > ending_after)
    return list(session.scalars(query.order_by(OncallOverride.created_at, OncallOverride.id)))


def add_override(ctx: Context, *, schedule_id: int, data: OverrideCreate) -> OncallOverride:
    schedule = get_schedule(ctx.session, schedule_id)
    _check_users(ctx.session, [data.user_id], "user_id")
    override = OncallOverride(unit_id=schedule.unit_id, schedule_id=schedule.id, user_id=data.user_id,
                              starts_at=data.starts_at.astimezone(UTC), ends_at=data.ends_at.astimezone(UTC),
                              note=data.note, created_by=ctx.actor.name)
    ctx.session.add(override)
    ctx.session.flush()
    ctx.audit("oncall.override.create", target_type="oncall_schedule", target_id=schedule.id,
              unit_id=schedule.unit_id, details={"override": override.id, "user_id": data.user_id,
                                                 "starts_at": override.starts_at.isoformat(),
                                                 "ends_at": override.ends_at.isoformat()})
    return override


def delete_override(ctx: Context, *, schedule_id: int, override_id: int) -> None:
    schedule = get_schedule(ctx.session, schedule_id)
    override = ctx.session.get(OncallOverride, override_id)
    if override is None or override.schedule_id != schedule.id:
        raise NotFound(f"override {override_id} of schedule {schedule_id} does not exist")
    ctx.session.delete(override)
    ctx.audit("oncall.override.delete", target_type="oncall_schedule", target_id=schedule.id,
              unit_id=schedule.unit_id, details={"override": override_id, "user_id": override.user_id})


# --- who is on call ----------------------------------------------------------------------------------


def spec_of(session: Session, schedule: OncallSchedule, *, after: datetime | None = None) -> ScheduleSpec:
    overrides = overrides_of(session, schedule.id, ending_after=after)
    return ScheduleSpec(schedule.time_zone, layer_specs(schedule),
                        tuple(Override(o.user_id, o.starts_at, o.ends_at) for o in overrides))


def _shift_read(shift: Shift, users: dict[int, User]) -> ShiftRead:
    user = users.get(shift.user_id)
    return ShiftRead(user_id=shift.user_id, username=user.username if user else f"#{shift.user_id}",
                     display_name=(user.display_name or user.username) if user else f"#{shift.user_id}",
                     start=shift.start, end=shift.end, layer=shift.layer)


def shifts(session: Session, *, schedule: OncallSchedule, start: datetime, end: datetime) -> list[ShiftRead]:
    if start.tzinfo is None or end.tzinfo is None:
        raise BadInput("start and end need a time zone offset (2026-03-01T09:00:00+08:00)")
    if end <= start:
        raise BadInput("end must be after start", errors=[{"field": "end", "message": "must be after start"}])
    if end - start > MAX_RANGE:
        raise BadInput("a calendar covers at most 92 days", errors=[{"field": "end", "message": "range too long"}])
    found = final_shifts(spec_of(session, schedule, after=start - timedelta(days=1)), start, end)
    users = user_names(session, {s.user_id for s in found})
    return [_shift_read(s, users) for s in found]


def on_call(session: Session, *, schedule: OncallSchedule, at: datetime) -> OnCallRead:
    shift = on_call_at(spec_of(session, schedule, after=at - timedelta(days=9)), at)
    users = user_names(session, [shift.user_id] if shift else [])
    return OnCallRead(schedule_id=schedule.id, schedule_name=schedule.name, time_zone=schedule.time_zone, at=at,
                      shift=_shift_read(shift, users) if shift else None)


def on_call_everywhere(session: Session, *, at: datetime) -> list[OnCallRead]:
    return [on_call(session, schedule=s, at=at) for s in session.scalars(schedules_query())]


def on_call_user(session: Session, *, schedule_id: int, at: datetime) -> User | None:
    """The user on call in a schedule (for paging), None when nobody is or the schedule is gone."""
    schedule = session.get(OncallSchedule, schedule_id)
    if schedule is None or not get_scope(session).allows(schedule.unit_id):
        return None
    shift = on_call_at(spec_of(session, schedule, after=at - timedelta(days=9)), at)
    return user_names(session, [shift.user_id]).get(shift.user_id) if shift else None


def local_day_start(zone_name: str, day: date) -> datetime:
    """Midnight of a local day, as an aware datetime (the calendar starts its rows there)."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone_name))


# --- escalation policies -----------------------------------------------------------------------------


def policies_query() -> Select[EscalationPolicy]:
    return select(EscalationPolicy).order_by(EscalationPolicy.name, EscalationPolicy.id)


def get_policy(session: Session, policy_id: int) -> EscalationPolicy:
    found = session.get(EscalationPolicy, policy_id)
    if found is None or not get_scope(session).allows(found.unit_id):
        raise NotFound(f"escalation policy {policy_id} does not exist or is outside your scope")
    return found


def _check_targets(session: Session, levels: Sequence[LevelIn]) -> None:
    for index, level in enumerate(levels):
        field = f"levels.{index}.targets"
        _check_users(session, [t.id for t in level.targets if t.kind == "user"], field)
        for target in level.targets:
            if target.kind == "schedule":
                found = session.get(OncallSchedule, target.id)
                if found is None or not get_scope(session).allows(found.unit_id):
                    raise BadInput(f"no such schedule in your units: {target.id}",
                                   errors=[{"field": field, "message": f"unknown schedule id {target.id}"}])
        for channel_id in level.channel_ids:
            channel = session.get(NotificationChannel, channel_id)
            if channel is None or not get_scope(session).allows(channel.unit_id):
                raise BadInput(f"no such notification channel in your units: {channel_id}",
                               errors=[{"field": f"levels.{index}.channel_ids",
                                        "message": f"unknown notification channel id {channel_id}"}])


def create_policy(ctx: Context, *, data: PolicyCreate) -> EscalationPolicy:
    unit = _owning_unit(ctx, data.unit_id)
    _check_name_free(ctx.session, EscalationPolicy, unit, data.name)
    _check_targets(ctx.session, data.levels)
    policy = EscalationPolicy(unit_id=unit, name=data.name, description=data.description, repeat=data.repeat,
                              levels=[lv.model_dump(mode="json") for lv in data.levels], created_by=ctx.actor.name)
    ctx.session.add(policy)
    ctx.session.flush()
    ctx.audit("escalation.policy.create", target_type="escalation_policy", target_id=policy.id, unit_id=unit,
              details={"name": data.name, "levels": len(data.levels), "repeat": data.repeat})
    return policy


def update_policy(ctx: Context, *, policy_id: int, data: PolicyUpdate) -> EscalationPolicy:
    policy = get_policy(ctx.session, policy_id)
    changes: dict[str, Any] = {}
    if data.name is not None:
        _check_name_free(ctx.session, EscalationPolicy, policy.unit_id, data.name, policy.id)
        policy.name = changes["name"] = data.name
    if data.description is not None:
        policy.description = data.description
        changes["description"] = True
    if data.levels is not None:
        _check_targets(ctx.session, data.levels)
        policy.levels = [lv.model_dump(mode="json") for lv in data.levels]
        changes["levels"] = len(data.levels)
    if data.repeat is not None:
        policy.repeat = changes["repeat"] = data.repeat
    policy.updated_at = utcnow()
    ctx.audit("escalation.policy.update", target_type="escalation_policy", target_id=policy.id,
              unit_id=policy.unit_id, details=changes)
    return policy


def delete_policy(ctx: Context, *, policy_id: int) -> None:
    policy = get_policy(ctx.session, policy_id)
    ctx.session.delete(policy)  # running escalations keep their copy of the levels (policy_id becomes null)
    ctx.audit("escalation.policy.delete", target_type="escalation_policy", target_id=policy_id,
              unit_id=policy.unit_id, details={"name": policy.name})
