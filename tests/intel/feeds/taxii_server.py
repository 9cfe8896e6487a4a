"""A small TAXII 2.1 server for the tests, on 127.0.0.1 in a thread (http.server): discovery, one API root,
its collections, and paginated objects filtered by ``added_after``, behind HTTP basic or bearer auth.

``TaxiiServer.add(obj, date_added)`` stores an object; every request is recorded (path, query, headers) so
tests can see what the client asked. ``mode`` makes the server misbehave on purpose: "html" (a web page
instead of TAXII JSON), "broken-json", "error" (HTTP 500 with a TAXII error message), "no-next" (pages by
date only), "no-headers" (no X-TAXII-Date-Added headers, ``date_added`` on the objects), "garbage-page-2"
(the second page of objects is not JSON), "same-next" (``next`` never moves).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MEDIA_TYPE = "application/taxii+json;version=2.1"
COLLECTION_ID = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
USER, PASSWORD, TOKEN = "analyst", "s3cret", "tok-123"


@dataclass
class Recorded:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class TaxiiServer:
    url: str = ""
    objects: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (date_added, object)
    requests: list[Recorded] = field(default_factory=list)
    mode: str = ""
    page_size: int = 100  # the server's own maximum page size
    can_read: bool = True

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/taxii2/"

    @property
    def api_root_url(self) -> str:
        return f"{self.url}/api1/"

    def add(self, obj: dict[str, Any], date_added: str) -> None:
        self.objects.append((date_added, obj))
        self.objects.sort(key=lambda pair: pair[0])

    def object_requests(self) -> list[Recorded]:
        return [request for request in self.requests if request.path.endswith("/objects/")]


def _handler(server: TaxiiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            server.requests.append(Recorded(parts.path, query, dict(self.headers.items())))
            if not self._authorised():
                self._send(401, {"title": "Unauthorized", "description": "give valid credentials"},
                           extra={"WWW-Authenticate": 'Basic realm="taxii"'})
                return
            if server.mode == "html":
                self._raw(200, b"<html><body>Welcome to our portal</body></html>", "text/html")
            elif server.mode == "broken-json":
                self._raw(200, b'{"title": "half', MEDIA_TYPE)
            elif server.mode == "error":
                self._send(500, {"title": "Database down", "description": "try again later", "http_status": "500"})
            elif parts.path == "/taxii2/":
                self._send(200, {"title": "Test TAXII", "default": server.api_root_url,
                                 "api_roots": [server.api_root_url]})
            elif parts.path == "/api1/":
                self._send(200, {"title": "API root 1", "versions": [MEDIA_TYPE], "max_content_length": 10_000_000})
            elif parts.path == "/api1/collections/":
                self._send(200, {"collections": [
                    {"id": COLLECTION_ID, "title": "Indicators", "can_read": server.can_read, "can_write": False,
                     "media_types": [MEDIA_TYPE]},
                    {"id": "00000000-0000-4000-8000-000000000000", "title": "Other", "can_read": True,
                     "can_write": False}]})
            elif parts.path == f"/api1/collections/{COLLECTION_ID}/objects/":
                self._objects(query)
            else:
                self._send(404, {"title": "Not found", "description": parts.path})

        def _authorised(self) -> bool:
            header = self.headers.get("Authorization", "")
            basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            return header in (basic, f"Bearer {TOKEN}")

        def _objects(self, query: dict[str, str]) -> None:
            after = query.get("added_after", "")
            matching = [(added, obj) for added, obj in server.objects if added > after]
            start = int(query.get("next", "0"))
            limit = min(int(query.get("limit", server.page_size)), server.page_size)
            page = matching[start:start + limit]
            more = start + limit < len(matching)
            if server.mode == "garbage-page-2" and start > 0:
                self._raw(200, b"this is not json", MEDIA_TYPE)
                return
            headers = {"X-TAXII-Date-Added-First": page[0][0], "X-TAXII-Date-Added-Last": page[-1][0]} if page else {}
            objects = [obj for _, obj in page]
            if server.mode == "no-headers":  # the objects' date_added is all the client has
                headers, objects = {}, [{**obj, "date_added": added} for added, obj in page]
            envelope: dict[str, Any] = {"more": more, "objects": objects}
            if more and server.mode != "no-next":
                envelope["next"] = "0" if server.mode == "same-next" else str(start + limit)
            self._send(200, envelope, extra=headers)

        def _send(self, status: int, body: dict[str, Any], extra: dict[str, str] | None = None) -> None:
            self._raw(status, json.dumps(body).encode(), MEDIA_TYPE, extra)

        def _raw(self, status: int, data: bytes, media_type: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def running_taxii_server() -> Iterator[TaxiiServer]:
    state = TaxiiServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
