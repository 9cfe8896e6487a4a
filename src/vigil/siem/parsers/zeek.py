"""Zeek logs written as JSON (``LogAscii::use_json=T``): conn, dns, http, ssl, files, notice, x509, ssh, ...

The log type comes from a ``_path`` field when the shipper adds one, else from the fields the record
carries (``conn_state`` is conn, ``query`` is dns, ...); it names the dataset (``zeek.conn``) and the
whole record is kept, dotted names nested (``id.orig_h`` -> ``id.orig_h`` under ``id``), under
``zeek.<type>``. ``ts`` (epoch seconds, or ISO 8601 with ``LogAscii::json_timestamps``) is
``@timestamp``; the common fields become ECS.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from vigil.siem.parsers.base import Event, ParseContext, ParseError, keep_original, put
from vigil.siem.parsers.jsoncommon import as_int, as_ip, as_port, expand_dotted, load_object, put_present, to_utc

# Fields that give a log type away, checked in this order (the first match wins).
SIGNATURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("notice", ("note",)),
    ("x509", ("certificate.subject", "certificate.serial", "san.dns")),
    ("files", ("fuid", "mime_type")),
    ("conn", ("conn_state", "orig_bytes", "history")),
    ("dns", ("query", "qtype_name", "rcode_name", "trans_id")),
    ("http", ("method", "status_code", "request_body_len")),
    ("ssl", ("server_name", "ssl_history", "cipher", "validation_status")),
    ("ssh", ("auth_success", "auth_attempts", "host_key")),
    ("weird", ("name", "addl")),
)
CATEGORIES: dict[str, tuple[list[str], list[str]]] = {
    "conn": (["network"], ["connection"]),
    "dns": (["network"], ["protocol"]),
    "http": (["network", "web"], ["protocol"]),
    "ssl": (["network"], ["protocol"]),
    "ssh": (["network"], ["protocol"]),
    "files": (["file"], ["info"]),
    "notice": (["network", "intrusion_detection"], ["info"]),
    "x509": (["network"], ["info"]),
}
_TYPE_NAME = re.compile(r"^[a-z0-9_]{1,64}$")


def log_type(record: dict[str, Any]) -> str:
    path = record.get("_path")
    if isinstance(path, str) and _TYPE_NAME.match(path):
        return path
    for name, fields in SIGNATURES:
        if any(field in record for field in fields):
            return name
    return "unknown"


class ZeekJsonParser:
    name: ClassVar[str] = "zeek"
    description: ClassVar[str] = "Zeek logs as JSON (conn, dns, http, ssl, files, notice, x509, ...)"

    def sniff(self, sample: bytes) -> bool:
        if sample.lstrip()[:1] != b"{" or b'"ts"' not in sample:
            return False
        return any(marker in sample for marker in (b'"uid"', b'"_path"', b'"id.orig_h"', b'"fuid"'))

    def parse_one(self, raw: bytes, ctx: ParseContext) -> Event:
        record = load_object(raw)
        if record.get("ts") is None:
            raise ParseError("not a Zeek log record: no ts")
        if not any(key in record for key in ("uid", "_path", "id.orig_h", "fuid", "id")):
            raise ParseError("not a Zeek log record: none of uid, id.orig_h, fuid, _path")
        try:
            stamp = to_utc(record["ts"], ctx.timezone)
        except ParseError as exc:
            raise ParseError(f"Zeek ts: {exc}") from None
        kind = log_type(record)
        flat = dict(record)
        event: Event = {"@timestamp": stamp}
        category, types = CATEGORIES.get(kind, (["network"], ["info"]))
        put(event, "event.kind", "alert" if kind == "notice" else "event")
        put(event, "event.module", "zeek")
        put(event, "event.dataset", f"zeek.{kind}")
        put(event, "event.category", category)
        put(event, "event.type", types)
        put_present(event, "event.id", _text(flat.get("uid")))
        put_present(event, "source.ip", as_ip(flat.get("id.orig_h")))
        put_present(event, "source.port", as_port(flat.get("id.orig_p")))
        put_present(event, "destination.ip", as_ip(flat.get("id.resp_h")))
        put_present(event, "destination.port", as_port(flat.get("id.resp_p")))
        proto = _text(flat.get("proto"))
        put_present(event, "network.transport", proto.lower() if proto else None)
        put_present(event, "network.community_id", _text(flat.get("community_id")))
        _MAPPERS.get(kind, _nothing)(event, flat)
        put(event, f"zeek.{kind}", expand_dotted(record))
        keep_original(event, raw, ctx)
        return event


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value and value != "-" else None


def _nothing(event: Event, record: dict[str, Any]) -> None:
    return None


def _conn(event: Event, record: dict[str, Any]) -> None:
    put_present(event, "network.protocol", _text(record.get("service")))
    put_present(event, "source.bytes", as_int(record.get("orig_bytes")))
    put_present(event, "source.packets", as_int(record.get("orig_pkts")))
    put_present(event, "destination.bytes", as_int(record.get("resp_bytes")))
    put_present(event, "destination.packets", as_int(record.get("resp_pkts")))
    duration = record.get("duration")
    if isinstance(duration, int | float) and not isinstance(duration, bool) and 0 <= duration < 10**9:
        put(event, "event.duration", int(duration * 1_000_000_000))


def _dns(event: Event, record: dict[str, Any]) -> None:
    put(event, "network.protocol", "dns")
    put_present(event, "dns.question.name", _text(record.get("query")))
    put_present(event, "dns.question.type", _text(record.get("qtype_name")))
    put_present(event, "dns.response_code", _text(record.get("rcode_name")))
    put_present(event, "dns.id", as_int(record.get("trans_id")))
    answers = record.get("answers")
    if isinstance(answers, list) and answers:
        put(event, "dns.answers", [{"data": str(answer)} for answer in answers])
        put(event, "dns.resolved_ip", [ip for ip in (as_ip(answer) for answer in answers) if ip])


def _http(event: Event, record: dict[str, Any]) -> None:
    put(event, "network.protocol", "http")
    put_present(event, "url.domain", _text(record.get("host")))
    uri = _text(record.get("uri"))
    put_present(event, "url.original", uri)
    put_present(event, "url.path", uri.split("?", 1)[0] if uri else None)
    put_present(event, "http.request.method", _text(record.get("method")))
    put_present(event, "http.request.referrer", _text(record.get("referrer")))
    put_present(event, "http.response.status_code", as_int(record.get("status_code")))
    put_present(event, "http.version", _text(record.get("version")))
    put_present(event, "user_agent.original", _text(record.get("user_agent")))


def _ssl(event: Event, record: dict[str, Any]) -> None:
    put(event, "network.protocol", "tls")
    put_present(event, "tls.client.server_name", _text(record.get("server_name")))
    put_present(event, "tls.server.subject", _text(record.get("subject")))
    put_present(event, "tls.server.issuer", _text(record.get("issuer")))
    established = record.get("established")
    if isinstance(established, bool):
        put(event, "tls.established", established)
    version = _text(record.get("version"))
    if version is not None and version.startswith("TLSv"):
        number = version[4:]  # Zeek writes TLSv12 for 1.2
        put(event, "tls.version_protocol", "tls")
        put(event, "tls.version", f"{number[0]}.{number[1:]}" if number.isdigit() and len(number) == 2 else number)


def _files(event: Event, record: dict[str, Any]) -> None:
    put_present(event, "file.name", _text(record.get("filename")))
    put_present(event, "file.mime_type", _text(record.get("mime_type")))
    put_present(event, "file.size", as_int(record.get("total_bytes")) or as_int(record.get("seen_bytes")))
    for algorithm in ("md5", "sha1", "sha256"):
        put_present(event, f"file.hash.{algorithm}", _text(record.get(algorithm)))


def _notice(event: Event, record: dict[str, Any]) -> None:
    put_present(event, "rule.name", _text(record.get("note")))
    put_present(event, "message", _text(record.get("msg")))
    put_present(event, "source.ip", as_ip(record.get("src")))
    put_present(event, "destination.ip", as_ip(record.get("dst")))
    put_present(event, "destination.port", as_port(record.get("p")))


def _x509(event: Event, record: dict[str, Any]) -> None:
    put_present(event, "x509.subject.distinguished_name", _text(record.get("certificate.subject")))
    put_present(event, "x509.issuer.distinguished_name", _text(record.get("certificate.issuer")))
    put_present(event, "x509.serial_number", _text(record.get("certificate.serial")))
    names = record.get("san.dns")
    if isinstance(names, list):
        put(event, "x509.alternative_names", [str(name) for name in names])


_MAPPERS = {
    "conn": _conn, "dns": _dns, "http": _http, "ssl": _ssl, "files": _files, "notice": _notice, "x509": _x509,
}
