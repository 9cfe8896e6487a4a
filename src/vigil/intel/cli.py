"""`vigil intel`: import intelligence, manage and pull feeds, search indicators, look an observable up,
keep the allow-list.

The indicator store is a DuckDB file that one process holds: while `vigil serve` runs, these commands
fail with a message saying so; use the API (or `vigil intel import --server`) instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import duckdb
import httpx
import orjson
import typer

from vigil.cli.runtime import (
    EXIT_CODES_HELP,
    EXIT_USAGE,
    JsonOption,
    Operation,
    fail,
    login_name,
    note,
    operation,
    print_json,
    print_table,
)
from vigil.core.config import Settings
from vigil.intel import export, feeds_service, lookup, service, sightings_service
from vigil.intel.feeds.base import feed_parsers
from vigil.intel.feeds.presets import presets
from vigil.intel.runtime import Intel, forget, intel_for
from vigil.intel.schemas import AllowRead, EntityRead, FeedCreate, SightingRead, SightingUpdate
from vigil.siem.store.duckdb import DuckDBEventStore, open_if_free

app = typer.Typer(help="Threat intelligence: feeds, indicators, sightings, the allow-list.", no_args_is_help=True)
feed_app = typer.Typer(help="Feeds pulled on a schedule (presets: URLhaus, Feodo Tracker, ThreatFox, ET, OTX).",
                       no_args_is_help=True)
app.add_typer(feed_app, name="feed")

OptionPairs = Annotated[list[str] | None, typer.Option(
    "--option", "-o", help="A format option as key=value (a JSON value is read as JSON): value=url, "
                           "default_type=ipv4, header=true ...", show_default=False)]
IN_USE = ("the indicator store {path} is in use by a running `vigil serve`: use the API or the web UI "
          "(or `vigil intel import --server`)")


def _options(pairs: list[str] | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--option {pair!r}: write key=value", EXIT_USAGE)
        try:
            options[key.strip()] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            options[key.strip()] = raw
    return options


@contextmanager
def _intel(op: Operation, *, with_events: bool = False) -> Iterator[Intel]:
    """The process's ``Intel``, its store opened (exit 1 when a server holds it), and for retro-hunts the
    event store when no server holds it either."""
    intel = intel_for(op.settings, op.database)
    try:
        intel.store.count()
    except duckdb.IOException:
        forget(op.settings)
        fail(IN_USE.format(path=op.settings.intel_path))
    events = _events(op.settings) if with_events else None
    intel.events = lambda: events
    try:
        yield intel
    finally:
        if events is not None:
            events.close()
        forget(op.settings)


def _events(settings: Settings) -> DuckDBEventStore | None:
    store = open_if_free(settings.events_path, memory_limit=settings.events_memory_limit)
    if store is None and settings.events_path.exists():
        note(f"the event store {settings.events_path} is in use by a running `vigil serve`: no retro-hunt here")
    return store


PRESET_NAMES = ", ".join(presets())


@app.command("import", epilog=EXIT_CODES_HELP)
def import_command(
    path: Annotated[Path, typer.Argument(help="A STIX 2.1 bundle, a MISP event, a CSV or plain list, an OTX pulse.",
                                         show_default=False, exists=True, dir_okay=False, readable=True)],
    fmt: Annotated[str, typer.Option("--format", "-f", help="stix, misp, csv, lines or otx; or a preset's name "
                                     f"({PRESET_NAMES}).")] = "stix",
    options: OptionPairs = None,
    source: Annotated[str | None, typer.Option("--source", help="The provenance recorded; default import:<file>.",
                                               show_default=False)] = None,
    retrohunt: Annotated[bool, typer.Option("--retrohunt/--no-retrohunt", help="Look back through stored events "
                                            "for what is new (needs the event store free).")] = True,
    as_json: JsonOption = False,
) -> None:
    """Import a file of intelligence; prints what was taken and every item refused, with its position."""
    chosen = presets().get(fmt)
    if chosen is None and fmt not in feed_parsers():
        fail(f"--format {fmt!r}: a format ({', '.join(sorted(feed_parsers()))}) or a preset ({PRESET_NAMES})",
             EXIT_USAGE)
    parser_format = chosen.format if chosen is not None else fmt
    parser_options = {**(chosen.options if chosen is not None else {}), **_options(options)}
    label = source or f"import:{path.name}"
    with operation() as op, _intel(op, with_events=retrohunt) as intel:
        with op.transaction() as ctx, path.open("rb") as stream:
            result = service.take_in(ctx, intel.store, stream=stream, fmt=parser_format, options=parser_options,
                                     source=label, version=f"{path.stat().st_mtime_ns}",
                                     warninglists=intel.warninglists)
            pull = result.pull
        hunt = intel.look_back(result.merge.fresh, trigger=f"{label} (pull {pull.id})") if retrohunt else None
    if as_json:
        print_json({"received": pull.received, "added": pull.added, "updated": pull.updated,
                    "entities": pull.entities, "errors": pull.errors, "error_count": pull.error_count,
                    "warninglisted": pull.warninglisted,
                    "retrohunt": None if hunt is None else {"hits": hunt.hits,
                                                            "sightings": hunt.sightings.sightings,
                                                            "alerts": hunt.sightings.alerts}})
        return
    typer.echo(f"{path.name}: {pull.received:,} indicators ({pull.added:,} new, {pull.updated:,} known), "
               f"{pull.entities:,} actors/campaigns/reports, {pull.error_count:,} refused, "
               f"{pull.warninglisted:,} on a warninglist")
    for error in pull.errors:
        note(f"refused: {error['position']}: {error['reason']}")
    if pull.error_count > len(pull.errors):
        note(f"... and {pull.error_count - len(pull.errors):,} more refused")
    if hunt is not None:
        typer.echo(f"retro-hunt: {hunt.indicators:,} indicators over the last {op.settings.intel_lookback_days} "
                   f"days: {hunt.hits:,} events, {hunt.sightings.sightings} sightings, {hunt.sightings.alerts} alerts "
                   f"({hunt.seconds:.2f} s)")


@app.command("indicators", epilog=EXIT_CODES_HELP)
def indicators_command(
    text: Annotated[str, typer.Option("--text", "-q", help="Text in the value or description.")] = "",
    kind: Annotated[list[str] | None, typer.Option("--type", "-t", help="Indicator type (repeatable).",
                                                   show_default=False)] = None,
    source: Annotated[str, typer.Option("--source", help="feed:<id> or import:<file>.")] = "",
    active: Annotated[bool, typer.Option("--active", help="Only indicators that would match now.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Indicators, most recently changed first, with their score and sources."""
    with operation() as op, _intel(op) as intel:
        found, total = intel.store.search(text=text, types=kind or [], source=source, active_only=active, limit=limit)
    if as_json:
        print_json({"total": total, "items": [lookup.indicator_read(i).model_dump(mode="json") for i in found]})
        return
    rows = [[str(i.id), i.type, i.value[:80], f"{i.score:.0f}", "yes" if i.active else "no",
             ",".join(s["source"] for s in i.sources) or "-", ",".join(i.tags)[:40] or "-",
             ",".join(i.warninglists)[:40] or ("allow-list" if i.allowlisted else "-")] for i in found]
    print_table(["ID", "TYPE", "VALUE", "SCORE", "ACTIVE", "SOURCES", "TAGS", "HELD BACK BY"], rows)
    note(f"{total:,} indicators match")


