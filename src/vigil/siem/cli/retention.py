"""`vigil retention status|run` and `vigil sources list|set|remove`: retention and log sources from the shell.

The event store is one DuckDB file that one process holds at a time: while `vigil serve` runs, these
commands show the settings without the event figures, and retention is run from the log-sources page
(or ``POST /api/v1/siem/retention/run``) instead; the server's daily job runs it anyway.
Every change is audited as the local operator (``cli:<login>``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from vigil.accounts import service as accounts
from vigil.cli.runtime import (
    EXIT_CODES_HELP,
    JsonOption,
    fail,
    local_time,
    note,
    operation,
    print_json,
    print_table,
)
from vigil.core.config import Settings
from vigil.core.errors import NotFound
from vigil.siem import retention, sources
from vigil.siem.sources import SourceCreate, SourceUpdate
from vigil.siem.store.duckdb import DuckDBEventStore, open_if_free

retention_app = typer.Typer(help="Event retention per log source: status, and a run now.", no_args_is_help=True)
sources_app = typer.Typer(help="Log sources: list them with their figures, configure one, remove its settings.",
                          no_args_is_help=True)

SourceName = Annotated[str, typer.Argument(help="The source its events carry (syslog, http:fw01).",
                                           show_default=False)]
IN_USE = ("the event store {path} is in use by a running `vigil serve`; figures from events are left out "
          "(the log-sources page shows them)")


@contextmanager
def event_store(settings: Settings, *, required: bool) -> Iterator[DuckDBEventStore | None]:
    """The event store when it exists and no server holds it; else None (or exit 1 when ``required``)."""
    path = settings.events_path
    store = open_if_free(path, memory_limit=settings.events_memory_limit)
    if store is None:
        if not path.exists():
            yield None
            return
        if required:
            fail(f"the event store {path} is in use by a running `vigil serve`: run retention from the log-sources "
                 "page or with POST /api/v1/siem/retention/run (the server also runs it daily)")
        note(IN_USE.format(path=path))
        yield None
        return
    try:
        yield store
    finally:
        store.close()


# --- retention ---------------------------------------------------------------------------------------


@retention_app.command("status", epilog=EXIT_CODES_HELP)
def retention_status(as_json: JsonOption = False) -> None:
    """Each source's policy (days), the oldest event held, and whether the policy is met."""
    with operation() as op, event_store(op.settings, required=False) as store, op.transaction() as ctx:
        found = retention.retention_status(ctx.session, store, op.settings)
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    typer.echo(f"default: {found.default_days} days (legal minimum for network logs: {found.legal_minimum_days})")
    rows = [[p.source, f"{p.days}{'' if not p.default else ' (default)'}", local_time(op.settings, p.oldest),
             "-" if p.held_days is None else str(p.held_days), "met" if p.met else "NOT MET",
             "due" if p.due else "", "below legal minimum" if p.below_legal_minimum else ""]
            for p in found.policies]
    print_table(["SOURCE", "DAYS", "OLDEST", "HELD DAYS", "POLICY", "PRUNING", "NOTE"], rows)
    if found.last_run is not None:
        typer.echo(f"last recorded run: {local_time(op.settings, found.last_run.at)} by {found.last_run.actor}, "
                   f"{found.last_run.deleted} events deleted")


@retention_app.command("run", epilog=EXIT_CODES_HELP)
def retention_run(as_json: JsonOption = False) -> None:
    """Delete each source's events older than its policy's days now (the server does it daily)."""
    with operation() as op, event_store(op.settings, required=True) as store:
        if store is None:
            note("no event store yet: nothing to delete")
            return
        with op.transaction() as ctx:
            pruned = retention.prune_expired(ctx.session, store, op.settings)
            summary = retention.record_run(ctx, pruned)
    if as_json:
        print_json(summary.model_dump(mode="json"))
        return
    for name, entry in sorted(summary.sources.items()):
        typer.echo(f"{name}: {entry['deleted']} events older than {entry['days']} days deleted")
    typer.echo(f"{summary.deleted} events deleted, {pruned.checked} sources checked")


# --- sources -----------------------------------------------------------------------------------------


