"""`vigil rules placeholders list|set|remove`: the values of Sigma placeholders (``%name%`` with the
``expand`` modifier), platform-wide, from the shell.

Every change is audited as the local operator; a running server recompiles the rules using the
placeholder at its next rules check. A rule refused at import because the placeholder had no values was
not stored: ``set`` names the packs to import again.
"""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from vigil.cli.runtime import EXIT_CODES_HELP, JsonOption, fail, local_time, note, operation, print_json, print_table
from vigil.detection import placeholders_service
from vigil.detection.schemas_placeholders import PlaceholderSet

app = typer.Typer(help="Sigma placeholders: the values %NAME% takes in rules with the expand modifier.",
                  no_args_is_help=True)
SHOWN_VALUES = 5


@app.command("list", epilog=EXIT_CODES_HELP)
def list_command(as_json: JsonOption = False) -> None:
    """Placeholders with their values and the rules using them; then those without values that refused rules."""
    with operation() as op, op.transaction() as ctx:
        found = placeholders_service.read_all(ctx.session)
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    rows = []
    for item in found.items:
        values = ", ".join(item.values[:SHOWN_VALUES]) + (f" (+{len(item.values) - SHOWN_VALUES})"
                                                           if len(item.values) > SHOWN_VALUES else "")
        rows.append([item.name, values, str(item.rules), local_time(op.settings, item.updated_at), item.updated_by,
                     item.description])
    print_table(["PLACEHOLDER", "VALUES", "RULES", "CHANGED", "BY", "DESCRIPTION"], rows)
    for use in found.missing:
        note(f"%{use.name}% has no values: rules of {', '.join(use.refused)} were refused at import "
             f"(`vigil rules placeholders set {use.name} VALUE...`, then import the packs again)")


@app.command("set", epilog=EXIT_CODES_HELP)
def set_command(
    name: Annotated[str, typer.Argument(help="The placeholder's name: the text between the % signs.",
                                        show_default=False)],
    values: Annotated[list[str], typer.Argument(help="Its values (replacing any it had); * and ? are wildcards.",
                                                show_default=False)],
    description: Annotated[str | None, typer.Option("--description", help="What the values are (kept when "
                                                    "not given).", show_default=False)] = None,
) -> None:
    """Set a placeholder's values: the rules using it match any of them."""
    with operation() as op, op.transaction() as ctx:
        if description is None:
            existing = {row.name: row.description for row in placeholders_service.list_placeholders(ctx.session)}
            description = existing.get(name.strip().strip("%"), "")
        try:
            data = PlaceholderSet(values=values, description=description)
        except ValidationError as exc:
            fail("; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors()), 2)
        row = placeholders_service.set_placeholder(ctx, name=name, data=data)
        read = placeholders_service.read(ctx.session, row)
    typer.echo(f"placeholder %{read.name}% saved: {len(read.values)} values, used by {read.rules} stored rules")
    if read.refused:
        note(f"rules of {', '.join(read.refused)} were refused at import for lacking it: import "
             f"{'that pack' if len(read.refused) == 1 else 'those packs'} again (`vigil rules import`)")


@app.command("remove", epilog=EXIT_CODES_HELP)
def remove_command(
    name: Annotated[str, typer.Argument(help="The placeholder's name.", show_default=False)],
) -> None:
    """Remove a placeholder: the rules using it no longer load (live detection drops them)."""
    with operation() as op, op.transaction() as ctx:
        placeholders_service.remove_placeholder(ctx, name=name)
    typer.echo(f"placeholder %{name.strip().strip('%')}% removed")
