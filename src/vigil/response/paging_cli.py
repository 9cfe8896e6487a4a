"""`vigil escalation paging`: which policy an incident of each severity starts, and which channels hear of it."""

from __future__ import annotations

from typing import Annotated

import typer

from vigil.cli.runtime import EXIT_CODES_HELP, JsonOption, operation, print_json, print_table
from vigil.incidents.schemas import Severity
from vigil.response import oncall_service
from vigil.response import paging_service as service
from vigil.response.notifications.service import find_channel
from vigil.response.paging_service import PagingRead, PagingSet

paging = typer.Typer(help="Paging for new incidents: policy and channels per severity. " + EXIT_CODES_HELP,
                     no_args_is_help=True)


@paging.command("list")
def list_command(json: JsonOption = False) -> None:
    """The paging configured per unit and severity."""
    with operation() as op, op.transaction() as ctx:
        rows = [PagingRead.model_validate(r) for r in service.list_rules(ctx.session)]
        if json:
            print_json([r.model_dump(mode="json") for r in rows])
            return
        policies = {p.id: p.name for p in ctx.session.scalars(oncall_service.policies_query())}
        print_table(["unit", "severity", "policy", "channels"],
                    [[str(r.unit_id), r.severity, policies.get(r.policy_id or 0, "-"),
                      ", ".join(f"#{c}" for c in r.channel_ids) or "-"] for r in rows])


@paging.command("set")
def set_command(
    severity: Annotated[Severity, typer.Argument(help="P1, P2, P3 or P4.", show_default=False)],
    policy: Annotated[str | None, typer.Option("--policy", help="The escalation policy's name.")] = None,
    channel: Annotated[list[str] | None, typer.Option("--channel", help="A channel told of new incidents "
                                                      "(its name; repeat for more).")] = None,
    unit: Annotated[int | None, typer.Option("--unit", help="The unit (default: headquarters).")] = None,
) -> None:
    """Set what an incident of SEVERITY pages and tells when it opens."""
    with operation() as op, op.transaction() as ctx:
        policy_id = oncall_service.policy_by_name(ctx.session, policy).id if policy else None
        channel_ids = [find_channel(ctx.session, name).id for name in channel or []]
        row = service.set_rule(ctx, severity=severity,
                               data=PagingSet(policy_id=policy_id, channel_ids=channel_ids, unit_id=unit))
        typer.echo(f"{severity} in unit {row.unit_id}: policy {policy or '-'}, {len(channel_ids)} channel(s)")


@paging.command("remove")
def remove_command(
    severity: Annotated[Severity, typer.Argument(help="P1, P2, P3 or P4.", show_default=False)],
    unit: Annotated[int | None, typer.Option("--unit", help="The unit (default: headquarters).")] = None,
) -> None:
    """No paging for SEVERITY in the unit any more."""
    with operation() as op, op.transaction() as ctx:
        service.delete_rule(ctx, severity=severity, unit_id=unit)
        typer.echo(f"{severity}: no paging configured")
