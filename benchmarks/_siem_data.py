"""Generated ECS-shaped events for the SIEM benchmarks: nested JSON objects of about 400 bytes.

The mix is what a SOC sees most: SSH logins, process starts, connections, DNS queries and web
requests, over a few hundred hosts and users, with a free-text ``message``. Deterministic: event
``n`` is always the same, so runs compare.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

START = datetime(2026, 10, 1, tzinfo=UTC)
CACHE = Path(tempfile.gettempdir()) / "vigil-bench"
ACTIONS = ("ssh_login", "process_started", "connection", "dns_query", "http_request")
CATEGORIES = (["authentication"], ["process"], ["network"], ["network"], ["web"])
OUTCOMES = ("success", "failure", "unknown")
PROCESSES = ("sshd", "bash", "nginx", "curl", "python3", "systemd", "cron")


def event(n: int, *, seconds: float = 0.0026) -> dict[str, Any]:
    """Event ``n``: ``seconds`` apart from ``START`` (the default spreads 1,000,000 over about 45 minutes)."""
    kind = n % len(ACTIONS)
    user = f"user{n * 7 % 503}"
    host = f"srv{n * 13 % 211:03d}.corp"
    src = f"10.{n % 7}.{n * 3 % 251}.{n % 199}"
    port = 1024 + n * 31 % 60000
    process = PROCESSES[n % len(PROCESSES)]
    doc: dict[str, Any] = {
        "@timestamp": (START + timedelta(seconds=n * seconds)).isoformat(timespec="milliseconds")[:-6] + "Z",
        "event": {"dataset": f"system.{ACTIONS[kind]}", "category": CATEGORIES[kind],
                  "action": ACTIONS[kind], "outcome": OUTCOMES[n % 3]},
        "host": {"hostname": host},
        "source": {"ip": src, "port": port},
        "destination": {"ip": f"192.0.2.{n % 37}", "port": (22, 443, 53, 80)[n % 4]},
        "user": {"name": user},
        "process": {"name": process, "pid": 1000 + n % 30000},
        "network": {"transport": "tcp" if n % 4 else "udp"},
        "message": f"{ACTIONS[kind]} {OUTCOMES[n % 3]} for {user} from {src}",
    }
    if kind == 1:
        doc["process"]["command_line"] = f"/usr/bin/{process} -c job{n % 97}"
    elif kind == 3:
        doc["dns"] = {"question": {"name": f"app{n % 17}.example.com"}}
    elif kind == 4:
        doc["url"] = {"original": f"https://app{n % 17}.example.com/items/{n % 1000}"}
    return doc


def lines(count: int, first: int = 0) -> Iterator[bytes]:
    for n in range(first, first + count):
        yield orjson.dumps(event(n))


def ndjson_file(count: int) -> Path:
    """``count`` events as NDJSON in the benchmark cache folder (written once, reused by later runs)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"events-{count}.ndjson"
    if not path.exists():
        partial = path.with_suffix(".partial")
        with partial.open("wb") as handle:
            for line in lines(count):
                handle.write(line + b"\n")
        partial.rename(path)
    return path
