"""`vigil incident`: the incident queue and the five-step response from the shell.

List, show and open incidents, write their report (Markdown or PDF), move them through the phases (or reopen
them), work their tasks, comment, run the post-mortem review, and record SLA warnings and breaches now. The
CLI acts as the local operator (every unit; audited as ``cli:<login>``); an incident is named by its id or its
reference (INC-2026-0001). The exit codes are those of ``vigil.cli.main``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from vigil.cli.runtime import (
    EXIT_CODES_HELP,
    JsonOption,
    Operation,
    local_time,
    operation,
    print_json,
    print_table,
)
from vigil.core.config import Settings
from vigil.core.db import utcnow
from vigil.core.pagination import PageParams
from vigil.incidents import activity, intake, postmortem, postmortem_report, service, sla, tasks
from vigil.incidents.reads import Reader
from vigil.incidents.schemas import (
    CommentCreate,
    EscalateAlerts,
    IncidentCreate,
    IncidentFilter,
    IncidentRead,
    IncidentTransition,
    TaskCreate,
)
from vigil.incidents.workflow import ReviewAction
from vigil.response.reactions import incident_reactions

app = typer.Typer(help="Incidents: the queue, the five-step response, tasks, comments and post-mortems.",
                  no_args_is_help=True)
task_app = typer.Typer(help="An incident's tasks.", no_args_is_help=True)
postmortem_app = typer.Typer(help="An incident's post-mortem: draft, show, submit, approve, reject.",
                             no_args_is_help=True)
app.add_typer(task_app, name="task")
app.add_typer(postmortem_app, name="postmortem")

@contextmanager
def reacting() -> Iterator[Operation]:
    """An operation after whose commit the incident's paging, playbooks and publishing run, as in the server."""
    with operation() as op, incident_reactions(op.settings, op.database):
        yield op


Ident = Annotated[str, typer.Argument(help="The incident's id or reference (INC-2026-0001).", show_default=False)]


def _print_incident(settings: Settings, item: IncidentRead) -> None:
    facts = [("incident", f"{item.ref} (id {item.id})"), ("title", item.title), ("type", item.type),
             ("severity", item.severity), ("phase", item.phase), ("status", item.status),
             ("owner", item.owner.username if item.owner else "-"), ("team", item.team or "-"),
             ("opened", local_time(settings, item.created_at)), ("next phases", ", ".join(item.allowed_phases))]
    for name, value in facts:
        typer.echo(f"{name + ':':<13} {value}")
    typer.echo("sla:")
    for figure in item.sla:
        left = f", {figure.remaining_minutes:g} min left" if figure.remaining_minutes is not None else ""
        typer.echo(f"  {figure.metric:<12} {figure.state:<9} due {local_time(settings, figure.due_at)}{left}")
    typer.echo("time per phase (minutes): " + ", ".join(f"{p.phase} {p.minutes:g}" for p in item.phase_times))
    typer.echo("tasks:")
    for task in item.tasks:
        mark = "x" if task.status == "done" else " "
        typer.echo(f"  [{mark}] {task.id:>5} {task.phase:<10} {'required ' if task.required else ''}{task.title}")
    typer.echo("timeline:")
    for entry in item.timeline:
        typer.echo(f"  {local_time(settings, entry.at)}  {entry.kind:<12} {entry.actor:<16} {entry.summary}")


