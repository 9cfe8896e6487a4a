"""Reading log files into the SIEM (`vigil ingest`, the demo): files, folders, compressed files and EVTX.

Every record goes through the real event path: ``Siem.submit`` (the durable spool) and the pipeline
(parse, normalise, enrich, store), exactly as records from the network do. The pipeline is drained
after each batch in this thread, so the spool never holds more than one batch of a file and memory stays
bounded whatever the file's size: files are streamed in chunks, never read whole.

Per file:

- compression is recognised by its magic bytes, not the name (gzip, bzip2, xz); a file cut short keeps
  every record before the damage and is reported;
- Windows ``.evtx`` (recognised by its header, even compressed) is read record by record with the
  ``evtx`` package and parsed as ``windows_json``; what the reader cannot read becomes failure events;
- any other file is read as lines; its format is detected from its first records (the parser claiming
  most of them) unless one is given; a file that looks binary is skipped rather than stored as junk;
- every event gets ``log.file.path`` (the file's absolute path) unless the record already names one.

Folders are walked recursively in name order; hidden files and folders (``.name``) are skipped.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import shutil
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from vigil.core.config import Settings
from vigil.core.db import Database
from vigil.core.errors import VigilError
from vigil.siem.normalize import FAILURE_KIND, normalise
from vigil.siem.parsers.base import Event, ParseFailure, detect, get, put
from vigil.siem.parsers.evtx import is_evtx, iter_evtx_records
from vigil.siem.parsers.registry import detection_order, parser
from vigil.siem.runtime import Siem
from vigil.siem.spool import BatchMeta

BATCH_RECORDS = 5_000
BATCH_BYTES = 8 * 1024 * 1024
# A "line" longer than this (a file with no line breaks) is cut here; the rest up to the next newline is dropped.
MAX_LINE_BYTES = 1024 * 1024
CHUNK_BYTES = 1024 * 1024
# How many of a file's first records decide its format.
DETECT_RECORDS = 20
EVTX_FORMAT = "windows_json"
TRANSPORT = "file"

_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz")
_ROTATION = re.compile(r"(?:[.-]\d{1,8})+$")


class StoreBusy(VigilError):
    """Another process (normally `vigil serve`) holds the event store: DuckDB allows one process at a time."""

    status = 409
    code = "event-store-busy"
    title = "The event store is in use by another process"


# --- results ------------------------------------------------------------------------------------


@dataclass
class FileResult:
    """What became of one file (or of a path that could not be read)."""

    path: str
    format: str = ""  # the parser used ("windows_json" for EVTX), "" when detected per record
    source: str = ""
    records: int = 0  # records read from the file
    stored: int = 0  # events stored (failure events included)
    failures: int = 0  # records no parser could read (stored as failure events)
    cut_lines: int = 0  # lines longer than MAX_LINE_BYTES, cut
    error: str = ""  # why the file was not read, or not completely
    skipped: bool = False  # nothing was read (binary, missing, unreadable)

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class IngestSummary:
    files: list[FileResult] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for result in self.files if not result.ok)

    def total(self, name: str) -> int:
        return sum(int(getattr(result, name)) for result in self.files)


# --- naming and walking -------------------------------------------------------------------------


def default_source(path: Path) -> str:
    """``file:<name>`` without compression and rotation suffixes: ``auth.log.2.gz`` is ``file:auth.log``,
    so a log and its rotated copies are one source, and different logs are different sources."""
    name = path.name
    for suffix in _COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    name = _ROTATION.sub("", name) or name
    return f"file:{name}"


def _hidden(name: str) -> bool:
    return name.startswith(".")


def walk(path: Path) -> Iterator[Path]:
    """The regular files under a folder (recursively, in name order, hidden ones skipped), or the path itself."""
    if not path.is_dir():
        yield path
        return
    for root, folders, files in os.walk(path, followlinks=False):
        folders[:] = sorted(folder for folder in folders if not _hidden(folder))
        for name in sorted(files):
            file = Path(root) / name
            # Only regular files: a FIFO or a device inside a folder would block or never end.
            if not _hidden(name) and file.is_file():
                yield file


# --- reading ------------------------------------------------------------------------------------


class Stream(Protocol):
    """A readable binary stream that can look ahead: plain, gzip, bzip2 and xz files all are."""

    def read(self, size: int = -1, /) -> bytes: ...

    def read1(self, size: int = -1, /) -> bytes: ...

    def peek(self, n: int, /) -> bytes: ...

    def close(self) -> None: ...


def _compression(head: bytes) -> str | None:
    return next((name for magic, name in _COMPRESSED if head.startswith(magic)), None)


def open_stream(path: Path) -> tuple[Stream, str | None]:
    """The file's content as a binary stream, decompressed when it is compressed; and the compression."""
    with path.open("rb") as handle:
        head = handle.read(8)
    kind = _compression(head)
    if kind == "gzip":
        return gzip.open(path, "rb"), kind
    if kind == "bzip2":
        return bz2.open(path, "rb"), kind
    if kind == "xz":
        return lzma.open(path, "rb"), kind
    return path.open("rb"), None


