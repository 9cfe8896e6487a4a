"""The durable spool: what a receiver acknowledged is on disk before the acknowledgement.

Receivers call ``Spool.append`` with a batch of raw records and its ``BatchMeta``; it returns once the
batch is written and fsync'd, with the batch's ``SpoolPosition`` (segment, byte offset after it). The
pipeline reads batches in order and stores each with its position, so after a crash the spool replays
from the store's last recorded position and nothing is stored twice (see ``vigil.siem.store.base``).

On disk: ``<dir>/<segment:012d>.seg`` files, each a run of frames::

    b"VSP1" | u32 header length | u32 body length | u32 CRC-32 of header and body | header | body

The header is JSON (``BatchMeta``); the body is the records, each a u32 length then its bytes. A frame
cut short by a crash (never acknowledged: the fsync had not returned) is cut off when the spool opens.
Segments wholly before the store's position are deleted by ``release``. The total size is bounded by a
quota; a batch that would pass it is refused with ``SpoolFull`` (HTTP 503 with Retry-After) instead of
being accepted and lost.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import BinaryIO

import orjson

from vigil.core.errors import BadInput, VigilError
from vigil.siem.store.base import SpoolPosition

log = logging.getLogger(__name__)

MAGIC = b"VSP1"
FRAME = struct.Struct("<4sIII")
RECORD_LENGTH = struct.Struct("<I")
SUFFIX = ".seg"
MAX_BATCH_BYTES = 256 * 1024 * 1024
# How long a sender should wait before retrying when the spool is full.
RETRY_AFTER_SECONDS = 30


class SpoolFull(VigilError):
    """The spool's disk quota is used up: the batch was not accepted (nothing already accepted is lost)."""

    status = 503
    code = "spool-full"
    title = "Ingestion paused: the spool is full"

    def __init__(self, detail: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


@dataclass(frozen=True)
class BatchMeta:
    """Where a batch came from and how to read it; kept with the batch in the spool."""

    source: str  # the input's name as shown on the log-sources page ("syslog", "http:filebeat", "file")
    unit_id: int  # organisation unit the events belong to
    format: str | None = None  # parser name; None: detected per record
    transport: str = ""  # "syslog-udp", "syslog-tcp", "syslog-tls", "http", "bulk", "file"
    peer: str = ""  # sender's address, when there is one
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> bytes:
        data = asdict(self)
        data["received_at"] = self.received_at.isoformat()
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes) -> BatchMeta:
        data = orjson.loads(raw)
        data["received_at"] = datetime.fromisoformat(data["received_at"])
        return cls(**data)


@dataclass(frozen=True)
class SpoolBatch:
    meta: BatchMeta
    records: list[bytes]
    position: SpoolPosition  # just after this batch


def _encode(records: Sequence[bytes], meta: BatchMeta) -> bytes:
    header = meta.to_json()
    # Each record's length, then the record: joined in one pass, without a copy per record.
    body = b"".join(chain.from_iterable(zip(map(RECORD_LENGTH.pack, map(len, records)), records, strict=True)))
    if len(body) > MAX_BATCH_BYTES:
        raise BadInput(f"a batch of {len(body):,} bytes is larger than the spool takes at once "
                       f"({MAX_BATCH_BYTES:,}); send smaller batches")
    crc = zlib.crc32(body, zlib.crc32(header))
    return FRAME.pack(MAGIC, len(header), len(body), crc) + header + body


def _decode_body(body: bytes) -> list[bytes]:
    records: list[bytes] = []
    append, length_at = records.append, RECORD_LENGTH.unpack_from  # bound once: this loop runs per record
    offset, end, size = 0, len(body), RECORD_LENGTH.size
    while offset < end:
        (length,) = length_at(body, offset)
        offset += size
        append(body[offset:offset + length])
        offset += length
    return records


