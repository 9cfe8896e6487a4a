"""API latency and throughput: GET /api/v1/me with a Bearer token against a real uvicorn server.

The server is web.app.create_app in its own process (one uvicorn worker, SQLite store in a temporary
folder) on a free loopback port. Latency: one client, sequential keep-alive requests. Throughput:
several clients at once. Every request is checked for 200; the counts are bounded.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _common import machine, report, system_context

from vigil.accounts import service, signin
from vigil.accounts.bootstrap import migrate
from vigil.accounts.schemas import GrantCreate, TokenCreate, UserCreate
from vigil.core.auth import Role
from vigil.core.db import Database, Scope

SEQUENTIAL = 2_000
CLIENTS = 8
PER_CLIENT = 250
WARM_UP = 50


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def prepare(folder: Path) -> tuple[str, str]:
    """Migrate a store, add one user with a token; return the store URL and the token."""
    url = f"sqlite:///{folder / 'vigil.db'}"
    database = Database(url)
    migrate(database)
    with database.transaction(Scope.system()) as session:
        ctx = system_context(session)
        root = service.root_unit_id(session)
        user = service.create_user(ctx, data=UserCreate(
            username="bench", password="Correct-Horse-42!", unit_id=root,
            grants=[GrantCreate(role=Role.ANALYST, unit_id=root)]))
        secret, _ = signin.create_token(ctx, user=user, data=TokenCreate(name="bench"))
    database.dispose()
    return url, secret


def start_server(folder: Path, url: str, port: int) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("VIGIL_")}
    env.update(VIGIL_DATA_DIR=str(folder), VIGIL_DATABASE_URL=url, VIGIL_LOG_LEVEL="WARNING")
    command = [sys.executable, "-m", "uvicorn", "--factory", "vigil.web.app:create_app",
               "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=folder, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode} before answering")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server did not answer /healthz within 30 s")


def timed_requests(base: str, token: str, count: int) -> list[float]:
    timings = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = client.get("/api/v1/me")
            timings.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise SystemExit(f"GET /api/v1/me answered {response.status_code}: {response.text[:200]}")
    return timings


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vigil-bench-api-") as name:
        folder = Path(name)
        url, token = prepare(folder)
        port = free_port()
        server = start_server(folder, url, port)
        base = f"http://127.0.0.1:{port}"
        try:
            timed_requests(base, token, WARM_UP)
            latencies = sorted(t * 1000 for t in timed_requests(base, token, SEQUENTIAL))
            started = time.perf_counter()
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(lambda _: timed_requests(base, token, PER_CLIENT), range(CLIENTS)))
            throughput = CLIENTS * PER_CLIENT / (time.perf_counter() - started)
        finally:
            server.terminate()
            server.wait(timeout=30)
    conditions = f"uvicorn, 1 worker, SQLite, loopback, keep-alive, {machine()}"
    report("GET /api/v1/me latency p50", statistics.median(latencies), "ms",
           f"1 client, {SEQUENTIAL:,} sequential requests, {conditions}")
    report("GET /api/v1/me latency p99", latencies[int(len(latencies) * 0.99) - 1], "ms",
           f"1 client, {SEQUENTIAL:,} sequential requests, {conditions}")
    report("GET /api/v1/me throughput", throughput, "requests/s",
           f"{CLIENTS} clients x {PER_CLIENT} requests, {conditions}")


if __name__ == "__main__":
    main()
