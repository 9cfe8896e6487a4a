"""Syslog records: RFC 5424 (``<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG``) and RFC 3164 / BSD
(``<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG``, also the ISO stamps rsyslog writes and lines without PRI
as in /var/log files), chosen by the header.

PRI becomes ``log.syslog.facility`` (names as rsyslog writes them: ``auth``, ``local7``) and
``log.syslog.severity`` (``error``, ``informational``...). A CEF or LEEF body is handed to those parsers
and the syslog header kept; sshd/sudo/su/useradd... messages get the auth analysis of ``linux_auth``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import ClassVar

from vigil.siem.parsers.base import Event, ParseContext, ParseError, decode_text, keep_original, put
from vigil.siem.parsers.cef import parse_cef_text
from vigil.siem.parsers.leef import parse_leef_text
from vigil.siem.parsers.linux_auth import AUTH_PROGRAMS, analyse_auth_message, split_tag
from vigil.siem.parsers.timeparse import parse_bsd_stamp, parse_rfc3339

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
    "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
    "local7",
)
SEVERITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")

_PRI = re.compile(r"<(\d{1,3})>")
# <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID, then the structured data.
_RECORD_5424 = re.compile(r"<(\d{1,3})>([1-9]\d{0,2}) (\S+) (\S+) (\S+) (\S+) (\S+)(?: |$)")
_SD_NAME = re.compile(r'[^\s=\]"]{1,64}')
# A PARAM-VALUE up to its closing quote: a backslash pairs with the character after it (so \" does not end it).
_SD_VALUE = re.compile(r'((?:[^"\\]|\\.)*)"', re.DOTALL)
_SD_ESCAPE = re.compile(r'\\(["\\\]])')  # only \", \\ and \] are escapes (RFC 5424 §6.3.3)
_SD_SIMPLE_ELEMENT = re.compile(r'\[([^\s=\]"]{1,64})((?: [^\s=\]"]{1,64}="[^"\\]*")*)\]')
_SD_SIMPLE_PARAM = re.compile(r' ([^\s=\]"]{1,64})="([^"\\]*)"')
_NIL = "-"


def parse_structured_data(text: str) -> tuple[dict[str, dict[str, str]] | None, str]:
    """RFC 5424 STRUCTURED-DATA at the start of ``text``: ({SD-ID: {param: value}} or None for ``-``, the rest).

    Values unescape ``\\"``, ``\\\\`` and ``\\]``; any other backslash stays as written (RFC 5424 §6.3.3)."""
    if text.startswith(_NIL):
        return None, text[1:]
    elements: dict[str, dict[str, str]] = {}
    # Fast path: elements without escapes, each matched whole by one expression (most senders write these).
    position = 0
    while (simple := _SD_SIMPLE_ELEMENT.match(text, position)) is not None:
        params = elements.setdefault(simple.group(1), {})
        params.update(_SD_SIMPLE_PARAM.findall(simple.group(2)))
        position = simple.end()
    if position and (position == len(text) or text[position] != "["):
        return elements, text[position:]
    while position < len(text) and text[position] == "[":
        match = _SD_NAME.match(text, position + 1)
        if not match:
            raise ParseError(f"structured data element without an SD-ID at {position}")
        params = elements.setdefault(match.group(0), {})
        position = match.end()
        while True:
            if position >= len(text):
                raise ParseError("structured data element is not closed with ']'")
            if text[position] == "]":
                position += 1
                break
            if text[position] != " ":
                raise ParseError(f"unexpected {text[position]!r} in structured data at {position}")
            name = _SD_NAME.match(text, position + 1)
            if not name or text[name.end(): name.end() + 2] != '="':
                raise ParseError(f'structured data parameter is not name="value" at {position + 1}')
            value = _SD_VALUE.match(text, name.end() + 2)
            if not value:
                raise ParseError(f"structured data value of {name.group(0)!r} has no closing quote")
            raw = value.group(1)
            params[name.group(0)] = _SD_ESCAPE.sub(r"\1", raw) if "\\" in raw else raw
            position = value.end()
    if not elements:
        raise ParseError("RFC 5424 record without STRUCTURED-DATA ('-' or '[...]') after MSGID")
    return elements, text[position:]


def _priority(event: Event, value: int) -> None:
    facility, severity = divmod(value, 8)
    event["log"] = {"syslog": {
        "priority": value,
        "facility": {"code": facility, "name": FACILITIES[facility]},
        "severity": {"code": severity, "name": SEVERITIES[severity]},
    }}
    event["event"]["severity"] = severity


def _process(event: Event, program: str | None, pid: str | int | None) -> None:
    # Direct dict writes, not ``put``: this runs for every syslog record, and these objects are the parser's own.
    syslog = event.setdefault("log", {}).setdefault("syslog", {})
    if program:
        event.setdefault("process", {})["name"] = program
        syslog["appname"] = program
    if pid is not None:
        syslog["procid"] = str(pid)
        if isinstance(pid, int) or pid.isdigit():
            number = int(pid)
            if number < 2**63:
                event.setdefault("process", {})["pid"] = number


def _fill_missing(target: Event, source: Event) -> None:
    """Add ``source``'s fields that ``target`` lacks, object by object."""
    for key, value in source.items():
        if key not in target:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            _fill_missing(target[key], value)