def _read_frame(handle: BinaryIO) -> tuple[BatchMeta, list[bytes]] | None:
    """The next whole, intact frame at the handle's position; None at the end or at a damaged tail."""
    head = handle.read(FRAME.size)
    if len(head) < FRAME.size:
        return None
    magic, header_length, body_length, crc = FRAME.unpack(head)
    if magic != MAGIC:
        return None
    header = handle.read(header_length)
    body = handle.read(body_length)
    if len(header) < header_length or len(body) < body_length:
        return None
    if zlib.crc32(body, zlib.crc32(header)) != crc:
        return None
    return BatchMeta.from_json(header), _decode_body(body)


# A stretch of a segment that holds no intact frame (disk damage): the reader moves past it.
DAMAGED = "spool:damaged"
_SCAN_CHUNK = 1024 * 1024


def _next_intact(handle: BinaryIO, start: int, end: int) -> int | None:
    """The offset of the first intact frame at or after ``start`` (before ``end``); None when there is none."""
    offset = start
    while offset < end:
        handle.seek(offset)
        chunk = handle.read(min(_SCAN_CHUNK, end - offset) + len(MAGIC) - 1)
        found = chunk.find(MAGIC)
        while found != -1:
            handle.seek(offset + found)
            if _read_frame(handle) is not None and handle.tell() <= end:
                return offset + found
            found = chunk.find(MAGIC, found + 1)
        offset += _SCAN_CHUNK
    return None


def _frames(handle: BinaryIO, start: int, end: int) -> Iterator[tuple[int, tuple[BatchMeta, list[bytes]] | None]]:
    """(offset after, frame) for each intact frame from ``start`` to ``end``; a damaged stretch comes as
    (offset of the next intact frame or ``end``, None), so later frames are never lost to it."""
    offset = start
    while offset < end:
        handle.seek(offset)
        frame = _read_frame(handle)
        if frame is not None and handle.tell() <= end:
            offset = handle.tell()
            yield offset, frame
            continue
        following = _next_intact(handle, offset + 1, end)
        resume = end if following is None else following
        log.error("spool: %d damaged bytes in %s at byte %d; skipped, the batches after them are kept",
                  resume - offset, getattr(handle, "name", "?"), offset)
        offset = resume
        yield offset, None


