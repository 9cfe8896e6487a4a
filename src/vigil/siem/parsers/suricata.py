"""Suricata EVE JSON (``eve.json``): alert, dns, http, tls, flow, fileinfo, anomaly, ssh and the rest.

The common fields become ECS (``src_ip`` -> ``source.ip``, ``alert.signature`` -> ``rule.name``,
``dns.rrname`` -> ``dns.question.name``, ``http.hostname`` -> ``url.domain``, ...); ``flow_id`` is kept
as ``suricata.flow_id`` (it is Suricata's own, not a Community ID) and the whole record under
``suricata.eve``. Alerts are ``event.kind: alert``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from vigil.siem.parsers.base import Event, ParseContext, ParseError, keep_original, put
from vigil.siem.parsers.jsoncommon import as_int, as_ip, as_port, json_type, load_object, put_present, to_utc

# event_type -> (event.category, event.type)
CATEGORIES: dict[str, tuple[list[str], list[str]]] = {
    "alert": (["network", "intrusion_detection"], ["info"]),
    "anomaly": (["network"], ["info"]),
    "dns": (["network"], ["protocol"]),
    "http": (["network", "web"], ["protocol"]),
    "tls": (["network"], ["protocol"]),
    "ssh": (["network"], ["protocol"]),
    "flow": (["network"], ["connection"]),
    "netflow": (["network"], ["connection"]),
    "fileinfo": (["file", "network"], ["info"]),
}
ACTIONS = {"allowed": "allowed", "blocked": "denied"}


class SuricataEveParser:
    name: ClassVar[str] = "suricata"
    description: ClassVar[str] = "Suricata EVE JSON (eve.json): alerts, dns, http, tls, flow, fileinfo, anomaly, ssh"

    def sniff(self, sample: bytes) -> bool:
        return sample.lstrip()[:1] == b"{" and b'"event_type"' in sample and b'"timestamp"' in sample

    def parse_one(self, raw: bytes, ctx: ParseContext) -> Event:
        record = load_object(raw)
        event_type = record.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            raise ParseError(f"not a Suricata EVE record: event_type is {json_type(event_type)}, not a name")
        if record.get("timestamp") is None:
            raise ParseError("not a Suricata EVE record: no timestamp")
        try:
            stamp = to_utc(record["timestamp"], ctx.timezone)
        except ParseError as exc:
            raise ParseError(f"Suricata EVE timestamp: {exc}") from None
        event: Event = {"@timestamp": stamp}
        category, types = CATEGORIES.get(event_type, (["network"], ["info"]))
        put(event, "event.kind", "alert" if event_type == "alert" else "event")
        put(event, "event.module", "suricata")
        put(event, "event.dataset", "suricata.eve")
        put(event, "event.category", category)
        put(event, "event.type", types)
        put(event, "event.action", event_type)
        put_present(event, "source.ip", as_ip(record.get("src_ip")))
        put_present(event, "source.port", as_port(record.get("src_port")))
        put_present(event, "destination.ip", as_ip(record.get("dest_ip")))
        put_present(event, "destination.port", as_port(record.get("dest_port")))
        proto = record.get("proto")
        if isinstance(proto, str):
            put_present(event, "network.transport", proto.lower())
        app = record.get("app_proto")
        if isinstance(app, str) and app not in ("failed", "unknown"):
            put_present(event, "network.protocol", app.lower())
        put_present(event, "network.community_id", _text(record.get("community_id")))
        put_present(event, "observer.name", _text(record.get("host")))
        put_present(event, "observer.ingress.interface.name", _text(record.get("in_iface")))
        put_present(event, "suricata.flow_id", as_int(record.get("flow_id")))
        put(event, "suricata.eve", record)
        _alert(event, record.get("alert"))
        _dns(event, record.get("dns"))
        _http(event, record.get("http"))
        _tls(event, record.get("tls"))
        _files(event, record.get("fileinfo"))
        _flow(event, record.get("flow"))
        keep_original(event, raw, ctx)
        return event


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _section(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _alert(event: Event, value: Any) -> None:
    alert = _section(value)
    if not alert:
        return
    signature = _text(alert.get("signature"))
    put_present(event, "rule.name", signature)
    signature_id = as_int(alert.get("signature_id"))
    put_present(event, "rule.id", None if signature_id is None else str(signature_id))
    put_present(event, "rule.category", _text(alert.get("category")))
    put_present(event, "event.severity", as_int(alert.get("severity")))
    put_present(event, "message", signature)
    action = ACTIONS.get(str(alert.get("action")))
    if action is not None:
        put(event, "event.type", ["info", action])


def _dns(event: Event, value: Any) -> None:
    dns = _section(value)
    if not dns:
        return
    name = _text(dns.get("rrname"))
    rrtype = _text(dns.get("rrtype"))
    queries = dns.get("queries")  # Suricata 7+ (EVE dns v3): requests list their queries
    if name is None and isinstance(queries, list) and queries and isinstance(queries[0], dict):
        name = _text(queries[0].get("rrname"))
        rrtype = _text(queries[0].get("rrtype"))
    put_present(event, "dns.question.name", name)
    put_present(event, "dns.question.type", rrtype)
    put_present(event, "dns.response_code", _text(dns.get("rcode")))
    put_present(event, "dns.id", as_int(dns.get("id")))
    kind = dns.get("type")
    if kind in ("query", "request"):
        put(event, "dns.type", "query")
    elif kind in ("answer", "response"):
        put(event, "dns.type", "answer")


def _http(event: Event, value: Any) -> None:
    http = _section(value)
    if not http:
        return
    put_present(event, "url.domain", _text(http.get("hostname")))
    put_present(event, "url.original", _text(http.get("url")))
    put_present(event, "http.request.method", _text(http.get("http_method")))
    put_present(event, "http.request.referrer", _text(http.get("http_refer")))
    put_present(event, "http.response.status_code", as_int(http.get("status")))
    put_present(event, "http.response.body.bytes", as_int(http.get("length")))
    put_present(event, "user_agent.original", _text(http.get("http_user_agent")))
    protocol = _text(http.get("protocol"))
    if protocol is not None and protocol.upper().startswith("HTTP/"):
        put(event, "http.version", protocol[5:])


def _tls(event: Event, value: Any) -> None:
    tls = _section(value)
    if not tls:
        return
    put_present(event, "tls.client.server_name", _text(tls.get("sni")))
    put_present(event, "tls.server.subject", _text(tls.get("subject")))
    put_present(event, "tls.server.issuer", _text(tls.get("issuerdn")))
    put_present(event, "tls.server.hash.sha1", _text(tls.get("fingerprint")))
    version = _text(tls.get("version"))
    if version is not None and " " in version:
        protocol, _, number = version.partition(" ")
        put(event, "tls.version_protocol", protocol.lower())
        put(event, "tls.version", number)
    ja3 = _section(tls.get("ja3"))
    put_present(event, "tls.client.ja3", _text(ja3.get("hash")))


def _files(event: Event, value: Any) -> None:
    info = _section(value)
    if not info:
        return
    name = _text(info.get("filename"))
    put_present(event, "file.path", name)
    if name is not None:
        put(event, "file.name", name.rsplit("/", 1)[-1])
    put_present(event, "file.size", as_int(info.get("size")))
    for algorithm in ("md5", "sha1", "sha256"):
        put_present(event, f"file.hash.{algorithm}", _text(info.get(algorithm)))


def _flow(event: Event, value: Any) -> None:
    flow = _section(value)
    if not flow:
        return
    put_present(event, "source.packets", as_int(flow.get("pkts_toserver")))
    put_present(event, "source.bytes", as_int(flow.get("bytes_toserver")))
    put_present(event, "destination.packets", as_int(flow.get("pkts_toclient")))
    put_present(event, "destination.bytes", as_int(flow.get("bytes_toclient")))