@sources_app.command("list", epilog=EXIT_CODES_HELP)
def list_sources(as_json: JsonOption = False) -> None:
    """Configured and observed sources: last event, events per second, parse errors, silent or not."""
    with operation() as op, event_store(op.settings, required=False) as store, op.transaction() as ctx:
        found = sources.source_statuses(ctx.session, store, op.settings, unit_ids=None)
        units = {unit.id: unit.name for unit in accounts.list_units(ctx.session)}
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    rows = [[item.name + ("" if item.configured else " (observed)"), units.get(item.unit_id or 0, ""),
             local_time(op.settings, item.last_seen), str(item.events), f"{item.events_per_second:g}",
             f"{item.failures_24h} ({item.failure_rate_24h:.1%})", item.format or "detect", item.timezone,
             str(item.retention_days), str(item.expected_interval_minutes or "-"), "SILENT" if item.silent else ""]
            for item in found.items]
    print_table(["SOURCE", "UNIT", "LAST EVENT", "EVENTS", "EPS", "PARSE ERRORS 24H", "FORMAT", "TIME ZONE",
                 "DAYS", "EXPECTED (MIN)", ""], rows)


def _unit_id(session: Any, ref: str) -> int:
    units = list(accounts.list_units(session))
    for unit in units:
        if str(unit.id) == ref or unit.name == ref:
            return unit.id
    raise NotFound(f"no organisation unit {ref!r}; units: " + ", ".join(f"{u.name} (id {u.id})" for u in units))


@sources_app.command("set", epilog=EXIT_CODES_HELP)
def set_source(
    name: SourceName,
    timezone: Annotated[str | None, typer.Option("--timezone", help="IANA zone of stamps without one; '' resets.",
                                                 show_default=False)] = None,
    log_format: Annotated[str | None, typer.Option("--format", help="Parser name; '' detects per record.",
                                                   show_default=False)] = None,
    retention_days: Annotated[int | None, typer.Option("--retention-days", help="Days events are kept; 0 resets "
                                                       "to the default.", show_default=False)] = None,
    expected_interval: Annotated[int | None, typer.Option("--expected-interval", help="Minutes after which the "
                                                          "source is flagged silent; 0 turns it off.",
                                                          show_default=False)] = None,
    keep_original: Annotated[bool | None, typer.Option("--keep-original/--no-keep-original",
                                                       help="Keep each record as received in event.original.",
                                                       show_default=False)] = None,
    unit: Annotated[str | None, typer.Option("--unit", "-u", help="Unit (id or name) its events belong to.",
                                             show_default=False)] = None,
    description: Annotated[str | None, typer.Option("--description", show_default=False)] = None,
) -> None:
    """Configure a source (created when new; only the options given change)."""
    given: dict[str, Any] = {}
    if timezone is not None:
        given["timezone"] = timezone or None
    if log_format is not None:
        given["format"] = log_format or None
    if retention_days is not None:
        given["retention_days"] = retention_days or None
    if expected_interval is not None:
        given["expected_interval_minutes"] = expected_interval or None
    if keep_original is not None:
        given["keep_original"] = keep_original
    if description is not None:
        given["description"] = description
    with operation() as op, op.transaction() as ctx:
        if unit is not None:
            given["unit_id"] = _unit_id(ctx.session, unit)
        row = sources.find_source(ctx.session, name)
        # A refused value (unknown format or zone, days below 1) exits 1 naming the field.
        if row is None:
            row = sources.create_source(ctx, data=SourceCreate(name=name, **given))
            verb = "configured"
        else:
            row = sources.update_source(ctx, source_id=row.id, data=SourceUpdate(**given))
            verb = "updated"
        days = row.retention_days or op.settings.retention_days
    for warning in sources.retention_warnings(days):
        note(f"warning: {warning}")
    typer.echo(f"log source {name} {verb} (retention {days} days); a running server reads it within 30 s")


@sources_app.command("remove", epilog=EXIT_CODES_HELP)
def remove_source(name: SourceName) -> None:
    """Remove a source's settings: its events stay and are read with the defaults from now on."""
    with operation() as op, op.transaction() as ctx:
        row = sources.find_source(ctx.session, name)
        if row is None:
            fail(f"no log source named {name!r} is configured")
        sources.delete_source(ctx, source_id=row.id)
    typer.echo(f"settings of log source {name} removed")


def register(app: typer.Typer) -> None:
    """Add `vigil retention` and `vigil sources` to the `vigil` app."""
    app.add_typer(retention_app, name="retention")
    app.add_typer(sources_app, name="sources")
