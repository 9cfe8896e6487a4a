"""Syslog over TCP: messages/s from the socket into the spool, and from the socket to searchable events.

200,000 RFC 5424 messages (about 200 bytes each, octet-counted, structured data) are sent over 4 TCP
connections to a ``SyslogReceiver`` on 127.0.0.1 backed by a real ``Siem`` (fsync'd spool, DuckDB event
store, SQLite records store). Two figures, each on a fresh data folder:

* receive + spool: from the first byte sent until every message is in the spool (the pipeline is not
  running): what a sender sees, since a message is acknowledged once it is on disk (also measured
  with LF framing);
* receive + spool + parse + store: the same with the pipeline running, until every message is stored
  (and how fast the receiver spooled while the pipeline competed with it for the interpreter);
* the same with live detection (the starter pack of Sigma rules enabled), which runs in the pipeline.

Both check that every message sent arrived (stored count == sent). Usage:
``.venv/bin/python benchmarks/bench_syslog_tcp.py [--messages N] [--connections K]``.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from _common import machine, report, sqlite_database

from vigil.core.config import load_settings
from vigil.core.db import Database
from vigil.detection.rules_import import install_starter_pack
from vigil.siem.receivers.syslog import SyslogReceiver
from vigil.siem.runtime import Siem

HOST = "127.0.0.1"
APPS = ("nginx", "sshd", "sudo", "kernel", "postfix")


def message(n: int, *, counted: bool = True) -> bytes:
    line = (f"<134>1 2026-11-28T10:{n // 60_000 % 60:02d}:{n // 1000 % 60:02d}.{n % 1000:03d}+08:00 "
            f"web{n % 40:02d}.corp.example {APPS[n % len(APPS)]} {1000 + n % 30000} ID{n} "
            f'[origin ip="10.{n % 7}.{n % 251}.{n % 199}" seq="{n}"] GET /api/v1/items?id={n} '
            f'HTTP/1.1 200 {n % 9000} "Mozilla/5.0 (X11; Linux x86_64)"')
    data = line.encode()
    return str(len(data)).encode() + b" " + data if counted else data + b"\n"


def payloads(total: int, connections: int, *, counted: bool = True) -> list[bytes]:
    return [b"".join(message(n, counted=counted) for n in range(first, total, connections))
            for first in range(connections)]


def send_all(port: int, parts: list[bytes]) -> list[threading.Thread]:
    def send(payload: bytes) -> None:
        with socket.create_connection((HOST, port)) as conn:
            conn.sendall(payload)

    threads = [threading.Thread(target=send, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    return threads


def wait_until(condition: Callable[[], bool], timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("gave up waiting: messages went missing or the machine is far too slow")
        time.sleep(0.005)


def run(database: Database, parts: list[bytes], total: int, *, store_too: bool) -> tuple[float, float]:
    """Messages/s through the receiver into the spool, and (when ``store_too``) on into the store."""
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as folder:
        settings = load_settings(data_dir=Path(folder), database_url=database.url)
        siem = Siem(settings, database)
        receivers: list[SyslogReceiver] = []

        def factory(runtime: Siem) -> SyslogReceiver:
            receivers.append(SyslogReceiver(runtime, "tcp", host=HOST, port=0))
            return receivers[-1]

        if store_too:
            siem.start([factory])
            siem.pipeline.wait_ready()  # parse workers booted: a server meets traffic warm
        else:
            factory(siem).start()  # the pipeline stays off: only receive and spool are measured
        receiver = receivers[0]
        try:
            siem.unit_for("syslog")  # look the root unit up before the clock starts
            started = time.perf_counter()
            threads = send_all(receiver.port, parts)
            wait_until(lambda: receiver.counters.messages == total and receiver.status()["pending"] == 0)
            spooled = time.perf_counter() - started
            if store_too:
                wait_until(lambda: siem.pipeline.status.events >= total)
            elapsed = time.perf_counter() - started
            for thread in threads:
                thread.join()
            if not store_too:
                siem.drain(600)  # store what was spooled, to count it
            # Counted in the store (Pipeline.drain can miss the end when the spool rolled to a new file).
            stored = siem.store.count()
            assert stored == total, f"sent {total:,} messages, stored {stored:,}"
            assert receiver.status()["dropped"] == 0
        finally:
            if not store_too:
                receiver.stop()
            siem.stop()
    return total / spooled, total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--connections", type=int, default=4)
    options = parser.parse_args()
    total, connections = options.messages, options.connections
    parts = payloads(total, connections)
    size = sum(len(part) for part in parts) // total
    conditions = (f"{total:,} RFC 5424 messages of ~{size} bytes, octet-counted, over {connections} TCP "
                  f"connections on 127.0.0.1; fsync'd spool, DuckDB store; {machine()}")
    with sqlite_database() as database:
        rate, _ = run(database, parts, total, store_too=False)
        report("syslog TCP, receive + spool", rate, "msgs/s", conditions)
        rate, _ = run(database, payloads(total, connections, counted=False), total, store_too=False)
        report("syslog TCP, LF-framed, receive + spool", rate, "msgs/s", conditions.replace("octet-counted",
                                                                                             "LF-framed"))
        spooled, stored = run(database, parts, total, store_too=True)
        report("syslog TCP, receive + spool while the pipeline runs", spooled, "msgs/s", conditions)
        report("syslog TCP, receive + spool + parse + store", stored, "msgs/s", conditions)
    with sqlite_database() as database:  # the same with live detection: Vigil's starter rules enabled
        install_starter_pack(database)
        _, stored = run(database, parts, total, store_too=True)
        report("syslog TCP, receive + spool + parse + detect (starter pack) + store", stored, "msgs/s",
               conditions)


if __name__ == "__main__":
    main()