@app.command("list", epilog=EXIT_CODES_HELP)
def list_incidents(
    phase: Annotated[list[str] | None, typer.Option("--phase", help="Repeat for several.", show_default=False)] = None,
    status: Annotated[str | None, typer.Option("--status", help="open or closed.", show_default=False)] = None,
    severity: Annotated[list[str] | None, typer.Option("--severity", help="P1..P4; repeat.",
                                                       show_default=False)] = None,
    kind: Annotated[str, typer.Option("--type", help="A type key (malware, phishing...).")] = "",
    team: Annotated[str, typer.Option("--team")] = "",
    sla_state: Annotated[str | None, typer.Option("--sla", help="ok, warning or breached.",
                                                  show_default=False)] = None,
    text: Annotated[str, typer.Option("--text", "-q", help="In the reference, title or description.")] = "",
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    as_json: JsonOption = False,
) -> None:
    """The queue, newest first, with each incident's SLA state."""
    with operation() as op, op.transaction() as ctx:
        filters = IncidentFilter.model_validate({"phase": phase or [], "status": status, "severity": severity or [],
                                                 "type": kind, "team": team, "sla": sla_state, "q": text})
        found, total = service.list_incidents(ctx.session, filters=filters,
                                              params=PageParams(limit=limit, offset=offset))
        rows = Reader(ctx.session, utcnow()).summaries(found)
    if as_json:
        print_json({"items": [r.model_dump(mode="json") for r in rows], "total": total, "limit": limit,
                    "offset": offset})
        return
    print_table(["REF", "SEV", "PHASE", "SLA", "TYPE", "TITLE", "OWNER", "OPENED"],
                [[r.ref, r.severity, r.phase, r.sla_state, r.type, r.title, r.owner.username if r.owner else "",
                  local_time(op.settings, r.created_at)] for r in rows])
    typer.echo(f"{len(rows)} of {total} incidents")


@app.command("show", epilog=EXIT_CODES_HELP)
def show_incident(ident: Ident, as_json: JsonOption = False) -> None:
    """One incident: facts, SLA figures, time per phase, tasks and timeline."""
    with operation() as op, op.transaction() as ctx:
        item = Reader(ctx.session, utcnow()).full(service.find_incident(ctx.session, ident))
    if as_json:
        print_json(item.model_dump(mode="json"))
        return
    _print_incident(op.settings, item)


@app.command("report", epilog=EXIT_CODES_HELP)
def report(ident: Ident,
           output: Annotated[Path | None, typer.Option("--output", "-o", dir_okay=False, writable=True,
                                                       help="Write to this file; .pdf makes a PDF. "
                                                            "Default: the Markdown on standard output.")] = None,
           pdf: Annotated[bool, typer.Option("--pdf", help="A PDF whatever the file's name.")] = False) -> None:
    """The incident report (facts, SLA, timeline, post-mortem) as Markdown or an A4 PDF."""
    as_pdf = pdf or (output is not None and output.suffix.lower() == ".pdf")
    if as_pdf and output is None:
        raise typer.BadParameter("a PDF goes to a file: add --output FILE", param_hint="--pdf")
    with operation() as op, op.transaction() as ctx:
        incident = service.find_incident(ctx.session, ident)
        data = (postmortem_report.report_pdf(ctx.session, incident) if as_pdf
                else postmortem_report.report_markdown(ctx.session, incident).encode())
        ref = incident.ref
    if output is None:
        typer.echo(data.decode(), nl=False)
        return
    output.write_bytes(data)
    typer.echo(f"{ref}: the report is in {output} ({len(data):,} bytes)", err=True)


@app.command("create", epilog=EXIT_CODES_HELP)
def create_incident(
    title: Annotated[str, typer.Option("--title", help="What happened, in a line.", show_default=False)],
    kind: Annotated[str, typer.Option("--type", help="A type key: malware, phishing, data_leak...",
                                      show_default=False)],
    severity: Annotated[str, typer.Option("--severity", help="P1 (worst) .. P4.", show_default=False)],
    description: Annotated[str, typer.Option("--description")] = "",
    unit_id: Annotated[int | None, typer.Option("--unit", help="The unit's id (default: headquarters).",
                                                show_default=False)] = None,
    team: Annotated[str, typer.Option("--team")] = "",
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Repeat for several.", show_default=False)] = None,
) -> None:
    """Open an incident (in identify, with the identify tasks of its type)."""
    with reacting() as op, op.transaction() as ctx:
        data = IncidentCreate.model_validate({"title": title, "type": kind, "severity": severity,
                                              "description": description, "unit_id": unit_id, "team": team,
                                              "tags": tag or []})
        incident = service.open_incident(ctx, data=data)
        ref, ident = incident.ref, incident.id
    typer.echo(f"opened {ref} (id {ident})")


