"""`vigil search QUERY`: search stored events from the terminal, as a table, JSON, NDJSON or CSV.

The command acts as the local operator (every unit) and reads the event store file directly. DuckDB lets
one process hold that file, so while `vigil serve` runs the command cannot open it: then it searches
through the server's API instead when given ``--server URL`` and an API token of an analyst in the
environment variable ``VIGIL_TOKEN`` (the server applies that user's units), and otherwise stops with
exit code 1 saying so.

Exit codes: 0 with results or with "no events"; 1 for a query that does not parse (the query is printed
with a caret under the place), an event store held by another process, or a server that refuses; 2 for
wrong options (a bad time range, --since with --from).
"""

from __future__ import annotations

import shutil
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, NoReturn
from zoneinfo import ZoneInfo

import httpx
import typer

from vigil.cli.runtime import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_USAGE,
    fail,
    note,
    operation,
    print_json,
    print_table,
)
from vigil.cli.runtime import settings as load_settings
from vigil.core.config import Settings
from vigil.core.errors import BadInput
from vigil.siem import search as service
from vigil.siem.query import QuerySyntaxError
from vigil.siem.store.base import StoredEvent
from vigil.siem.store.duckdb import DuckDBEventStore

Output = Literal["table", "json", "ndjson", "csv"]
LOCAL_MAX = 1_000_000  # events one command prints at most
SERVER_PAGE = 1_000  # the API's page limit
HOST_FIELDS = ("host.name", "host.hostname", "Computer", "observer.hostname")

HELP = (
    "Search stored events with the search language (field:value, wildcards, \"phrases\", ranges "
    "\\[a TO b], >, <, AND/OR/NOT, parentheses; bare words search the message; docs/search.md). "
    "Prints a table (time in the display time zone, source, host, message), or --json, --ndjson, --csv; "
    "--count prints only how many match. While `vigil serve` holds the event store, add --server URL "
    "with an API token in VIGIL_TOKEN."
)

SEARCH_EXITS = (" Here: 0 also when no event matches; 1 for a query that does not parse (shown with a caret "
                "under the place) or an event store held by `vigil serve` without --server.")


class StoreBusy(Exception):
    """Another process (normally `vigil serve`) holds the event store file."""


@dataclass(frozen=True)
class Request:
    query: str
    range: str
    limit: int
    offset: int
    sort: Literal["asc", "desc"]
    output: Output
    fields: list[str]
    count_only: bool


# --- errors ------------------------------------------------------------------------------------------


def syntax_failure(query: str, line: int, column: int, detail: str) -> NoReturn:
    """The parser's complaint, with the query's line and a caret under the column."""
    text = query.splitlines()[line - 1] if query.splitlines() else query
    note(f"error: {detail}")
    note(f"  {text}")
    note("  " + " " * (column - 1) + "^")
    raise typer.Exit(EXIT_FAILED)


# --- output -------------------------------------------------------------------------------------------


def first_text(event: StoredEvent, fields: tuple[str, ...]) -> str:
    """The first of ``fields`` the event has, as text ("-" when it has none)."""
    for field in fields:
        text = service.value_text(service.field_value(event, field))
        if text:
            return text
    return "-"


def columns(char: str) -> int:
    """Terminal columns of a character: CJK and other wide characters take two."""
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


def visible(char: str) -> str:
    """A control character as ``\\xNN``: log text is written by whoever sent it, and escape sequences
    printed raw would drive the operator's terminal (clear it, retitle it, fake output)."""
    return f"\\x{ord(char):02x}" if unicodedata.category(char) == "Cc" else char


def one_line(text: str, width: int) -> str:
    """``text`` on one line with control characters shown, cut with '…' to at most ``width`` terminal columns."""
    flat = "".join(visible(c) for c in " ".join(text.split()))
    if sum(columns(c) for c in flat) <= width:
        return flat
    kept: list[str] = []
    used = 1  # the ellipsis
    for char in flat:
        used += columns(char)
        if used > width:
            break
        kept.append(char)
    return "".join(kept) + "…"


