"""Consumer jobs in the parse workers: a new job with a ``prepare`` step is prepared in every worker while
batches keep going out with the job before it; then the new one takes over."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from vigil.siem.parsers.base import Event
from vigil.siem.parsing import SourceConfig
from vigil.siem.pipeline import Pipeline
from vigil.siem.spool import BatchMeta, Spool
from vigil.siem.store.duckdb import DuckDBEventStore


@dataclass(frozen=True)
class TaggingJob:
    """Finds every event, tagged with the job's version; ``prepare`` leaves a mark per worker and takes a while."""

    version: str
    marks: str
    prepare_seconds: float

    def prepare(self) -> int:
        time.sleep(self.prepare_seconds)
        (Path(self.marks) / f"{self.version}-{os.getpid()}").touch()
        return os.getpid()

    def __call__(self, events: Sequence[Event]) -> list[tuple[int, Any]]:
        return [(index, self.version) for index in range(len(events))]


class Tagging:
    name = "tagging"

    def __init__(self, job: TaggingJob) -> None:
        self.job = job
        self.found: list[str] = []

    def wanted(self) -> bool:
        return True

    def worker_job(self) -> TaggingJob:
        return self.job

    def consume(self, events: Sequence[Event], *, source: str, unit_id: int) -> None:
        raise AssertionError("matched in the pipeline's thread, not in the parse workers")

    def consume_found(self, found: Sequence[tuple[int, Any]], documents: Sequence[str | bytes], *, source: str,
                      unit_id: int) -> None:
        self.found += [version for _, version in found]


def test_a_new_job_is_prepared_in_every_worker_before_batches_use_it(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    consumer = Tagging(TaggingJob("v1", str(marks), 0.0))
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    spool = Spool(tmp_path / "spool", quota_bytes=64 * 1024**2)
    pipeline = Pipeline(spool, store, configs=lambda source: SourceConfig(format="json"), consumers=[consumer],
                        parse_workers=2)
    meta = BatchMeta(source="http:edr", unit_id=1, format="json")

    def send(count: int) -> list[str]:
        before = len(consumer.found)
        spool.append([orjson.dumps({"message": f"event {n}"}) for n in range(count)], meta)
        assert pipeline.drain(60)
        return consumer.found[before:]

    try:
        pipeline.start()
        assert pipeline.wait_ready(60)
        assert len({path.name for path in marks.glob("v1-*")}) == 2  # ready means every worker prepared it
        assert {path.name.partition("-")[0] for path in marks.iterdir()} == {"v1"}
        assert send(3) == ["v1"] * 3
        consumer.job = TaggingJob("v2", str(marks), 1.5)
        assert send(2) == ["v1"] * 2  # one worker prepares v2, the other matches this batch with v1 meanwhile
        deadline = time.monotonic() + 30
        while send(1) != ["v2"]:  # taken over once both workers have prepared it
            assert time.monotonic() < deadline, "v2 never taken over"
        assert len({path.name for path in marks.glob("v2-*")}) == 2
        assert send(2) == ["v2"] * 2
        assert store.count() >= 8
    finally:
        pipeline.stop()
        spool.close()
        store.close()
