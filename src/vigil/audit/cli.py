"""`vigil audit …`: checking the tamper-evident audit trail from the command line."""

from __future__ import annotations

import typer

from vigil.audit import service
from vigil.audit.schemas import VerificationRead
from vigil.cli.runtime import EXIT_CODES_HELP, EXIT_FAILED, JsonOption, operation, print_json

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


@app.command("verify", epilog=EXIT_CODES_HELP)
def verify(as_json: JsonOption = False) -> None:
    """Verify the whole hash chain of the audit trail, every unit's records.

    Exit 0 and "audit trail intact: N records" when every link holds; exit 1 naming the first broken
    record (its sequence number) and why, when a stored record was edited, inserted or deleted.
    The check itself is audited.
    """
    with operation() as op, op.transaction() as ctx:
        result = service.verify(ctx)
    if as_json:
        print_json(VerificationRead(ok=result.ok, checked=result.checked, first_bad_seq=result.first_bad_seq,
                                    reason=result.reason).model_dump(mode="json"))
    elif result.ok:
        typer.echo(f"audit trail intact: {result.checked} records")
    else:
        where = f"record {result.first_bad_seq}" if result.first_bad_seq is not None else "the chain head"
        typer.echo(f"audit trail BROKEN at {where}: {result.reason} "
                   f"({result.checked} records before it are intact)", err=True)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)
