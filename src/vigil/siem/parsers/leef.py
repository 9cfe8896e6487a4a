"""IBM QRadar Log Event Extended Format: ``LEEF:1.0|Vendor|Product|Version|EventID|attr=val<TAB>...``
and ``LEEF:2.0|Vendor|Product|Version|EventID|Delimiter|attr=val<D>...`` (the delimiter one character,
or its hex code such as ``x09``/``0x5E``). Attributes map to ECS as CEF's do; all are kept under
``leef.attributes``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import ClassVar

from vigil.siem.parsers.base import Event, ParseContext, ParseError, decode_text, keep_original, put
from vigil.siem.parsers.cef import cef_time, convert_value, severity_number
from vigil.siem.parsers.timeparse import from_epoch, parse_offset, resolve_yearless

_HEX_DELIMITER = re.compile(r"(?:0?[xX])([0-9A-Fa-f]{2,4})")

_ECS: dict[str, tuple[str, str]] = {
    "src": ("source.ip", "ip"), "dst": ("destination.ip", "ip"),
    "srcPort": ("source.port", "port"), "dstPort": ("destination.port", "port"),
    "srcMAC": ("source.mac", "text"), "dstMAC": ("destination.mac", "text"),
    "srcPostNAT": ("source.nat.ip", "ip"), "dstPostNAT": ("destination.nat.ip", "ip"),
    "usrName": ("user.name", "text"), "accountName": ("user.name", "text"), "domain": ("user.domain", "text"),
    "identHostName": ("host.hostname", "text"), "identSrc": ("host.ip", "ip"),
    "proto": ("network.transport", "lower"),
    "srcBytes": ("source.bytes", "int"), "dstBytes": ("destination.bytes", "int"),
    "srcPackets": ("source.packets", "int"), "dstPackets": ("destination.packets", "int"),
    "totalPackets": ("network.packets", "int"),
    "url": ("url.original", "text"), "action": ("event.action", "text"), "msg": ("message", "text"),
    "resource": ("url.domain", "text"), "policy": ("rule.name", "text"), "cat": ("leef.category", "text"),
    "vSrc": ("source.address", "text"),
}

# Java SimpleDateFormat tokens (devTimeFormat) -> strptime directives.
_JAVA_TOKENS = re.compile(r"'[^']*'|y+|M+|d+|H+|h+|m+|s+|S+|a+|Z+|X+|z+|E+|[^A-Za-z']+|[A-Za-z]")
_JAVA_TO_STRPTIME = {"yyyy": "%Y", "yy": "%y", "MMM": "%b", "MM": "%m", "M": "%m", "dd": "%d", "d": "%d",
                     "HH": "%H", "H": "%H", "hh": "%I", "h": "%I", "mm": "%M", "ss": "%S", "a": "%p",
                     "Z": "%z", "ZZ": "%z", "X": "%z", "XX": "%z", "XXX": "%z", "EEE": "%a", "EEEE": "%A"}


def _java_format(pattern: str) -> tuple[str, bool]:
    """A devTimeFormat as a strptime format, and whether it ends with a zone name (``z``)."""
    parts: list[str] = []
    zone_name = False
    for token in _JAVA_TOKENS.findall(pattern):
        if token.startswith("'"):
            parts.append(token.strip("'").replace("%", "%%") or "'")
        elif token[0] == "S":
            parts.append("%f")
        elif token[0] == "z":
            zone_name = True
        elif token[0].isalpha():
            directive = _JAVA_TO_STRPTIME.get(token)
            if directive is None:
                raise ParseError(f"unsupported devTimeFormat element {token!r}")
            parts.append(directive)
        else:
            parts.append(token.replace("%", "%%"))
    return "".join(parts).rstrip(), zone_name


def leef_time(value: str, pattern: str | None, ctx: ParseContext) -> datetime:
    """devTime: with its devTimeFormat when given, else epoch (ms) or the formats CEF uses."""
    value = value.strip()
    if not pattern:
        if value.isdigit():
            return from_epoch(value)
        return cef_time(value, ctx)
    fmt, zone_name = _java_format(pattern)
    zone = None
    if zone_name:
        value, _, name = value.rpartition(" ")
        zone = parse_offset(name)
        if zone is None:
            raise ParseError(f"unknown time zone {name[:40]!r} in devTime")
    try:
        stamp = datetime.strptime(value, fmt)
    except (ValueError, re.error) as exc:  # re.error: a format naming a field twice
        raise ParseError(f"devTime {value[:40]!r} does not match devTimeFormat {pattern[:40]!r}: {exc}") from None
    if "%Y" not in fmt and "%y" not in fmt:
        return resolve_yearless(stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second, ctx,
                                microsecond=stamp.microsecond, zone=stamp.tzinfo or zone)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=zone or ctx.timezone)
    return stamp.astimezone(UTC)


def _delimiter(field: str) -> str:
    if field == "":
        return "\t"
    if len(field) == 1:
        return field
    match = _HEX_DELIMITER.fullmatch(field)
    if match:
        code = int(match.group(1), 16)
        if 0 < code < 0x110000:
            return chr(code)
    raise ParseError(f"LEEF 2.0 delimiter {field[:10]!r} is neither one character nor a hex code like x09")


def parse_leef_text(text: str, ctx: ParseContext) -> Event:
    """The event a LEEF record (text from ``LEEF:`` on) describes; @timestamp only when devTime is given."""
    if not text.startswith("LEEF:"):
        raise ParseError("not LEEF: the record does not start with 'LEEF:'")
    parts = text[5:].split("|", 5)
    if len(parts) < 5:
        raise ParseError(f"not LEEF: the header has {len(parts)} of its 5 '|'-separated fields")
    version = parts[0].strip()
    if version.startswith("2"):
        rest = parts[5] if len(parts) > 5 else ""
        delimiter_field, sep, body = rest.partition("|")
        if not sep:  # some senders omit the delimiter field: attributes follow the event id directly
            delimiter, body = "\t", rest
        else:
            delimiter = _delimiter(delimiter_field)
    elif version.startswith("1"):
        delimiter = "\t"
        body = "|".join(parts[5:]) if len(parts) > 5 else ""
    else:
        raise ParseError(f"not LEEF: unknown version {version[:10]!r}")
    vendor, product, product_version, event_id = parts[1:5]
    attributes: dict[str, str] = {}
    for pair in body.rstrip("\r\n").split(delimiter):
        if not pair.strip():
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ParseError(f"LEEF attribute {pair[:40]!r} is not key=value")
        attributes[key.strip()] = value
    event: Event = {}
    put(event, "event.kind", "event")
    put(event, "event.module", "leef")
    put(event, "event.dataset", "leef.log")
    put(event, "observer.vendor", vendor)
    put(event, "observer.product", product)
    put(event, "observer.version", product_version)
    put(event, "event.code", event_id)
    put(event, "leef.version", version)
    for key, value in attributes.items():
        spec = _ECS.get(key)
        if spec is not None:
            converted = convert_value(value, spec[1])
            if converted is not None:
                put(event, spec[0], converted)
    if "sev" in attributes:
        level = severity_number(attributes["sev"])
        if level is not None:
            put(event, "event.severity", level)
    if "devTime" in attributes:
        try:
            event["@timestamp"] = leef_time(attributes["devTime"], attributes.get("devTimeFormat"), ctx)
        except ParseError:
            put(event, "vigil.bad_timestamp", True)
    put(event, "leef.attributes", attributes)
    return event


class LeefParser:
    """LEEF 1.0/2.0 records, bare or after a syslog header (skipped; the syslog parser keeps it)."""

    name: ClassVar[str] = "leef"
    description: ClassVar[str] = "IBM QRadar Log Event Extended Format (LEEF 1.0 and 2.0)"

    def sniff(self, sample: bytes) -> bool:
        line = sample.split(b"\n", 1)[0][:4096]
        # Only a bare record: one behind a syslog header is the syslog parser's, which keeps the header
        # (sender, facility, severity) and hands this body on.
        if not line.startswith(b"LEEF:"):
            return False
        index = 0
        return line[index + 5: index + 6] in (b"1", b"2") and line.count(b"|") >= 5

    def parse_one(self, raw: bytes, ctx: ParseContext) -> Event:
        text, _ = decode_text(raw)
        index = text.find("LEEF:")
        if index < 0:
            raise ParseError("not LEEF: no 'LEEF:' in the record")
        event = parse_leef_text(text[index:].rstrip("\r\n\x00"), ctx)
        event.setdefault("@timestamp", ctx.received_at.astimezone(UTC))
        keep_original(event, raw, ctx)
        return event