def table(settings: Settings, events: list[StoredEvent], fields: list[str]) -> None:
    zone = ZoneInfo(settings.timezone)

    def when(event: StoredEvent) -> str:
        return event.ts.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    width = max(shutil.get_terminal_size((160, 24)).columns, 80)
    if fields:
        print_table(["TIME", *(f.upper() for f in fields)],
                    [[when(e), *(one_line(service.value_text(service.field_value(e, f)) or "-", 60) for f in fields)]
                     for e in events])
        return
    rows = [[when(e), one_line(e.source, 24), one_line(first_text(e, HOST_FIELDS), 24),
             service.summary(e) or "-"] for e in events]
    # Time (19 columns), source and host as wide as their widest cell or heading, two spaces between columns.
    used = 19 + 3 * 2 + sum(max([len(heading), *(sum(columns(c) for c in r[i]) for r in rows)])
                            for i, heading in ((1, "SOURCE"), (2, "HOST")))
    for row in rows:
        row[3] = one_line(row[3], max(width - used, 40))
    print_table(["TIME", "SOURCE", "HOST", "MESSAGE"], rows)


def event_json(event: StoredEvent) -> dict[str, Any]:
    return {"id": event.id, "@timestamp": event.ts.isoformat(), "source": event.source, "unit_id": event.unit_id,
            "document": event.doc}


# --- local: the event store file ----------------------------------------------------------------------


def open_local(settings: Settings) -> DuckDBEventStore | None:
    """The event store, None when nothing was ever stored; ``StoreBusy`` when another process holds it."""
    if not settings.events_path.exists():
        return None
    try:
        return DuckDBEventStore(settings.events_path, memory_limit=settings.events_memory_limit)
    except Exception as exc:  # duckdb.IOException; the class lives in the native module
        if "lock" in str(exc).lower():
            raise StoreBusy(str(exc)) from exc
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fail(f"cannot open the event store {settings.events_path}: {first_line}")


def run_local(settings: Settings, store: DuckDBEventStore | None, request: Request) -> None:
    window = service.time_range(request.range)
    service.canonical(request.query)  # a syntax error before anything is printed
    if store is None:
        report_empty(request, total=0)
        return
    total = service.count(store, units=None, query=request.query, window=window)
    if request.count_only or total == 0:
        report_empty(request, total=total)
        return
    events = service.iter_events(store, units=None, query=request.query, window=window, max_events=request.limit,
                                 order=request.sort, offset=request.offset)
    if request.output in ("csv", "ndjson"):
        audit_export(request, window, min(max(total - request.offset, 0), request.limit))
        chunks: Iterator[str] | Iterator[bytes] = (
            service.csv_chunks(events, service.export_fields(request.fields)) if request.output == "csv"
            else service.ndjson_chunks(events))
        for chunk in chunks:
            typer.echo(chunk, nl=False)
        return
    shown = list(events)
    if request.output == "json":
        print_json({"total": total, "events": [event_json(e) for e in shown],
                    "range": {"start": window.start.isoformat(), "end": window.end.isoformat()},
                    "query": service.canonical(request.query)})
        return
    table(settings, shown, request.fields)
    note(f"{len(shown):,} of {total:,} events" + (f" from {request.offset:,}" if request.offset else ""))


def report_empty(request: Request, *, total: int) -> None:
    """--count output, or "no events" (exit 0) for a search that matched nothing."""
    if request.count_only:
        if request.output == "json":
            print_json({"total": total})
        else:
            typer.echo(str(total))
        return
    if request.output == "json":
        print_json({"total": 0, "events": []})
    elif request.output == "csv":
        typer.echo(",".join(service.export_fields(request.fields)))
    elif request.output == "table":
        note("no events")


def audit_export(request: Request, window: service.TimeRange, exported: int) -> None:
    """Exports from the terminal are on the audit trail too (as ``cli:<login>``)."""
    with operation() as op, op.transaction() as ctx:
        ctx.audit("events.exported", target_type="events", details={
            "query": service.canonical(request.query), "start": window.start.isoformat(),
            "end": window.end.isoformat(), "format": request.output, "count": exported, "via": "cli"})