def _body(event: Event, message: str, ctx: ParseContext) -> None:
    """The message: CEF/LEEF bodies parsed and merged (header fields kept), auth messages analysed."""
    embedded: Event | None = None
    try:
        if message.startswith("CEF:"):
            embedded = parse_cef_text(message, ctx)
        elif message.startswith("LEEF:"):
            embedded = parse_leef_text(message, ctx)
    except ParseError as exc:  # a broken CEF/LEEF body is still a syslog message: kept, with the reason
        put(event, "vigil.parse_warning", str(exc))
    if embedded is not None:
        header = dict(event)
        header.pop("event", None)  # the embedded record says what the event is (cef/leef module, severity)
        event.clear()
        event.update(embedded)
        _fill_missing(event, header)
        event.setdefault("message", message)
        return
    put(event, "message", message)
    program = event.get("process", {}).get("name")
    if program in AUTH_PROGRAMS and analyse_auth_message(program, message, event):
        put(event, "event.dataset", "system.auth")


def _parse_5424(raw: bytes, text: str, header: re.Match[str], ctx: ParseContext) -> Event:
    """An RFC 5424 record, its header matched by ``_RECORD_5424``; built in one go (the common case is
    the hot path of syslog ingestion)."""
    pri, version, stamp, host, app, procid, msgid = header.groups()
    value = int(pri)
    if value > 191:
        raise ParseError(f"syslog PRI <{value}> is out of range (0-191)")
    facility, severity = divmod(value, 8)
    syslog: Event = {
        "priority": value,
        "facility": {"code": facility, "name": FACILITIES[facility]},
        "severity": {"code": severity, "name": SEVERITIES[severity]},
        "version": version,
    }
    event: Event = {
        "event": {"kind": "event", "module": "system", "dataset": "system.syslog", "severity": severity},
        "log": {"syslog": syslog},
        "@timestamp": ctx.received_at.astimezone(UTC) if stamp == _NIL else parse_rfc3339(stamp, ctx),
    }
    if host != _NIL:
        event["host"] = {"hostname": host}
        syslog["hostname"] = host
    _process(event, None if app == _NIL else app, None if procid == _NIL else procid)
    if msgid != _NIL:
        syslog["msgid"] = msgid
    rest = text[header.end():]
    if not rest:
        raise ParseError("RFC 5424 record without STRUCTURED-DATA ('-' or '[...]') after MSGID")
    structured, rest = parse_structured_data(rest)
    if structured:
        syslog["structured_data"] = structured
    if rest and not rest.startswith(" "):
        raise ParseError("RFC 5424 STRUCTURED-DATA must be followed by a space and the message")
    _body(event, rest[1:].removeprefix("\ufeff"), ctx)
    keep_original(event, raw, ctx)
    return event


def _parse_3164(event: Event, text: str, ctx: ParseContext, has_pri: bool) -> None:
    head = parse_bsd_stamp(text, ctx)
    if head is None:
        if not has_pri:
            raise ParseError("not syslog: no <PRI> and no 'Mmm dd hh:mm:ss' or ISO timestamp at the start")
        event["@timestamp"] = ctx.received_at.astimezone(UTC)  # RFC 3164 §4.3.3: a relay uses its own time
        rest = text
    else:
        event["@timestamp"], rest = head
        host, sep, after = rest.partition(" ")
        if sep and host and not host.startswith(("CEF:", "LEEF:")) and not host.endswith(":") and "[" not in host:
            put(event, "host.hostname", host)
            put(event, "log.syslog.hostname", host)
            rest = after
    if rest.startswith(("CEF:", "LEEF:")):
        _body(event, rest, ctx)
        return
    program, pid, message = split_tag(rest)
    _process(event, program, pid)
    _body(event, message, ctx)


class SyslogParser:
    """RFC 5424 and RFC 3164 syslog records, with CEF/LEEF bodies and auth messages understood."""

    name: ClassVar[str] = "syslog"
    description: ClassVar[str] = "Syslog (RFC 3164 and RFC 5424 with structured data; CEF/LEEF over syslog)"

    def sniff(self, sample: bytes) -> bool:
        line = sample.split(b"\n", 1)[0][:2048]
        text, _ = decode_text(line.rstrip(b"\r"))
        pri = _PRI.match(text)
        if pri:
            return int(pri.group(1)) <= 191 and text[pri.end(): pri.end() + 1] not in ("", "{", "[")
        try:
            head = parse_bsd_stamp(text, ParseContext())
        except ParseError:
            return False
        return head is not None and " " in head[1].strip()

    def parse_one(self, raw: bytes, ctx: ParseContext) -> Event:
        text, _ = decode_text(raw)
        text = text.rstrip("\r\n\x00")
        header = _RECORD_5424.match(text)
        if header:
            return _parse_5424(raw, text, header, ctx)
        event: Event = {"event": {"kind": "event", "module": "system", "dataset": "system.syslog"}}
        pri = _PRI.match(text)
        if pri:
            value = int(pri.group(1))
            if value > 191:
                raise ParseError(f"syslog PRI <{value}> is out of range (0-191)")
            _priority(event, value)
            text = text[pri.end():]
        _parse_3164(event, text, ctx, has_pri=pri is not None)
        if isinstance(event.get("@timestamp"), datetime):
            keep_original(event, raw, ctx)
            return event
        raise ParseError("syslog record without a usable timestamp")
