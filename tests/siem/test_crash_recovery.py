"""A real `vigil serve` killed with SIGKILL while a shipper streams batches to it: after a restart every
batch it acknowledged (202) is stored exactly once; a batch cut off by the kill is there once or not at all.

The server is set up only through the CLI a user would run (`vigil init`, `vigil user add`, `vigil token
create`), runs as its own process on a free port of 127.0.0.1, and is read afterwards through its own
DuckDB file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from vigil.siem import search
from vigil.siem.store.duckdb import DuckDBEventStore

PASSWORD = "Shipper-Crash-Test-9!"
BATCH = 200  # events per batch: big enough that the pipeline is often mid-batch when the server dies
# Readiness polls (not speed assertions): how long a loaded CI machine may take to start the server.
START_PATIENCE = 180.0


def vigil_command() -> list[str]:
    """The `vigil` command of the Python running the tests (its virtual environment's script)."""
    script = Path(sys.executable).parent / "vigil"
    return [str(script)] if script.exists() else ["vigil"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`vigil serve` in its own process, with its data in a folder of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("VIGIL_")}
        self.env.update({
            "VIGIL_DATA_DIR": str(root / "var"),
            "VIGIL_DATABASE_URL": f"sqlite:///{root / 'var' / 'vigil.db'}",
            "VIGIL_HOST": "127.0.0.1",
            "VIGIL_PORT": str(self.port),
            "VIGIL_SYSLOG_UDP_PORT": "0",
            "VIGIL_SYSLOG_TCP_PORT": "0",
            "VIGIL_SYSLOG_TLS_PORT": "0",
            "VIGIL_LOG_LEVEL": "WARNING",
        })
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def cli(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run([*vigil_command(), *args], input=stdin.encode(), capture_output=True, cwd=self.root,
                              env=self.env, check=False)
        assert done.returncode == 0, (args, done.stdout.decode(), done.stderr.decode())
        return done.stdout.decode()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        with (self.root / f"serve-{self.starts}.log").open("wb") as log:  # the child keeps its own copy
            self.process = subprocess.Popen([*vigil_command(), "serve"], cwd=self.root, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_PATIENCE
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.root / f"serve-{self.starts}.log").read_text()
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("vigil serve did not answer /healthz")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    running.cli("init")
    running.cli("user", "add", "shipper01", "--role", "shipper", "--password-stdin", stdin=PASSWORD + "\n")
    yield running
    running.stop()


def batch_body(number: int) -> bytes:
    stamp = datetime.now(UTC).isoformat()
    return b"\n".join(orjson.dumps({"@timestamp": stamp, "message": f"crash test batch {number} event {n}",
                                    "labels": {"seq": str(number * BATCH + n), "batch": str(number)}})
                      for n in range(BATCH))


class Shipper(threading.Thread):
    """Posts numbered batches one after another until the server goes away; notes which got a 202."""

    def __init__(self, url: str, token: str, first: int) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.next = url, token, first
        self.acknowledged: list[int] = []
        self.sent: list[int] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}",
                                                      "Content-Type": "application/x-ndjson"}) as client:
            while True:
                number = self.next
                self.next += 1
                self.sent.append(number)
                try:
                    response = client.post("/api/v1/ingest", params={"source": "crash"},
                                           content=batch_body(number), timeout=30)
                except httpx.TransportError:
                    return
                if response.status_code != 202:
                    return
                self.acknowledged.append(number)


def stored_sequence_numbers(data_dir: Path) -> Counter[str]:
    store = DuckDBEventStore(data_dir / "events.duckdb")
    try:
        window = search.time_range("1d")
        return Counter(str(event.doc["labels"]["seq"]) for event in search.iter_events(
            store, units=None, query='vigil.source:"http:crash"', window=window, max_events=10**7))
    finally:
        store.close()


def test_acknowledged_batches_survive_sigkill_exactly_once(server: Server) -> None:
    token = server.cli("token", "create", "shipper01", "--name", "crash-test", "--role", "shipper").strip()
    server.cli("user", "add", "reader01", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n")
    reader = server.cli("token", "create", "reader01", "--name", "poll").strip()
    server.start()
    shipper = Shipper(server.url, token, first=0)
    shipper.start()
    while len(shipper.acknowledged) < 40 and shipper.is_alive():
        time.sleep(0.01)
    assert len(shipper.acknowledged) >= 40, "the shipper stopped before the kill"
    server.kill()  # mid-stream: the shipper is sending its next batch
    shipper.join()
    before_kill = list(shipper.acknowledged)
    in_flight = sorted(set(shipper.sent) - set(before_kill))

    server.start()
    # A batch after the restart: once its events are searchable, everything spooled before it is stored
    # too (the pipeline stores in spool order).
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.post("/api/v1/ingest", params={"source": "crash"}, content=batch_body(10_000),
                               headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"})
        assert response.status_code == 202, response.text
        last = str(10_000 * BATCH + BATCH - 1)
        deadline = time.monotonic() + START_PATIENCE
        while time.monotonic() < deadline:
            found = client.get("/api/v1/events/search", headers={"Authorization": f"Bearer {reader}"},
                               params={"q": f'labels.seq:"{last}"', "range": "1d", "limit": 0})
            assert found.status_code == 200, found.text
            if found.json()["total"]:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the batch sent after the restart was never stored")
    server.stop()
    counts = stored_sequence_numbers(server.root / "var")

    expected = {str(number * BATCH + n) for number in [*before_kill, 10_000] for n in range(BATCH)}
    missing = sorted(expected - counts.keys(), key=int)
    assert not missing, f"acknowledged events lost: {missing[:20]}"
    twice = {seq: count for seq, count in counts.items() if count > 1}
    assert not twice, f"events stored more than once: {dict(list(twice.items())[:20])}"
    # Anything else stored belongs to a batch that was in flight when the server died.
    unexpected = {int(seq) // BATCH for seq in counts.keys() - expected}
    assert unexpected <= set(in_flight), (unexpected, in_flight)
