"""ECS fields for Windows events, from their native fields (``Channel``, ``EventID``, EventData names).

Both Windows parsers (evtx_dump-style JSON and Winlogbeat) first gather the native fields as SigmaHQ
names them, then call ``add_ecs``, which fills what the event does not already have: shipper-provided
ECS fields win.
"""

from __future__ import annotations

import ntpath
import re
from typing import Any

from vigil.siem.parsers.base import Event
from vigil.siem.parsers.jsoncommon import as_int, as_ip, as_port, put_absent

SYSMON = "sysmon"
SECURITY = "security"
SYSTEM = "system"

# (family, event id) -> (category, type, outcome or None).
CLASSIFICATION: dict[tuple[str, int], tuple[list[str], list[str], str | None]] = {
    (SECURITY, 4624): (["authentication"], ["start"], "success"),
    (SECURITY, 4625): (["authentication"], ["start"], "failure"),
    (SECURITY, 4634): (["authentication"], ["end"], "success"),
    (SECURITY, 4647): (["authentication"], ["end"], "success"),
    (SECURITY, 4648): (["authentication"], ["start"], "success"),
    (SECURITY, 4768): (["authentication"], ["start"], None),
    (SECURITY, 4769): (["authentication"], ["start"], None),
    (SECURITY, 4771): (["authentication"], ["start"], "failure"),
    (SECURITY, 4776): (["authentication"], ["start"], None),
    (SECURITY, 4672): (["iam"], ["admin"], "success"),
    (SECURITY, 4688): (["process"], ["start"], "success"),
    (SECURITY, 4689): (["process"], ["end"], "success"),
    (SECURITY, 4697): (["configuration"], ["creation"], "success"),
    (SECURITY, 4698): (["configuration"], ["creation"], "success"),
    (SECURITY, 4720): (["iam"], ["user", "creation"], "success"),
    (SECURITY, 4722): (["iam"], ["user", "change"], "success"),
    (SECURITY, 4723): (["iam"], ["user", "change"], None),
    (SECURITY, 4724): (["iam"], ["user", "change"], None),
    (SECURITY, 4725): (["iam"], ["user", "change"], "success"),
    (SECURITY, 4726): (["iam"], ["user", "deletion"], "success"),
    (SECURITY, 4728): (["iam"], ["group", "change"], "success"),
    (SECURITY, 4732): (["iam"], ["group", "change"], "success"),
    (SECURITY, 4738): (["iam"], ["user", "change"], "success"),
    (SECURITY, 4740): (["iam"], ["user", "change"], "success"),
    (SECURITY, 4756): (["iam"], ["group", "change"], "success"),
    (SECURITY, 1102): (["configuration"], ["deletion"], "success"),
    (SYSTEM, 104): (["configuration"], ["deletion"], "success"),
    (SYSTEM, 7045): (["configuration"], ["creation"], "success"),
    (SYSTEM, 7036): (["configuration"], ["change"], None),
    (SYSMON, 1): (["process"], ["start"], None),
    (SYSMON, 3): (["network"], ["connection", "start"], None),
    (SYSMON, 5): (["process"], ["end"], None),
    (SYSMON, 7): (["process"], ["change"], None),
    (SYSMON, 8): (["process"], ["change"], None),
    (SYSMON, 10): (["process"], ["access"], None),
    (SYSMON, 11): (["file"], ["creation"], None),
    (SYSMON, 12): (["registry"], ["change"], None),
    (SYSMON, 13): (["registry"], ["change"], None),
    (SYSMON, 14): (["registry"], ["change"], None),
    (SYSMON, 15): (["file"], ["creation"], None),
    (SYSMON, 22): (["network"], ["protocol", "info"], None),
    (SYSMON, 23): (["file"], ["deletion"], None),
    (SYSMON, 26): (["file"], ["deletion"], None),
}

# Security events whose TargetUserName is the account that signs in (the subject is the service).
_TARGET_IS_USER = {4624, 4625, 4634, 4647, 4648, 4768, 4769, 4771, 4776}

LEVELS = {0: "information", 1: "critical", 2: "error", 3: "warning", 4: "information", 5: "verbose"}
LEVEL_NUMBERS = {name: number for number, name in LEVELS.items() if number}