# --- remote: the server's API -----------------------------------------------------------------------------


def server_failure(response: httpx.Response, query: str) -> NoReturn:
    try:
        problem = response.json()
    except ValueError:
        fail(f"the server answered {response.status_code}: {response.text[:200]}")
    detail = str(problem.get("detail") or problem.get("title") or response.status_code)
    if problem.get("code") == "query-syntax" and problem.get("errors"):
        error = problem["errors"][0]
        syntax_failure(query, int(error.get("line", 1)), int(error.get("column", 1)), detail)
    if response.status_code == 422 and "range" in detail:
        fail(detail, EXIT_USAGE)
    if response.status_code == 401:
        fail(f"the server refused the token in VIGIL_TOKEN: {detail}")
    fail(f"the server refused the search ({response.status_code}): {detail}")


def run_remote(settings: Settings, server: str, token: str | None, request: Request) -> None:
    if not token:
        fail("--server needs an API token in the environment variable VIGIL_TOKEN "
             "(`vigil token create USER --name cli` prints one)", EXIT_USAGE)
    params = {"q": request.query, "range": request.range}
    try:
        with httpx.Client(base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {token}"},
                          timeout=httpx.Timeout(60.0, read=300.0)) as client:
            if request.count_only:
                page = search_page(client, request, params, limit=0, offset=0)
                report_empty(request, total=int(page["total"]))
            elif request.output in ("csv", "ndjson"):
                stream_export(client, request, params)
            else:
                show_remote(settings, client, request, params)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the server at {server}: {exc}")


def search_page(client: httpx.Client, request: Request, params: dict[str, Any], *, limit: int,
                offset: int) -> dict[str, Any]:
    response = client.post("/api/v1/events/search",
                           json={**params, "limit": limit, "offset": offset, "sort": request.sort})
    if response.status_code != 200:
        server_failure(response, request.query)
    body: dict[str, Any] = response.json()
    return body


def show_remote(settings: Settings, client: httpx.Client, request: Request, params: dict[str, Any]) -> None:
    documents: list[dict[str, Any]] = []
    first: dict[str, Any] = {}
    while len(documents) < request.limit:
        page = search_page(client, request, params, limit=min(SERVER_PAGE, request.limit - len(documents)),
                           offset=request.offset + len(documents))
        first = first or page
        documents += page["events"]
        if len(page["events"]) < SERVER_PAGE:
            break
    total = int(first.get("total", 0))
    if total == 0:
        report_empty(request, total=0)
        return
    if request.output == "json":
        print_json({"total": total, "events": documents, "range": first["range"], "query": first["query"]})
        return
    events = [StoredEvent(id=int(d["id"]), ts=datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00")),
                          source=str(d["source"]), unit_id=int(d["unit_id"]), doc=d["document"]) for d in documents]
    table(settings, events, request.fields)
    note(f"{len(events):,} of {total:,} events" + (f" from {request.offset:,}" if request.offset else ""))


def stream_export(client: httpx.Client, request: Request, params: dict[str, Any]) -> None:
    if request.offset:
        fail("--offset cannot be used with --csv or --ndjson through --server", EXIT_USAGE)
    export = {**params, "format": request.output, "max": request.limit, "sort": request.sort,
              "fields": ",".join(request.fields)}
    with client.stream("GET", "/api/v1/events/export", params=export) as response:
        if response.status_code != 200:
            response.read()
            server_failure(response, request.query)
        first = True
        for chunk in response.iter_bytes():
            if first and chunk.startswith(b"\xef\xbb\xbf"):  # the BOM is for spreadsheets, not for pipes
                chunk = chunk[3:]
            first = False
            typer.echo(chunk, nl=False)


# --- the command ----------------------------------------------------------------------------------------


