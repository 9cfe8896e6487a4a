"""Syslog receivers: UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425), RFC 3164 and RFC 5424 messages.

Each receiver runs its server in a thread of its own with its own asyncio loop (uvicorn has another):
a slow spool write or a flood on one port never stalls the web server. Messages are collected per
sender address into batches of up to ``BATCH_RECORDS`` messages or ``BATCH_LINGER`` seconds and
handed to ``Siem.submit`` in a worker thread (it fsyncs); the pipeline parses them later with the
``syslog`` parser, and the sender's address (the batch's ``peer``) becomes ``log.source.address``.

Backpressure. One batch per sender is on its way to the spool while the next one fills. A TCP or TLS
connection whose next batch is full stops being read until the spool has taken the one before, so
memory stays bounded and the sender's own queue holds the rest (rsyslog and syslog-ng buffer and
retry). When the spool is full (``SpoolFull``) the batch is kept and offered again after a pause:
nothing a TCP sender handed over is dropped. UDP cannot push back: what the spool refuses, or what
arrives while too much is already waiting, is dropped and counted (``dropped`` in ``status()``).

Robustness. Binary junk is framed like any text and stored as parse failures where it can be seen;
unbelievable octet counts are read as text lines; resets and half-closed sockets end one connection
and never the listener. Whatever arrives before a connection ends is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from vigil.core.config import ConfigError, Settings
from vigil.siem.receivers import Receiver
from vigil.siem.receivers.framing import KEEP_BYTES, StreamFramer
from vigil.siem.runtime import ReceiverFactory, Siem
from vigil.siem.spool import BatchMeta, SpoolFull

log = logging.getLogger(__name__)

Transport = Literal["udp", "tcp", "tls"]
SOURCE = "syslog"  # the input's name on the log-sources page; all three transports feed it
FORMAT = "syslog"  # parser of every record (RFC 3164 and RFC 5424 are told apart per record)

BATCH_RECORDS = 2_000  # a batch is handed to the spool at this many messages ...
BATCH_BYTES = 8 * 1024 * 1024  # ... or this many bytes ...
BATCH_LINGER = 0.05  # ... or this long after its first message, whichever comes first.
UDP_HELD_RECORDS = 20_000  # UDP messages held for the spool (per sender) before new ones are dropped
UDP_HELD_TOTAL = 200_000  # and of all senders together (many senders, or spoofed ones, cannot exhaust memory)
RETRY_FIRST = 0.25  # first pause before offering a refused batch again; doubles up to RETRY_MOST
RETRY_MOST = 5.0
STOP_TIMEOUT = 10.0  # how long stopping waits for held batches to reach the spool
UDP_RECEIVE_BUFFER = 8 * 1024 * 1024  # kernel buffer asked for: absorbs bursts while the loop is busy
MAX_CONNECTIONS = 4096  # open TCP/TLS connections per receiver; more are refused (file descriptors are shared
# with the web server, so a connection flood must not starve it)
KEEPALIVE_IDLE = 300  # seconds of silence before TCP keepalive probes: a sender that vanished (NAT, power)
# does not hold its connection forever
WARN_EVERY = 60.0  # seconds between repeated warnings of one kind (a flood must not flood the log)


@dataclass
class Counters:
    connections_open: int = 0
    connections_total: int = 0
    messages: int = 0
    bytes: int = 0
    batches: int = 0
    dropped: int = 0
    errors: int = 0
    truncated: int = 0


@dataclass(eq=False)
class PeerBatch:
    """One sender's messages on their way to the spool: the batch being filled and the one being written."""

    peer: str
    records: list[bytes] = field(default_factory=list)
    size: int = 0
    started: datetime | None = None  # when the first message of ``records`` arrived
    inflight: list[bytes] | None = None  # handed to the spool, not yet accepted
    inflight_started: datetime | None = None
    retry_delay: float = 0.0
    timer: asyncio.TimerHandle | None = None
    waiting: set[StreamConnection] = field(default_factory=set)  # connections paused until the spool catches up

    def full(self, most_bytes: int) -> bool:
        return len(self.records) >= BATCH_RECORDS or self.size >= most_bytes

    @property
    def held(self) -> int:
        return len(self.records) + (len(self.inflight) if self.inflight is not None else 0)