@dataclass
class LineReader:
    """Lines of a stream without their line break, blank lines skipped, each at most ``MAX_LINE_BYTES``."""

    stream: Stream
    max_line: int = MAX_LINE_BYTES
    cut: int = 0

    def __iter__(self) -> Iterator[bytes]:
        pending = b""
        skipping = False  # inside the rest of a line already cut
        while True:
            # read1 hands over what one step decompressed: a damaged tail then loses nothing before it.
            chunk = self.stream.read1(CHUNK_BYTES)
            if not chunk:
                break
            pending += chunk
            lines = pending.split(b"\n")
            pending = lines.pop()
            for line in lines:
                if skipping:
                    skipping = False
                    continue
                yield from self._emit(line)
            if len(pending) > self.max_line:
                if not skipping:
                    self.cut += 1
                    yield from self._emit(pending[: self.max_line])
                skipping = True
                pending = b""
        if pending and not skipping:
            yield from self._emit(pending)

    def _emit(self, line: bytes) -> Iterator[bytes]:
        if len(line) > self.max_line:
            self.cut += 1
            line = line[: self.max_line]
        line = line.rstrip(b"\r")
        if line.strip():
            yield line


def looks_binary(records: Sequence[bytes]) -> bool:
    """NUL bytes or mostly control characters in the first records: not a text log."""
    sample = b"\n".join(records)[:8192]
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    control = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 13))
    return control > len(sample) // 10


def detect_file_format(records: Sequence[bytes]) -> str | None:
    """The parser claiming most of a file's first records (the earliest wins a tie); None when none claims any."""
    order = detection_order()
    votes: Counter[str] = Counter()
    for record in records[:DETECT_RECORDS]:
        found = detect(order, record)
        if found is not None:
            votes[found.name] += 1
    if not votes:
        return None
    return votes.most_common(1)[0][0]


# --- the ingester -------------------------------------------------------------------------------


@dataclass
class Segment:
    """A run of consecutive records of one file inside a batch."""

    path: str  # absolute, for log.file.path
    result: FileResult
    count: int = 0


class FileOrigin:
    """Enricher: ``log.file.path`` on each event of the batch being stored, and each file's counts.

    A batch may hold several files' records (small files share batches); ``segments`` says which runs
    of records came from which file. The pipeline keeps one event per record, in order, so the runs map
    onto the events. ``path`` stamps a whole batch instead (the demo's generated file sources).
    """

    name = "file-origin"

    def __init__(self) -> None:
        self.path: str | None = None
        self.segments: list[Segment] = []

    def enrich(self, events: list[Event]) -> None:
        if not self.segments:
            if self.path is not None:
                for event in events:
                    _stamp(event, self.path)
            return
        first = 0
        for segment in self.segments:
            for event in events[first: first + segment.count]:
                _stamp(event, segment.path)
                if get(event, "event.kind") == FAILURE_KIND and get(event, "vigil.parse_failure") is True:
                    segment.result.failures += 1
            segment.result.stored += len(events[first: first + segment.count])
            first += segment.count


def _stamp(event: Event, path: str) -> None:
    if get(event, "log.file.path") is None:  # a shipped record names its own file
        put(event, "log.file.path", path)


def open_siem_for_files(siem: Siem) -> None:
    """Open the event store and spool, turning "another process holds the store" into ``StoreBusy``.

    Also stores what an earlier run left in the spool, before any file's batches (they are not this run's).
    """
    try:
        siem.spool  # noqa: B018 - opens the store, then the spool
    except Exception as exc:  # duckdb.IOException; the class lives in the native module
        if "lock" in str(exc).lower():
            raise StoreBusy(
                f"the event store {siem.settings.events_path} is held by another process (normally `vigil serve`): "
                "stop the server and run this again, or send the files to it with `vigil ingest --server URL` "
                "(a shipper's API token in VIGIL_TOKEN), which posts them to its /api/v1/ingest") from exc
        raise
    siem.drain()


