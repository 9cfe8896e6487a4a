"""Stand-ins for the chat platforms on 127.0.0.1: each checks what the real one checks (the address and its
token, the message format, the signature recomputed from the received timestamp) and answers as it does.

``Platform`` records every request it received (``received``) and can be told to fail first
(``fail_first``: that many answers of HTTP 500) or always (``always_fail``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, str, bytes]  # status, content type, body
Check = Callable[[Received], Answer]


def reply(body: Any, status: int = 200) -> Answer:
    return status, "application/json", json.dumps(body).encode()


@dataclass
class Platform:
    check: Check
    received: list[Received] = field(default_factory=list)
    fail_first: int = 0
    always_fail: bool = False
    url: str = ""

    def answer(self, request: Received) -> Answer:
        self.received.append(request)
        if self.always_fail or self.fail_first > 0:
            self.fail_first -= 1
            return 500, "text/plain", b"upstream exploded"
        return self.check(request)


@contextmanager
def serve(check: Check) -> Iterator[Platform]:
    platform = Platform(check)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            request = Received(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
                               {k.lower(): v for k, v in self.headers.items()}, body)
            status, content_type, payload = platform.answer(request)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    platform.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield platform
    finally:
        server.shutdown()
        server.server_close()


# --- each platform's checks ---------------------------------------------------------------------------


def dingtalk(token: str, secret: str = "") -> Check:
    """A DingTalk custom robot: /robot/send?access_token=...; with 加签, timestamp (ms) and sign in the query."""

    def check(request: Received) -> Answer:
        if request.path != "/robot/send" or request.query.get("access_token") != token:
            return reply({"errcode": 300001, "errmsg": "token is not exist"})
        if secret:
            timestamp = request.query.get("timestamp", "")
            expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(),
                                                 hashlib.sha256).digest()).decode()
            if not timestamp.isdigit() or len(timestamp) != 13 or request.query.get("sign") != expected:
                return reply({"errcode": 310000, "errmsg": "sign not match"})
        body = request.json()
        markdown = body.get("markdown") or {}
        if body.get("msgtype") != "markdown" or not markdown.get("title") or not markdown.get("text"):
            return reply({"errcode": 40035, "errmsg": "缺少参数 markdown"})
        return reply({"errcode": 0, "errmsg": "ok"})

    return check


def wecom(key: str) -> Check:
    def check(request: Received) -> Answer:
        if request.path != "/cgi-bin/webhook/send" or request.query.get("key") != key:
            return reply({"errcode": 93000, "errmsg": "invalid webhook url"})
        body = request.json()
        content = (body.get("markdown") or {}).get("content", "")
        if body.get("msgtype") != "markdown" or not content or len(content.encode()) > 4096:
            return reply({"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"})
        return reply({"errcode": 0, "errmsg": "ok"})

    return check


def feishu(token: str, secret: str = "") -> Check:
    def check(request: Received) -> Answer:
        if request.path != f"/open-apis/bot/v2/hook/{token}":
            return reply({"code": 19001, "msg": "param invalid: incoming webhook access token invalid"})
        body = request.json()
        if secret:
            timestamp = str(body.get("timestamp", ""))
            key = f"{timestamp}\n{secret}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            if not timestamp.isdigit() or len(timestamp) != 10 or body.get("sign") != expected:
                return reply({"code": 19021, "msg": "sign match fail or timestamp is not within one hour"})
        card = body.get("card") or {}
        title = ((card.get("header") or {}).get("title") or {}).get("content")
        if body.get("msg_type") != "interactive" or not title or not card.get("elements"):
            return reply({"code": 9499, "msg": "Bad Request"})
        return reply({"code": 0, "msg": "success", "data": {}})

    return check


def slack(path: str) -> Check:
    def check(request: Received) -> Answer:
        if request.path != path:
            return 404, "text/html", b"no_service"
        body = request.json()
        if not body.get("text") or not isinstance(body.get("blocks"), list) or body["blocks"][0]["type"] != "header":
            return 400, "text/html", b"invalid_payload"
        return 200, "text/html", b"ok"

    return check


def webhook(secret: str, max_age_seconds: int = 300) -> Check:
    """The receiver docs/notifications.md describes: recompute the signature over the raw body, compare in
    constant time, refuse a stale timestamp."""

    def check(request: Received) -> Answer:
        timestamp = request.headers.get("x-vigil-timestamp", "")
        given = request.headers.get("x-vigil-signature", "")
        expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + request.body,
                                        hashlib.sha256).hexdigest()
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > max_age_seconds:
            return reply({"error": "stale timestamp"}, 401)
        if not hmac.compare_digest(given, expected):
            return reply({"error": "bad signature"}, 401)
        return reply({"accepted": True}, 202)

    return check


# --- e-mail -------------------------------------------------------------------------------------------


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def password_check(user: str, password: str) -> Callable[..., AuthResult]:
    """An aiosmtpd authenticator taking one user name and password (LOGIN or PLAIN)."""

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == user.encode() and data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    return authenticate


@contextmanager
def smtp_server(*, user: str = "", password: str = "") -> Iterator[Mailbox]:
    """An SMTP server on loopback; with ``user``, it offers AUTH (over plain SMTP, for the test) and checks it."""
    mailbox = Mailbox("127.0.0.1", free_port())
    extra: dict[str, Any] = {"authenticator": password_check(user, password),
                             "auth_require_tls": False} if user else {}
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port, **extra)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