class _Throttle:
    """Say a repeated warning at most once a minute, with how many times it happened meanwhile."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}

    def warn(self, key: str, message: str, *args: object, level: int = logging.WARNING,
             error: BaseException | None = None) -> None:
        now = time.monotonic()
        last, hidden = self._last.get(key, (-WARN_EVERY, 0))
        if now - last < WARN_EVERY:
            self._last[key] = (last, hidden + 1)
            return
        self._last[key] = (now, 0)
        if hidden:
            message += f" ({hidden} more like this in the last minute)"
        log.log(level, message, *args, exc_info=error)


def peer_address(address: Any) -> str:
    """The sender's IP as text (an IPv4-mapped IPv6 address as plain IPv4); '' when there is none."""
    if not isinstance(address, tuple) or not address:
        return ""
    host = str(address[0])
    try:
        parsed = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


class SyslogReceiver:
    """One syslog listener (UDP, TCP or TLS) on ``host``:``port``; ``port`` 0 binds an ephemeral port
    (read ``.port`` after ``start``). Settings use 0 for "off": ``factories`` never builds those."""

    def __init__(self, siem: Siem, transport: Transport, *, host: str, port: int,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        if transport == "tls" and ssl_context is None:
            raise ValueError("a syslog TLS receiver needs an ssl_context")
        self.siem = siem
        self.transport = transport
        self.name = f"syslog-{transport}"
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.counters = Counters()
        # A batch must fit a small spool with room to spare, or a full spool could never take it.
        self._batch_bytes = max(KEEP_BYTES, min(BATCH_BYTES, siem.settings.spool_quota_bytes // 4))
        self._batches: dict[str, PeerBatch] = {}
        self._held = 0  # messages received and not yet in the spool (nor dropped), all senders
        self._connections: set[StreamConnection] = set()
        self._throttle = _Throttle()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._executor: ThreadPoolExecutor | None = None

    # --- Receiver ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind and serve in a thread; returns once listening. Raises ``OSError`` when the port cannot be bound."""
        if self._thread is not None:
            return
        self._ready.clear()
        self._start_error = None
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"vigil-{self.name}-spool")
        self._thread = threading.Thread(target=self._run, name=f"vigil-{self.name}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            self._thread.join()
            self._thread = None
            self._executor.shutdown(wait=False)
            error = self._start_error
            setting = f"VIGIL_SYSLOG_{self.transport.upper()}_PORT"
            hint = {errno.EADDRINUSE: f"another program listens there; stop it or choose another port ({setting}, "
                                      "0 turns this receiver off)",
                    errno.EACCES: f"ports below 1024 need privileges; use a higher port ({setting}) and let the "
                                  "senders or a firewall rule point there"}.get(getattr(error, "errno", None), "")
            raise OSError(f"syslog {self.transport.upper()} receiver cannot listen on {self.host}:{self.port}: "
                          f"{error}" + (f"; {hint}" if hint else "")) from error
        log.info("syslog %s receiver listening on %s:%d", self.transport.upper(), self.host, self.port)

    def stop(self) -> None:
        """Stop listening, end the connections and put every message already received into the spool."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join(STOP_TIMEOUT + 5)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._thread = None

    def status(self) -> dict[str, int | str]:
        counters = self.counters
        return {
            "address": self.host,
            "port": self.port,
            "connections_open": counters.connections_open,
            "connections_total": counters.connections_total,
            "messages": counters.messages,
            "bytes": counters.bytes,
            "batches": counters.batches,
            "pending": self._held,
            "dropped": counters.dropped,
            "truncated": counters.truncated,
            "errors": counters.errors,
        }

    # --- the loop thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.set_exception_handler(self._loop_error)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # the thread must always release start() and end cleanly
            if not self._ready.is_set():
                self._start_error = exc
                self._ready.set()
            else:
                log.exception("syslog %s receiver stopped on an unexpected error", self.transport.upper())
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        try:
            closer = await self._listen()
        except OSError as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stopping.wait()
        closer()
        deadline = time.monotonic() + STOP_TIMEOUT
        for connection in list(self._connections):
            connection.abort()  # we never write: nothing to lose, and no TLS shutdown to wait for
        while self._connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # connection_lost hands over what each connection still held
        await self._flush_all(deadline)

    async def _listen(self) -> Callable[[], None]:
        """Bind the server; a function that stops it listening."""
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            sock = _bound_socket(self.host, self.port, socket.SOCK_DGRAM)
            udp_transport, _ = await loop.create_datagram_endpoint(lambda: DatagramReceiver(self), sock=sock)
            self.port = int(sock.getsockname()[1])
            return udp_transport.close
        sock = _bound_socket(self.host, self.port, socket.SOCK_STREAM)
        sock.listen(1024)
        server = await loop.create_server(lambda: StreamConnection(self), sock=sock, ssl=self.ssl_context)
        self.port = int(server.sockets[0].getsockname()[1])
        return server.close

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """Anything asyncio could not hand to a connection: counted and logged; the listener carries on."""
        self.counters.errors += 1
        error = context.get("exception")
        if isinstance(error, OSError):
            self._throttle.warn("loop-oserror", "syslog %s: %s: %s", self.transport.upper(),
                                context.get("message", "socket error"), error)
        else:
            log.error("syslog %s: %s", self.transport.upper(), context.get("message", "unexpected error"),
                      exc_info=error)

    # --- batching ------------------------------------------------------------------------------------

    def accept(self, peer: str, records: list[bytes], connection: StreamConnection | None = None) -> None:
        """Messages from one sender; a TCP connection is paused when its sender's batches are both full."""
        self.counters.messages += len(records)
        batch = self._batches.get(peer)
        if self.transport == "udp" and (self._held >= UDP_HELD_TOTAL
                                        or (batch is not None and batch.held >= UDP_HELD_RECORDS)):
            self.counters.dropped += len(records)
            self._throttle.warn("udp-backlog", "syslog UDP: %d messages from %s dropped: the spool is not keeping "
                                "up (see the pipeline status)", len(records), peer)
            return
        if batch is None:
            batch = self._batches[peer] = PeerBatch(peer)
        if not batch.records:
            batch.started = datetime.now(UTC)
        batch.records.extend(records)
        self._held += len(records)
        batch.size += sum(map(len, records))
        if batch.full(self._batch_bytes):
            self._flush(batch)
        elif batch.timer is None and batch.inflight is None:
            assert self._loop is not None
            batch.timer = self._loop.call_later(BATCH_LINGER, self._flush, batch)
        if connection is not None and batch.inflight is not None and batch.full(self._batch_bytes):
            connection.pause()
            batch.waiting.add(connection)

    def _flush(self, batch: PeerBatch) -> None:
        """Hand the filled batch to the spool, unless the one before is still on its way."""
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        if batch.inflight is not None or not batch.records:
            return
        batch.inflight, batch.inflight_started = self._take(batch), batch.started
        if not batch.records:
            batch.started = None
        self._send(batch)

    def _take(self, batch: PeerBatch) -> list[bytes]:
        """The next batch for the spool: at most BATCH_RECORDS messages and the byte cap (one read can hold
        more; the rest waits for the next turn)."""
        records = batch.records
        if len(records) <= BATCH_RECORDS and batch.size <= self._batch_bytes:
            batch.records, batch.size = [], 0
            return records
        count = size = 0
        for record in records[:BATCH_RECORDS]:
            if count and size + len(record) > self._batch_bytes:
                break
            size += len(record)
            count += 1
        batch.records, batch.size = records[count:], batch.size - size
        return records[:count]

    def _send(self, batch: PeerBatch) -> None:
        assert self._loop is not None and self._executor is not None and batch.inflight is not None
        received = batch.inflight_started or datetime.now(UTC)
        future = self._loop.run_in_executor(self._executor, self._submit, batch.inflight, batch.peer, received)
        future.add_done_callback(lambda done: self._submitted(batch, done))

    def _submit(self, records: list[bytes], peer: str, received: datetime) -> None:
        """In a worker thread: the batch into the spool (fsync'd when this returns)."""
        source = self.siem.source_for_sender(SOURCE, peer)
        meta = BatchMeta(source=source, unit_id=self.siem.unit_for(source), format=FORMAT,
                         transport=self.name, peer=peer, received_at=received)
        self.siem.submit(records, meta)

    def _submitted(self, batch: PeerBatch, done: asyncio.Future[None]) -> None:
        error = done.exception()
        assert batch.inflight is not None
        if error is None:
            self.counters.batches += 1
            if batch.retry_delay:
                self._throttle.warn("spool-ok", "syslog %s: the spool accepts batches from %s again",
                                    self.transport.upper(), batch.peer)
            batch.retry_delay = 0.0
        elif self.transport == "udp":
            self.counters.dropped += len(batch.inflight)
            self._refused("syslog UDP: %d messages from %s dropped: %s", len(batch.inflight), batch.peer, error)
        else:
            # Never drop what a TCP sender handed over: keep the batch and offer it again after a pause.
            first = not batch.retry_delay
            batch.retry_delay = min(RETRY_MOST, batch.retry_delay * 2 if batch.retry_delay else RETRY_FIRST)
            if first:
                self._refused("syslog %s: the spool refused a batch of %d messages from %s (%s); holding it and "
                              "retrying, reading from that sender is paused meanwhile", self.transport.upper(),
                              len(batch.inflight), batch.peer, error)
            assert self._loop is not None
            self._loop.call_later(batch.retry_delay, self._send, batch)
            return
        self._held -= len(batch.inflight)
        batch.inflight = batch.inflight_started = None
        for connection in batch.waiting:
            connection.resume()
        batch.waiting.clear()
        if batch.records:
            self._flush(batch)  # what came in meanwhile goes at once: under load batches grow by themselves
        elif batch.timer is None:
            del self._batches[batch.peer]

    def _refused(self, message: str, *args: object) -> None:
        error = args[-1]
        if isinstance(error, SpoolFull):
            self._throttle.warn("spool-full", message, *args)
        else:
            self.counters.errors += 1
            self._throttle.warn("spool-error", message, *args, level=logging.ERROR,
                                error=error if isinstance(error, BaseException) else None)

    async def _flush_all(self, deadline: float) -> None:
        """At stop: every held message into the spool (retrying while it is full) until the deadline."""
        while any(batch.held for batch in self._batches.values()) and time.monotonic() < deadline:
            for batch in list(self._batches.values()):
                self._flush(batch)
            await asyncio.sleep(0.01)
        lost = sum(batch.held for batch in self._batches.values())
        if lost:
            self.counters.dropped += lost
            log.error("syslog %s: %d received messages could not be put into the spool before stopping "
                      "(it stayed full for %.0f s)", self.transport.upper(), lost, STOP_TIMEOUT)

    # --- called by the connections -------------------------------------------------------------------

    def opened(self, connection: StreamConnection) -> bool:
        """Count a new connection; False when there are too many already (the caller drops it)."""
        self.counters.connections_total += 1
        if len(self._connections) >= MAX_CONNECTIONS:
            self.counters.errors += 1
            self._throttle.warn("too-many", "syslog %s: refused a connection from %s: %d connections are open "
                                "already", self.transport.upper(), connection.peer, MAX_CONNECTIONS)
            return False
        self._connections.add(connection)
        self.counters.connections_open += 1
        return True

    def closed(self, connection: StreamConnection, error: Exception | None) -> None:
        if connection not in self._connections:
            return  # refused at the door
        self._connections.discard(connection)
        self.counters.connections_open -= 1
        batch = self._batches.get(connection.peer)
        if batch is not None:
            batch.waiting.discard(connection)
        if error is not None:
            self.counters.errors += 1
            self._throttle.warn("connection-error", "syslog %s: connection from %s ended: %s",
                                self.transport.upper(), connection.peer, error)

    def note_framing(self, connection: StreamConnection, truncated: int, bad_counts: int) -> None:
        self.counters.truncated += truncated
        if bad_counts:
            self.counters.errors += bad_counts
            self._throttle.warn("octet-count", "syslog %s: %s sent a frame whose octet count is not believable; "
                                "read it as a text line", self.transport.upper(), connection.peer)
        if truncated:
            self._throttle.warn("truncated", "syslog %s: %s sent a message over %d bytes; kept its first part",
                                self.transport.upper(), connection.peer, KEEP_BYTES - 1)


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection: bytes to framed messages to the receiver's batches."""

    def __init__(self, receiver: SyslogReceiver) -> None:
        self.receiver = receiver
        self.framer = StreamFramer()
        self.peer = ""
        self.transport: asyncio.Transport | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = peer_address(transport.get_extra_info("peername"))
        if not self.receiver.opened(self):
            transport.abort()
            return
        _keepalive(transport.get_extra_info("socket"))

    def data_received(self, data: bytes) -> None:
        self.receiver.counters.bytes += len(data)
        try:
            records = self.framer.feed(data)
        except Exception:  # a framing bug must end this connection only, never the listener
            log.exception("syslog %s: cannot frame data from %s; closing that connection",
                          self.receiver.transport.upper(), self.peer)
            self.receiver.counters.errors += 1
            self.framer = StreamFramer()
            self.close()
            return
        self._note()
        if records:
            self.receiver.accept(self.peer, records, self)

    def eof_received(self) -> bool:
        """The sender finished (or half-closed): its last, unterminated message is complete."""
        self._hand_over_rest()
        return False  # nothing to send back: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._hand_over_rest()  # a reset keeps what arrived before it
        self.receiver.closed(self, exc)

    def _hand_over_rest(self) -> None:
        records = self.framer.finish()
        if records:
            self.receiver.accept(self.peer, records)

    def _note(self) -> None:
        framer = self.framer
        if framer.truncated or framer.bad_counts:
            self.receiver.note_framing(self, framer.truncated, framer.bad_counts)
            framer.truncated = framer.bad_counts = 0

    def pause(self) -> None:
        if not self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class DatagramReceiver(asyncio.DatagramProtocol):
    """UDP: one message per datagram (RFC 5426), trailing LF/NUL that some senders add removed."""

    def __init__(self, receiver: SyslogReceiver) -> None:
        self.receiver = receiver

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.receiver.counters.bytes += len(data)
        record = data.rstrip(b"\r\n\x00")
        if record:
            self.receiver.accept(peer_address(addr), [record[:KEEP_BYTES]])

    def error_received(self, exc: Exception) -> None:
        self.receiver.counters.errors += 1
        log.debug("syslog UDP: socket error: %s", exc)


def _keepalive(sock: Any) -> None:
    """TCP keepalive on an accepted connection (probes after KEEPALIVE_IDLE s of silence, where supported)."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 5)


def _bound_socket(host: str, port: int, kind: socket.SocketKind) -> socket.socket:
    """A socket bound to host:port. "::" serves IPv4 senders too; UDP asks for a large receive buffer (a
    burst waits in the kernel, not on the floor)."""
    family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=kind,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        if kind == socket.SOCK_STREAM:
            # Restart at once after a stop (TIME_WAIT); for TCP this never lets two listeners share a port.
            # Not for UDP: on Linux it would let a second process share the port without an error.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        else:
            with contextlib.suppress(OSError):  # the kernel caps it (net.core.rmem_max); the default still works
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        if family == socket.AF_INET6 and host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The server context of the TLS receiver (TLS 1.2 or later), from syslog_tls_cert and syslog_tls_key."""
    cert, key = settings.syslog_tls_cert, settings.syslog_tls_key
    if cert is None or key is None:
        raise ConfigError(
            f"syslog over TLS is turned on (syslog_tls_port = {settings.syslog_tls_port}) but "
            "syslog_tls_cert and syslog_tls_key are not both set; set VIGIL_SYSLOG_TLS_CERT and "
            "VIGIL_SYSLOG_TLS_KEY to PEM files, or VIGIL_SYSLOG_TLS_PORT=0 to turn TLS off")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"syslog over TLS: cannot load the certificate {cert} with the key {key}: {exc}. "
                          "Both must be PEM files readable by Vigil, the key matching the certificate") from exc
    return context


def _factory(transport: Transport, host: str, port: int, context: ssl.SSLContext | None = None) -> ReceiverFactory:
    def build(siem: Siem) -> Receiver:
        return SyslogReceiver(siem, transport, host=host, port=port, ssl_context=context)
    return build


def factories(settings: Settings) -> list[ReceiverFactory]:
    """The syslog receivers the settings turn on (UDP, TCP, TLS; a port of 0 turns one off)."""
    made: list[ReceiverFactory] = []
    if settings.syslog_udp_port:
        made.append(_factory("udp", settings.syslog_host, settings.syslog_udp_port))
    if settings.syslog_tcp_port:
        made.append(_factory("tcp", settings.syslog_host, settings.syslog_tcp_port))
    if settings.syslog_tls_port:
        made.append(_factory("tls", settings.syslog_host, settings.syslog_tls_port, tls_context(settings)))
    return made
