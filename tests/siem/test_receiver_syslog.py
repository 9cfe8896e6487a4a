"""Syslog receivers over real sockets on 127.0.0.1: UDP and TCP/TLS with both framings, messages that
arrive in pieces, many senders, junk, resets, oversize frames, a full spool, and a graceful stop.
Every check looks at what a SOC engineer would see: the events stored and searchable."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.accounts.service import root_unit_id
from vigil.core.config import ConfigError, Settings, load_settings
from vigil.core.db import Database, Scope
from vigil.siem.models import LogSource
from vigil.siem.parsers.base import MAX_RECORD_BYTES
from vigil.siem.receivers import syslog
from vigil.siem.receivers.framing import StreamFramer
from vigil.siem.receivers.syslog import SyslogReceiver
from vigil.siem.runtime import Siem

LOCAL = "127.0.0.1"
ZONE = "Asia/Kolkata"  # +05:30: a year-less stamp read in the wrong zone is visibly off
WAIT = 60.0  # how long a condition may take on a loaded machine before the test gives up (not a speed check)


@pytest.fixture
def backend() -> str:
    """The receivers touch the records store only for the root unit: SQLite is enough here."""
    return "sqlite"


@pytest.fixture
def siem_settings(settings: Settings) -> Settings:
    return load_settings(data_dir=settings.data_dir, database_url=settings.database_url, log_timezone=ZONE)


@pytest.fixture
def siem(siem_settings: Settings, database: Database) -> Iterator[Siem]:
    """A SIEM, started by ``listen`` with its receiver (as `vigil serve` starts it), stopped at the end."""
    runtime = Siem(siem_settings, database)
    yield runtime
    runtime.stop()


def listen(siem: Siem, transport: syslog.Transport, context: ssl.SSLContext | None = None) -> SyslogReceiver:
    """A receiver on an ephemeral port, started and stopped with the SIEM (as `vigil serve` does)."""
    made: list[SyslogReceiver] = []

    def factory(runtime: Siem) -> SyslogReceiver:
        made.append(SyslogReceiver(runtime, transport, host=LOCAL, port=0, ssl_context=context))
        return made[-1]

    siem.start([factory])
    assert made[0].port != 0
    return made[0]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def settle(siem: Siem, receiver: SyslogReceiver, messages: int) -> list[dict[str, Any]]:
    """Once the receiver has ``messages`` and put them all in the spool: every stored event, oldest first."""
    wait_for(lambda: receiver.counters.messages >= messages and receiver.status()["pending"] == 0,
             f"{messages} messages in the spool (status {receiver.status()})")
    assert siem.drain(WAIT)
    return stored(siem)


def stored(siem: Siem) -> list[dict[str, Any]]:
    """Every stored event, oldest first (paged: the store returns at most 10,000 at a time)."""
    events: list[dict[str, Any]] = []
    while page := siem.store.search(limit=10_000, offset=len(events), order="asc"):
        events += [event.doc for event in page]
    return events


def messages_of(events: list[dict[str, Any]]) -> list[str]:
    return [event.get("message", "") for event in events]


def send_tcp(port: int, *pieces: bytes, pause: float = 0.0, context: ssl.SSLContext | None = None) -> None:
    """Send each piece with its own write (with a pause between, so they arrive as separate reads)."""

    def send(conn: socket.socket) -> None:
        for piece in pieces:
            conn.sendall(piece)
            if pause:
                time.sleep(pause)

    with socket.create_connection((LOCAL, port)) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is None:
            send(raw)
            return
        with context.wrap_socket(raw, server_hostname=LOCAL) as secure:
            send(secure)
            secure.unwrap()  # close_notify: a clean TLS end


def octets(message: bytes) -> bytes:
    return str(len(message)).encode() + b" " + message


def rfc5424(n: int, text: str = "hello") -> bytes:
    return f'<165>1 2026-11-28T10:00:00.{n % 1000:03d}Z web{n % 5} app 42 ID{n} [seq n="{n}"] {text} {n}'.encode()


# --- UDP -------------------------------------------------------------------------------------------------


def test_udp_reads_rfc3164_with_the_log_timezone_and_rfc5424_with_structured_data(siem: Siem) -> None:
    receiver = listen(siem, "udp")
    local = datetime.now(ZoneInfo(ZONE)).replace(microsecond=0) - timedelta(hours=1)
    stamp = f"{local:%b} {local.day:2d} {local:%H:%M:%S}"
    classic = f"<38>{stamp} gate sshd[812]: Accepted publickey for deploy from 10.1.2.3 port 50022 ssh2\n"
    modern = ('<165>1 2026-11-28T09:30:00.5+08:00 fw01 firewall 77 DROP [meta sequenceId="29" ip="10.9.8.7"]'
              '[origin software="pf"] \ufeffdropped packet\x00')
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(classic.encode(), (LOCAL, receiver.port))
        sender.sendto(modern.encode(), (LOCAL, receiver.port))
        sender.sendto(b"\n", (LOCAL, receiver.port))  # an empty datagram is no message
    events = settle(siem, receiver, 2)
    assert len(events) == 2
    by_host = {event["host"]["hostname"]: event for event in events}
    sshd = by_host["gate"]
    assert (sshd["process"]["name"], sshd["process"]["pid"]) == ("sshd", 812)
    assert sshd["user"]["name"] == "deploy"
    assert sshd["log"]["syslog"]["facility"]["name"] == "auth"
    # The year-less stamp is local time of the configured zone (Asia/Kolkata, +05:30), stored as UTC.
    assert datetime.fromisoformat(sshd["@timestamp"]) == local.astimezone(UTC)
    assert sshd["log"]["source"]["address"] == LOCAL
    assert sshd["vigil"]["transport"] == "syslog-udp"
    fw = by_host["fw01"]
    assert fw["message"] == "dropped packet"  # BOM and the trailing NUL are gone
    assert fw["log"]["syslog"]["structured_data"] == {"meta": {"sequenceId": "29", "ip": "10.9.8.7"},
                                                      "origin": {"software": "pf"}}
    assert datetime.fromisoformat(fw["@timestamp"]) == datetime(2026, 11, 28, 1, 30, 0, 500000, tzinfo=UTC)
    status = receiver.status()
    assert status["messages"] == 2 and status["dropped"] == 0 and receiver.counters.batches >= 1
    assert receiver.name == "syslog-udp" and status["port"] == receiver.port


# --- TCP framing -----------------------------------------------------------------------------------------


def test_tcp_lf_and_octet_counting_mixed_in_one_connection_and_split_across_writes(siem: Siem) -> None:
    receiver = listen(siem, "tcp")
    counted = rfc5424(2, "octet counted")
    stream = (rfc5424(1, "line feed") + b"\n" + octets(counted) + rfc5424(3, "crlf") + b"\r\n"
              + rfc5424(4, "nul") + b"\x00" + octets(rfc5424(5, "counted again")) + rfc5424(6, "no final LF"))
    # Cut the stream everywhere awkward: inside a count, right after it, inside a message.
    cuts = [5, len(rfc5424(1, "line feed")) + 2, len(rfc5424(1, "line feed")) + 4, 150, 151, len(stream) - 3]
    pieces = [stream[start:end] for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    send_tcp(receiver.port, *pieces, pause=0.02)
    events = settle(siem, receiver, 6)
    assert messages_of(events) == ["line feed 1", "octet counted 2", "crlf 3", "nul 4", "counted again 5",
                                   "no final LF 6"]
    assert all(event["log"]["syslog"]["structured_data"]["seq"]["n"] == str(n)
               for n, event in enumerate(events, start=1))
    assert {event["vigil"]["transport"] for event in events} == {"syslog-tcp"}
    assert {event["log"]["source"]["address"] for event in events} == {LOCAL}
    assert receiver.status()["connections_total"] == 1


def test_a_message_split_byte_by_byte_arrives_whole(siem: Siem) -> None:
    receiver = listen(siem, "tcp")
    message = octets(rfc5424(7, "slowly")) + rfc5424(8, "then fast") + b"\n"
    send_tcp(receiver.port, *[message[i:i + 1] for i in range(40)], message[40:], pause=0.002)
    assert messages_of(settle(siem, receiver, 2)) == ["slowly 7", "then fast 8"]


def test_many_connections_at_once_lose_nothing(siem: Siem) -> None:
    receiver = listen(siem, "tcp")
    senders, each = 24, 250

    def send(sender: int) -> None:
        lines = [rfc5424(sender * each + i, f"from{sender}") for i in range(each)]
        payload = b"".join(octets(line) if i % 2 else line + b"\n" for i, line in enumerate(lines))
        send_tcp(receiver.port, payload[: len(payload) // 2], payload[len(payload) // 2:])

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = settle(siem, receiver, senders * each)
    assert sorted(int(event["log"]["syslog"]["msgid"][2:]) for event in events) == list(range(senders * each))
    status = receiver.status()
    assert status["connections_total"] == senders and status["messages"] == senders * each
    wait_for(lambda: receiver.status()["connections_open"] == 0, "every connection closed")


# --- TLS -------------------------------------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("no `openssl` command to make a test certificate with (and the cryptography package "
                    "is not installed)")
    cert, key = folder / "syslog.crt", folder / "syslog.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", f"subjectAltName=IP:{LOCAL}", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True)
    return cert, key


def test_tls_with_both_framings(siem: Siem, siem_settings: Settings, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls_settings = load_settings(data_dir=siem_settings.data_dir, syslog_tls_port=6514, syslog_tls_cert=cert,
                                 syslog_tls_key=key)
    receiver = listen(siem, "tls", syslog.tls_context(tls_settings))
    client = ssl.create_default_context(cafile=str(cert))
    send_tcp(receiver.port, octets(rfc5424(1, "over tls")), rfc5424(2, "lf over tls") + b"\n", pause=0.02,
             context=client)
    events = settle(siem, receiver, 2)
    assert messages_of(events) == ["over tls 1", "lf over tls 2"]
    assert {event["vigil"]["transport"] for event in events} == {"syslog-tls"}
    # A client that does not speak TLS (or fails the handshake) does not hurt the listener.
    send_tcp(receiver.port, rfc5424(3, "plaintext on the tls port") + b"\n")
    send_tcp(receiver.port, octets(rfc5424(4, "after a bad client")), context=client)
    assert messages_of(settle(siem, receiver, 3))[-1] == "after a bad client 4"


def test_tls_settings_are_checked_before_serving(settings: Settings, tmp_path: Path) -> None:
    missing = load_settings(data_dir=settings.data_dir, syslog_tls_port=6514)
    with pytest.raises(ConfigError, match="SYSLOG_TLS_CERT"):
        syslog.factories(missing)
    (tmp_path / "bad.pem").write_text("not a certificate")
    broken = load_settings(data_dir=settings.data_dir, syslog_tls_port=6514, syslog_tls_cert=tmp_path / "bad.pem",
                           syslog_tls_key=tmp_path / "bad.pem")
    with pytest.raises(ConfigError, match="cannot load the certificate"):
        syslog.factories(broken)


def test_settings_turn_receivers_on_and_off(settings: Settings) -> None:
    assert len(syslog.factories(load_settings(data_dir=settings.data_dir))) == 2  # UDP and TCP on 5514
    off = load_settings(data_dir=settings.data_dir, syslog_udp_port=0, syslog_tcp_port=0)
    assert syslog.factories(off) == []


def test_a_port_in_use_is_a_clear_error(siem: Siem) -> None:
    receiver = listen(siem, "tcp")
    second = SyslogReceiver(siem, "tcp", host=LOCAL, port=receiver.port)
    with pytest.raises(OSError, match=f"cannot listen on {LOCAL}:{receiver.port}.*VIGIL_SYSLOG_TCP_PORT"):
        second.start()


# --- bad senders -----------------------------------------------------------------------------------------


def test_junk_bogus_counts_resets_and_half_closes_never_stop_the_listener(siem: Siem) -> None:
    receiver = listen(siem, "tcp")
    junk = bytes(range(256)) * 64 + os.urandom(8192)
    send_tcp(receiver.port, junk)
    send_tcp(receiver.port, b"99999999999999999 not a real count\n")
    send_tcp(receiver.port, b"900000000 a count beyond any message\n")
    send_tcp(receiver.port, b"12")  # a count, then the sender goes away
    wait_for(lambda: receiver.status()["connections_total"] == 4 and receiver.status()["connections_open"] == 0,
             "the junk connections to end")
    # A reset (SO_LINGER 0) right after a complete message: what arrived is kept.
    with socket.create_connection((LOCAL, receiver.port)) as rude:
        before = receiver.counters.bytes
        payload = rfc5424(1, "before the reset") + b"\n" + b"<13>1 2026-11-28T1"
        rude.sendall(payload)
        wait_for(lambda: receiver.counters.bytes == before + len(payload), "the bytes before the reset to arrive")
        rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    # A half-close: the sender shuts its side after a last message without LF.
    with socket.create_connection((LOCAL, receiver.port)) as polite:
        polite.sendall(rfc5424(2, "last words"))
        polite.shutdown(socket.SHUT_WR)
        assert polite.recv(1) == b""  # the receiver closes its side too
    wait_for(lambda: receiver.status()["connections_total"] == 6 and receiver.status()["connections_open"] == 0,
             "the bad connections to end")
    send_tcp(receiver.port, octets(rfc5424(3, "good after junk")), rfc5424(4, "and more") + b"\n")
    wait_for(lambda: receiver.status()["connections_total"] == 7 and receiver.status()["connections_open"] == 0,
             "the good connection to end")
    events = settle(siem, receiver, 0)
    texts = messages_of(events)
    for text in ("before the reset 1", "last words 2", "good after junk 3", "and more 4"):
        assert text in texts
    # Junk is not thrown away silently: it is stored as parse failures, raw bytes kept.
    failures = [event for event in events if event["event"]["kind"] == "pipeline_error"]
    assert failures and all(event["log"]["source"]["address"] == LOCAL for event in failures)
    assert any("not a real count" in event["event"]["original"] for event in failures)
    assert receiver.counters.errors >= 2  # the two unbelievable counts


def test_an_oversize_message_is_kept_truncated_and_the_stream_stays_in_step(siem: Siem) -> None:
    receiver = listen(siem, "tcp")
    huge = rfc5424(1, "big " + "x" * (MAX_RECORD_BYTES + 50_000))
    send_tcp(receiver.port, huge + b"\n", rfc5424(2, "after the big line") + b"\n",
             octets(rfc5424(3, "counted big " + "y" * (MAX_RECORD_BYTES * 2))), octets(rfc5424(4, "in step")))
    events = settle(siem, receiver, 4)
    assert len(events) == 4
    big_line, after_line, big_counted, after_counted = events
    for big in (big_line, big_counted):
        assert big["vigil"]["truncated"] is True
        assert len(big["event"]["original"]) == MAX_RECORD_BYTES
    assert big_line["message"].startswith("big xxx")
    assert after_line["message"] == "after the big line 2"
    assert after_counted["message"] == "in step 4"
    assert receiver.status()["truncated"] == 2


def test_too_many_connections_are_refused_and_the_open_ones_still_work(siem: Siem,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syslog, "MAX_CONNECTIONS", 2)
    receiver = listen(siem, "tcp")
    first, second = (socket.create_connection((LOCAL, receiver.port)) for _ in range(2))
    with first, second:
        wait_for(lambda: receiver.status()["connections_open"] == 2, "two open connections")
        with socket.create_connection((LOCAL, receiver.port)) as third:
            assert third.recv(1) == b""  # closed at once
        first.sendall(rfc5424(1, "first") + b"\n")
        second.sendall(rfc5424(2, "second") + b"\n")
        events = settle(siem, receiver, 2)
    assert messages_of(events) == ["first 1", "second 2"]
    assert receiver.status()["connections_total"] == 3 and receiver.counters.errors == 1


# --- the spool pushes back -------------------------------------------------------------------------------


def test_a_full_spool_pauses_tcp_senders_and_loses_nothing(siem_settings: Settings, database: Database) -> None:
    tight = load_settings(data_dir=siem_settings.data_dir, spool_quota_bytes=1024 * 1024,
                          spool_segment_bytes=64 * 1024, log_timezone=ZONE)
    runtime = Siem(tight, database)  # not started: the pipeline runs only when the test drains it
    receiver = SyslogReceiver(runtime, "tcp", host=LOCAL, port=0)
    receiver.start()
    total = 12_000  # about 3 MiB: three times the spool's quota
    lines = [rfc5424(n, "p" * 150) for n in range(total)]
    sender = threading.Thread(target=send_tcp, args=(receiver.port, b"".join(line + b"\n" for line in lines)))
    try:
        sender.start()
        wait_for(lambda: runtime.spool.used_bytes > 700 * 1024, "the spool to fill")
        time.sleep(0.3)  # the receiver now holds a refused batch and has stopped reading
        held = receiver.counters.messages
        assert held < total and runtime.spool.used_bytes <= tight.spool_quota_bytes
        # Space frees as the pipeline stores what is spooled; the held batches follow.
        while runtime.store.count() < total:
            runtime.drain()
            time.sleep(0.02)
        sender.join()
        assert runtime.store.count() == total
        seen = sorted(int(event["log"]["syslog"]["msgid"][2:]) for event in stored(runtime))
        assert seen == list(range(total))
        assert receiver.status()["dropped"] == 0
    finally:
        receiver.stop()
        sender.join()
        runtime.stop()


def test_a_records_store_outage_delays_tcp_messages_but_loses_none(siem: Siem) -> None:
    receiver = listen(siem, "tcp")
    real_unit_for, failures = siem.unit_for, [0]

    def flaky_unit_for(source: str) -> int:
        if failures[0] < 2:  # the records store is down for the first two batches
            failures[0] += 1
            raise ConnectionError("records store unreachable")
        return real_unit_for(source)

    siem.unit_for = flaky_unit_for
    send_tcp(receiver.port, b"".join(rfc5424(n, "patient") + b"\n" for n in range(30)))
    events = settle(siem, receiver, 30)
    assert messages_of(events) == [f"patient {n}" for n in range(30)]
    assert failures[0] == 2 and receiver.counters.errors >= 1 and receiver.counters.dropped == 0


def test_udp_counts_what_a_full_spool_refuses(siem_settings: Settings, database: Database) -> None:
    tight = load_settings(data_dir=siem_settings.data_dir, spool_quota_bytes=1024 * 1024,
                          spool_segment_bytes=64 * 1024, log_timezone=ZONE)
    runtime = Siem(tight, database)  # not started: nothing frees the spool while the datagrams come
    receiver = SyslogReceiver(runtime, "udp", host=LOCAL, port=0)
    receiver.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for n in range(8_000):  # about 2 MiB: twice the quota
                sender.sendto(rfc5424(n, "u" * 100), (LOCAL, receiver.port))
                if n % 200 == 0:
                    time.sleep(0.005)  # let the receiver keep up: the kernel drops what overflows its buffer
        wait_for(lambda: receiver.counters.dropped > 0 and receiver.status()["pending"] == 0,
                 "the receiver to drop what the spool refused")
        runtime.drain()
        status = receiver.status()
        # Every message received is either stored or counted as dropped: none vanishes unseen.
        assert runtime.store.count() + int(status["dropped"]) == status["messages"]
        assert runtime.store.count() > 0
    finally:
        receiver.stop()
        runtime.stop()


def test_peer_addresses_are_plain_ips() -> None:
    assert syslog.peer_address(("::ffff:10.1.2.3", 514, 0, 0)) == "10.1.2.3"
    assert syslog.peer_address(("fe80::1%eth0", 514, 0, 2)) == "fe80::1"
    assert syslog.peer_address(("192.0.2.7", 514)) == "192.0.2.7"
    assert syslog.peer_address(None) == ""


# --- stopping --------------------------------------------------------------------------------------------


def test_stopping_puts_what_was_received_into_the_spool(siem_settings: Settings, database: Database) -> None:
    runtime = Siem(siem_settings, database)
    receiver = SyslogReceiver(runtime, "tcp", host=LOCAL, port=0)
    receiver.start()
    with socket.create_connection((LOCAL, receiver.port)) as open_connection:
        open_connection.sendall(b"".join(rfc5424(n, "just in") + b"\n" for n in range(50)) + rfc5424(50, "cut"))
        wait_for(lambda: receiver.counters.messages == 50, "the messages to arrive")
        receiver.stop()  # at once: the batch is still lingering, the connection still open
    try:
        assert runtime.drain()
        stored = [event.doc["message"] for event in runtime.store.search(limit=100, order="asc")]
        # The unterminated last message is kept too: the connection ended under it.
        assert stored == [f"just in {n}" for n in range(50)] + ["cut 50"]
    finally:
        runtime.stop()


# --- framing without sockets -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096])
def test_framing_does_not_depend_on_how_the_stream_is_cut(size: int) -> None:
    stream = (b"<13>plain\n" + octets(b"<13>counted\nwith LF inside") + b"<13>crlf\r\n\r\n\x00"
              + octets(b"<13>x") + octets(b"<13>counted after counted") + b"<13>tail")
    framer = StreamFramer()
    frames: list[bytes] = []
    for start in range(0, len(stream), size):
        frames += framer.feed(stream[start:start + size])
    frames += framer.finish()
    assert frames == [b"<13>plain", b"<13>counted\nwith LF inside", b"<13>crlf", b"<13>x",
                      b"<13>counted after counted", b"<13>tail"]


_messages = st.lists(
    st.tuples(st.binary(min_size=1, max_size=300).map(lambda body: b"<13>" + body), st.booleans()),
    min_size=1, max_size=20)


@given(_messages, st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=50))
def test_framing_recovers_every_message_however_framed_and_cut(messages: list[tuple[bytes, bool]],
                                                               cuts: list[int]) -> None:
    """Octet-counted messages come back byte for byte; LF-framed ones up to their first LF or NUL."""
    stream = b"".join(octets(body) if counted else body + b"\n" for body, counted in messages)
    expected: list[bytes] = []
    for body, counted in messages:
        if counted:
            expected.append(body)
            continue
        # An LF-framed body holding LF or NUL is several messages (CR before each end dropped); a piece
        # starting with a digit may read as an octet count, so such bodies are only checked for not crashing.
        pieces = body.replace(b"\x00", b"\n").split(b"\n")
        if any(piece[:1].isdigit() for piece in pieces[1:]):
            return
        expected += [piece.removesuffix(b"\r") for piece in pieces if piece.removesuffix(b"\r")]
    framer = StreamFramer()
    frames: list[bytes] = []
    position = 0
    for cut in cuts * (len(stream) // sum(cuts) + 1):
        frames += framer.feed(stream[position:position + cut])
        position += cut
        if position >= len(stream):
            break
    frames += framer.finish()
    assert frames == expected


def test_a_sender_configured_as_its_own_source_gets_its_time_zone(siem: Siem, database: Database) -> None:
    with database.transaction(Scope.system()) as session:
        root = root_unit_id(session)
        session.add(LogSource(name=f"syslog:{LOCAL}", unit_id=root, timezone="America/New_York"))
    receiver = listen(siem, "udp")
    local = datetime.now(ZoneInfo("America/New_York")).replace(microsecond=0) - timedelta(hours=1)
    line = f"<13>{local:%b} {local.day:2d} {local:%H:%M:%S} branch-fw test: from the New York office"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(line.encode(), (LOCAL, receiver.port))
    [event] = settle(siem, receiver, 1)
    assert event["vigil"]["source"] == f"syslog:{LOCAL}"
    assert datetime.fromisoformat(event["@timestamp"]) == local.astimezone(UTC)  # not read as Asia/Kolkata
