"""`vigil action`: response actions (kinds, add, list, remove, dry-run), their runs (run, runs, approve, reject,
rollback) and `vigil action tick`, which rolls back the runs whose TTL has passed (`vigil serve` does it on its
own; the command is for a store no server watches, or for cron).

Settings are given as ``--set key=value`` (a JSON list or true/false read as JSON: ``--set
command='["/usr/sbin/nft","add","element","inet","filter","blocklist","{ip}"]'``). Secrets are never printed.
The command line acts as the local operator ``cli:<login>``: it may approve a run someone else requested,
never its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import typer

from vigil.cli.runtime import EXIT_CODES_HELP, EXIT_USAGE, JsonOption, fail, operation, print_json, print_table
from vigil.response.actions import executions, service
from vigil.response.actions.schemas import ActionCreate, ExecutionCreate, ExecutionRead

app = typer.Typer(help="Response actions (block an IP, disable an account, isolate a host, run a script) and their "
                       "runs.", no_args_is_help=True)
SetPairs = Annotated[list[str] | None, typer.Option(
    "--set", "-s", help="A setting as key=value (a JSON list or true/false read as JSON).", show_default=False)]
Ref = Annotated[str, typer.Argument(help="The action's id or name.", show_default=False)]
RunId = Annotated[int, typer.Argument(help="The run's (execution's) id.", min=1, show_default=False)]
Comment = Annotated[str, typer.Option("--comment", help="Why.")]


def _pairs(pairs: list[str] | None) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--set {pair!r}: write key=value", EXIT_USAGE)
        try:
            value = orjson.loads(raw)
            config[key.strip()] = value if isinstance(value, list | bool) else raw
        except orjson.JSONDecodeError:
            config[key.strip()] = raw
    return config


def _show(row: Any, as_json: bool) -> None:
    shown = ExecutionRead.model_validate(row).model_dump(mode="json")
    if as_json:
        print_json(shown)
        return
    typer.echo(f"run {shown['id']}: {shown['action_name']} on {shown['target']}: {shown['status']}")
    if shown["output"]:
        typer.echo(shown["output"])


@app.command("kinds", epilog=EXIT_CODES_HELP)
def kinds(as_json: JsonOption = False) -> None:
    """The action kinds installed and the settings each takes."""
    found = [kind.model_dump() for kind in service.kinds()]
    if as_json:
        print_json(found)
        return
    print_table(["kind", "target", "settings"], [
        [k["kind"], k["target"], ", ".join(f["name"] + ("*" if f["required"] else "") for f in k["fields"])]
        for k in found])


@app.command("add", epilog=EXIT_CODES_HELP)
def add(
    name: Annotated[str, typer.Argument(help="A name for the action.", show_default=False)],
    kind: Annotated[str, typer.Option("--kind", "-k", help="block_ip, disable_account, isolate_host or run_script.",
                                      show_default=False)],
    settings: SetPairs = None,
    approval: Annotated[bool, typer.Option("--approval/--no-approval",
                                           help="Each run waits for another person's approval.")] = True,
    rollback_after: Annotated[int | None, typer.Option("--rollback-after", min=1,
                                                       help="Undo a successful run after this many seconds.",
                                                       show_default=False)] = None,
    unit: Annotated[int | None, typer.Option("--unit", help="The unit's id; default: headquarters.",
                                             show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Add an action; a wrong setting is refused with the field named, and nothing is stored."""
    try:
        data = ActionCreate(name=name, kind=kind, config=_pairs(settings), requires_approval=approval,
                            rollback_after_seconds=rollback_after, unit_id=unit)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    with operation() as op, op.transaction() as ctx:
        shown = service.action_read(service.create_action(ctx, data=data)).model_dump(mode="json")
    if as_json:
        print_json(shown)
    else:
        typer.echo(f"action {shown['id']} {shown['name']!r} ({shown['kind']}) added")


@app.command("list", epilog=EXIT_CODES_HELP)
def list_actions(as_json: JsonOption = False) -> None:
    """Every action with its settings; secrets only as set or not set."""
    with operation() as op, op.transaction() as ctx:
        shown = [service.action_read(a).model_dump(mode="json") for a in service.list_actions(ctx.session)]
    if as_json:
        print_json(shown)
        return
    print_table(["id", "name", "kind", "approval", "rollback", "settings", "secrets"], [
        [str(a["id"]), a["name"], a["kind"], "yes" if a["requires_approval"] else "no",
         f"{a['rollback_after_seconds']} s" if a["rollback_after_seconds"] else "-",
         orjson.dumps(a["settings"]).decode(), ", ".join(f"{k}: {v}" for k, v in a["secrets"].items())]
        for a in shown])