@app.command("transition", epilog=EXIT_CODES_HELP)
def transition(
    ident: Ident,
    phase: Annotated[str, typer.Argument(help="identify, contain, eradicate, recover, review or closed.",
                                         show_default=False)],
    reason: Annotated[str, typer.Option("--reason", "-m", help="Why (required to reopen a closed incident).")] = "",
) -> None:
    """Move the incident to a phase, or reopen a closed one into a phase; refused with the reason when the
    workflow does not allow it (required tasks open, no approved post-mortem)."""
    with reacting() as op, op.transaction() as ctx:
        incident = service.find_incident(ctx.session, ident)
        service.transition(ctx, incident_id=incident.id,
                           data=IncidentTransition.model_validate({"phase": phase, "reason": reason}))
        ref, now_in = incident.ref, incident.phase
    typer.echo(f"{ref} is now in {now_in}")


@app.command("ack", epilog=EXIT_CODES_HELP)
def acknowledge(ident: Ident) -> None:
    """Acknowledge the incident (stops its time-to-acknowledge clock)."""
    with reacting() as op, op.transaction() as ctx:
        incident = service.acknowledge(ctx, incident_id=service.find_incident(ctx.session, ident).id)
        ref = incident.ref
    typer.echo(f"{ref} acknowledged")


@app.command("comment", epilog=EXIT_CODES_HELP)
def comment(ident: Ident, body: Annotated[str, typer.Argument(help="The comment; @username mentions someone.",
                                                                show_default=False)]) -> None:
    """Comment on the incident."""
    with operation() as op, op.transaction() as ctx:
        incident = service.find_incident(ctx.session, ident)
        added = activity.add_comment(ctx, incident_id=incident.id, data=CommentCreate(body=body))
        mentions = len(added.mentions)
    typer.echo(f"commented on {incident.ref}" + (f" ({mentions} mentioned)" if mentions else ""))


@app.command("escalate", epilog=EXIT_CODES_HELP)
def escalate(
    alert_ids: Annotated[list[int], typer.Argument(help="Alert ids.", min=1, show_default=False)],
    into: Annotated[str | None, typer.Option("--into", help="An open incident to add them to (id or reference); "
                                             "default: a new incident.", show_default=False)] = None,
    title: Annotated[str | None, typer.Option("--title", show_default=False)] = None,
    kind: Annotated[str, typer.Option("--type")] = "other",
    severity: Annotated[str, typer.Option("--severity")] = "P3",
) -> None:
    """Escalate alerts into a new incident, or into an open one."""
    with reacting() as op, op.transaction() as ctx:
        target = service.find_incident(ctx.session, into).id if into else None
        incident = intake.escalate(ctx, data=EscalateAlerts.model_validate({
            "alert_ids": alert_ids, "incident_id": target, "title": title, "type": kind, "severity": severity}))
        ref = incident.ref
    typer.echo(f"alerts {', '.join(map(str, alert_ids))} escalated into {ref}")


@app.command("sla-check", epilog=EXIT_CODES_HELP)
def sla_check() -> None:
    """Record the SLA warnings and breaches not yet recorded (what the server's scheduler does each minute)."""
    with operation() as op, op.transaction() as ctx:
        created = sla.record_sla(ctx.session, now=utcnow())
        lines = [f"{r.incident_id}: {r.metric} {r.kind}" for r in created]
    for line in lines:
        typer.echo(line)
    typer.echo(f"{len(lines)} new SLA records")


