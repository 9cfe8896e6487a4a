"""Stand-ins on 127.0.0.1 for what response actions talk to (a firewall's API, an EDR, an account webhook), and
a harmless "firewall" script that appends its arguments to a file.

``Endpoint`` records every request (method, path, headers, JSON body) and checks the Bearer token as the real
API would; ``failing`` makes it answer HTTP 500 with a reason.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Endpoint:
    token: str
    received: list[Request] = field(default_factory=list)
    failing: bool = False
    url: str = ""

    def answer(self, request: Request) -> tuple[int, dict[str, Any]]:
        self.received.append(request)
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "bad token"}
        if self.failing:
            return 500, {"error": "rule table locked by another change"}
        return 200, {"ok": True, "received": request.body}


@contextmanager
def endpoint(token: str = "api-token-5d1c") -> Iterator[Endpoint]:
    served = Endpoint(token)

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = json.loads(raw) if raw else None
            status, payload = served.answer(Request(self.command, self.path,
                                                    {k.lower(): v for k, v in self.headers.items()}, body))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def firewall_script(folder: Path) -> tuple[Path, Path]:
    """A script that appends one line per call, its arguments separated by "|", to ``calls.log``; and that log."""
    log = folder / "calls.log"
    script = folder / "fake-nft"
    script.write_text(f"#!/bin/sh\nIFS='|'\necho \"$*\" >> '{log}'\necho \"rule changed: $*\"\n")
    script.chmod(0o755)
    return script, log


def failing_script(folder: Path) -> Path:
    script = folder / "broken-nft"
    script.write_text("#!/bin/sh\necho 'Error: Could not process rule: No such file or directory' >&2\nexit 1\n")
    script.chmod(0o755)
    return script
