"""Which event fields carry each STIX object path, for evaluating a STIX pattern on one event: ECS, Windows
and Sysmon, Zeek and Suricata names. ``field|basename``, ``field|dirname`` and ``Hashes|hash=SHA256``
(Sysmon's ``MD5=…,SHA256=…`` string) take a part of the field's value."""

from __future__ import annotations

_IP_ANY = ("source.ip", "destination.ip", "client.ip", "server.ip", "host.ip", "related.ip", "SourceIp",
           "DestinationIp", "SourceAddress", "DestAddress", "IpAddress", "src_ip", "dest_ip", "id.orig_h", "id.resp_h")
_SRC_IP = ("source.ip", "client.ip", "SourceIp", "SourceAddress", "IpAddress", "src_ip", "id.orig_h")
_DST_IP = ("destination.ip", "server.ip", "DestinationIp", "DestAddress", "dest_ip", "id.resp_h")
_DOMAIN = ("dns.question.name", "QueryName", "query", "dns.rrname", "url.domain", "destination.domain",
           "DestinationHostname", "http.hostname", "tls.sni", "server_name")
_IMAGE_NAME = ("process.name", "Image|basename", "process.executable|basename")
_PARENT_NAME = ("process.parent.name", "ParentImage|basename", "process.parent.executable|basename")
_HTTP = "network-traffic:extensions.http-request-ext."


def _hashes(prefix: str, algorithm: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    lower = algorithm.lower()
    return (f"{prefix}.hash.{lower}", f"Hashes|hash={algorithm}", *extra)


_FILE_HASH_EXTRA = {"MD5": ("hash.md5", "md5", "fileinfo.md5"), "SHA1": ("hash.sha1", "sha1", "fileinfo.sha1"),
                    "SHA256": ("hash.sha256", "sha256", "fileinfo.sha256"), "SHA512": ("hash.sha512",)}

# STIX object path (ObjectPath.key) → the event fields that carry it.
FIELDS: dict[str, tuple[str, ...]] = {
    "ipv4-addr:value": _IP_ANY,
    "ipv6-addr:value": _IP_ANY,
    "network-traffic:src_ref.value": _SRC_IP,
    "network-traffic:dst_ref.value": (*_DST_IP, "destination.domain", "DestinationHostname"),
    "network-traffic:src_port": ("source.port", "client.port", "SourcePort", "src_port", "id.orig_p"),
    "network-traffic:dst_port": ("destination.port", "server.port", "DestinationPort", "dest_port", "id.resp_p"),
    "network-traffic:protocols[*]": ("network.transport", "network.protocol", "Protocol", "proto", "app_proto",
                                     "service"),
    "network-traffic:src_byte_count": ("source.bytes", "orig_bytes"),
    "network-traffic:dst_byte_count": ("destination.bytes", "resp_bytes"),
    _HTTP + "request_method": ("http.request.method", "http.http_method", "method"),
    _HTTP + "request_value": ("url.path", "uri"),
    _HTTP + "request_header.User-Agent": ("user_agent.original", "http.http_user_agent", "user_agent"),
    _HTTP + "request_header.Host": ("url.domain", "http.hostname", "host"),
    "domain-name:value": _DOMAIN,
    "url:value": ("url.original", "url.full", "http.url"),
    "mac-addr:value": ("source.mac", "destination.mac", "host.mac"),
    "autonomous-system:number": ("source.as.number", "destination.as.number"),
    "file:name": ("file.name", "TargetFilename|basename", "file.path|basename", "filename", "fileinfo.filename"),
    "file:size": ("file.size", "fileinfo.size", "total_bytes"),
    "file:parent_directory_ref.path": ("file.directory", "TargetFilename|dirname", "file.path|dirname"),
    "directory:path": ("file.directory", "TargetFilename|dirname", "file.path|dirname"),
    **{f"file:hashes.{name}": _hashes("file", name, extra) for name, extra in _FILE_HASH_EXTRA.items()},
    **{f"process:image_ref.hashes.{name}": _hashes("process", name) for name in _FILE_HASH_EXTRA},
    "process:command_line": ("process.command_line", "CommandLine"),
    "process:name": _IMAGE_NAME,
    "process:image_ref.name": _IMAGE_NAME,
    "process:pid": ("process.pid", "ProcessId"),
    "process:cwd": ("process.working_directory", "CurrentDirectory"),
    "process:parent_ref.command_line": ("process.parent.command_line", "ParentCommandLine"),
    "process:parent_ref.name": _PARENT_NAME,
    "process:parent_ref.image_ref.name": _PARENT_NAME,
    "process:parent_ref.pid": ("process.parent.pid", "ParentProcessId"),
    "windows-registry-key:key": ("registry.path", "registry.key", "TargetObject", "ObjectName"),
    "windows-registry-key:values[*].name": ("registry.value", "TargetObject|basename"),
    "windows-registry-key:values[*].data": ("registry.data.strings", "Details"),
    "user-account:user_id": ("user.id", "TargetUserSid", "SubjectUserSid"),
    "user-account:account_login": ("user.name", "User", "TargetUserName", "SubjectUserName", "username"),
    "user-account:display_name": ("user.full_name",),
    "email-addr:value": ("email.from.address", "email.to.address", "email.sender.address", "user.email",
                         "mailfrom", "rcptto"),
    "email-message:from_ref.value": ("email.from.address", "mailfrom", "from"),
    "email-message:sender_ref.value": ("email.sender.address",),
    "email-message:to_refs[*].value": ("email.to.address", "rcptto", "to"),
    "email-message:subject": ("email.subject", "subject"),
    "x509-certificate:hashes.SHA1": ("tls.server.hash.sha1",),
    "x509-certificate:hashes.SHA256": ("tls.server.hash.sha256",),
    "x509-certificate:subject": ("tls.server.subject", "tls.subject", "certificate.subject"),
    "x509-certificate:issuer": ("tls.server.issuer", "tls.issuerdn", "certificate.issuer"),
    "x509-certificate:serial_number": ("tls.server.x509.serial_number", "tls.serial", "certificate.serial"),
}
