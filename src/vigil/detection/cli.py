"""Detection commands: `vigil hunt` runs Sigma rules over log files, with no server running.

This module imports only what a hunt needs (not the web stack, not the records store), so that
``python -m vigil.detection.cli hunt ...`` starts fast; it keeps the exit codes of ``vigil.cli.main``.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import suppress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, BinaryIO, NoReturn

import typer

from vigil.core.errors import VigilError
from vigil.detection.hunt import CSV_COLUMNS, TABLE_COLUMNS, Hit, HuntStats, RuleSource, default_cache_dir, hunt
from vigil.detection.hunt_files import Problem, find_files
from vigil.detection.sigma import LEVELS
from vigil.detection.sigma.placeholders import PlaceholderError, frozen, parse_assignment, read_file

RULE_COLUMNS = ("RULE", "ID", "AUTHOR")
EXIT_FAILED = 1  # as vigil.cli.runtime, which is not imported here: it loads the records store
EXIT_CODES_HELP = "Exit codes: 0 the hunt ran (with or without matches); 1 it could not run (the reason on stderr)."
SHORT_HELP = "Sigma rules over .evtx, JSON and NDJSON files and folders, with no server running."
HELP = (
    "Look for Sigma rule matches in .evtx, JSON and NDJSON files (also .gz) and folders of them, with no server "
    "running. Matches go to stdout (or --out) as a table, JSON lines or CSV; rules that do not load and input "
    "that cannot be read are reported on stderr while the hunt goes on, then a summary. Rules are compiled "
    "once into a cache ($XDG_CACHE_HOME/vigil/rules, by default ~/.cache/vigil/rules)."
)

app = typer.Typer(help="Threat detection: hunts with Sigma rules.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False)


class OutputFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"
    csv = "csv"


class Level(StrEnum):  # the Sigma levels (sigma.LEVELS), lowest first
    informational = "informational"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_FAILED)


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def hunt_command(
    paths: Annotated[list[Path], typer.Argument(
        help=".evtx, JSON and NDJSON files (.json, .jsonl, .ndjson, .log; also .gz), or folders of them.",
        show_default=False)],
    rules: Annotated[list[Path], typer.Option(
        "--rules", "-r", help="Sigma rules: a YAML file, a folder or a zip; repeat for more.", show_default=False)],
    output: Annotated[OutputFormat, typer.Option(help="table for people, jsonl or csv for tools.")]
        = OutputFormat.table,
    min_level: Annotated[Level, typer.Option(help="Use only the rules of this level or above.")]
        = Level.informational,
    out: Annotated[Path | None, typer.Option(help="Write the matches to this file instead of stdout.",
                                             show_default=False)] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes; default: one per CPU.", min=1,
                                                show_default=False)] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Compile the rules from their YAML, "
                                           "ignoring the compiled cache.")] = False,
    placeholder: Annotated[list[str] | None, typer.Option(
        "--placeholder", help="Values of a Sigma placeholder (%NAME% with the expand modifier): NAME=V1,V2; "
        "repeat for more.", show_default=False)] = None,
    placeholders_file: Annotated[Path | None, typer.Option(
        "--placeholders", help="A YAML or JSON file mapping placeholder names to lists of values "
        "(--placeholder wins for a name in both).", show_default=False)] = None,
) -> None:
    """Look for Sigma rule matches in log files: no server needed."""
    started = time.perf_counter()
    try:
        files = find_files(paths)
    except VigilError as exc:
        _fail(exc.detail)
    try:
        values = read_file(placeholders_file) if placeholders_file is not None else {}
        values.update(parse_assignment(text) for text in placeholder or ())
    except PlaceholderError as exc:
        _fail(str(exc))
    source = RuleSource(tuple(str(path) for path in rules), None if no_cache else default_cache_dir(),
                        min_level.value, frozen(values))
    loaded = source.load()
    for error in loaded.errors:
        typer.echo(str(error), err=True)
    if not loaded.loaded:
        _fail("no rule loaded from " + ", ".join(source.paths))
    if not loaded.rules:
        typer.echo(f"no rule at level {source.min_level} or above: nothing can match", err=True)
    try:
        stream: BinaryIO = out.open("wb") if out is not None else typer.get_binary_stream("stdout")
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or exc}")
    stats = HuntStats(rule_errors=len(loaded.errors))
    try:
        results = hunt(files, loaded, source, output=output.value, workers=workers or _cpus(), stats=stats)
        _write(results, output, stream)
        stream.flush()
    except VigilError as exc:
        _fail(exc.detail)
    except BrokenPipeError:
        if out is not None:
            raise
        # The reader of stdout stopped (`vigil hunt ... | head`): not a failure; nothing more to say.
        with suppress(OSError, ValueError):  # no flush error at exit either (stdout may have no descriptor)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    except OSError as exc:
        _fail(f"cannot write {out or 'the output'}: {exc.strerror or exc}")
    finally:
        if out is not None:
            stream.close()
    typer.echo(_summary(stats, time.perf_counter() - started), err=True)


def _write(results: Iterator[Hit | Problem], output: OutputFormat, stream: BinaryIO) -> None:
    """Matches to ``stream`` as they come (a table once all are in, sorted by time); problems to stderr."""
    if output is OutputFormat.jsonl:
        for item in results:
            if isinstance(item, Problem):
                typer.echo(str(item), err=True)
            else:
                stream.write(item.line)
        return
    if output is OutputFormat.csv:
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
        try:
            writer = csv.writer(text)
            writer.writerow(CSV_COLUMNS)
            for item in results:
                if isinstance(item, Problem):
                    typer.echo(str(item), err=True)
                else:
                    writer.writerow(item.cells)
        finally:
            text.detach()  # leave the stream open: stdout stays usable, --out is closed by the caller
        return
    rows: list[tuple[str, ...]] = []
    rules: dict[tuple[str, str, str], None] = {}
    for item in results:
        if isinstance(item, Problem):
            typer.echo(str(item), err=True)
        else:
            rows.append(item.cells)
            rules[item.attribution] = None
    if rows:
        rows.sort(key=lambda row: row[0])
        # Each rule that matched, with its id and author: the attribution the Detection Rule License asks for.
        credits = [(title, rule_id, author or "-") for title, rule_id, author in sorted(rules)]
        stream.write((_table(TABLE_COLUMNS, rows) + "\n" + _table(RULE_COLUMNS, credits)).encode())


def _table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [headers, *rows]]
    return "\n".join(lines) + "\n"


def _summary(stats: HuntStats, elapsed: float) -> str:
    levels = ", ".join(f"{stats.by_level[level]:,} {level}" for level in reversed(LEVELS) if level in stats.by_level)
    parts = [f"{stats.files:,} files", f"{stats.events:,} events", f"{stats.rules:,} rules",
             f"{stats.matches:,} matches" + (f" ({levels})" if levels else "")]
    if stats.rule_errors:
        parts.append(f"{stats.rule_errors:,} rules not loaded")
    if stats.problems:
        parts.append(f"{stats.problems:,} unreadable parts")
    return f"hunt: {', '.join(parts)} in {elapsed:.2f} s"


def register(main: typer.Typer) -> None:
    """Add `vigil hunt` to the `vigil` app."""
    main.command("hunt", help=HELP, short_help=SHORT_HELP, epilog=EXIT_CODES_HELP)(hunt_command)


app.command("hunt", help=HELP, short_help=SHORT_HELP, epilog=EXIT_CODES_HELP)(hunt_command)


@app.callback()
def _detection() -> None:
    """Threat detection: hunts with Sigma rules."""


def run_and_exit() -> NoReturn:
    """Run the hunt command as a program and end the process at once when it is done: tearing down the
    interpreter (freeing the engine and every event object one by one) took a quarter of a second of a
    two-second hunt, for nothing; what was written is flushed first."""
    try:
        app()
        code: int = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed or broken stream: nothing more can be said on it
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run_and_exit()
