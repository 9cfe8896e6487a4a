"""Where Sigma rules for non-Windows log sources find Vigil's events: one ``SourceMapping`` per log source.

Vigil's parsers write ECS-shaped events (``vigil.siem.parsers``); SigmaHQ rules name their sources
(``product: linux``, ``service: sshd``, ``category: webserver``, ``product: zeek``) and the source's own
field names (``cs-uri-query``, ``query``, ``USER``). A mapping says which events a source is (its
``conditions``, ANDed to the rule's detection) and where each Sigma field is in them (``fields``). The
compiler turns each into a pySigma processing pipeline; Windows sources are mapped by pySigma's own
pipelines, not here.

Matching a rule's log source works like pySigma's ``LogsourceCondition``: a mapping's ``None`` product,
category or service matches any value of the rule's. The table is written so that every mapping
matching a rule agrees with the more specific ones: a ``service: sshd`` rule meets both ``linux`` and
``linux-sshd``, whose conditions hold together for sshd's events, and whose field names do not
collide. A compiler may therefore AND every matching mapping (as one pySigma pipeline holding all their
items would) or use the most specific ones; it must not OR them as alternatives, or a product-wide
mapping (``linux``, ``zeek``) would widen every service's rules to the whole product.

Fields a mapping does not name are looked up as the rule writes them (a top-level key, then a dotted
path), so rules may name ECS fields directly (``source.ip``, ``url.original``, ``process.command_line``).
Keyword selections search every value of the event (``message``, ``event.original`` included).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class SourceMapping:
    """How rules of one Sigma log source find Vigil's events."""

    name: str
    # Matched like pySigma's LogsourceCondition: None matches any value of the rule's log source.
    product: str | None = None
    category: str | None = None
    service: str | None = None
    # Event field (dotted ECS path) -> required value (a tuple: any of them); ANDed to the rule.
    conditions: Mapping[str, str | int | tuple[str | int, ...]] = field(default_factory=dict)
    # Sigma field name -> event field (dotted).
    fields: Mapping[str, str] = field(default_factory=dict)


def _native(prefix: str, names: Iterable[str]) -> dict[str, str]:
    """Native field names kept whole under ``prefix`` by the parser (``query`` -> ``zeek.dns.query``)."""
    return {name: f"{prefix}.{name}" for name in names}


# --- Linux: auth.log / secure and syslog (parsers linux_auth and syslog) -------------------------------

# Programs that write the authentication log (auth.log on Debian, secure on Red Hat).
AUTH_LOG_PROGRAMS = (
    "sshd", "sshd-session", "sudo", "su", "login", "systemd-logind", "useradd", "userdel", "usermod", "groupadd",
    "groupdel", "groupmod", "gpasswd", "passwd", "chpasswd", "chage", "chsh", "chfn", "newgrp", "unix_chkpwd",
    "pkexec", "polkitd", "gdm-password", "CRON", "cron", "crond", "doas",
)
_LINUX = {"event.module": "system"}
# sudo's log line: ``deploy : TTY=pts/1 ; PWD=/home/deploy ; USER=root ; COMMAND=/bin/bash``.
_SUDO_FIELDS = {
    "USER": "user.target.name",
    "COMMAND": "process.command_line",
    "PWD": "process.working_directory",
    "TTY": "process.tty.name",
}