# Keywords bits of the Security log: audit success / audit failure.
_AUDIT_SUCCESS = 0x0020000000000000
_AUDIT_FAILURE = 0x0010000000000000

_FAMILIES = {"microsoft-windows-sysmon/operational": SYSMON, "security": SECURITY, "system": SYSTEM}
_PROVIDERS = {"microsoft-windows-sysmon": SYSMON, "microsoft-windows-security-auditing": SECURITY}

# ECS roots: a native field of one of these names is kept as EventData_<name>.
RESERVED = frozenset({
    "@timestamp", "message", "event", "host", "log", "user", "source", "destination", "network", "process",
    "file", "dns", "registry", "service", "url", "related", "agent", "ecs", "winlog", "vigil", "tags", "labels",
})

_SLUG = re.compile(r"[^a-z0-9]+")


def family(event: Event) -> str:
    """Which table an event id is read in: Sysmon, Security, System (ids overlap between them)."""
    channel = str(event.get("Channel") or "").lower()
    if channel in _FAMILIES:
        return _FAMILIES[channel]
    provider = str(event.get("Provider_Name") or "").lower()
    return _PROVIDERS.get(provider, channel)


def dataset(channel: Any, provider: Any) -> str:
    """``windows.<channel>``: ``Security`` -> windows.security, Sysmon -> windows.sysmon_operational."""
    name = str(channel or provider or "unknown").lower().removeprefix("microsoft-windows-")
    return "windows." + (_SLUG.sub("_", name).strip("_") or "unknown")


def add_ecs(event: Event) -> None:
    """Fill ECS fields from the native ones already at the top level of ``event``."""
    code = event.get("EventID")
    kind = family(event)
    put_absent(event, "event.kind", "event")
    put_absent(event, "event.module", "windows")
    put_absent(event, "event.dataset", dataset(event.get("Channel"), event.get("Provider_Name")))
    if code is not None:
        put_absent(event, "event.code", str(code))
    put_absent(event, "event.provider", event.get("Provider_Name"))
    computer = event.get("Computer")
    if isinstance(computer, str):
        put_absent(event, "host.hostname", computer)
        put_absent(event, "host.name", computer)
    level = as_int(event.get("Level"))
    if level is not None and level in LEVELS:
        put_absent(event, "log.level", LEVELS[level])
    if isinstance(code, int):
        _classify(event, kind, code)
    _user(event, code)
    _network(event)
    _process(event, kind, code)
    if kind == SYSMON and code in (11, 15, 23, 26):
        _file(event, event.get("TargetFilename"))
    if kind == SYSMON and code == 22:
        put_absent(event, "dns.question.name", event.get("QueryName"))
    if kind == SYSMON and code in (12, 13, 14):
        put_absent(event, "registry.path", event.get("TargetObject"))
        if code == 13 and isinstance(event.get("Details"), str):
            put_absent(event, "registry.data.strings", [event["Details"]])
    if kind == SYSMON and code == 7:
        put_absent(event, "dll.path", event.get("ImageLoaded"))
        if isinstance(event.get("ImageLoaded"), str):
            put_absent(event, "dll.name", ntpath.basename(event["ImageLoaded"]))
    if isinstance(event.get("ScriptBlockText"), str):  # PowerShell 4104
        put_absent(event, "powershell.file.script_block_text", event["ScriptBlockText"])
        put_absent(event, "powershell.file.script_block_id", event.get("ScriptBlockId"))
    if kind == SYSTEM and code == 7045:
        put_absent(event, "service.name", event.get("ServiceName"))
        _file(event, event.get("ImagePath"))


def _classify(event: Event, kind: str, code: int) -> None:
    known = CLASSIFICATION.get((kind, code))
    if known is not None:
        category, types, outcome = known
        put_absent(event, "event.category", category)
        put_absent(event, "event.type", types)
        put_absent(event, "event.outcome", outcome)
    keywords = event.get("Keywords")
    bits = as_int(keywords) if isinstance(keywords, str) and kind == SECURITY else None
    if bits is not None and bits & _AUDIT_FAILURE:
        put_absent(event, "event.outcome", "failure")
    elif bits is not None and bits & _AUDIT_SUCCESS:
        put_absent(event, "event.outcome", "success")


