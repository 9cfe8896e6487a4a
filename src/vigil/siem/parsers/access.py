"""nginx and Apache access logs: the common and combined formats, optionally behind a virtual-host prefix
(Apache's ``vhost_combined``: ``www.example.com:443 203.0.113.9 - - [...] ...``).

The two servers write the same lines, so events are ``web``/``web.access`` rather than guessing which.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar
from urllib.parse import urlsplit

from vigil.siem.parsers.base import Event, ParseContext, ParseError, decode_text, keep_original, put
from vigil.siem.parsers.timeparse import MONTHS

_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_LINE = re.compile(
    r"(?:(?P<vhost>[^\s\[\]\"]+?)(?::(?P<vport>\d{1,5}))? )??"
    r"(?P<client>[^\s\[\]\"]+) (?P<ident>\S+) (?P<user>\S+|" + _QUOTED.replace("(", "(?:", 1) + r") "
    r"\[(?P<time>[^\]]{1,64})\] " + _QUOTED.replace("((", "(?P<request>(", 1) + r" "
    r"(?P<status>\d{3}|-) (?P<bytes>\d{1,18}|-)"
    r"(?: " + _QUOTED.replace("((", "(?P<referrer>(", 1) + r" " + _QUOTED.replace("((", "(?P<agent>(", 1) + r")?"
    r"(?P<extra> .*)?$"
)
_TIME = re.compile(r"(\d{2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))? ([+-])(\d{2})(\d{2})")
_VERSION = re.compile(r"HTTP/(\d(?:\.\d)?)")
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)")


def _unescape(value: str) -> str:
    """nginx writes ``\\xHH`` for quotes and non-ASCII bytes, Apache ``\\"``: back to the text they encode
    (UTF-8; bytes that are not stay escaped as ``\\xHH``)."""
    if "\\" not in value:
        return value
    out = bytearray()
    position = 0
    for match in _ESCAPE.finditer(value):
        out += value[position: match.start()].encode("utf-8", "surrogatepass")
        code = match.group(1)
        if code[0] == "x" and len(code) == 3:
            out.append(int(code[1:], 16))
        else:
            out += {"n": "\n", "t": "\t"}.get(code, code).encode("utf-8", "surrogatepass")
        position = match.end()
    out += value[position:].encode("utf-8", "surrogatepass")
    return out.decode("utf-8", errors="backslashreplace")


def access_time(text: str) -> datetime:
    """``10/Oct/2000:13:55:36 -0700`` as UTC."""
    match = _TIME.fullmatch(text)
    if not match:
        raise ParseError(f"access log time {text[:40]!r} is not like 10/Oct/2000:13:55:36 -0700")
    month = MONTHS.get(match.group(2).lower())
    if month is None:
        raise ParseError(f"unknown month in access log time {text[:40]!r}")
    hours, minutes = int(match.group(9)), int(match.group(10))
    if hours > 23 or minutes > 59:
        raise ParseError(f"bad time zone offset in access log time {text[:40]!r}")
    offset = timedelta(hours=hours, minutes=minutes) * (-1 if match.group(8) == "-" else 1)
    try:
        stamp = datetime(int(match.group(3)), month, int(match.group(1)), int(match.group(4)), int(match.group(5)),
                         min(int(match.group(6)), 59), int((match.group(7) or "0").ljust(6, "0")),
                         tzinfo=timezone(offset))
    except ValueError as exc:
        raise ParseError(f"invalid access log time {text[:40]!r}: {exc}") from None
    return stamp.astimezone(UTC)


def _address(event: Event, prefix: str, value: str) -> None:
    put(event, f"{prefix}.address", value)
    try:
        put(event, f"{prefix}.ip", str(ipaddress.ip_address(value)))
    except ValueError:
        put(event, f"{prefix}.domain", value)


def _request(event: Event, request: str) -> None:
    """``GET /path?q=1 HTTP/1.1``; junk (a TLS handshake on the HTTP port, ``-``) stays in event.original only."""
    parts = request.split(" ")
    if len(parts) < 2 or not parts[0].isalpha() or not parts[0].isupper():
        return
    method, target = parts[0], " ".join(parts[1:])
    version = _VERSION.fullmatch(parts[-1]) if len(parts) >= 3 else None
    if version:
        target = " ".join(parts[1:-1])
        put(event, "http.version", version.group(1))
    put(event, "http.request.method", method)
    put(event, "url.original", target)
    try:
        split = urlsplit(target)
    except ValueError:
        return
    if split.scheme and split.netloc:
        put(event, "url.scheme", split.scheme)
        put(event, "url.domain", split.hostname or split.netloc)
    if split.path:
        put(event, "url.path", split.path)
    if split.query:
        put(event, "url.query", split.query)


class WebAccessParser:
    """Access logs in the common or combined format from nginx or Apache httpd."""

    name: ClassVar[str] = "web_access"
    description: ClassVar[str] = "nginx / Apache access logs (common and combined formats, optional vhost prefix)"

    def sniff(self, sample: bytes) -> bool:
        line = sample.split(b"\n", 1)[0][:8192]
        if b'] "' not in line:
            return False
        text, _ = decode_text(line.rstrip(b"\r"))
        return _LINE.match(text) is not None

    def parse_one(self, raw: bytes, ctx: ParseContext) -> Event:
        text, _ = decode_text(raw)
        match = _LINE.match(text.rstrip("\r\n\x00"))
        if not match:
            raise ParseError('not an access log line: expected client ident user [time] "request" status bytes')
        event: Event = {"@timestamp": access_time(match.group("time"))}
        put(event, "event.kind", "event")
        put(event, "event.module", "web")
        put(event, "event.dataset", "web.access")
        put(event, "event.category", ["web"])
        put(event, "event.type", ["access"])
        _address(event, "source", match.group("client"))
        if match.group("vhost"):
            put(event, "url.domain", match.group("vhost"))
            if match.group("vport"):
                port = int(match.group("vport"))
                if 0 < port < 65536:
                    put(event, "destination.port", port)
        user = match.group("user").strip('"')
        if user and user != "-":
            put(event, "user.name", _unescape(user))
        _request(event, _unescape(match.group("request")))
        if match.group("status") != "-":
            status = int(match.group("status"))
            put(event, "http.response.status_code", status)
            put(event, "event.outcome", "success" if status < 400 else "failure")
        size = match.group("bytes")
        put(event, "http.response.body.bytes", 0 if size == "-" else int(size))
        referrer = match.group("referrer")
        if referrer and referrer != "-":
            put(event, "http.request.referrer", _unescape(referrer))
        agent = match.group("agent")
        if agent and agent != "-":
            put(event, "user_agent.original", _unescape(agent))
        if match.group("extra") and match.group("extra").strip():
            put(event, "web.access.extra", match.group("extra").strip())
        keep_original(event, raw, ctx)
        return event
