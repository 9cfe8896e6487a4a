"""`vigil hunts run|list|show`: hunts over the events the SIEM stored, from the terminal, recorded as on the
hunts page (`vigil hunt PATH` is the other kind: rules over log files, with no server and no record).

Locally the command acts as the operator (every unit) and reads the event store file directly. DuckDB lets
one process hold that file: while `vigil serve` runs, hunt through the server with ``--server URL`` and an
analyst's API token in ``VIGIL_TOKEN`` (the server applies that user's units).

Exit codes: 0 when the hunt ran (with or without hits); 1 when it failed or was refused (a query that does
not parse, an unknown rule, the event store held by another process); 2 for wrong options.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Annotated, Any, NoReturn

import httpx
import typer

from vigil.cli.runtime import (
    EXIT_CODES_HELP,
    EXIT_USAGE,
    JsonOption,
    fail,
    local_time,
    note,
    operation,
    print_json,
    print_table,
)
from vigil.cli.runtime import settings as load_settings
from vigil.core.config import Settings
from vigil.core.errors import BadInput
from vigil.core.pagination import PageParams
from vigil.detection import hunts_service as service
from vigil.detection.schemas_hunts import HuntCreate, HuntRead, HuntSummary
from vigil.siem.cli.search import StoreBusy, local_server, open_local, time_window_text

app = typer.Typer(help="Hunts over stored events: run one over a time window, list them, show one's hits.",
                  no_args_is_help=True)

Server = Annotated[str | None, typer.Option(
    "--server", help="Through a running server (http://127.0.0.1:8000); the API token comes from the environment "
    "variable VIGIL_TOKEN.", show_default=False)]
POLL_SECONDS = 1.0


# --- output ------------------------------------------------------------------------------------------


def show(settings: Settings, hunt: HuntRead, as_json: bool) -> None:
    if as_json:
        print_json(hunt.model_dump(mode="json"))
        return
    rules = str(hunt.rules_hunted) if hunt.rules_hunted is not None else "all enabled"
    typer.echo(f"hunt {hunt.id}{f' ({hunt.name})' if hunt.name else ''}: {hunt.status}, by {hunt.created_by}")
    typer.echo(f"window: {local_time(settings, hunt.window_start)} - {local_time(settings, hunt.window_end)}; "
               f"rules: {rules}; query: {hunt.query or '*'}")
    typer.echo(f"events scanned: {hunt.events_scanned:,}; hits: {hunt.hits:,}")
    if hunt.error:
        note(f"error: {hunt.error}")
    if hunt.rules:
        print_table(["RULE", "LEVEL", "HITS", "FIRST EVENTS", "ID"],
                    [[rule.title, rule.level, f"{rule.count:,}", " ".join(str(e.id) for e in rule.events[:5]),
                      rule.uid] for rule in hunt.rules])
    elif hunt.status == "done":
        typer.echo("no rule matched")


def finish(settings: Settings, hunt: HuntRead, as_json: bool) -> None:
    show(settings, hunt, as_json)
    if hunt.status == "failed":
        raise typer.Exit(1)


# --- through the server ---------------------------------------------------------------------------------


def _client(server: str) -> httpx.Client:
    token = os.environ.get("VIGIL_TOKEN", "")
    if not token:
        fail("--server needs an API token in the environment variable VIGIL_TOKEN "
             "(`vigil token create USER --name cli` prints one)", EXIT_USAGE)
    return httpx.Client(base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {token}"},
                        timeout=httpx.Timeout(60.0, read=600.0))


def _refused(response: httpx.Response) -> NoReturn:
    try:
        detail = str(response.json().get("detail") or response.status_code)
    except ValueError:
        detail = response.text[:200]
    fail(f"the server refused ({response.status_code}): {detail}")


def _remote(server: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        with _client(server) as client:
            response = client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the server at {server}: {exc}")
    if response.status_code not in (200, 201):
        _refused(response)
    found: dict[str, Any] = response.json()
    return found


def run_remote(server: str, data: HuntCreate) -> HuntRead:
    hunt = HuntRead.model_validate(_remote(server, "POST", "/api/v1/hunts", data.model_dump(mode="json")))
    while hunt.status == "running":
        time.sleep(POLL_SECONDS)
        hunt = HuntRead.model_validate(_remote(server, "GET", f"/api/v1/hunts/{hunt.id}"))
    return hunt


# --- commands -------------------------------------------------------------------------------------------


@app.command("run", epilog=EXIT_CODES_HELP)
def run(
    since: Annotated[str | None, typer.Option("--since", "-s", help="How far back: 15m, 24h, 7d (default 24h).",
                                              show_default=False)] = None,
    start: Annotated[str | None, typer.Option("--from", help="Start: ISO 8601 or now-2h.", show_default=False)] = None,
    end: Annotated[str | None, typer.Option("--to", help="End (with --from; default now).", show_default=False)] = None,
    rules: Annotated[list[str] | None, typer.Option("--rule", "-r", help="A Sigma rule id (repeat it); none: every "
                                                    "enabled rule.", show_default=False)] = None,
    query: Annotated[str, typer.Option("--query", "-q", help="Only events matching this search query.")] = "",
    name: Annotated[str, typer.Option("--name", help="A name for the hunt's record.")] = "",
    server: Server = None,
    as_json: JsonOption = False,
) -> None:
    """Hunt with Sigma rules over the stored events of a time window, and record the hunt."""
    try:
        data = HuntCreate(name=name, rule_uids=list(rules or []), query=query,
                          range=time_window_text(since, start, end), background=False)
        service.resolve_window(data)
    except (BadInput, ValueError) as exc:
        fail(exc.detail if isinstance(exc, BadInput) else str(exc).splitlines()[0], EXIT_USAGE)
    if server:
        hunt = run_remote(server, data)
        finish(load_settings(), hunt, as_json)
        return
    with operation() as op:
        try:
            store = open_local(op.settings)
        except StoreBusy:
            fail(f"the event store {op.settings.events_path} is held by another process (normally `vigil serve`): "
                 f"hunt through the server with --server {local_server(op.settings)} and an analyst's API token "
                 "in VIGIL_TOKEN")
        if store is None:
            fail(f"no event store at {op.settings.events_path}: nothing was ingested yet")
        try:
            enabled = service.enabled_rules(op.database)
            with op.transaction() as ctx:  # a refusal (a query that does not parse, a rule unknown) exits 1
                _, plan = service.begin_hunt(ctx, enabled=enabled, store=store, data=data, units=None,
                                             unit_id=ctx.actor.unit_id)
            service.run_hunt(op.database, store, plan)
            with op.transaction() as ctx:
                hunt = service.hunt_read(service.get_hunt(ctx.session, plan.hunt_id), units=None)
        finally:
            store.close()
        finish(op.settings, hunt, as_json)


@app.command("list", epilog=EXIT_CODES_HELP)
def list_hunts(
    limit: Annotated[int, typer.Option("--limit", "-n", help="Hunts to list at most (newest first).", min=1,
                                       max=1000)] = 50,
    server: Server = None,
    as_json: JsonOption = False,
) -> None:
    """Recorded hunts, newest first."""
    if server:
        items = _remote(server, "GET", f"/api/v1/hunts?limit={limit}")["items"]
        current = load_settings()
    else:
        with operation() as op, op.transaction() as ctx:
            found, _ = service.list_hunts(ctx.session, params=PageParams(limit=limit, offset=0))
            items = [HuntSummary.model_validate(hunt).model_dump(mode="json") for hunt in found]
        current = op.settings
    if as_json:
        print_json(items)
        return
    if not items:
        note("no hunts yet")
        return
    print_table(["ID", "NAME", "BY", "STATUS", "WINDOW", "RULES", "QUERY", "EVENTS", "HITS"],
                [[str(item["id"]), item["name"], item["created_by"], item["status"],
                  f"{local_time(current, _when(item['window_start']))} - "
                  f"{local_time(current, _when(item['window_end']))}",
                  str(len(item["rule_uids"])) if item["rule_uids"] else "all enabled", item["query"] or "*",
                  f"{item['events_scanned']:,}", f"{item['hits']:,}"] for item in items])


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@app.command("show", epilog=EXIT_CODES_HELP)
def show_hunt(
    hunt_id: Annotated[int, typer.Argument(help="A hunt's id.", min=1, show_default=False)],
    server: Server = None,
    as_json: JsonOption = False,
) -> None:
    """One hunt: its window, rules, query, status and hits per rule with the first matching events."""
    if server:
        show(load_settings(), HuntRead.model_validate(_remote(server, "GET", f"/api/v1/hunts/{hunt_id}")), as_json)
        return
    with operation() as op, op.transaction() as ctx:
        hunt = service.hunt_read(service.get_hunt(ctx.session, hunt_id), units=None)
    show(op.settings, hunt, as_json)