LINUX = (
    SourceMapping("linux", product="linux", conditions=_LINUX),
    SourceMapping("linux-syslog", product="linux", service="syslog", conditions=_LINUX),
    SourceMapping("linux-auth", product="linux", service="auth",
                  conditions={**_LINUX, "process.name": AUTH_LOG_PROGRAMS}, fields=_SUDO_FIELDS),
    SourceMapping("linux-sshd", product="linux", service="sshd",
                  conditions={**_LINUX, "process.name": ("sshd", "sshd-session")}),
    SourceMapping("linux-sudo", product="linux", service="sudo",
                  conditions={**_LINUX, "process.name": "sudo"}, fields=_SUDO_FIELDS),
    SourceMapping("linux-su", product="linux", service="su", conditions={**_LINUX, "process.name": "su"}),
    SourceMapping("linux-cron", product="linux", service="cron",
                  conditions={**_LINUX, "process.name": ("CRON", "cron", "crond")}),
    SourceMapping("linux-vsftpd", product="linux", service="vsftpd", conditions={**_LINUX, "process.name": "vsftpd"}),
    SourceMapping("linux-clamav", product="linux", service="clamav",
                  conditions={**_LINUX, "process.name": ("clamd", "freshclam", "clamscan")}),
    SourceMapping("linux-guacamole", product="linux", service="guacamole",
                  conditions={**_LINUX, "process.name": ("guacd", "guacamole")}),
)

# --- Web servers: nginx and Apache access logs (parser web_access) -------------------------------------

# W3C extended log names, as SigmaHQ's webserver and proxy rules write them, to the access-log event.
# SigmaHQ's ``cs-uri-query`` rules look for path patterns too (``/../../``), so it is the whole URI as
# requested, query included, percent-encoding kept; ``c-uri-query`` is the query alone.
W3C_FIELDS = MappingProxyType({
    "c-ip": "source.ip",
    "cs-username": "user.name",
    "s-ip": "destination.ip",
    "s-port": "destination.port",
    "cs-method": "http.request.method",
    "cs-uri": "url.original",
    "cs-uri-stem": "url.path",
    "cs-uri-query": "url.original",
    "c-uri": "url.original",
    "c-uri-stem": "url.path",
    "c-uri-query": "url.query",
    "c-uri-extension": "url.extension",
    "sc-status": "http.response.status_code",
    "sc-bytes": "http.response.body.bytes",
    "cs-bytes": "http.request.bytes",
    "cs-version": "http.version",
    "cs-host": "url.domain",
    "cs-user-agent": "user_agent.original",
    "c-useragent": "user_agent.original",
    "cs(User-Agent)": "user_agent.original",
    "cs-referer": "http.request.referrer",
    "cs-referrer": "http.request.referrer",
    "cs(Referer)": "http.request.referrer",
    "cs-content-type": "http.request.mime_type",
    "r-dns": "url.domain",
    "src_ip": "source.ip",
    "dst_ip": "destination.ip",
})
_ACCESS_LOG = {"event.dataset": "web.access"}

WEB = (
    SourceMapping("webserver", category="webserver", conditions=_ACCESS_LOG, fields=W3C_FIELDS),
    SourceMapping("nginx", product="nginx", conditions=_ACCESS_LOG, fields=W3C_FIELDS),
    SourceMapping("nginx-service", service="nginx", conditions=_ACCESS_LOG, fields=W3C_FIELDS),
    SourceMapping("apache", product="apache", conditions=_ACCESS_LOG, fields=W3C_FIELDS),
    SourceMapping("apache-service", service="apache", conditions=_ACCESS_LOG, fields=W3C_FIELDS),
)

# --- Zeek (parser zeek: the whole record kept under zeek.<log>, dotted names nested) --------------------

