"""SIEM ingest throughput: NDJSON events/s through spool → pipeline → DuckDB, next to plain ``orjson.loads``.

1,000,000 generated ECS-shaped events (nested, about 450 bytes each; written once to the benchmark
cache folder) are:

- parsed with ``orjson.loads``, one line at a time: the baseline, what building Python objects costs;
- submitted to ``Siem`` in batches of 10,000 lines as the HTTP receiver does (each batch written and
  fsync'd to the spool), the pipeline storing what one spool read holds whenever that much is waiting
  (format ``json``, a fresh DuckDB store, closed at the end): the whole path, and the store part alone
  (time spent inside ``append_json``);
- the same for 300,000 of them with Vigil's starter rules enabled, as deployed: every event matched.

Events/s are given by wall-clock time and by the process's CPU time (this machine is shared, so the
CPU figure is the steadier one). Usage: ``bench_siem_ingest.py [--events N] [--batch N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from _common import machine, report, sqlite_database
from _siem_data import ndjson_file

from vigil.core.config import Settings
from vigil.core.db import Database
from vigil.detection.rules_import import install_starter_pack
from vigil.siem.parsing import SourceConfig
from vigil.siem.pipeline import MAX_RECORDS
from vigil.siem.runtime import Siem
from vigil.siem.spool import BatchMeta

DETECTED_EVENTS = 300_000


class Clock:
    """Wall-clock and CPU seconds of a stretch of work."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def baseline(lines: list[bytes]) -> Clock:
    with Clock() as clock:
        for line in lines:
            orjson.loads(line)
    return clock


class TimedStore:
    """Wraps the store's ``append_json`` to add up the time spent in it."""

    def __init__(self, append: Callable[..., Any]) -> None:
        self.append, self.wall, self.cpu = append, 0.0, 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return self.append(*args, **kwargs)
        finally:
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu


def vigil_path(lines: list[bytes], batch: int, database: Database | None = None) -> tuple[Clock, TimedStore, int]:
    """The whole path; with ``database``, its enabled rules detect on every event (in the parse workers)."""
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as folder:
        settings = Settings(data_dir=Path(folder), spool_quota_bytes=8 * 1024**3,
                            database_url=database.url if database is not None else None)
        siem = Siem(settings, database)
        siem.source_configs = lambda name: SourceConfig(format="json")
        store = siem.store
        timed = TimedStore(store.append_json)
        store.append_json = timed  # type: ignore[method-assign]
        meta = BatchMeta(source="http:bench", unit_id=1, format="json", transport="http")
        every = max(MAX_RECORDS // batch, 1)  # the pipeline reads what a spool read holds, as it would behind
        with Clock() as clock:
            try:
                for number, first in enumerate(range(0, len(lines), batch)):
                    siem.submit(lines[first:first + batch], meta)
                    if number % every == every - 1:
                        siem.pipeline.run_once()
                siem.drain(timeout=3600)
                stored = store.count()
            finally:
                siem.stop()  # closing the store checkpoints it: part of the cost
    return clock, timed, stored


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--events", type=int, default=1_000_000)
    options.add_argument("--batch", type=int, default=10_000)
    args = options.parse_args()
    lines = ndjson_file(args.events).read_bytes().splitlines()
    size = sum(len(line) for line in lines) / len(lines)
    conditions = f"{len(lines):,} NDJSON events of {size:.0f} B, {machine()}"

    parse = baseline(lines)
    report("siem ingest, orjson.loads per line (baseline)", len(lines) / parse.wall, "events/s", conditions)
    whole, store, stored = vigil_path(lines, args.batch)
    if stored != len(lines):
        raise SystemExit(f"stored {stored:,} events of {len(lines):,}")
    path = f"{conditions}, batches of {args.batch:,}, spool fsync per batch"
    report("siem ingest, spool + pipeline + DuckDB", len(lines) / whole.wall, "events/s", path)
    report("siem ingest, spool + pipeline + DuckDB, by CPU time", len(lines) / whole.cpu, "events/s", path)
    report("siem ingest, DuckDB append_json alone", len(lines) / store.wall, "events/s", path)
    report("siem ingest, whole path vs orjson.loads", parse.wall / whole.wall, "x (higher is faster)", path)
    # As deployed: the starter rules enabled, every event matched (in the parse workers, beside the store).
    some = lines[:DETECTED_EVENTS]
    with sqlite_database() as database:
        install_starter_pack(database)
        whole, _, stored = vigil_path(some, args.batch, database)
    if stored != len(some):
        raise SystemExit(f"stored {stored:,} events of {len(some):,} with detection")
    report("siem ingest with the starter rules detecting, whole path", len(some) / whole.wall, "events/s",
           f"{len(some):,} of the events, {machine()}, batches of {args.batch:,}, "
           f"{Settings().pipeline_workers} parse workers")


if __name__ == "__main__":
    main()