@app.command("lookup", epilog=EXIT_CODES_HELP)
def lookup_command(
    value: Annotated[str, typer.Argument(help="An IP, domain, URL, hash, e-mail address or file name.",
                                         show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """What Vigil knows about an observable: indicators, sightings, alerts, actors, warninglists."""
    with operation() as op, _intel(op) as intel, op.transaction() as ctx:
        found = lookup.look_up(ctx.session, intel, value, events=None)
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    typer.echo(f"{found.value} ({found.type or 'unknown type'})")
    if found.allowlisted:
        typer.echo("  allow-listed")
    if found.warninglists:
        typer.echo("  on warninglists: " + ", ".join(found.warninglists))
    for indicator in found.indicators:
        typer.echo(f"  indicator {indicator.id} {indicator.type} {indicator.value}: score {indicator.score:.0f}, "
                   f"sources {', '.join(s.source for s in indicator.sources) or '-'}")
    for sighting in found.sightings:
        typer.echo(f"  sighting {sighting.id}: {sighting.field}={sighting.observed} x{sighting.count} "
                   f"{sighting.first_seen:%Y-%m-%d %H:%M} {'retroactive' if sighting.retroactive else 'live'}")
    for entity in found.entities:
        typer.echo(f"  {entity.kind} {entity.name}")
    for incident in found.incidents:
        typer.echo(f"  incident {incident['ref']} [{incident['severity']}, {incident['phase']}] {incident['title']}")
    if not (found.indicators or found.sightings or found.warninglists or found.allowlisted or found.incidents):
        typer.echo("  nothing known")


@app.command("export", epilog=EXIT_CODES_HELP)
def export_command(
    source: Annotated[list[str] | None, typer.Option("--source", help="Sources to export (repeatable); default "
                                                     "manual: what the SOC's analysts entered.",
                                                     show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--output", "-o", help="File to write; default standard output.",
                                             show_default=False)] = None,
) -> None:
    """The organisation's own intelligence as a STIX 2.1 bundle (indicators, related actors, sightings)."""
    with operation() as op, _intel(op) as intel, op.transaction() as ctx:
        data = export.bundle(ctx.session, intel.store, sources=source or ["manual"])
    text = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        note(f"{len(data['objects']):,} STIX objects written to {out}")


@app.command("attack-import", epilog=EXIT_CODES_HELP)
def attack_import_command() -> None:
    """Import ATT&CK Enterprise's groups, campaigns and software (offline data) as actors and the like."""
    with operation() as op, op.transaction() as ctx:
        count = service.import_attack(ctx)
    typer.echo(f"{count:,} ATT&CK groups, campaigns and software recorded")


@app.command("allow", epilog=EXIT_CODES_HELP)
def allow_command(
    kind: Annotated[str, typer.Argument(help="Indicator type.", show_default=False)],
    value: Annotated[str, typer.Argument(show_default=False)],
    reason: Annotated[str, typer.Option("--reason", help="Why it is harmless here.")],
) -> None:
    """Allow-list a value: it raises no alert, whatever feed states it."""
    with operation() as op, _intel(op) as intel, op.transaction() as ctx:
        row = service.allow(ctx, intel.store, kind=kind, value=value, reason=reason)
        typer.echo(f"allow-listed {row.type} {row.value}")


@app.command("allowlist", epilog=EXIT_CODES_HELP)
def allowlist_command(
    remove: Annotated[int | None, typer.Option("--remove", help="Remove this entry (its ID).",
                                               show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """The allow-list, with reasons and authors; --remove takes an entry off."""
    with operation() as op, _intel(op) as intel, op.transaction() as ctx:
        if remove is not None:
            service.disallow(ctx, intel.store, allow_id=remove)
            typer.echo(f"allow-list entry {remove} removed")
            return
        rows = service.allowlist(ctx.session)
        found = [AllowRead.model_validate(r).model_dump(mode="json") for r in rows]
    if as_json:
        print_json(found)
        return
    print_table(["ID", "TYPE", "VALUE", "REASON", "BY", "SINCE"],
                [[str(r["id"]), r["type"], r["value"], r["reason"][:60], r["created_by"], r["created_at"][:16]]
                 for r in found])


@app.command("sightings", epilog=EXIT_CODES_HELP)
def sightings_command(
    retroactive: Annotated[bool | None, typer.Option("--retroactive/--live", help="Only retro-hunt (or live) "
                                                     "sightings.", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Sightings, most recent first: the indicator, where it was seen, how often, and what held it back."""
    with operation() as op, op.transaction() as ctx:
        rows = sightings_service.recent(ctx.session, retroactive=retroactive, limit=limit)
        found = [SightingRead.model_validate(r).model_dump(mode="json") for r in rows]
    if as_json:
        print_json(found)
        return
    print_table(["ID", "INDICATOR", "FIELD", "OBSERVED", "HOST", "COUNT", "LAST SEEN", "HOW", "STATUS", "ALERT"],
                [[str(r["id"]), f"{r['type']} {r['value']}"[:50], r["field"], r["observed"][:40], r["host"] or "-",
                  str(r["count"]), r["last_seen"][:16], "retro" if r["retroactive"] else "live",
                  r["status"] + (f" (held back: {r['suppressed_by']})" if r["suppressed_by"] else ""),
                  str(r["alert_id"] or "-")] for r in found])


@app.command("mark", epilog=EXIT_CODES_HELP)
def mark_command(
    sighting_id: Annotated[int, typer.Argument(show_default=False)],
    status: Annotated[str, typer.Option("--as", help="true-positive, false-positive or new.")],
    allow: Annotated[bool, typer.Option("--allow", help="With --as false-positive: allow-list the value.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the allow-list entry).")] = "",
) -> None:
    """Mark a sighting; a false positive can feed the allow-list."""
    with operation() as op, _intel(op) as intel, op.transaction() as ctx:
        row = sightings_service.mark(ctx, intel.store, sighting_id=sighting_id,
                                     data=SightingUpdate.model_validate({"status": status, "allow": allow,
                                                                         "reason": reason}))
        typer.echo(f"sighting {row.id} ({row.type} {row.value}): {row.status}"
                   + (" and allow-listed" if allow and status == "false-positive" else ""))


@app.command("actors", epilog=EXIT_CODES_HELP)
def actors_command(
    kind: Annotated[str | None, typer.Option("--kind", help="intrusion-set, campaign, malware, tool, report, "
                                             "attack-pattern…", show_default=False)] = None,
    text: Annotated[str, typer.Option("--text", "-q", help="Text in the name.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Actors, campaigns, malware and the rest, with their ATT&CK IDs."""
    with operation() as op, op.transaction() as ctx:
        rows = list(ctx.session.scalars(service.entities_query(kind=kind, text=text).limit(500)))
        found = [EntityRead.model_validate(r).model_dump(mode="json") for r in rows]
    if as_json:
        print_json(found)
        return
    print_table(["ID", "KIND", "NAME", "ALIASES", "ATT&CK"],
                [[str(r["id"]), r["kind"], r["name"][:50], ", ".join(r["aliases"])[:40] or "-",
                  ", ".join(r["attack_ids"][:6]) + (" …" if len(r["attack_ids"]) > 6 else "")] for r in found])


@app.command("retrohunt", epilog=EXIT_CODES_HELP)
def retrohunt_command(
    days: Annotated[int, typer.Option("--days", min=1, max=3650, help="How far back to look.")] = 30,
) -> None:
    """Look back through stored events for every active indicator (needs the event store free)."""
    with operation() as op, _intel(op, with_events=True) as intel:
        events = intel.events()
        if events is None:
            fail("no event store to look through (none yet, or a running `vigil serve` holds it: use "
                 "POST /api/v1/intel/retrohunts)")
        result = sightings_service.retro_all(intel, events, days=days, by=f"cli:{login_name()}",
                                             now=datetime.now(UTC))
    typer.echo(f"retro-hunt: {result.indicators:,} indicators over {days} days: {result.hits:,} events, "
               f"{result.sightings.sightings} new sightings, {result.sightings.alerts} alerts "
               f"({result.seconds:.2f} s)")


# --- feeds ------------------------------------------------------------------------------------------


@feed_app.command("add", epilog=EXIT_CODES_HELP)
def feed_add(
    name: Annotated[str, typer.Argument(show_default=False)],
    preset: Annotated[str | None, typer.Option("--preset", help=f"{PRESET_NAMES}.", show_default=False)] = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="stix, misp, misp-feed, csv, lines, otx, taxii.",
                                            show_default=False)] = None,
    url: Annotated[str | None, typer.Option("--url", show_default=False)] = None,
    options: OptionPairs = None,
    interval: Annotated[int, typer.Option("--interval", help="Minutes between pulls.", min=5)] = 60,
    header: Annotated[str, typer.Option("--header", help="HTTP header carrying a secret (Authorization, "
                                        "X-OTX-API-KEY...).")] = "",
    secret_env: Annotated[str, typer.Option("--secret-env", help="Environment variable holding the header's value "
                                            "(never on the command line).")] = "",
    confidence: Annotated[int | None, typer.Option("--confidence", min=0, max=100, show_default=False)] = None,
    tlp: Annotated[str | None, typer.Option("--tlp", show_default=False)] = None,
) -> None:
    """Add a feed; a running server pulls it within a minute."""
    secret = os.environ.get(secret_env, "") if secret_env else ""
    if secret_env and not secret:
        fail(f"--secret-env {secret_env}: the variable is not set", EXIT_USAGE)
    with operation() as op, op.transaction() as ctx:
        feed = feeds_service.add_feed(ctx, FeedCreate.model_validate({
            "name": name, "preset": preset, "format": fmt, "url": url, "options": _options(options),
            "interval_minutes": interval, "auth_header": header, "auth_value": secret, "confidence": confidence,
            "tlp": tlp}))
        typer.echo(f"feed {feed.id} {feed.name}: {feed.format} from {feed.url}, every {feed.interval_minutes} min")


@feed_app.command("list", epilog=EXIT_CODES_HELP)
def feed_list(as_json: JsonOption = False) -> None:
    """Feeds and their health."""
    with operation() as op, op.transaction() as ctx:
        found = [feeds_service.feed_read(f) for f in feeds_service.feeds(ctx.session)]
    if as_json:
        print_json([f.model_dump(mode="json") for f in found])
        return
    rows = [[str(f.id), f.name, f.format, "on" if f.enabled else "off", f.status + (" (stale)" if f.stale else ""),
             f"{f.last_success_at:%Y-%m-%d %H:%M}" if f.last_success_at else "never", f"{f.indicator_count:,}",
             f.last_error[:60] or "-"] for f in found]
    print_table(["ID", "NAME", "FORMAT", "ENABLED", "STATUS", "LAST SUCCESS", "INDICATORS", "LAST ERROR"], rows)


@feed_app.command("pull", epilog=EXIT_CODES_HELP)
def feed_pull(
    feed_id: Annotated[int | None, typer.Argument(help="The feed; default every feed that is due.",
                                                  show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Take the content even if unchanged.")] = False,
) -> None:
    """Pull a feed (or the due ones) now, then retro-hunt what is new."""
    with operation() as op, _intel(op, with_events=True) as intel, httpx.Client(
            timeout=60.0, follow_redirects=True) as client:
        if feed_id is None:
            outcomes = intel.pull_due(client)
        else:
            with op.transaction() as ctx:
                feeds_service.get_feed(ctx.session, feed_id)
            outcomes = [intel.pull(feed_id, client=client, force=force)]
        with op.transaction() as ctx:
            for outcome in outcomes:
                feed = feeds_service.get_feed(ctx.session, outcome.feed_id)
                typer.echo(f"feed {feed.id} {feed.name}: {outcome.outcome}"
                           + (f" ({outcome.detail})" if outcome.detail else "")
                           + (f", {len(outcome.fresh):,} new indicators" if outcome.fresh else ""))
    if any(o.outcome == "error" for o in outcomes):
        raise typer.Exit(1)


@feed_app.command("remove", epilog=EXIT_CODES_HELP)
def feed_remove(feed_id: Annotated[int, typer.Argument(show_default=False)]) -> None:
    """Remove a feed and what it alone stated."""
    with operation() as op, _intel(op) as intel, op.transaction() as ctx:
        feeds_service.delete_feed(ctx, intel.store, feed_id=feed_id)
        typer.echo(f"feed {feed_id} removed")