_ZEEK_CONNECTION = ("uid", "ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "community_id")
# Each Zeek log's own field names (Zeek 6/7 base scripts and common packages such as ja3).
ZEEK_LOGS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "conn": ("service", "duration", "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp",
             "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes",
             "tunnel_parents", "orig_l2_addr", "resp_l2_addr"),
    "dns": ("trans_id", "rtt", "query", "qclass", "qclass_name", "qtype", "qtype_name", "rcode", "rcode_name",
            "AA", "TC", "RD", "RA", "Z", "answers", "TTLs", "rejected"),
    "http": ("trans_depth", "method", "host", "uri", "referrer", "version", "user_agent", "origin",
             "request_body_len", "response_body_len", "status_code", "status_msg", "info_code", "info_msg",
             "tags", "username", "password", "proxied", "orig_fuids", "orig_filenames", "orig_mime_types",
             "resp_fuids", "resp_filenames", "resp_mime_types", "client_header_names", "server_header_names",
             "cookie_vars", "uri_vars"),
    "ssl": ("version", "cipher", "curve", "server_name", "resumed", "last_alert", "next_protocol", "established",
            "ssl_history", "cert_chain_fps", "client_cert_chain_fps", "subject", "issuer", "client_subject",
            "client_issuer", "validation_status", "sni_matches_cert", "ja3", "ja3s"),
    "x509": ("fingerprint", "certificate.version", "certificate.serial", "certificate.subject",
             "certificate.issuer", "certificate.not_valid_before", "certificate.not_valid_after",
             "certificate.key_alg", "certificate.sig_alg", "certificate.key_type", "certificate.key_length",
             "certificate.exponent", "certificate.curve", "san.dns", "san.uri", "san.email", "san.ip",
             "basic_constraints.ca", "basic_constraints.path_len", "host_cert", "client_cert"),
    "files": ("fuid", "tx_hosts", "rx_hosts", "conn_uids", "source", "depth", "analyzers", "mime_type", "filename",
              "duration", "local_orig", "is_orig", "seen_bytes", "total_bytes", "missing_bytes", "overflow_bytes",
              "timedout", "parent_fuid", "md5", "sha1", "sha256", "extracted", "extracted_cutoff",
              "extracted_size"),
    "notice": ("fuid", "file_mime_type", "file_desc", "note", "msg", "sub", "src", "dst", "p", "n", "peer_descr",
               "actions", "suppress_for", "dropped"),
    "smb_files": ("fuid", "action", "path", "name", "size", "prev_name", "times.modified", "times.accessed",
                  "times.created", "times.changed"),
    "smb_mapping": ("path", "service", "native_file_system", "share_type"),
    "dce_rpc": ("rtt", "named_pipe", "endpoint", "operation"),
    "kerberos": ("request_type", "client", "service", "success", "error_msg", "from", "till", "cipher",
                 "forwardable", "renewable", "client_cert_subject", "client_cert_fuid", "server_cert_subject",
                 "server_cert_fuid"),
    "ntlm": ("username", "hostname", "domainname", "server_nb_computer_name", "server_dns_computer_name",
             "server_tree_name", "success"),
    "rdp": ("cookie", "result", "security_protocol", "client_channels", "keyboard_layout", "client_build",
            "client_name", "client_dig_product_id", "desktop_width", "desktop_height", "requested_color_depth",
            "cert_type", "cert_count", "cert_permanent", "encryption_level", "encryption_method"),
    "ssh": ("version", "auth_success", "auth_attempts", "direction", "client", "server", "cipher_alg", "mac_alg",
            "compression_alg", "kex_alg", "host_key_alg", "host_key"),
    "ftp": ("user", "password", "command", "arg", "mime_type", "file_size", "reply_code", "reply_msg",
            "data_channel.passive", "data_channel.orig_h", "data_channel.resp_h", "data_channel.resp_p", "fuid"),
    "smtp": ("trans_depth", "helo", "mailfrom", "rcptto", "date", "from", "to", "cc", "reply_to", "msg_id",
             "in_reply_to", "subject", "x_originating_ip", "first_received", "second_received", "last_reply",
             "path", "user_agent", "tls", "fuids", "is_webmail"),
    "dhcp": ("uids", "client_addr", "server_addr", "mac", "host_name", "client_fqdn", "domain", "requested_addr",
             "assigned_addr", "lease_time", "client_message", "server_message", "msg_types", "duration"),
    "weird": ("name", "addl", "notice", "peer", "source"),
})
# The W3C names some SigmaHQ zeek http rules use, to Zeek's own.
_ZEEK_HTTP_W3C = {
    "c-uri": "zeek.http.uri", "c-useragent": "zeek.http.user_agent", "cs-host": "zeek.http.host",
    "cs-method": "zeek.http.method", "sc-status": "zeek.http.status_code", "cs-referer": "zeek.http.referrer",
}