def local_server(settings: Settings) -> str:
    """The URL `vigil serve` listens on with these settings (a wildcard address reached via loopback)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104 - compared only
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"


def time_window_text(since: str | None, start: str | None, end: str | None) -> str:
    if since is not None and (start is not None or end is not None):
        fail("give either --since or --from/--to, not both", EXIT_USAGE)
    if start is not None:
        return f"{start}/{end or 'now'}"
    if end is not None:
        fail("--to needs --from", EXIT_USAGE)
    return since or "24h"


def output_of(as_json: bool, as_ndjson: bool, as_csv: bool) -> Output:
    chosen = [name for name, on in (("json", as_json), ("ndjson", as_ndjson), ("csv", as_csv)) if on]
    if len(chosen) > 1:
        fail("choose one of --json, --ndjson and --csv", EXIT_USAGE)
    return chosen[0] if chosen else "table"  # type: ignore[return-value]


def search_command(
    query: Annotated[str, typer.Argument(help="The search query; empty or '*' matches every event.",
                                         show_default=False)] = "",
    since: Annotated[str | None, typer.Option(
        "--since", "-s", help="How far back: 15m, 24h, 7d, 2w (default 24h).", show_default=False)] = None,
    start: Annotated[str | None, typer.Option(
        "--from", help="Start time: ISO 8601 (2026-11-28T08:00:00+08:00) or now-2h.", show_default=False)] = None,
    end: Annotated[str | None, typer.Option(
        "--to", help="End time (with --from; default now).", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Events to print at most.", min=1,
                                       max=LOCAL_MAX)] = 100,
    offset: Annotated[int, typer.Option("--offset", help="Matching events to skip first.", min=0)] = 0,
    sort: Annotated[str, typer.Option("--sort", help="desc (newest first) or asc.")] = "desc",
    as_json: Annotated[bool, typer.Option("--json", help="Print the total and the events as JSON.")] = False,
    as_ndjson: Annotated[bool, typer.Option("--ndjson", help="Print one event document per line.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (columns from --fields).")] = False,
    fields: Annotated[str, typer.Option(
        "--fields", "-f", help="Comma-separated fields: the table's or the CSV's columns.")] = "",
    count_only: Annotated[bool, typer.Option("--count", help="Print only how many events match.")] = False,
    server: Annotated[str | None, typer.Option(
        "--server", help="Search through a running server (http://127.0.0.1:8000); the API token comes from "
        "the environment variable VIGIL_TOKEN.", show_default=False)] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="VIGIL_TOKEN", hidden=True, help="The API token for --server (use VIGIL_TOKEN).",
        show_default=False)] = None,
) -> None:
    """Search stored events (the local operator sees every unit)."""
    if sort not in ("asc", "desc"):
        fail("--sort takes asc or desc", EXIT_USAGE)
    request = Request(query=query, range=time_window_text(since, start, end), limit=limit, offset=offset,
                      sort="asc" if sort == "asc" else "desc", output=output_of(as_json, as_ndjson, as_csv),
                      fields=[f.strip() for f in fields.split(",") if f.strip()], count_only=count_only)
    settings = load_settings()
    try:
        service.time_range(request.range)
        service.export_fields(request.fields)
    except BadInput as exc:
        fail(exc.detail, EXIT_USAGE)
    try:
        if server:
            run_remote(settings, server, token, request)
            return
        try:
            store = open_local(settings)
        except StoreBusy:
            fail(f"the event store {settings.events_path} is held by another process (normally `vigil serve`): "
                 f"search through the server with --server {local_server(settings)} and an analyst's API token "
                 "in VIGIL_TOKEN, or stop the server first")
        try:
            run_local(settings, store, request)
        finally:
            if store is not None:
                store.close()
    except QuerySyntaxError as exc:
        syntax_failure(query, exc.line, exc.column, exc.detail)
    except BadInput as exc:
        fail(exc.detail)


def register(app: typer.Typer) -> None:
    """Add `vigil search` to the `vigil` app."""
    app.command("search", help=HELP, epilog=EXIT_CODES_HELP + SEARCH_EXITS)(search_command)
