"""Windows ``.evtx`` files, read with the ``evtx`` package (a Rust parser), record by record.

``iter_evtx_records`` yields each record's JSON (evtx_dump's shape, for ``WindowsJsonParser``) as bytes,
and a ``ParseFailure`` (parser ``evtx``, the file name and the reason in ``reason``, the path in
``source``) for what cannot be read: a file that is not EVTX, a truncated file, a damaged chunk. The read
goes on after a damaged chunk, so a caller counts the failures of a file by counting the
``ParseFailure`` items; nothing raises.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import replace
from os import PathLike
from pathlib import Path

from evtx import PyEvtxParser

from vigil.siem.parsers.base import Event, ParseContext, ParseFailure, Parser, run_batch
from vigil.siem.parsers.windows import WindowsJsonParser

PARSER_NAME = "evtx"
MAGIC = b"ElfFile\x00"
HEADER_BLOCK = 4096
CHUNK_SIZE = 65536
# After this many errors in a row without a good record, the rest of the file is given up on.
MAX_ERRORS_IN_ROW = 100
BATCH = 1000
_NOISE = "An error occurred while trying to deserialize evtx stream.: "


def is_evtx(sample: bytes) -> bool:
    """Whether bytes are the start of an .evtx file (its header's magic), whatever the file is called."""
    return sample[:8] == MAGIC


def iter_evtx_records(path: str | PathLike[str], source: str | None = None) -> Iterator[bytes | ParseFailure]:
    """Each record's JSON bytes, in file order; a ``ParseFailure`` for each part that cannot be read.

    A failure's ``source`` is ``source`` when given (the log source being ingested), else the file's path.
    """
    file = Path(path)
    origin = source if source is not None else str(file)

    def failure(reason: str, raw: bytes = b"") -> ParseFailure:
        return ParseFailure(raw, PARSER_NAME, f"{file.name}: {reason}", origin)

    try:
        size = file.stat().st_size
        with file.open("rb") as handle:
            header = handle.read(HEADER_BLOCK)
    except OSError as exc:
        yield failure(f"cannot read the file: {exc.strerror or exc}")
        return
    if header[:8] != MAGIC:
        yield failure(f"not an EVTX file (starts with {header[:8]!r}, not {MAGIC!r})", header[:64])
        return
    declared = _declared_chunks(header)
    if size < HEADER_BLOCK + declared * CHUNK_SIZE:
        yield failure(
            f"truncated: the header declares {declared} chunk(s) ({HEADER_BLOCK + declared * CHUNK_SIZE} bytes)"
            f" but the file has {size} bytes; records in the missing part are lost"
        )
    try:
        records = PyEvtxParser(str(file)).records_json()
    except Exception as exc:  # the native reader raises RuntimeError/OSError/ValueError; none may escape
        yield failure(f"not a readable EVTX file: {_reason(exc)}")
        return
    errors_in_row = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except Exception as exc:  # a damaged chunk: report it and go on with the next one
            yield failure(_reason(exc))
            errors_in_row += 1
            if errors_in_row >= MAX_ERRORS_IN_ROW:
                yield failure(f"gave up after {errors_in_row} errors in a row")
                return
            continue
        errors_in_row = 0
        data = record.get("data") if isinstance(record, dict) else None
        if not isinstance(data, str):
            record_id = record.get("event_record_id") if isinstance(record, dict) else None
            yield failure(f"record {record_id}: the reader returned no JSON for it")
            continue
        yield data.encode("utf-8", errors="surrogatepass")


def read_evtx(
    path: str | PathLike[str], ctx: ParseContext, parser: Parser | None = None
) -> Iterator[Event | ParseFailure]:
    """Events (through ``WindowsJsonParser`` unless another parser is given) and failures of one file.

    Failures name the file in their reason (``Security.evtx: ...``), whichever step refused the record.
    """
    windows = parser if parser is not None else WindowsJsonParser()
    name = Path(path).name

    def parsed(batch: list[bytes]) -> Iterator[Event | ParseFailure]:
        for result in run_batch(windows, batch, ctx):
            yield replace(result, reason=f"{name}: {result.reason}") if isinstance(result, ParseFailure) else result

    batch: list[bytes] = []
    for item in iter_evtx_records(path, ctx.source or None):
        if isinstance(item, ParseFailure):
            yield from parsed(batch)
            batch = []
            yield item
            continue
        batch.append(item)
        if len(batch) >= BATCH:
            yield from parsed(batch)
            batch = []
    yield from parsed(batch)


def _declared_chunks(header: bytes) -> int:
    if len(header) < 44:
        return 1
    (count,) = struct.unpack_from("<H", header, 42)
    return int(count)


def _reason(exc: BaseException) -> str:
    return str(exc).replace(_NOISE, "").strip() or type(exc).__name__
