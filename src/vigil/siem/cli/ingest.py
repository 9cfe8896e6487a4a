"""`vigil ingest PATH...`: log files, folders, compressed files and Windows EVTX into the event store.

Records take the same path as records from the network (spool, parse, normalise, store), in this
process: DuckDB lets one process hold the event store, so the server must be stopped first (the
command says so when it is running).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import typer

from vigil.cli.runtime import EXIT_CODES_HELP, EXIT_FAILED, EXIT_USAGE, JsonOption, fail, note, operation, print_json
from vigil.core.errors import BadInput, VigilError
from vigil.siem.ingest import FileIngester, FileResult, IngestSummary, file_siem, ingest_paths
from vigil.siem.ingest_remote import BATCH_BYTES as REMOTE_BATCH_BYTES
from vigil.siem.ingest_remote import RemoteSink, source_parameter
from vigil.siem.parsers.registry import parser

HELP = (
    "Read log files into the event store: files and folders (recursively; hidden files skipped), gzip, bzip2 "
    "and xz files, and Windows .evtx files. Each file's format is detected from its first records unless "
    "--format is given. Events carry the source name (default file:<file name>, without rotation and "
    "compression suffixes) and log.file.path. Records no parser can read are stored as parse-failure events "
    "(exit 0); a path that cannot be read makes the exit code 1, after the other paths are ingested. "
    "The server must not be running (the event store allows one process), unless --server sends the "
    "records to it."
)


def _describe(result: FileResult, *, remote: bool = False) -> str:
    if remote:  # the server parses later: it knows the failures, this side only what it accepted
        text = (f"{result.path}: {result.records:,} records, {result.stored:,} accepted by the server, "
                f"format {result.format or 'detected per record'}, source http:{source_parameter(result.source)}")
        if result.failures:
            text += f", {result.failures:,} unreadable parts of the file"
    else:
        text = (f"{result.path}: {result.records:,} records, {result.stored:,} events stored, "
                f"{result.failures:,} parse failures, format {result.format or 'detected per record'}, "
                f"source {result.source}")
    if result.cut_lines:
        text += f", {result.cut_lines:,} over-long lines cut"
    return text


def _as_json(result: FileResult) -> dict[str, object]:
    return {"path": result.path, "format": result.format or None, "source": result.source or None,
            "records": result.records, "stored": result.stored, "failures": result.failures,
            "cut_lines": result.cut_lines, "error": result.error or None, "skipped": result.skipped}


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to read.", show_default=False)],
    format: Annotated[str | None, typer.Option(
        "--format", "-f", help="Parser for every text file (e.g. syslog, web_access, json); default: detected per "
        "file.", show_default=False)] = None,
    source: Annotated[str | None, typer.Option(
        "--source", "-s", help="Source name for every event; default file:<file name>.", show_default=False)] = None,
    server: Annotated[str | None, typer.Option(
        "--server", help="Send the records to a running Vigil at this URL (POST /api/v1/ingest) instead of "
        "writing the event store; needs a shipper's API token in VIGIL_TOKEN.", show_default=False)] = None,
    token: Annotated[str | None, typer.Option("--token", envvar="VIGIL_TOKEN", hidden=True,
                                              help="Taken from VIGIL_TOKEN (never type a token on the command "
                                                   "line: other users can see it).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Read log files, folders, .gz and .evtx files into the event store."""
    if format is not None:
        try:
            parser(format)
        except BadInput as exc:
            fail(exc.detail, EXIT_USAGE)
    if source is not None and not source.strip():
        fail("--source must not be empty", EXIT_USAGE)
    summary = IngestSummary()

    def report(results: Iterator[FileResult]) -> None:
        for result in results:
            summary.files.append(result)
            if result.error:
                note(f"error: {result.path}: {result.error}")
            if not as_json and not result.skipped:
                typer.echo(_describe(result, remote=server is not None))

    if server is not None:
        if not token:
            fail("--server needs a shipper's API token in the environment variable VIGIL_TOKEN", EXIT_USAGE)
        if not server.startswith(("http://", "https://")):
            fail(f"--server {server!r}: give the server's URL, e.g. https://vigil.example.com", EXIT_USAGE)
        with httpx.Client(base_url=server.rstrip("/"), timeout=120.0) as client:
            ingester = FileIngester(RemoteSink(client, token), format=format, source=source,
                                    batch_bytes=REMOTE_BATCH_BYTES)
            try:
                report(ingester.ingest(paths))
            except VigilError as exc:
                fail(exc.detail)
    else:
        with operation() as op:
            siem = file_siem(op.settings, op.database)
            try:
                report(ingest_paths(siem, paths, format=format, source=source))
            except VigilError as exc:
                fail(exc.detail)
            finally:
                siem.stop()
    if as_json:
        print_json({"files": [_as_json(result) for result in summary.files],
                    "total": {"files": len(summary.files), "records": summary.total("records"),
                              "stored": summary.total("stored"), "failures": summary.total("failures"),
                              "errors": summary.errors}})
    else:
        typer.echo(f"total: {len(summary.files):,} files, {summary.total('records'):,} records, "
                   f"{summary.total('stored'):,} events stored, {summary.total('failures'):,} parse failures, "
                   f"{summary.errors:,} errors")
    if summary.errors:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add `vigil ingest` to the `vigil` app."""
    app.command("ingest", help=HELP, epilog=EXIT_CODES_HELP)(ingest)