def _user(event: Event, code: Any) -> None:
    subject = (event.get("SubjectUserName"), event.get("SubjectDomainName"), event.get("SubjectUserSid"))
    target = (event.get("TargetUserName"), event.get("TargetDomainName"), event.get("TargetUserSid"))
    if code in _TARGET_IS_USER and _named(target[0]):
        actor = target
    elif _named(subject[0]):
        actor = subject
        if _named(target[0]):
            put_absent(event, "user.target.name", target[0])
            put_absent(event, "user.target.domain", target[1])
    elif _named(target[0]):
        actor = target
    elif isinstance(event.get("User"), str) and event["User"].strip():
        domain, _, name = event["User"].rpartition("\\")
        actor = (name, domain or None, None)
    else:
        return
    put_absent(event, "user.name", actor[0])
    put_absent(event, "user.domain", actor[1])
    put_absent(event, "user.id", actor[2])


def _named(value: Any) -> bool:
    return isinstance(value, str) and value not in ("", "-")


def _network(event: Event) -> None:
    put_absent(event, "source.ip", as_ip(event.get("IpAddress")) or as_ip(event.get("SourceIp")))
    put_absent(event, "source.port", as_port(event.get("IpPort")) or as_port(event.get("SourcePort")))
    put_absent(event, "source.domain", event.get("SourceHostname"))
    put_absent(event, "source.domain", event.get("WorkstationName"))
    put_absent(event, "destination.ip", as_ip(event.get("DestinationIp")))
    put_absent(event, "destination.port", as_port(event.get("DestinationPort")))
    put_absent(event, "destination.domain", event.get("DestinationHostname"))
    protocol = event.get("Protocol")
    if isinstance(protocol, str) and protocol.lower() in ("tcp", "udp", "icmp"):
        put_absent(event, "network.transport", protocol.lower())


def _process(event: Event, kind: str, code: Any) -> None:
    if kind == SECURITY and code in (4688, 4689):
        executable = event.get("NewProcessName") if code == 4688 else event.get("ProcessName")
        pid = event.get("NewProcessId") if code == 4688 else event.get("ProcessId")
        _executable(event, "process", executable)
        put_absent(event, "process.pid", as_int(pid))
        put_absent(event, "process.command_line", event.get("CommandLine"))
        if code == 4688:
            _executable(event, "process.parent", event.get("ParentProcessName"))
            put_absent(event, "process.parent.pid", as_int(event.get("ProcessId")))
        return
    if kind == SECURITY:
        _executable(event, "process", event.get("ProcessName"))
        put_absent(event, "process.pid", as_int(event.get("ProcessId")))
        return
    if kind != SYSMON:
        return
    if code in (8, 10):  # CreateRemoteThread, ProcessAccess: the acting process is the source
        _executable(event, "process", event.get("SourceImage"))
        put_absent(event, "process.pid", as_int(event.get("SourceProcessId")))
        put_absent(event, "process.entity_id", event.get("SourceProcessGuid"))
        return
    _executable(event, "process", event.get("Image"))
    put_absent(event, "process.pid", as_int(event.get("ProcessId")))
    put_absent(event, "process.entity_id", event.get("ProcessGuid"))
    put_absent(event, "process.command_line", event.get("CommandLine"))
    put_absent(event, "process.working_directory", event.get("CurrentDirectory"))
    _executable(event, "process.parent", event.get("ParentImage"))
    put_absent(event, "process.parent.pid", as_int(event.get("ParentProcessId")))
    put_absent(event, "process.parent.entity_id", event.get("ParentProcessGuid"))
    put_absent(event, "process.parent.command_line", event.get("ParentCommandLine"))
    if code == 1:
        put_absent(event, "process.pe.original_file_name", event.get("OriginalFileName"))


def _executable(event: Event, prefix: str, path: Any) -> None:
    if isinstance(path, str) and path not in ("", "-"):
        put_absent(event, f"{prefix}.executable", path)
        put_absent(event, f"{prefix}.name", ntpath.basename(path))


def _file(event: Event, path: Any) -> None:
    if isinstance(path, str) and path not in ("", "-"):
        put_absent(event, "file.path", path)
        put_absent(event, "file.name", ntpath.basename(path))