class BatchSink(Protocol):
    """Where the ingester's batches go: this process's ``Siem`` (``LocalSink``) or a running server."""

    def send(self, source: str, format: str | None, records: list[bytes], segments: list[Segment]) -> None:
        """Deliver one batch of records of one source and format; add the counts to each segment's file."""
        ...

    def failure(self, failure: ParseFailure, absolute: str, result: FileResult) -> None:
        """Keep what a reader could not read (a damaged EVTX chunk) and count it against its file."""
        ...


class LocalSink:
    """Batches into a ``Siem`` of this process that runs no pipeline thread: submitted, then drained here."""

    def __init__(self, siem: Siem) -> None:
        origin = next((enricher for enricher in siem.enrichers if isinstance(enricher, FileOrigin)), None)
        if origin is None:
            raise ValueError("the Siem for reading files needs a FileOrigin enricher (use file_siem)")
        self.siem = siem
        self.origin = origin

    def send(self, source: str, format: str | None, records: list[bytes], segments: list[Segment]) -> None:
        meta = BatchMeta(source=source, unit_id=self.siem.unit_for(source), format=format, transport=TRANSPORT)
        self.origin.segments = segments  # the enricher counts each file's events as they are stored
        try:
            self.siem.submit(records, meta)
            self.siem.drain()
        finally:
            self.origin.segments = []

    def failure(self, failure: ParseFailure, absolute: str, result: FileResult) -> None:
        meta = BatchMeta(source=result.source, unit_id=self.siem.unit_for(result.source), format=EVTX_FORMAT,
                         transport=TRANSPORT)
        others = [enricher for enricher in self.siem.enrichers if enricher is not self.origin]
        events, _ = normalise([failure], meta, others)
        for event in events:
            _stamp(event, absolute)
        self.siem.store.append(events, unit_id=meta.unit_id, source=meta.source)
        result.stored += len(events)
        result.failures += 1


@dataclass
class _Batch:
    source: str
    format: str | None
    records: list[bytes] = field(default_factory=list)
    size: int = 0
    segments: list[Segment] = field(default_factory=list)


