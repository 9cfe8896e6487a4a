"""ASGI middleware: request body limit, security headers, and request metrics."""

from __future__ import annotations

import re
import time

import orjson
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.config import Settings

REQUESTS = Counter("vigil_http_requests_total", "HTTP requests served", ["method", "route", "status"])
LATENCY = Histogram("vigil_http_request_seconds", "HTTP request latency", ["method", "route"])

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        b"script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
    ),
]


def too_large_detail(limit: int) -> str:
    return f"the request body exceeds the limit of {limit} bytes"


def _too_large_body(limit: int, path: str) -> bytes:
    return orjson.dumps({
        "type": "https://vigil.invalid/problems/payload-too-large",
        "title": "Request body too large",
        "status": 413,
        "detail": too_large_detail(limit),
        "code": "payload-too-large",
        "instance": path,
    })


EVIDENCE_UPLOAD = re.compile(r"/(api/v1/)?incidents/\d+/evidence")


class BodyTooLarge(HTTPException):
    """Raised while a streamed body is read; the app's error handlers turn it into a 413 problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=too_large_detail(limit))


class BodyLimit:
    """Refuse bodies over the limit with 413, by Content-Length up front or while streaming.

    A streamed (chunked) body is counted as it is read: the reader gets ``BodyTooLarge``, an
    ``HTTPException`` that FastAPI passes on untouched while parsing a body (any other error there
    would become a 400), so the request stops before any dependency or endpoint runs.

    The limits are the app's settings (``app.state.settings``), read on each request: the app is built
    once and may be given its settings afterwards (``vigil.web.app.attach``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def limit_for(path: str, settings: Settings) -> int:
        limit = settings.max_body_bytes
        # Log shippers send big batches (Filebeat, Vector: tens of MB), intelligence files can be large too;
        # only those paths get more.
        if path in ("/api/v1/ingest", "/api/v1/intel/imports", "/intel/import") or path.endswith("/_bulk"):
            return max(limit, settings.ingest_max_body_bytes)
        # Evidence files (disk images, captures) are bounded by their own setting; their endpoints stream and
        # count the body themselves and keep nothing of a refused one.
        if EVIDENCE_UPLOAD.fullmatch(path):
            return max(limit, settings.evidence_max_bytes)
        return limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""), scope["app"].state.settings)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await self._refuse(send, scope, limit)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Read outside an error handler's reach (by a middleware, say): answer here.
            if response_started:
                raise
            await self._refuse(send, scope, limit)

    async def _refuse(self, send: Send, scope: Scope, limit: int) -> None:
        body = _too_large_body(limit, scope.get("path", ""))
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/problem+json"), (b"connection", b"close"),
                        (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS],
        })
        await send({"type": "http.response.body", "body": body})


class SecurityHeadersAndMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def wrapped_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                existing = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    header for header in SECURITY_HEADERS if header[0] not in existing
                ]
            await send(message)

        try:
            await self.app(scope, receive, wrapped_send)
        finally:
            route = _route_template(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    # The matched route's template keeps label cardinality bounded (no ids, no arbitrary paths).
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
