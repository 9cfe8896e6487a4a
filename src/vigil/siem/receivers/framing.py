"""Syslog over a byte stream (TCP, TLS): where one message ends and the next begins.

RFC 6587 knows two framings and senders use both, sometimes on one connection (a relay forwarding
from several sources), so the framing is decided per message:

* octet counting (§3.4.1): ``MSG-LEN SP SYSLOG-MSG``, MSG-LEN a decimal without leading zero. A
  message starts with a non-zero digit only in this framing (a syslog message starts with ``<``);
* non-transparent framing (§3.4.2): the message ends at LF; CRLF and NUL are accepted too (some
  senders end with NUL, Windows tools with CRLF).

A frame longer than ``MAX_RECORD_BYTES`` keeps its first part (one byte more than the parsers read,
so the parser sees that it was cut and flags ``vigil.truncated``); the rest of that frame is skipped
up to its real end, so the stream stays in step. Nothing here raises on bad input: junk is framed
like any text and stored as a parse failure, where a SOC engineer can see it.
"""

from __future__ import annotations

from vigil.siem.parsers.base import MAX_RECORD_BYTES

# What a frame is cut to: one byte over the parsers' limit, so run_batch marks it truncated.
KEEP_BYTES = MAX_RECORD_BYTES + 1
# An octet count beyond this is not believed (a sender bug or junk): the line is read as LF-framed text
# instead of skipping gigabytes of the stream.
MAX_OCTET_COUNT = 64 * 1024 * 1024
_MAX_COUNT_DIGITS = len(str(MAX_OCTET_COUNT))
_DIGITS = frozenset(b"0123456789")
_NONZERO = frozenset(b"123456789")
_CR = 0x0D


class StreamFramer:
    """Cut one connection's bytes into syslog messages; ``feed`` as data comes, ``finish`` at its end."""

    __slots__ = ("_buffer", "_skip_bytes", "_skip_to_delimiter", "bad_counts", "truncated")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skip_bytes = 0  # rest of an oversize octet-counted frame still to throw away
        self._skip_to_delimiter = False  # rest of an oversize LF-framed line still to throw away
        self.truncated = 0  # frames cut to KEEP_BYTES (counted for the receiver's status)
        self.bad_counts = 0  # octet counts not believed (read as LF-framed text instead)

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """The messages completed by ``data`` (possibly none), in order."""
        if self._skip_bytes or self._skip_to_delimiter:
            data = self._skip(data)
            if not data:
                return []
        if self._buffer:
            self._buffer += data
            data = bytes(self._buffer)  # one copy per read, so each frame is a single slice
        frames: list[bytes] = []
        position = self._frames(data, frames)
        self._buffer = bytearray(data[position:]) if position < len(data) else bytearray()
        return frames

    def finish(self) -> list[bytes]:
        """At the end of the connection: what is left is the last message (a sender may omit the final LF).

        An octet-counted frame cut short by the close keeps what arrived of its message."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._skip_bytes = 0
        self._skip_to_delimiter = False
        if not rest:
            return []
        if rest[0] in _NONZERO:
            counted = _octet_count(rest, len(rest))
            if counted is not None and counted[0] >= 0:
                rest = rest[counted[1]:]
        rest = rest.rstrip(b"\r\n\x00")
        return [rest] if rest else []

    # --- internals -------------------------------------------------------------------------------------

    def _skip(self, data: bytes) -> bytes:
        """Throw away the rest of an oversize frame; what follows it."""
        if self._skip_bytes:
            if len(data) <= self._skip_bytes:
                self._skip_bytes -= len(data)
                return b""
            data = data[self._skip_bytes:]
            self._skip_bytes = 0
            return data
        end = _delimiter(data, 0, len(data))
        if end < 0:
            return b""
        self._skip_to_delimiter = False
        return data[end + 1:]

    def _frames(self, buffer: bytes, frames: list[bytes]) -> int:
        """Append the complete frames at the start of ``buffer``; the position after the last one."""
        position = 0
        size = len(buffer)
        while position < size:
            if buffer[position] in _NONZERO:
                counted = _octet_count(buffer, size, position)
                if counted is None:
                    return position  # "123" so far: wait for the rest of the count
                length, start = counted
                if length >= 0:
                    end = start + length
                    if end <= size:
                        if length > KEEP_BYTES:
                            frames.append(buffer[start:start + KEEP_BYTES])
                            self.truncated += 1
                        else:
                            frames.append(buffer[start:end])
                        position = end
                        continue
                    if length <= KEEP_BYTES:
                        return position  # wait for the rest of the frame
                    if size - start < KEEP_BYTES:
                        return position
                    # Oversize: keep the first part now, skip the rest as it comes.
                    frames.append(buffer[start:start + KEEP_BYTES])
                    self.truncated += 1
                    self._skip_bytes = end - size
                    return size
                self.bad_counts += 1  # not a believable count: read the line as text
            end = _delimiter(buffer, position, size)
            if end < 0:
                if size - position > KEEP_BYTES:
                    frames.append(buffer[position:position + KEEP_BYTES])
                    self.truncated += 1
                    self._skip_to_delimiter = True
                    return size
                return position
            stop = end - 1 if end > position and buffer[end - 1] == _CR else end
            if stop - position > KEEP_BYTES:
                stop = position + KEEP_BYTES
                self.truncated += 1
            if stop > position:
                frames.append(buffer[position:stop])
            position = end + 1
        return position


def _delimiter(data: bytes | bytearray, start: int, stop: int) -> int:
    """Index of the LF or NUL that ends the message starting at ``start``; -1 when none has come yet."""
    end = data.find(b"\n", start, stop)
    nul = data.find(b"\x00", start, end if end >= 0 else stop)
    return nul if nul >= 0 else end


def _octet_count(data: bytes | bytearray, size: int, position: int = 0) -> tuple[int, int] | None:
    """An octet-count prefix at ``position``: (length, where the message starts); None: too short to tell.

    Length -1: not a believable count (no space after the digits, too many digits, too large)."""
    limit = min(size, position + _MAX_COUNT_DIGITS + 1)
    index = position
    while index < limit and data[index] in _DIGITS:
        index += 1
    if index == limit and index == size:
        return None
    if index >= size or data[index] != 0x20 or index == position:
        return -1, position
    length = int(data[position:index])
    if length > MAX_OCTET_COUNT:
        return -1, position
    return length, index + 1