@app.command("remove", epilog=EXIT_CODES_HELP)
def remove(action: Ref) -> None:
    """Remove an action; its runs stay recorded."""
    with operation() as op, op.transaction() as ctx:
        removed = service.delete_action(ctx, action_id=service.find_action(ctx.session, action).id)
    typer.echo(f"action {removed.id} {removed.name!r} removed")


@app.command("dry-run", epilog=EXIT_CODES_HELP)
def dry_run(action: Ref, target: Annotated[str, typer.Argument(help="IP address, account, host or argument.",
                                                               show_default=False)],
            as_json: JsonOption = False) -> None:
    """Print exactly what a run on TARGET would do; runs nothing."""
    with operation() as op, op.transaction() as ctx:
        shown = service.dry_run(ctx, action_id=service.find_action(ctx.session, action).id, target=target)
    if as_json:
        print_json(shown.model_dump(mode="json"))
        return
    for step in shown.steps:
        typer.echo(step)
    for step in shown.undo_steps:
        typer.echo(f"undo: {step}")


@app.command("run", epilog=EXIT_CODES_HELP)
def run(action: Ref, target: Annotated[str, typer.Argument(help="IP address, account, host or argument.",
                                                           show_default=False)],
        incident: Annotated[int | None, typer.Option("--incident", min=1, help="The incident it belongs to.",
                                                     show_default=False)] = None,
        reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
        as_json: JsonOption = False) -> None:
    """Request a run: it waits for approval when the action says so, else it runs now (exit 1 when it failed)."""
    with operation() as op, op.transaction() as ctx:
        found = service.find_action(ctx.session, action)
        row = executions.request_execution(ctx, data=ExecutionCreate(action_id=found.id, target=target,
                                                                     incident_id=incident, reason=reason))
        status = row.status
        _show(row, as_json)
    if status == "failed":
        fail("the action failed")


@app.command("runs", epilog=EXIT_CODES_HELP)
def runs(status: Annotated[str | None, typer.Option("--status", help="Only runs in this status.",
                                                    show_default=False)] = None,
         limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
         as_json: JsonOption = False) -> None:
    """Runs, newest first."""
    if status is not None and status not in executions.STATUSES:
        fail(f"--status {status!r}: one of {', '.join(executions.STATUSES)}", EXIT_USAGE)
    with operation() as op, op.transaction() as ctx:
        rows = [ExecutionRead.model_validate(r).model_dump(mode="json")
                for r in ctx.session.scalars(executions.executions_query(status=status).limit(limit))]
    if as_json:
        print_json(rows)
        return
    print_table(["id", "requested", "action", "target", "incident", "status", "by", "approved by"], [
        [str(r["id"]), r["requested_at"][:19], r["action_name"], r["target"], str(r["incident_id"] or ""),
         r["status"], r["requested_by"], r["approved_by"] or ""] for r in rows])


@app.command("approve", epilog=EXIT_CODES_HELP)
def approve(execution: RunId, comment: Comment = "", as_json: JsonOption = False) -> None:
    """Approve a waiting run someone else requested, and run it now."""
    with operation() as op, op.transaction() as ctx:
        _show(executions.approve_execution(ctx, execution_id=execution, comment=comment), as_json)


@app.command("reject", epilog=EXIT_CODES_HELP)
def reject(execution: RunId, comment: Comment = "", as_json: JsonOption = False) -> None:
    with operation() as op, op.transaction() as ctx:
        _show(executions.reject_execution(ctx, execution_id=execution, comment=comment), as_json)


@app.command("rollback", epilog=EXIT_CODES_HELP)
def rollback(execution: RunId, as_json: JsonOption = False) -> None:
    """Undo a run that succeeded, now."""
    with operation() as op, op.transaction() as ctx:
        _show(executions.rollback(ctx, execution_id=execution), as_json)


@app.command("tick", epilog=EXIT_CODES_HELP)
def tick(now: Annotated[str | None, typer.Option("--now", help="The time to act as of (ISO 8601 with a zone); "
                                                               "default: now.", show_default=False)] = None) -> None:
    """Roll back every run whose TTL has passed."""
    moment = datetime.now(UTC)
    if now:
        try:
            moment = datetime.fromisoformat(now)
        except ValueError:
            fail(f"--now {now!r}: an ISO 8601 time such as 2026-05-01T12:00:00+08:00", EXIT_USAGE)
        if moment.tzinfo is None:
            fail("--now needs a time zone (Z or +08:00)", EXIT_USAGE)
    with operation() as op:
        done = executions.tick(op.database, now=moment)
    typer.echo(f"{len(done)} run(s) rolled back" + (": " + ", ".join(map(str, done)) if done else ""))
