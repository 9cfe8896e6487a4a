"""`vigil oncall` (who is on call, schedules, shifts, overrides) and `vigil escalation` (policies, escalations,
acknowledging) from the shell.

The CLI acts as the local operator (every unit; audited as ``cli:<login>``); the exit codes are those of
``vigil.cli.main``. Times without a zone are read in the schedule's own time zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.cli.runtime import EXIT_CODES_HELP, JsonOption, fail, local_time, operation, print_json, print_table
from vigil.core.db import utcnow
from vigil.response import escalation as engine
from vigil.response import oncall_service as service
from vigil.response.oncall_models import Escalation, OncallSchedule
from vigil.response.oncall_schemas import EscalationRead, OverrideCreate, PolicyRead, ScheduleRead

oncall = typer.Typer(help="On-call: who is on call now, schedules, their shifts, overrides. " + EXIT_CODES_HELP,
                     no_args_is_help=True)
escalation = typer.Typer(help="Escalations: policies, the escalations running or done, acknowledging. "
                         + EXIT_CODES_HELP, no_args_is_help=True)
ScheduleArg = Annotated[str, typer.Argument(help="A schedule's id or name.", show_default=False)]
Status = Literal["active", "acknowledged", "exhausted"]


def _schedule(session: Session, ref: str) -> OncallSchedule:
    return service.get_schedule(session, int(ref)) if ref.isdigit() else service.schedule_by_name(session, ref)


def _when(value: str | None, zone: str, default: datetime) -> datetime:
    if value is None:
        return default
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"cannot read {value!r} as a time; write 2026-03-01T09:00 (in the schedule's zone) or add an offset")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(zone))


def _local(value: datetime, zone: str) -> str:
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


@oncall.command("now")
def now_command(json: JsonOption = False) -> None:
    """Who is on call now in every schedule."""
    with operation() as op, op.transaction() as ctx:
        found = service.on_call_everywhere(ctx.session, at=utcnow())
        if json:
            print_json([item.model_dump(mode="json") for item in found])
            return
        print_table(["SCHEDULE", "ON CALL", "LAYER", "UNTIL"], [
            [item.schedule_name, item.shift.username if item.shift else "-", item.shift.layer if item.shift else "-",
             _local(item.shift.end, item.time_zone) + f" ({item.time_zone})" if item.shift else "-"]
            for item in found])


@oncall.command("schedules")
def schedules_command(json: JsonOption = False) -> None:
    """The schedules with their layers."""
    with operation() as op, op.transaction() as ctx:
        found = [ScheduleRead.model_validate(s) for s in ctx.session.scalars(service.schedules_query())]
        if json:
            print_json([item.model_dump(mode="json") for item in found])
            return
        names = {u.id: u.username for u in service.user_names(
            ctx.session, {p for s in found for layer in s.layers for p in layer.participants}).values()}
        print_table(["ID", "NAME", "TIME ZONE", "LAYERS"], [
            [str(s.id), s.name, s.time_zone, "; ".join(
                f"{layer.name}: {', '.join(names.get(p, f'#{p}') for p in layer.participants)} "
                f"({layer.rotation}, {layer.handoff:%H:%M})" for layer in s.layers) or "-"] for s in found])


@oncall.command("shifts")
def shifts_command(
    schedule: ScheduleArg,
    start: Annotated[str | None, typer.Option("--from", help="Start (default now).")] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=92, help="How many days.")] = 14,
    json: JsonOption = False,
) -> None:
    """The final shifts of a schedule (layers and overrides applied), in its time zone."""
    with operation() as op, op.transaction() as ctx:
        found = _schedule(ctx.session, schedule)
        begin = _when(start, found.time_zone, utcnow())
        shifts = service.shifts(ctx.session, schedule=found, start=begin, end=begin + timedelta(days=days))
        if json:
            print_json([s.model_dump(mode="json") for s in shifts])
            return
        print_table([f"FROM ({found.time_zone})", "TO", "ON CALL", "LAYER"], [
            [_local(s.start, found.time_zone), _local(s.end, found.time_zone), s.username, s.layer] for s in shifts])


@oncall.command("override")
def override_command(
    schedule: ScheduleArg,
    username: Annotated[str, typer.Argument(help="Who is on call instead.", show_default=False)],
    start: Annotated[str, typer.Option("--from", help="Start, e.g. 2026-03-01T18:00 (schedule's zone).")],
    end: Annotated[str, typer.Option("--to", help="End, e.g. 2026-03-02T09:00.")],
    note: Annotated[str, typer.Option("--note", "-m", help="Why; shown with the override.")] = "",
) -> None:
    """Put a user on call instead of whoever the layers name, from --from to --to."""
    with operation() as op, op.transaction() as ctx:
        found = _schedule(ctx.session, schedule)
        user_id = service.user_ids_by_name(ctx.session, [username], "username")[0]
        data = OverrideCreate(user_id=user_id, starts_at=_when(start, found.time_zone, utcnow()),
                              ends_at=_when(end, found.time_zone, utcnow()), note=note)
        override = service.add_override(ctx, schedule_id=found.id, data=data)
        typer.echo(f"override {override.id}: {username} on call in {found.name} from "
                   f"{_local(override.starts_at, found.time_zone)} to {_local(override.ends_at, found.time_zone)} "
                   f"({found.time_zone})")


@escalation.command("policies")
def policies_command(json: JsonOption = False) -> None:
    """The escalation policies and their levels."""
    with operation() as op, op.transaction() as ctx:
        found = [PolicyRead.model_validate(p) for p in ctx.session.scalars(service.policies_query())]
        if json:
            print_json([p.model_dump(mode="json") for p in found])
            return
        users = {u.id: u.username for u in service.user_names(
            ctx.session, {t.id for p in found for lv in p.levels for t in lv.targets if t.kind == "user"}).values()}
        schedules = {s.id: s.name for s in ctx.session.scalars(service.schedules_query())}
        print_table(["ID", "NAME", "REPEAT", "LEVELS"], [
            [str(p.id), p.name, str(p.repeat), " -> ".join(
                ", ".join(users.get(t.id, f"#{t.id}") if t.kind == "user" else f"schedule:{schedules.get(t.id, t.id)}"
                          for t in lv.targets) + f" ({lv.timeout_minutes} min)" for lv in p.levels)] for p in found])


@escalation.command("list")
def list_command(
    status: Annotated[Status | None, typer.Option("--status", help="Only this status.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    json: JsonOption = False,
) -> None:
    """Escalations, newest first."""
    with operation() as op, op.transaction() as ctx:
        query = select(Escalation).order_by(Escalation.started_at.desc(), Escalation.id.desc()).limit(limit)
        if status:
            query = query.where(Escalation.status == status)
        found = [EscalationRead.model_validate(e) for e in ctx.session.scalars(query)]
        if json:
            print_json([e.model_dump(mode="json") for e in found])
            return
        print_table(["ID", "INCIDENT", "SEVERITY", "POLICY", "LEVEL", "STATUS", "STARTED", "ACKNOWLEDGED BY"], [
            [str(e.id), f"#{e.incident_id} {e.title}", e.severity, e.policy_name, f"{e.level + 1}/{len(e.levels)}",
             e.status, local_time(op.settings, e.started_at), e.acknowledged_by or "-"] for e in found])


@escalation.command("ack")
def ack_command(
    escalation_id: Annotated[int, typer.Argument(help="The escalation's id.", min=1, show_default=False)],
    note: Annotated[str, typer.Option("--note", "-m", help="Kept with the acknowledgement.")] = "",
) -> None:
    """Acknowledge an escalation: it stops paging."""
    with operation() as op, op.transaction() as ctx:
        done = engine.acknowledge(ctx, escalation_id=escalation_id, via="cli", now=utcnow(), note=note)
        typer.echo(f"escalation {done.id} (incident #{done.incident_id}) acknowledged by {done.acknowledged_by}")
