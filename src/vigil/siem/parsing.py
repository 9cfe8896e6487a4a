"""Parsing one spool batch, in the pipeline's thread or in a worker process (``parse_to_json``).

Text formats (syslog above all) cost most of the pipeline's time in the parsers, and the receivers and
the store need the same interpreter lock: worker processes (setting ``pipeline_workers``) parse beside
the pipeline and hand back JSON text, which the store takes without building Python objects again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from vigil.core.memory import collector_paused
from vigil.siem.normalize import WorkerJob, normalise
from vigil.siem.parsers.base import Event, ParseContext, ParseFailure, Parser, run_batch
from vigil.siem.parsers.registry import detect_format, parser
from vigil.siem.spool import BatchMeta
from vigil.siem.store.duckdb import dumps_event


@dataclass(frozen=True)
class SourceConfig:
    """How one source's records are read (from the log-sources settings; defaults from Settings)."""

    format: str | None = None
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    keep_original: bool = True


def parse_records(records: list[bytes], meta: BatchMeta, config: SourceConfig) -> list[Event | ParseFailure]:
    """Every record parsed in order: an event, or a failure holding the raw bytes."""
    ctx = ParseContext(source=meta.source, timezone=config.timezone, received_at=meta.received_at,
                       keep_original=config.keep_original)
    name = meta.format or config.format
    if name:
        return run_batch(parser(name), records, ctx)
    # Unknown format: each record is detected on its own (mixed inputs stay readable), then each
    # parser parses its records in one run; results go back in the records' order.
    results: dict[int, Event | ParseFailure] = {}
    groups: dict[str, tuple[Parser, list[int]]] = {}
    for index, record in enumerate(records):
        found = detect_format(record)
        if found is None:
            results[index] = ParseFailure(record, "detect", "no parser recognises this record's format", meta.source)
        else:
            groups.setdefault(found.name, (found, []))[1].append(index)
    for found, indexes in groups.values():
        results.update(zip(indexes, run_batch(found, [records[i] for i in indexes], ctx), strict=True))
    return [results[index] for index in range(len(records))]


def parse_to_json(records: list[bytes], meta: BatchMeta, config: SourceConfig,
                  jobs: Sequence[WorkerJob] = ()) -> tuple[list[str], int, list[list[tuple[int, Any]]]]:
    """In a worker process: the batch parsed and normalised (no enrichers), as the store's JSON documents;
    the number of parse failures among them; and what each consumer's job found in its events."""
    with collector_paused():
        events, failures = normalise(parse_records(records, meta, config), meta)
        found = [job(events) for job in jobs]
        return [dumps_event(event) for event in events], failures, found


def json_events(records: Sequence[str | bytes]) -> tuple[list[Event], list[int]]:
    """The records that are JSON objects, decoded, and their positions (anything else is no event: the
    store refuses the batch holding it, which then comes back parsed, each bad line a failure)."""
    events: list[Event] = []
    positions: list[int] = []
    for position, record in enumerate(records):
        try:
            event = orjson.loads(record)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
            positions.append(position)
    return events, positions


def match_json(records: list[bytes], jobs: Sequence[WorkerJob]) -> list[list[tuple[int, Any]]]:
    """In a worker process, for a JSON batch the store takes as it is: what each consumer's job found in
    its documents, by record index."""
    with collector_paused():
        events, positions = json_events(records)
        return [[(positions[index], finding) for index, finding in job(events)] for job in jobs]


def watch_parent(parent: int) -> None:
    """Worker initializer: end this process when the server that started it is gone (even by SIGKILL,
    which leaves no chance to stop the pool), instead of lingering as an orphan."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="vigil-parent-watch", daemon=True).start()
