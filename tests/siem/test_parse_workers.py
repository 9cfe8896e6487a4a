"""Parse worker processes: the same events as parsing in the pipeline's thread, stored exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.siem.parsing import SourceConfig
from vigil.siem.pipeline import Pipeline
from vigil.siem.spool import BatchMeta, Spool
from vigil.siem.store.duckdb import DuckDBEventStore

RECEIVED_LINES = [
    b"<38>1 2026-11-28T10:00:00.250Z jump01 sshd 812 - - Failed password for root from 203.0.113.66 port 5022 ssh2",
    b'<165>1 2026-11-28T10:00:01Z fw01 pf 77 DROP [meta ip="10.9.8.7"] dropped packet',
    b"<13>Nov 28 18:00:02 web01 nginx: GET / 200",
    b"\xff\xfe this is not syslog",
    b"CEF:0|Fortinet|FortiGate|7.2|13|traffic:forward deny|5|src=198.51.100.23 dst=10.0.0.5 act=deny",
]


RECEIVED = datetime(2026, 11, 28, 10, 0, 10, tzinfo=UTC)


def configs(source: str) -> SourceConfig:
    return SourceConfig()


def stored_documents(root: Path, workers: int) -> tuple[list[dict[str, Any]], int]:
    store = DuckDBEventStore(root / "events.duckdb")
    spool = Spool(root / "spool", quota_bytes=64 * 1024**2)
    pipeline = Pipeline(spool, store, configs=configs, parse_workers=workers)
    try:
        meta = BatchMeta(source="syslog", unit_id=1, format="syslog", transport="syslog-tcp", peer="10.0.0.9",
                         received_at=RECEIVED)
        positions = [spool.append(RECEIVED_LINES, meta) for _ in range(3)]
        spool.append([b"<13>1 2026-11-28T10:00:05Z h app - - - no format given"],
                     BatchMeta(source="mixed", unit_id=1, received_at=RECEIVED))  # detected per record in the worker
        assert pipeline.drain(60)
        assert store.last_position() > positions[-1]
        # A restarted pipeline stores nothing twice.
        again = Pipeline(spool, store, configs=configs, parse_workers=workers)
        assert again.run_once() == 0
        again.stop()
        docs = [event.doc for event in store.search(limit=100, order="asc")]
        for doc in docs:
            doc["event"].pop("ingested", None)
        return docs, pipeline.status.failures
    finally:
        pipeline.stop()
        spool.close()
        store.close()


def test_workers_store_what_the_pipeline_thread_would(tmp_path: Path) -> None:
    in_thread, thread_failures = stored_documents(tmp_path / "thread", workers=0)
    in_workers, worker_failures = stored_documents(tmp_path / "workers", workers=2)
    assert len(in_workers) == 16
    assert in_workers == in_thread
    # Per batch: the invalid UTF-8 line and the bare CEF line are no syslog; each kept as a failure event.
    failures = [doc for doc in in_workers if doc["event"].get("kind") == "pipeline_error"]
    assert len(failures) == worker_failures == thread_failures == 6
    assert sum(1 for doc in failures if doc["vigil"].get("original_base64")) == 3
    assert {doc["vigil"]["source"] for doc in in_workers} == {"syslog", "mixed"}


def test_killed_workers_lose_nothing(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    spool = Spool(tmp_path / "spool", quota_bytes=64 * 1024**2)
    pipeline = Pipeline(spool, store, configs=configs, parse_workers=1)
    meta = BatchMeta(source="syslog", unit_id=1, format="syslog", received_at=RECEIVED)
    try:
        spool.append(RECEIVED_LINES[:3], meta)
        assert pipeline.drain(60) and store.count() == 3  # the workers started and parsed it
        pool = pipeline._parse_pool()
        assert pool is not None
        for process in list(pool._processes.values()):  # a worker killed (out of memory, an operator)
            process.kill()
            process.join()
        spool.append(RECEIVED_LINES[:3], meta)
        assert pipeline.drain(60) and store.count() == 6  # parsed here instead, then new workers
        spool.append(RECEIVED_LINES[:3], meta)
        assert pipeline.drain(60) and store.count() == 9
    finally:
        pipeline.stop()
        spool.close()
        store.close()


def test_started_workers_boot_before_traffic(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    spool = Spool(tmp_path / "spool", quota_bytes=64 * 1024**2)
    pipeline = Pipeline(spool, store, configs=configs, parse_workers=2)
    try:
        assert pipeline.wait_ready(1)  # not started: nothing to wait for
        pipeline.start()
        assert pipeline.wait_ready(60)
        pool = pipeline._parse_pool()
        assert pool is not None and len(pool._processes) == 2  # both booted, before any batch arrived
    finally:
        pipeline.stop()
        spool.close()
        store.close()


CHILD = """
import sys, time
from pathlib import Path
from vigil.siem.parsing import SourceConfig
from vigil.siem.pipeline import Pipeline
from vigil.siem.spool import BatchMeta, Spool
from vigil.siem.store.duckdb import DuckDBEventStore

if __name__ == "__main__":
    root = Path(sys.argv[1])
    spool = Spool(root / "spool", quota_bytes=64 * 1024**2)
    pipeline = Pipeline(spool, DuckDBEventStore(root / "events.duckdb"), configs=lambda _: SourceConfig(),
                        parse_workers=2)
    spool.append([b"<13>1 2026-11-28T10:00:00Z h app - - - hello"] * 10, BatchMeta(source="s", unit_id=1,
                                                                                    format="syslog"))
    pipeline.drain(60)
    print(" ".join(str(pid) for pid in pipeline._parse_pool()._processes), flush=True)
    time.sleep(600)
"""


def test_workers_end_when_the_server_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(CHILD)
    with subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            workers = [int(pid) for pid in server.stdout.readline().split()]
            assert workers and all(alive(pid) for pid in workers)
        finally:
            server.kill()  # SIGKILL: the pool never hears of it
            server.wait()
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers), "parse workers outlived the killed server"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A finished child of ours that nobody reaped yet is a zombie, not a running worker.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