@task_app.command("add", epilog=EXIT_CODES_HELP)
def task_add(
    ident: Ident, title: Annotated[str, typer.Argument(show_default=False)],
    phase: Annotated[str | None, typer.Option("--phase", help="Default: the incident's phase.",
                                              show_default=False)] = None,
    required: Annotated[bool, typer.Option("--required", help="Gate leaving the phase on it.")] = False,
) -> None:
    """Add a task to the incident."""
    with operation() as op, op.transaction() as ctx:
        incident = service.find_incident(ctx.session, ident)
        task = tasks.create_task(ctx, incident_id=incident.id, data=TaskCreate.model_validate(
            {"title": title, "phase": phase, "required": required}))
        task_id = task.id
    typer.echo(f"task {task_id} added to {incident.ref}")


@task_app.command("done", epilog=EXIT_CODES_HELP)
def task_done(ident: Ident, task_id: Annotated[int, typer.Argument(min=1, show_default=False)]) -> None:
    """Mark a task done."""
    with operation() as op, op.transaction() as ctx:
        incident = service.find_incident(ctx.session, ident)
        tasks.complete_task(ctx, incident_id=incident.id, task_id=task_id)
    typer.echo(f"task {task_id} of {incident.ref} done")


@task_app.command("list", epilog=EXIT_CODES_HELP)
def task_list(ident: Ident, as_json: JsonOption = False) -> None:
    """The incident's tasks."""
    with operation() as op, op.transaction() as ctx:
        incident = service.find_incident(ctx.session, ident)
        rows = [(t.id, t.phase, t.required, t.status, t.title) for t in tasks.tasks_of(ctx.session, incident.id)]
    if as_json:
        print_json([{"id": i, "phase": p, "required": r, "status": s, "title": t} for i, p, r, s, t in rows])
        return
    print_table(["ID", "PHASE", "REQUIRED", "STATUS", "TITLE"],
                [[str(i), p, "yes" if r else "", s, t] for i, p, r, s, t in rows])


def _review(ident: str, action: ReviewAction, note_text: str = "") -> None:
    with reacting() as op, op.transaction() as ctx:
        incident = service.find_incident(ctx.session, ident)
        record = postmortem.review(ctx, incident_id=incident.id, action=action, note_text=note_text)
        state = record.status
    typer.echo(f"post-mortem of {incident.ref} is {state}")


@postmortem_app.command("draft", epilog=EXIT_CODES_HELP)
def postmortem_draft(ident: Ident) -> None:
    """Draft the post-mortem from the incident's data."""
    with operation() as op, op.transaction() as ctx:
        incident = service.find_incident(ctx.session, ident)
        postmortem.draft(ctx, incident_id=incident.id)
    typer.echo(f"post-mortem of {incident.ref} drafted")


@postmortem_app.command("show", epilog=EXIT_CODES_HELP)
def postmortem_show(ident: Ident) -> None:
    """The post-mortem as JSON."""
    with operation() as op, op.transaction() as ctx:
        incident = service.find_incident(ctx.session, ident)
        item = Reader(ctx.session, utcnow()).full(incident).postmortem
    print_json(item.model_dump(mode="json") if item else None)


@postmortem_app.command("submit", epilog=EXIT_CODES_HELP)
def postmortem_submit(ident: Ident) -> None:
    """Submit the draft for review."""
    _review(ident, ReviewAction.SUBMIT)


@postmortem_app.command("approve", epilog=EXIT_CODES_HELP)
def postmortem_approve(ident: Ident) -> None:
    """Approve the post-mortem in review (never by its author)."""
    _review(ident, ReviewAction.APPROVE)


@postmortem_app.command("reject", epilog=EXIT_CODES_HELP)
def postmortem_reject(ident: Ident, note_text: Annotated[str, typer.Option("--note", "-m", help="What to change.")]
                      = "") -> None:
    """Send the post-mortem in review back to draft."""
    _review(ident, ReviewAction.REJECT, note_text)