class FileIngester:
    """Reads files, folders, compressed files and EVTX into batches for a ``BatchSink``.

    Records are gathered into batches of up to ``batch_records`` records or ``batch_bytes`` bytes; files
    of the same source and format share batches, so a folder of small files is not one store
    transaction per file. A file's result is given once all its records are stored.
    """

    def __init__(self, sink: BatchSink, *, format: str | None = None, source: str | None = None,
                 batch_records: int = BATCH_RECORDS, batch_bytes: int = BATCH_BYTES) -> None:
        if format is not None:
            parser(format)  # UnknownParser (BadInput) naming the known formats
        self.sink = sink
        self.format = format
        self.source = source
        self.batch_records = batch_records
        self.batch_bytes = batch_bytes
        self._batch: _Batch | None = None
        self._unflushed: list[FileResult] = []  # read, but records of theirs wait in the batch
        self._ready: list[FileResult] = []

    def ingest(self, paths: Sequence[Path]) -> Iterator[FileResult]:
        """Each file's result once it is stored; a missing or unreadable path is a result with its error."""
        for path in paths:
            if not path.exists():
                self._finish(FileResult(str(path), error="no such file or folder", skipped=True))
            else:
                try:
                    files = list(walk(path))
                except OSError as exc:
                    self._finish(FileResult(str(path), error=f"cannot list the folder: {exc.strerror or exc}",
                                            skipped=True))
                    files = []
                for file in files:
                    self._finish(self.read_file(file))
                    yield from self._take_ready()
            yield from self._take_ready()
        self.flush()
        yield from self._take_ready()

    def _finish(self, result: FileResult) -> None:
        (self._unflushed if self._batch is not None else self._ready).append(result)

    def _take_ready(self) -> Iterator[FileResult]:
        ready, self._ready = self._ready, []
        yield from ready

    def read_file(self, path: Path) -> FileResult:
        """Read one file into batches (stored as they fill; ``flush`` stores the last one)."""
        result = FileResult(str(path), source=self.source or default_source(path))
        absolute = str(path.absolute())
        try:
            stream, compression = open_stream(path)
        except OSError as exc:
            result.error, result.skipped = f"cannot read: {exc.strerror or exc}", True
            return result
        try:
            if is_evtx(stream.peek(8)[:8]):
                self._read_evtx(path, absolute, stream, compression, result)
            else:
                self._read_lines(stream, absolute, result)
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            # A truncated or damaged compressed file: what was read before the damage is kept.
            reason = str(exc) or type(exc).__name__
            result.error = f"cannot read past record {result.records}: {reason} (the records before were ingested)"
        finally:
            stream.close()
        return result

    # --- batching ------------------------------------------------------------------------------------

    def _add(self, record: bytes, absolute: str, result: FileResult) -> None:
        batch = self._batch
        if batch is not None and (batch.source, batch.format) != (result.source, result.format or None):
            self.flush()
            batch = None
        if batch is None:
            batch = self._batch = _Batch(result.source, result.format or None)
        batch.records.append(record)
        batch.size += len(record)
        if not batch.segments or batch.segments[-1].result is not result:
            batch.segments.append(Segment(absolute, result))
        batch.segments[-1].count += 1
        result.records += 1
        if len(batch.records) >= self.batch_records or batch.size >= self.batch_bytes:
            self.flush()

    def flush(self) -> None:
        """Store the batch being gathered (through the spool and the pipeline) and wait until it is stored."""
        batch, self._batch = self._batch, None
        if batch is not None and batch.records:
            self.sink.send(batch.source, batch.format, batch.records, batch.segments)
        self._ready.extend(self._unflushed)
        self._unflushed.clear()

    # --- text files ---------------------------------------------------------------------------------

    def _read_lines(self, stream: Stream, absolute: str, result: FileResult) -> None:
        reader = LineReader(stream)
        head: list[bytes] = []  # the first records, held until they decide the format
        chosen = False
        try:
            for line in reader:
                if chosen:
                    self._add(line, absolute, result)
                    continue
                head.append(line)
                if len(head) >= DETECT_RECORDS:
                    if not self._choose_format(head, result):
                        return
                    chosen = True
                    for record in head:
                        self._add(record, absolute, result)
        except (OSError, EOFError, zlib.error, lzma.LZMAError):
            # Damage part-way (a cut .gz): keep what was read before it, then report the damage.
            if not chosen and head and self._choose_format(head, result):
                for record in head:
                    self._add(record, absolute, result)
            raise
        finally:
            result.cut_lines = reader.cut
        if not chosen and head and self._choose_format(head, result):
            for record in head:
                self._add(record, absolute, result)

    def _choose_format(self, first_records: Sequence[bytes], result: FileResult) -> bool:
        """Set the file's format from its first records; False (skipped) for a binary file."""
        if self.format is not None:
            result.format = self.format
            return True
        detected = detect_file_format(first_records)
        if detected is None and looks_binary(first_records):
            result.error = "skipped: binary content, not a log (give --format to read it anyway)"
            result.skipped = True
            return False
        result.format = detected or ""
        return True

    # --- EVTX ----------------------------------------------------------------------------------------

    def _read_evtx(self, path: Path, absolute: str, stream: Stream, compression: str | None,
                   result: FileResult) -> None:
        result.format = EVTX_FORMAT
        if compression is None:
            self._read_evtx_file(path, absolute, result)
            return
        # The EVTX reader needs a file: a compressed one is unpacked to a temporary file first.
        with tempfile.NamedTemporaryFile(suffix=".evtx") as unpacked:
            shutil.copyfileobj(stream, unpacked, CHUNK_BYTES)
            unpacked.flush()
            self._read_evtx_file(Path(unpacked.name), absolute, result)

    def _read_evtx_file(self, path: Path, absolute: str, result: FileResult) -> None:
        for item in iter_evtx_records(path, result.source):
            if isinstance(item, ParseFailure):
                self.sink.failure(item, absolute, result)
            else:
                self._add(item, absolute, result)


def file_siem(settings: Settings, database: Database) -> Siem:
    """A ``Siem`` for reading files in this process: no pipeline thread, a ``FileOrigin`` enricher."""
    return Siem(settings, database, enrichers=[FileOrigin()])


def ingest_paths(siem: Siem, paths: Sequence[Path], *, format: str | None = None,
                 source: str | None = None) -> Iterator[FileResult]:
    """Files and folders into a ``Siem`` of this process built by ``file_siem``."""
    ingester = FileIngester(LocalSink(siem), format=format, source=source)
    open_siem_for_files(siem)
    yield from ingester.ingest(paths)
