"""ArcSight Common Event Format: ``CEF:Version|Vendor|Product|Version|SignatureID|Name|Severity|Extension``.

Header fields escape ``\\|`` and ``\\\\``; extension values may hold spaces and escape ``\\=``, ``\\\\``,
``\\n`` and ``\\r``. Common extension keys map to ECS; every key is kept under ``cef.extensions``.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar

from vigil.siem.parsers.base import Event, ParseContext, ParseError, decode_text, keep_original, put
from vigil.siem.parsers.timeparse import from_epoch, month_number, parse_offset, parse_rfc3339, resolve_yearless

_HEADER_FIELD = re.compile(r"((?:[^|\\]|\\.)*)\|", re.DOTALL)
_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\[\]-]{1,64})=")
_HEADER_ESCAPE = re.compile(r"\\([|\\])")
_VALUE_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_VALUE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "=": "=", "\\": "\\", "|": "|"}
_CEF_DATE = re.compile(
    r"([A-Za-z]{3}) (\d{1,2})(?: (\d{4}))? (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(?: (\S+))?"
)
_SEVERITY_WORDS = {"unknown": None, "low": 3, "medium": 6, "high": 8, "very-high": 10, "veryhigh": 10,
                   "very high": 10}

# CEF key -> ECS field; values checked by the kind in the second element.
_ECS: dict[str, tuple[str, str]] = {
    "src": ("source.ip", "ip"), "dst": ("destination.ip", "ip"),
    "spt": ("source.port", "port"), "dpt": ("destination.port", "port"),
    "smac": ("source.mac", "text"), "dmac": ("destination.mac", "text"),
    "shost": ("source.domain", "text"), "dhost": ("destination.domain", "text"),
    "suser": ("user.name", "text"), "duser": ("destination.user.name", "text"),
    "suid": ("user.id", "text"), "duid": ("destination.user.id", "text"),
    "act": ("event.action", "text"), "outcome": ("event.outcome", "outcome"), "reason": ("event.reason", "text"),
    "request": ("url.original", "text"), "requestMethod": ("http.request.method", "text"),
    "requestClientApplication": ("user_agent.original", "text"),
    "proto": ("network.transport", "lower"), "app": ("network.protocol", "lower"),
    "in": ("source.bytes", "int"), "out": ("destination.bytes", "int"),
    "msg": ("message", "text"),
    "dvc": ("observer.ip", "ip"), "dvchost": ("observer.hostname", "text"),
    "fname": ("file.name", "text"), "filePath": ("file.path", "text"), "fsize": ("file.size", "int"),
    "dproc": ("process.name", "text"), "dpid": ("process.pid", "int"),
    "sproc": ("source.process.name", "text"), "spid": ("source.process.pid", "int"),
    "sntdom": ("source.user.domain", "text"), "dntdom": ("destination.user.domain", "text"),
}
_OUTCOMES = {"success": "success", "succeeded": "success", "failure": "failure", "failed": "failure",
             "fail": "failure", "unknown": "unknown"}


def unescape_value(value: str) -> str:
    return _VALUE_ESCAPE.sub(lambda m: _VALUE_ESCAPES.get(m.group(1), "\\" + m.group(1)), value)


def parse_extension(text: str) -> dict[str, str]:
    """``k1=v1 k2=a value with spaces k3=x\\=y`` as a dict (values unescaped)."""
    keys = list(_KEY.finditer(text))
    fields: dict[str, str] = {}
    for index, match in enumerate(keys):
        end = keys[index + 1].start() if index + 1 < len(keys) else len(text)
        fields[match.group(1)] = unescape_value(text[match.end(): end].rstrip(" "))
    if not keys and text.strip():
        raise ParseError("CEF extension is not a list of key=value pairs")
    return fields


def cef_time(value: str, ctx: ParseContext) -> datetime:
    """``rt``/``start``/``end``: epoch milliseconds, ``MMM dd [yyyy] HH:mm:ss[.SSS] [zzz]`` or ISO 8601."""
    value = value.strip()
    if value.isdigit():
        return from_epoch(value)
    match = _CEF_DATE.fullmatch(value)
    if match:
        month = month_number(match.group(1))
        day, hour, minute, second = (int(match.group(i)) for i in (2, 4, 5, 6))
        if hour > 23 or minute > 59 or second > 59:
            raise ParseError(f"invalid CEF time {value[:40]!r}")
        micro = int((match.group(7) or "0").ljust(6, "0"))
        zone: tzinfo = ctx.timezone
        if match.group(8):
            found = parse_offset(match.group(8))
            if found is None:
                raise ParseError(f"unknown time zone in CEF time {value[:40]!r}")
            zone = found
        if not match.group(3):
            return resolve_yearless(month, day, hour, minute, second, ctx, microsecond=micro, zone=zone)
        try:
            return datetime(int(match.group(3)), month, day, hour, minute, second, micro, tzinfo=zone).astimezone(UTC)
        except ValueError as exc:
            raise ParseError(f"invalid CEF time {value[:40]!r}: {exc}") from None
    return parse_rfc3339(value, ctx)


def convert_value(value: str, kind: str) -> Any:
    """The value as the ECS field holds it, or None when it is not one (kept only in cef.extensions)."""
    if kind == "ip":
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return None
    if kind in ("port", "int"):
        if not value.isdigit() or len(value) > 18:
            return None
        number = int(value)
        return number if kind == "int" or 0 <= number < 65536 else None
    if kind == "lower":
        return value.lower() or None
    if kind == "outcome":
        return _OUTCOMES.get(value.lower())
    return value or None


def severity_number(text: str) -> int | None:
    text = text.strip()
    if text.isdigit() and len(text) <= 3:
        return int(text)
    return _SEVERITY_WORDS.get(text.lower())


def parse_cef_text(text: str, ctx: ParseContext) -> Event:
    """The event a CEF record (text from ``CEF:`` on) describes; @timestamp only when it carries one."""
    if not text.startswith("CEF:"):
        raise ParseError("not CEF: the record does not start with 'CEF:'")
    header: list[str] = []
    position = 4
    for _ in range(7):
        match = _HEADER_FIELD.match(text, position)
        if not match:
            if len(header) == 6 and "|" not in text[position:]:  # no extension and no '|' after the severity
                header.append(text[position:].strip())
                position = len(text)
                break
            raise ParseError(f"not CEF: the header has {len(header)} of its 7 '|'-separated fields")
        header.append(_HEADER_ESCAPE.sub(r"\1", match.group(1)))
        position = match.end()
    version, vendor, product, product_version, signature, name, severity = header
    if not version.strip().isdigit():
        raise ParseError(f"not CEF: version {version[:20]!r} is not a number")
    extensions = parse_extension(text[position:].rstrip("\r\n"))
    event: Event = {
        "event": {"kind": "event", "module": "cef", "dataset": "cef.log", "code": signature},
        "observer": {"vendor": vendor, "product": product, "version": product_version},
        "cef": {"version": version.strip(), "name": name, "severity": severity},
    }
    level = severity_number(severity)
    if level is not None:
        put(event, "event.severity", level)
    put(event, "message", name)
    for key, value in extensions.items():
        spec = _ECS.get(key)
        if spec is not None:
            converted = convert_value(value, spec[1])
            if converted is not None:
                put(event, spec[0], converted)
    for key, field in (("start", "event.start"), ("end", "event.end")):
        if key in extensions:
            try:
                put(event, field, cef_time(extensions[key], ctx))
            except ParseError:
                put(event, "vigil.bad_timestamp", True)
    for key in ("rt", "end", "start"):
        if key in extensions:
            try:
                event["@timestamp"] = cef_time(extensions[key], ctx)
                break
            except ParseError:
                put(event, "vigil.bad_timestamp", True)
    labels = {extensions[key + "Label"]: value for key, value in extensions.items()
              if key + "Label" in extensions and extensions[key + "Label"]}
    put(event, "cef.extensions", extensions)
    if labels:
        put(event, "cef.labels", labels)
    return event


class CefParser:
    """ArcSight CEF records, bare or after a syslog header (the header is skipped: use the syslog parser
    to keep it)."""

    name: ClassVar[str] = "cef"
    description: ClassVar[str] = "ArcSight Common Event Format (CEF)"

    def sniff(self, sample: bytes) -> bool:
        line = sample.split(b"\n", 1)[0][:4096]
        # Only a bare record: one behind a syslog header is the syslog parser's, which keeps the header
        # (sender, facility, severity) and hands this body on.
        if not line.startswith(b"CEF:"):
            return False
        index = 0
        return line[index + 4: index + 5].isdigit() and line.count(b"|") >= 7

    def parse_one(self, raw: bytes, ctx: ParseContext) -> Event:
        text, _ = decode_text(raw)
        index = text.find("CEF:")
        if index < 0:
            raise ParseError("not CEF: no 'CEF:' in the record")
        event = parse_cef_text(text[index:].rstrip("\r\n\x00"), ctx)
        event.setdefault("@timestamp", ctx.received_at.astimezone(UTC))
        keep_original(event, raw, ctx)
        return event
