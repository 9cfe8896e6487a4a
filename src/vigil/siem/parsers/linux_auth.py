"""Linux authentication logs (``/var/log/auth.log``, ``/var/log/secure``): sshd, sudo, su, PAM and the
shadow tools (useradd, groupadd, userdel, passwd, ...), normalised to ECS.

``analyse_auth_message`` is the message analysis; the syslog parser calls it too, so an sshd login that
arrives over syslog is the same event as one read from auth.log.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import ClassVar

from vigil.siem.parsers.base import Event, ParseContext, ParseError, decode_text, keep_original, put
from vigil.siem.parsers.timeparse import parse_bsd_stamp

# Programs whose messages this analysis understands (syslog hands these over).
AUTH_PROGRAMS = frozenset({
    "sshd", "sshd-session", "sudo", "su", "useradd", "groupadd", "userdel", "groupdel", "usermod",
    "passwd", "chpasswd", "chage", "systemd-logind", "login",
})
# Other programs that write to auth.log (a first line from them still says "this is an auth log").
_AUTH_LOG_PROGRAMS = AUTH_PROGRAMS | {"CRON", "cron", "crond", "polkitd", "gdm-password", "dbus-daemon", "pkexec"}

_REPEATED = re.compile(r"message repeated (\d{1,9}) times: \[ ?(.*?) ?\]$")
_TAG = re.compile(r"([^\s\[\]:]{1,128})(?:\[(\d{1,10})\])?: ?")

_IP = r"(?P<ip>[0-9A-Fa-f.:%]+)"
_PORT = r"(?: port (?P<port>\d{1,5}))?"

_SSHD: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?P<result>Accepted|Failed) (?P<method>[\w\-/]+) for (?P<invalid>invalid user )?"
                r"(?P<user>.*?) from " + _IP + _PORT + r"(?: (?P<proto>ssh2?))?(?:: (?P<sig>.*))?$"), "login"),
    (re.compile(r"Invalid user (?P<user>.*?) from " + _IP + _PORT + r"(?: \[preauth\])?$"), "invalid_user"),
    (re.compile(r"(?:error: )?maximum authentication attempts exceeded for (?P<invalid>invalid user )?"
                r"(?P<user>.*?) from " + _IP + _PORT + r"(?: ssh2)?(?: \[preauth\])?$"), "max_attempts"),
    (re.compile(r"(?:Disconnected from|Connection closed by|Received disconnect from)"
                r"(?: (?P<who>authenticating user|invalid user|user) (?P<user>\S+))? " + _IP + _PORT
                + r"(?:: ?.*)?(?: \[preauth\])?$"), "disconnect"),
]

_SUDO_FIELDS = re.compile(r"\s*(?P<user>[^\s:]+) : (?P<rest>.*)$")
_SUDO_COMMAND = re.compile(r"(?:^| ; )COMMAND=(.*)$")
_SUDO_NOT_IN_SUDOERS = re.compile(r"\s*(?P<user>\S+) is not in the sudoers file")
_SU = [
    (re.compile(r"(?P<result>Successful|FAILED) su for (?P<target>\S+) by (?P<user>\S+)"), "su"),
    (re.compile(r"\(to (?P<target>[^)\s]+)\) (?P<user>\S+) on (?P<tty>\S+)"), "su_to"),
    (re.compile(r"(?P<sign>[+-]) (?P<tty>\S+) (?P<user>[^:\s]+):(?P<target>\S+)$"), "su_sign"),
]
_PAM = re.compile(r"pam_unix\((?P<service>[^:)]+):(?P<kind>[^)]+)\): (?P<text>.*)$")
_PAM_SESSION = re.compile(
    r"session (?P<state>opened|closed) for user (?P<user>[^\s(]+)(?:\(uid=\d+\))?"
    r"(?: by (?P<by>[^\s(]*)(?:\(uid=\d+\))?)?"
)
_PAM_KV = re.compile(r"(\w+)=(\S*)")
_PAM_PASSWORD = re.compile(r"password changed for (?P<user>\S+)")
_NEW_USER = re.compile(r"new user: name=(?P<user>[^,\s]+), UID=(?P<uid>\d+), GID=(?P<gid>\d+)(?P<rest>.*)$")
_NEW_GROUP = re.compile(r"(?:new group|group added to \S+): name=(?P<group>[^,\s]+), GID=(?P<gid>\d+)")
_DELETE_USER = re.compile(r"delete user [`'](?P<user>[^'`]+)'")
_DELETE_GROUP = re.compile(r"(?:group '(?P<group>[^']+)' removed|removed group '(?P<group2>[^']+)')")
_PASSWORD_CHANGED = re.compile(r"password for [`'](?P<user>[^'`]+)' changed(?: by [`'](?P<by>[^'`]+)')?")
_LOGIND_NEW = re.compile(r"New session (?P<session>\S+) of user (?P<user>[^\s.]+(?:\.[^\s.]+)*)\.?$")
_LOGIND_REMOVED = re.compile(r"Removed session (?P<session>[^\s.]+)\.?$")
_LOGIN_FAILED = re.compile(r"FAILED LOGIN \(\d+\) on '(?P<tty>[^']*)' FOR '(?P<user>[^']*)'")
_LOGIN_ROOT = re.compile(r"ROOT LOGIN +on '(?P<tty>[^']*)'")
_ADD_TO_GROUP = re.compile(r"add [`'](?P<user>[^'`]+)' to (?:shadow )?group [`'](?P<group>[^'`]+)'")


def _set_source(event: Event, ip: str | None, port: str | None) -> None:
    if ip:
        try:
            put(event, "source.ip", str(ipaddress.ip_address(ip.split("%")[0])))
        except ValueError:
            put(event, "source.address", ip)
    if port and 0 < int(port) < 65536:
        put(event, "source.port", int(port))


def _classify(event: Event, category: str, types: list[str], action: str, outcome: str | None) -> None:
    put(event, "event.category", [category])
    put(event, "event.type", types)
    put(event, "event.action", action)
    if outcome:
        put(event, "event.outcome", outcome)


def _sshd(message: str, event: Event) -> bool:
    for pattern, kind in _SSHD:
        match = pattern.match(message)
        if not match:
            continue
        groups = match.groupdict()
        user = groups.get("user")
        if user:
            put(event, "user.name", user)
        _set_source(event, groups.get("ip"), groups.get("port"))
        if groups.get("invalid") or groups.get("who") == "invalid user":
            put(event, "system.auth.ssh.invalid_user", True)
        if kind == "login":
            success = groups["result"] == "Accepted"
            _classify(event, "authentication", ["start" if success else "info"], "ssh_login",
                      "success" if success else "failure")
            put(event, "system.auth.ssh.event", groups["result"])
            put(event, "system.auth.ssh.method", groups["method"])
            if groups.get("sig"):
                put(event, "system.auth.ssh.signature", groups["sig"])
        elif kind == "invalid_user":
            put(event, "system.auth.ssh.invalid_user", True)
            _classify(event, "authentication", ["info"], "ssh_invalid_user", "failure")
        elif kind == "max_attempts":
            _classify(event, "authentication", ["info"], "ssh_max_auth_attempts", "failure")
        else:
            _classify(event, "authentication", ["end"], "ssh_disconnect", None)
            if groups.get("who") == "authenticating user":
                put(event, "event.outcome", "failure")
        return True
    return False


def _sudo(message: str, event: Event) -> bool:
    match = _SUDO_NOT_IN_SUDOERS.match(message)
    if match:
        put(event, "user.name", match.group("user"))
        _classify(event, "authentication", ["denied"], "sudo_denied", "failure")
        return True
    match = _SUDO_FIELDS.match(message)
    if not match:
        return False
    fields: dict[str, str] = {}
    notes: list[str] = []
    rest = match.group("rest")
    command = _SUDO_COMMAND.search(rest)  # always last, and may itself contain " ; "
    if command:
        fields["COMMAND"] = command.group(1)
        rest = rest[: command.start()]
    for part in rest.split(" ; "):
        key, sep, value = part.partition("=")
        if sep and key.isupper():
            fields[key] = value.strip()
        elif part.strip():
            notes.append(part.strip())
    if "COMMAND" not in fields and "USER" not in fields:
        return False
    put(event, "user.name", match.group("user"))
    if "USER" in fields:
        put(event, "user.target.name", fields["USER"])
    if "COMMAND" in fields:
        put(event, "process.command_line", fields["COMMAND"])
        put(event, "process.executable", fields["COMMAND"].split(" ", 1)[0])
    if "PWD" in fields:
        put(event, "process.working_directory", fields["PWD"])
    if "TTY" in fields:
        put(event, "process.tty.name", fields["TTY"])
    note = " ; ".join(notes)
    if "incorrect password" in note:
        _classify(event, "authentication", ["info"], "sudo_auth_failure", "failure")
    elif "NOT in sudoers" in note or "not allowed" in note or "command not allowed" in note:
        _classify(event, "authentication", ["denied"], "sudo_denied", "failure")
    elif note:
        _classify(event, "process", ["denied"], "sudo_command", "failure")
        put(event, "event.reason", note)
    else:
        _classify(event, "process", ["start"], "sudo_command", "success")
    if note:
        put(event, "event.reason", note)
    return True


def _su(message: str, event: Event) -> bool:
    for pattern, kind in _SU:
        match = pattern.match(message)
        if not match:
            continue
        put(event, "user.name", match.group("user"))
        put(event, "user.target.name", match.group("target"))
        if kind == "su":
            success = match.group("result") == "Successful"
        elif kind == "su_sign":
            success = match.group("sign") == "+"
            put(event, "process.tty.name", match.group("tty"))
        else:
            success = True
            put(event, "process.tty.name", match.group("tty"))
        _classify(event, "authentication", ["start" if success else "info"], "su", "success" if success else "failure")
        return True
    return False


def _pam(message: str, event: Event) -> bool:
    match = _PAM.match(message)
    if not match:
        return False
    service, kind, text = match.group("service"), match.group("kind"), match.group("text")
    put(event, "system.auth.pam.service", service)
    session = _PAM_SESSION.match(text)
    if session:
        user, by = session.group("user"), session.group("by")
        if by:
            put(event, "user.name", by)
            put(event, "user.target.name", user)
        else:
            put(event, "user.name", user)
        opened = session.group("state") == "opened"
        _classify(event, "session", ["start" if opened else "end"], "session_opened" if opened else "session_closed",
                  "success" if opened else None)
        return True
    if text.startswith("authentication failure"):
        fields = dict(_PAM_KV.findall(text))
        target = fields.get("user")
        actor = fields.get("ruser") or fields.get("logname")
        if actor and target and actor != target:
            put(event, "user.name", actor)
            put(event, "user.target.name", target)
        elif target or actor:
            put(event, "user.name", target or actor)
        _set_source(event, fields.get("rhost") or None, None)
        _classify(event, "authentication", ["info"], f"{service}_auth_failure", "failure")
        return True
    changed = _PAM_PASSWORD.match(text)
    if changed and kind == "chauthtok":
        put(event, "user.name", changed.group("user"))
        put(event, "user.target.name", changed.group("user"))
        _classify(event, "iam", ["user", "change"], "password_changed", "success")
        return True
    return False


def _shadow(message: str, event: Event) -> bool:
    match = _NEW_USER.match(message)
    if match:
        put(event, "user.name", match.group("user"))
        put(event, "user.target.name", match.group("user"))
        put(event, "user.id", match.group("uid"))
        put(event, "group.id", match.group("gid"))
        for key, value in re.findall(r"(home|shell)=([^,]*)", match.group("rest")):
            put(event, f"system.auth.useradd.{key}", value)
        _classify(event, "iam", ["user", "creation"], "user_created", "success")
        return True
    match = _NEW_GROUP.match(message)
    if match:
        put(event, "group.name", match.group("group"))
        put(event, "group.id", match.group("gid"))
        _classify(event, "iam", ["group", "creation"], "group_created", "success")
        return True
    match = _DELETE_USER.match(message)
    if match:
        put(event, "user.name", match.group("user"))
        put(event, "user.target.name", match.group("user"))
        _classify(event, "iam", ["user", "deletion"], "user_deleted", "success")
        return True
    match = _DELETE_GROUP.match(message)
    if match:
        put(event, "group.name", match.group("group") or match.group("group2"))
        _classify(event, "iam", ["group", "deletion"], "group_deleted", "success")
        return True
    match = _PASSWORD_CHANGED.match(message)
    if match:
        put(event, "user.target.name", match.group("user"))
        put(event, "user.name", match.group("by") or match.group("user"))
        _classify(event, "iam", ["user", "change"], "password_changed", "success")
        return True
    match = _ADD_TO_GROUP.match(message)
    if match:
        put(event, "user.name", match.group("user"))
        put(event, "user.target.name", match.group("user"))
        put(event, "group.name", match.group("group"))
        _classify(event, "iam", ["group", "change"], "user_added_to_group", "success")
        return True
    return False


def _logind(message: str, event: Event) -> bool:
    match = _LOGIND_NEW.match(message)
    if match:
        put(event, "user.name", match.group("user"))
        put(event, "system.auth.session.id", match.group("session"))
        _classify(event, "session", ["start"], "session_opened", "success")
        return True
    match = _LOGIND_REMOVED.match(message)
    if match:
        put(event, "system.auth.session.id", match.group("session"))
        _classify(event, "session", ["end"], "session_closed", None)
        return True
    return False


def _login(message: str, event: Event) -> bool:
    match = _LOGIN_FAILED.match(message)
    if match:
        put(event, "user.name", match.group("user"))
        put(event, "process.tty.name", match.group("tty"))
        _classify(event, "authentication", ["info"], "login", "failure")
        return True
    match = _LOGIN_ROOT.match(message)
    if match:
        put(event, "user.name", "root")
        put(event, "process.tty.name", match.group("tty"))
        _classify(event, "authentication", ["start"], "login", "success")
        return True
    return False


_BY_PROGRAM: dict[str, Callable[[str, Event], bool]] = {
    "sshd": _sshd, "sshd-session": _sshd, "sudo": _sudo, "su": _su, "systemd-logind": _logind, "login": _login,
}


def analyse_auth_message(program: str, message: str, event: Event) -> bool:
    """Add the ECS fields an auth message carries (event.category/type/action/outcome, user.*, source.*,
    process.command_line); True when the message was recognised. rsyslog's ``message repeated N times: [ ... ]``
    is analysed as the message it repeats (``system.auth.repeated`` = N)."""
    repeated = _REPEATED.match(message)
    if repeated:
        put(event, "system.auth.repeated", int(repeated.group(1)))
        message = repeated.group(2)
    if _pam(message, event):
        return True
    analyse = _BY_PROGRAM.get(program)
    if analyse is not None:
        return analyse(message, event)
    if program in AUTH_PROGRAMS:
        return _shadow(message, event)
    return False


def split_tag(text: str) -> tuple[str | None, int | None, str]:
    """``sshd[1234]: msg`` as (program, pid, message); (None, None, text) when there is no tag."""
    match = _TAG.match(text)
    if not match or not text[: match.end()].rstrip().endswith(":"):
        return None, None, text
    pid = int(match.group(2)) if match.group(2) else None
    return match.group(1), pid, text[match.end():]


class LinuxAuthParser:
    """``Mmm dd hh:mm:ss host prog[pid]: message`` lines from auth.log/secure, with the message analysed."""

    name: ClassVar[str] = "linux_auth"
    description: ClassVar[str] = "Linux auth.log / secure (sshd, sudo, su, PAM, useradd, passwd)"

    def sniff(self, sample: bytes) -> bool:
        line = sample.split(b"\n", 1)[0][:2048]
        text, _ = decode_text(line)
        try:
            head = parse_bsd_stamp(text, ParseContext())
        except ParseError:
            return False
        if head is None:
            return False
        _, rest = head
        _host, _, tagged = rest.partition(" ")
        program, _, message = split_tag(tagged)
        if program is None:
            return False
        return program in _AUTH_LOG_PROGRAMS or _PAM.match(message) is not None

    def parse_one(self, raw: bytes, ctx: ParseContext) -> Event:
        text, _ = decode_text(raw)
        text = text.rstrip("\r\n\x00")
        head = parse_bsd_stamp(text, ctx)
        if head is None:
            raise ParseError("not an auth log line: no 'Mmm dd hh:mm:ss' or ISO timestamp at the start")
        stamp, rest = head
        host, sep, tagged = rest.partition(" ")
        if not sep or not host:
            raise ParseError("not an auth log line: no host name and program after the timestamp")
        program, pid, message = split_tag(tagged)
        if program is None:
            raise ParseError("not an auth log line: no 'program[pid]:' tag after the host name")
        event: Event = {"@timestamp": stamp}
        put(event, "event.kind", "event")
        put(event, "event.module", "system")
        put(event, "event.dataset", "system.auth")
        put(event, "host.hostname", host)
        put(event, "process.name", program)
        if pid is not None:
            put(event, "process.pid", pid)
        put(event, "message", message)
        analyse_auth_message(program, message, event)
        keep_original(event, raw, ctx)
        return event