ZEEK = (
    SourceMapping("zeek", product="zeek", conditions={"event.module": "zeek"}),
    *(
        SourceMapping(
            f"zeek-{log}", product="zeek", service=log,
            conditions={"event.module": "zeek", "event.dataset": f"zeek.{log}"},
            fields={**_native(f"zeek.{log}", (*_ZEEK_CONNECTION, *names)),
                    **(_ZEEK_HTTP_W3C if log == "http" else {})},
        )
        for log, names in ZEEK_LOGS.items()
    ),
)

# --- Suricata EVE (parser suricata: the record kept whole under suricata.eve) ---------------------------

# SigmaHQ has no Suricata log source; Vigil's starter pack uses ``product: suricata`` with the EVE
# ``event_type`` as the service, and EVE's own field names (``alert.signature``, ``http.http_user_agent``).
SURICATA_FIELDS = MappingProxyType(_native("suricata.eve", (
    "event_type", "timestamp", "flow_id", "in_iface", "vlan", "src_ip", "src_port", "dest_ip", "dest_port", "proto",
    "app_proto", "community_id", "host", "tx_id", "direction",
    "alert.action", "alert.gid", "alert.signature_id", "alert.rev", "alert.signature", "alert.category",
    "alert.severity", "alert.metadata",
    "dns.type", "dns.id", "dns.rrname", "dns.rrtype", "dns.rcode", "dns.rdata", "dns.tx_id",
    "http.hostname", "http.url", "http.http_user_agent", "http.http_method", "http.http_refer",
    "http.http_content_type", "http.protocol", "http.status", "http.length", "http.redirect",
    "tls.sni", "tls.subject", "tls.issuerdn", "tls.serial", "tls.fingerprint", "tls.version", "tls.notbefore",
    "tls.notafter", "tls.ja3.hash", "tls.ja3.string", "tls.ja3s.hash", "tls.ja3s.string",
    "fileinfo.filename", "fileinfo.magic", "fileinfo.md5", "fileinfo.sha1", "fileinfo.sha256", "fileinfo.size",
    "fileinfo.state", "fileinfo.stored",
    "flow.pkts_toserver", "flow.pkts_toclient", "flow.bytes_toserver", "flow.bytes_toclient", "flow.state",
    "flow.reason", "flow.alerted",
    "ssh.client.software_version", "ssh.client.proto_version", "ssh.server.software_version",
    "ssh.server.proto_version",
    "anomaly.type", "anomaly.event", "anomaly.layer",
)))
SURICATA_EVENT_TYPES = ("alert", "anomaly", "dns", "http", "tls", "ssh", "flow", "netflow", "fileinfo", "smb", "smtp",
                        "ftp", "dhcp", "krb5", "rdp")
_SURICATA = {"event.module": "suricata"}

SURICATA = (
    SourceMapping("suricata", product="suricata", conditions=_SURICATA, fields=SURICATA_FIELDS),
    *(
        SourceMapping(f"suricata-{kind}", product="suricata", service=kind,
                      conditions={**_SURICATA, "event.action": kind}, fields=SURICATA_FIELDS)
        for kind in SURICATA_EVENT_TYPES
    ),
)

# --- Generic network categories, from either sensor ----------------------------------------------------

# ``category: dns``: Zeek dns.log and Suricata's dns records, through the ECS fields both parsers fill.
# Answers: Zeek keeps them as a list of strings; Suricata's answer objects are not reachable by name.
DNS_FIELDS = MappingProxyType({
    "query": "dns.question.name",
    "record_type": "dns.question.type",
    "answer": "zeek.dns.answers",
    "response_code": "dns.response_code",
    "src_ip": "source.ip",
    "dst_ip": "destination.ip",
})

NETWORK = (
    SourceMapping("dns", category="dns", conditions={"event.dataset": ("zeek.dns", "suricata.eve")},
                  fields=DNS_FIELDS),
)

SOURCE_MAPPINGS: tuple[SourceMapping, ...] = (*LINUX, *WEB, *ZEEK, *SURICATA, *NETWORK)
