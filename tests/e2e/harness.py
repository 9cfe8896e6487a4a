"""For the browser tests: Debian's Chromium, a real server on loopback, a fresh migrated records store."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from vigil.accounts.bootstrap import migrate
from vigil.core.config import Settings, load_settings
from vigil.core.db import Database

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@dataclass(frozen=True)
class Server:
    url: str


def store(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[Settings, Database]:
    """Settings and a migrated SQLite records store in a folder of their own."""
    data_dir = tmp_path_factory.mktemp(name) / "var"
    # Chromium keeps Secure cookies for http://127.0.0.1 (a potentially trustworthy origin), so the
    # server runs with its default, cookie_secure=True, as in production.
    settings = load_settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'vigil.db'}",
                             log_level="WARNING")
    database = Database(settings.effective_database_url)
    migrate(database)
    return settings, database


@contextmanager
def serve(app: FastAPI, *, lifespan: bool = False) -> Iterator[Server]:
    """The app under uvicorn on an ephemeral port of 127.0.0.1, in a thread, until the block ends;
    ``lifespan``: with the app's start and stop (the SIEM's pipeline and background jobs), as `vigil serve`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on" if lifespan else "off", ws="none"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while thread.is_alive() and not uv.started:
        time.sleep(0.05)
    assert uv.started, "the test server did not start"
    try:
        yield Server(f"http://127.0.0.1:{port}")
    finally:
        uv.should_exit = True
        thread.join()
        sock.close()
