"""`vigil playbook`: playbooks (list, add and edit from a YAML or JSON file, versions, remove), and runs (run on an
incident, runs, approve, reject). The command line acts as the local operator ``cli:<login>``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from vigil.cli.runtime import EXIT_CODES_HELP, EXIT_USAGE, JsonOption, fail, operation, print_json, print_table
from vigil.incidents import service as incidents
from vigil.response.playbooks import runs, service
from vigil.response.playbooks.models import PlaybookRun
from vigil.response.playbooks.schemas import PlaybookCreate, PlaybookUpdate, VersionRead

app = typer.Typer(help="Playbooks: triggers and steps (enrich, notify, act, create tasks), versions and runs.",
                  no_args_is_help=True)
Ref = Annotated[str, typer.Argument(help="The playbook's id or name.", show_default=False)]
DefinitionFile = Annotated[Path, typer.Option("--file", "-f", help="The definition, YAML or JSON.", exists=True,
                                              dir_okay=False, readable=True, show_default=False)]
RunId = Annotated[int, typer.Argument(help="The run's id.", min=1, show_default=False)]
Comment = Annotated[str, typer.Option("--comment", help="Why.")]


def _text(path: Path) -> str:
    if path.stat().st_size > 1_000_000:
        fail(f"{path}: a definition is at most 1 MB", EXIT_USAGE)
    return path.read_text(encoding="utf-8")


@app.command("list", epilog=EXIT_CODES_HELP)
def list_playbooks(as_json: JsonOption = False) -> None:
    with operation() as op, op.transaction() as ctx:
        shown = [service.playbook_read(ctx.session, p).model_dump(mode="json")
                 for p in service.list_playbooks(ctx.session)]
    if as_json:
        print_json(shown)
        return
    print_table(["id", "name", "version", "enabled", "steps", "unit"], [
        [str(p["id"]), p["name"], str(p["version"]), "yes" if p["enabled"] else "no",
         ", ".join(s["kind"] for s in p["definition"]["steps"]), str(p["unit_id"])] for p in shown])


@app.command("add", epilog=EXIT_CODES_HELP)
def add(name: Annotated[str, typer.Argument(help="A name for the playbook.", show_default=False)],
        definition: DefinitionFile,
        unit: Annotated[int | None, typer.Option("--unit", help="The unit's id; default: headquarters.",
                                                 show_default=False)] = None,
        disabled: Annotated[bool, typer.Option("--disabled", help="Add it turned off.")] = False) -> None:
    """Add a playbook (version 1); a definition that does not fit is refused, naming the field."""
    with operation() as op, op.transaction() as ctx:
        parsed = service.parse_definition(_text(definition))
        playbook = service.create_playbook(ctx, data=PlaybookCreate(name=name, definition=parsed, unit_id=unit,
                                                                    enabled=not disabled))
        typer.echo(f"playbook {playbook.id} {playbook.name!r} added (version 1)")


@app.command("edit", epilog=EXIT_CODES_HELP)
def edit(playbook: Ref, definition: DefinitionFile, comment: Comment = "") -> None:
    """Replace the definition: a new version (runs keep the version they started with)."""
    with operation() as op, op.transaction() as ctx:
        found = service.find_playbook(ctx.session, playbook)
        parsed = service.parse_definition(_text(definition))
        changed = service.update_playbook(ctx, playbook_id=found.id, data=PlaybookUpdate(definition=parsed,
                                                                                         comment=comment))
        typer.echo(f"playbook {changed.id} {changed.name!r} is at version {changed.version}")


@app.command("versions", epilog=EXIT_CODES_HELP)
def versions(playbook: Ref, as_json: JsonOption = False) -> None:
    with operation() as op, op.transaction() as ctx:
        found = service.find_playbook(ctx.session, playbook)
        shown = [VersionRead.model_validate(v).model_dump(mode="json") for v in service.versions_of(ctx.session, found)]
    if as_json:
        print_json(shown)
        return
    print_table(["version", "created", "by", "comment"], [
        [str(v["version"]), v["created_at"][:19], v["created_by"], v["comment"]] for v in shown])


@app.command("remove", epilog=EXIT_CODES_HELP)
def remove(playbook: Ref) -> None:
    with operation() as op, op.transaction() as ctx:
        removed = service.delete_playbook(ctx, playbook_id=service.find_playbook(ctx.session, playbook).id)
    typer.echo(f"playbook {removed.id} {removed.name!r} removed")


def _show_run(session: Session, run: PlaybookRun, as_json: bool) -> None:
    shown = runs.run_read(session, run).model_dump(mode="json")
    if as_json:
        print_json(shown)
        return
    typer.echo(f"run {shown['id']}: {shown['playbook_name']} v{shown['version']} on incident {shown['incident_id']}: "
               f"{shown['status']}")
    for step in shown["steps"]:
        typer.echo(f"  {step['position'] + 1}. {step['kind']}: {step['status']}"
                   + (f" ({step['output'].splitlines()[0]})" if step["output"] else ""))


@app.command("run", epilog=EXIT_CODES_HELP)
def run(playbook: Ref, incident: Annotated[str, typer.Option("--incident", help="The incident's id or reference.",
                                                             show_default=False)],
        as_json: JsonOption = False) -> None:
    """Run a playbook on an incident now; it may stop at a step that waits for approval."""
    with operation() as op, op.transaction() as ctx:
        found = service.find_playbook(ctx.session, playbook)
        target = incidents.find_incident(ctx.session, incident)
        started = runs.start_run(ctx, playbook_id=found.id, incident_id=target.id,
                                 options=runs.Options(retry_delay=op.settings.notify_retry_seconds,
                                                      base_url=op.settings.public_url))
        _show_run(ctx.session, started, as_json)


@app.command("runs", epilog=EXIT_CODES_HELP)
def list_runs(status: Annotated[str | None, typer.Option("--status", show_default=False)] = None,
              limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
              as_json: JsonOption = False) -> None:
    with operation() as op, op.transaction() as ctx:
        shown = [runs.run_read(ctx.session, r).model_dump(mode="json")
                 for r in ctx.session.scalars(runs.runs_query(status=status).limit(limit))]
    if as_json:
        print_json(shown)
        return
    print_table(["id", "started", "playbook", "version", "incident", "status", "step"], [
        [str(r["id"]), r["started_at"][:19], r["playbook_name"], str(r["version"]), str(r["incident_id"]),
         r["status"], str(r["current_step"] + 1)] for r in shown])


@app.command("approve", epilog=EXIT_CODES_HELP)
def approve(run_id: RunId, comment: Comment = "", as_json: JsonOption = False) -> None:
    """Approve the step a run waits at (not in a run you started); the run goes on."""
    with operation() as op, op.transaction() as ctx:
        done = runs.approve_step(ctx, run_id=run_id, comment=comment, options=runs.Options(
            retry_delay=op.settings.notify_retry_seconds, base_url=op.settings.public_url))
        _show_run(ctx.session, done, as_json)


@app.command("reject", epilog=EXIT_CODES_HELP)
def reject(run_id: RunId, comment: Comment = "", as_json: JsonOption = False) -> None:
    with operation() as op, op.transaction() as ctx:
        _show_run(ctx.session, runs.reject_step(ctx, run_id=run_id, comment=comment), as_json)