class Spool:
    """One writer (any thread, serialised by a lock), one in-order reader (the pipeline)."""

    def __init__(self, directory: Path, *, quota_bytes: int, segment_bytes: int = 64 * 1024 * 1024,
                 first_segment: int = 1) -> None:
        """``first_segment``: where an empty spool starts numbering, past the store's recorded position, so
        batches of a spool folder that was wiped are never mistaken for ones already stored."""
        self.directory = directory
        self.quota_bytes = quota_bytes
        self.segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._appended = threading.Condition(self._lock)
        self._sizes: dict[int, int] = {}
        for path in sorted(directory.glob("*" + SUFFIX)):
            if path.stem.isdigit():
                self._sizes[int(path.stem)] = path.stat().st_size
        if self._sizes:
            self._recover_tail(max(self._sizes))
        self._segment = max(self._sizes, default=first_segment)
        self._sizes.setdefault(self._segment, 0)
        self._writer: BinaryIO = self._path(self._segment).open("ab")
        self._closed = False

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:012d}{SUFFIX}"

    def _recover_tail(self, segment: int) -> None:
        """Cut a frame torn by a crash off the newest segment (it was never acknowledged); damage before the
        last intact frame stays for the reader to skip, so no acknowledged batch after it is cut."""
        path = self._path(segment)
        good = 0
        with path.open("rb") as handle:
            for offset, frame in _frames(handle, 0, self._sizes[segment]):
                if frame is not None:
                    good = offset
        if good < self._sizes[segment]:
            log.warning("spool: cutting %d bytes of an unfinished batch off %s (never acknowledged)",
                        self._sizes[segment] - good, path.name)
            with path.open("r+b") as handle:
                handle.truncate(good)
                os.fsync(handle.fileno())
            self._sizes[segment] = good

    # --- writing -----------------------------------------------------------------------------------

    @property
    def used_bytes(self) -> int:
        return sum(self._sizes.values())

    def append(self, records: Sequence[bytes], meta: BatchMeta) -> SpoolPosition:
        """Write the batch and fsync it; its position once it is safe. ``SpoolFull`` when over quota."""
        frame = _encode(records, meta)
        with self._lock:
            if self._closed:
                raise SpoolFull("the spool is closed: the server is stopping", retry_after=5)
            if self.used_bytes + len(frame) > self.quota_bytes:
                raise SpoolFull(
                    f"the spool holds {self.used_bytes:,} bytes of its {self.quota_bytes:,}-byte quota and the "
                    "pipeline has not caught up; retry later (nothing accepted before was lost)")
            if self._sizes[self._segment] and self._sizes[self._segment] + len(frame) > self.segment_bytes:
                self._roll()
            self._writer.write(frame)
            self._writer.flush()
            os.fdatasync(self._writer.fileno())
            self._sizes[self._segment] += len(frame)
            position = (self._segment, self._sizes[self._segment])
            self._appended.notify_all()
            return position

    def _roll(self) -> None:
        self._writer.close()
        self._segment += 1
        self._sizes[self._segment] = 0
        self._writer = self._path(self._segment).open("ab")
        # The new file's directory entry must survive a crash too.
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- reading -----------------------------------------------------------------------------------

    def end(self) -> SpoolPosition:
        with self._lock:
            return self._segment, self._sizes[self._segment]

    def pending_bytes(self, after: SpoolPosition | None) -> int:
        """Bytes written after ``after`` (None: everything held): how far the pipeline is behind."""
        with self._lock:
            if after is None:
                return self.used_bytes
            segment, offset = after
            return sum(size - (offset if number == segment else 0)
                       for number, size in self._sizes.items() if number >= segment)

    def wait(self, after: SpoolPosition | None, timeout: float) -> bool:
        """Block until something was written after ``after`` (or the timeout); whether there is."""
        with self._appended:
            return self._appended.wait_for(lambda: self._has_after(after), timeout)

    def _has_after(self, after: SpoolPosition | None) -> bool:
        if after is None:
            return self.used_bytes > 0
        return (self._segment, self._sizes[self._segment]) > after and self.used_bytes > 0

    def read(self, after: SpoolPosition | None, *, max_records: int = 50_000) -> list[SpoolBatch]:
        """Batches written after ``after``, in order, until about ``max_records`` records (at least one batch)."""
        with self._lock:
            segments = sorted(number for number in self._sizes if after is None or number >= after[0])
            sizes = dict(self._sizes)
        batches: list[SpoolBatch] = []
        total = 0
        for number in segments:
            start = after[1] if after is not None and number == after[0] else 0
            if start >= sizes[number]:
                continue
            with self._path(number).open("rb") as handle:
                for offset, frame in _frames(handle, start, sizes[number]):
                    if frame is None:  # an empty batch whose position moves the pipeline past the damage
                        batches.append(SpoolBatch(BatchMeta(source=DAMAGED, unit_id=0), [], (number, offset)))
                    else:
                        batches.append(SpoolBatch(frame[0], frame[1], (number, offset)))
                        total += len(frame[1])
                    if total >= max_records:
                        break
            if batches and total >= max_records:
                break
        return batches

    def release(self, upto: SpoolPosition | None) -> int:
        """Delete segments wholly before ``upto`` (stored for good); the number of files deleted."""
        if upto is None:
            return 0
        with self._lock:
            done = [number for number in self._sizes if number < upto[0]]
            for number in done:
                self._path(number).unlink(missing_ok=True)
                del self._sizes[number]
            # The current segment is emptied by starting a new one once everything in it is stored; the
            # stored one goes at once, so its bytes stop counting against the quota.
            if (upto == (self._segment, self._sizes[self._segment]) and self._sizes[self._segment]
                    >= self.segment_bytes // 2):
                stored = self._segment
                self._roll()
                self._path(stored).unlink(missing_ok=True)
                del self._sizes[stored]
                done.append(stored)
            return len(done)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._writer.close()
