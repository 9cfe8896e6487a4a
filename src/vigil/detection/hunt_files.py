"""Log files read for a hunt: ``.evtx``, JSON and NDJSON (each also gzip-compressed), as the events rules see.

Windows events, from EVTX or from evtx_dump-style JSON (``{"Event": {"System": ...}}``), become the flat
native event of ``vigil.siem.parsers.windows`` (``Channel``, ``EventID`` as an int, ``EventRecordID``,
``Computer``, ``TimeCreated_SystemTime``, every ``EventData`` field by name, ...), without the ECS fields
and ``event.original`` that ingestion adds: a hunt only matches, and those would cost as much as the
flattening itself. Any other JSON object is matched as it is.

JSON files hold one object, an array of objects, one object per line (NDJSON), or pretty-printed
objects one after another (evtx_dump's output). Folders are searched recursively for the suffixes in
``SUFFIXES``; a file named on the command line is
read whatever its name, by its content (the EVTX magic, else JSON). What cannot be read (a file that is
not EVTX, a truncated one, a damaged chunk, a line that is not a JSON object) is a ``Problem`` naming the
file, the line or record, and the reason; the reading goes on with the rest.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from evtx import PyEvtxParser

from vigil.core.errors import NotFound
from vigil.siem.parsers.base import ParseError
from vigil.siem.parsers.evtx import MAGIC, MAX_ERRORS_IN_ROW
from vigil.siem.parsers.windows import payload_fields, system_fields
from vigil.siem.parsers.windows_ecs import RESERVED

Event = dict[str, Any]
# How much of a file to read: ("", 0, 0, 0) all of it; ("chunks", first, count, 0) those chunks of an
# .evtx file; ("lines", start, stop, first line number) the NDJSON lines in that byte range.
Part = tuple[str, int, int, int]
WHOLE: Part = ("", 0, 0, 0)

SUFFIXES = frozenset({".evtx", ".json", ".jsonl", ".ndjson", ".log"})
_SUFFIX_TUPLE = tuple(sorted(SUFFIXES))  # str.endswith takes a tuple
GZIP_MAGIC = b"\x1f\x8b"
# A file whose first line is a whole JSON object within this many bytes can be cut into line ranges.
NDJSON_SNIFF = 256 * 1024
# The EVTX file header: its first 4 KiB, then 64 KiB chunks; the chunk count is a uint16 at offset 42.
HEADER_BLOCK = 4096
CHUNK_SIZE = 65536
_NOISE = "An error occurred while trying to deserialize evtx stream.: "
# Between concatenated JSON documents: blank space, and evtx_dump's "Record 12" lines.
_GAP = re.compile(r"(?:\s+|Record \d+[^\S\n]*(?:\n|$))*")
_SCALARS = frozenset({str, int, float, bool, type(None)})
# System and EventData key sets already checked for names the fast path leaves to the parser's functions
# (shapes repeat: one per provider and event ID, so each is checked once).
_USUAL_SYSTEMS: dict[tuple[str, ...], bool] = {}
_PLAIN_SHAPES: dict[tuple[str, ...], bool] = {}
# "Provider" -> "Name" -> "Provider_Name": the field names of System attributes, made once (not a new text,
# hashed again, for each event).
_ATTRIBUTE_NAMES: dict[str, dict[str, str]] = {}
_MAX_SHAPES = 4096


@dataclass(frozen=True, slots=True)
class Problem:
    """A part of an input that could not be read; ``line`` for JSON lines, else ``None``."""

    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.reason}"


# --- which files -----------------------------------------------------------------------------------


def hunted_suffix(path: Path) -> bool:
    """Whether a file found in a folder is hunted: a known suffix, possibly followed by ``.gz``."""
    return _hunted_name(path.name)


def _hunted_name(name: str) -> bool:
    return name.lower().removesuffix(".gz").endswith(_SUFFIX_TUPLE)


def find_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files to hunt, in the order given (folders: their hunted files, sorted), each once.

    Raises ``NotFound`` naming every path that does not exist.
    """
    missing = [str(path) for path in paths if not Path(path).exists()]
    if missing:
        raise NotFound("no such file or folder: " + ", ".join(missing))
    files: list[Path] = []
    seen: set[str] = set()
    cwd = os.getcwd()  # noqa: PTH109 - text, joined as text below
    for given in map(Path, paths):
        for file in _walk(given) if given.is_dir() else [given]:
            # As file.absolute() (not resolve(): a syscall per path part), without a Path made for each of
            # thousands of files.
            key = str(file) if file.is_absolute() else os.path.join(cwd, file)  # noqa: PTH118
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files


def _walk(folder: Path) -> list[Path]:
    found: list[Path] = []
    for root, folders, names in os.walk(folder):
        folders.sort()
        base = Path(root)  # once per folder: base / name parses the name only
        found.extend(base / name for name in sorted(names) if _hunted_name(name))
    return found


# --- reading ---------------------------------------------------------------------------------------


def read_events(path: str, *, threads: int = 1, part: Part = WHOLE) -> Iterator[Event | Problem]:
    """The events of one file, or of one part of it (``split_file``), with a ``Problem`` for each part
    that cannot be read; never raises.

    ``threads`` is the EVTX reader's thread count (1 in hunt workers, which are one process per core).
    """
    kind, first, second, first_line = part
    if kind == "chunks":
        yield from _evtx_part(path, first, second, threads)
        return
    if kind == "lines":
        yield from _ndjson_part(path, first, second, first_line)
        return
    try:
        with open(path, "rb") as handle:  # noqa: PTH123 - no Path made for each of thousands of files
            head = handle.read(HEADER_BLOCK)
            size = os.fstat(handle.fileno()).st_size
            data = None if head[:8] == MAGIC else head + handle.read()
        if data is not None and data[:2] == GZIP_MAGIC:
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:  # gzip: BadGzipFile (an OSError), EOFError, zlib.error
        yield Problem(path, f"cannot read the file: {getattr(exc, 'strerror', None) or exc}")
        return
    if data is None:  # the reader opens the file itself: no copy in Python
        yield from _evtx_events(path, path, head, size, threads)
    elif data[:8] == MAGIC:  # a gzip-compressed .evtx
        yield from _evtx_events(path, io.BytesIO(data), data[:HEADER_BLOCK], len(data), threads)
    else:
        yield from _json_events(path, data)


def split_file(path: str, size: int, part_bytes: int) -> list[Part]:
    """Parts of about ``part_bytes`` that cover an .evtx or NDJSON file, to read in parallel; ``[WHOLE]``
    for a small file or one of another kind (gzip, one JSON document).

    An .evtx file is cut into chunk ranges: the ``evtx`` reader takes a file-like object, and the file's
    header followed by some of its chunks reads as a file of those chunks (a record never spans chunks).
    An NDJSON file is cut at line ends, each part knowing the number of its first line; that takes one
    pass over the file here (counting newlines, in C), none over its JSON.
    """
    if size <= part_bytes:
        return [WHOLE]
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(HEADER_BLOCK)
            if head[:8] == MAGIC:
                chunks = -(-(size - HEADER_BLOCK) // CHUNK_SIZE)  # a partial chunk at the end too
                step = max(1, part_bytes // CHUNK_SIZE)
                return [("chunks", first, min(step, chunks - first), 0) for first in range(0, chunks, step)]
            if not _starts_ndjson(head + handle.read(NDJSON_SNIFF - len(head))):
                return [WHOLE]
            handle.seek(0)
            return _line_parts(handle, part_bytes)
    except OSError:
        return [WHOLE]  # reported when it is read


def _starts_ndjson(head: bytes) -> bool:
    """Whether a file's first line is a whole JSON object (not the start of a pretty-printed document)."""
    first, newline, _ = head.lstrip().partition(b"\n")
    if not newline or first.lstrip()[:1] != b"{":
        return False
    try:
        return isinstance(orjson.loads(first), dict)
    except orjson.JSONDecodeError:
        return False


def _line_parts(handle: BinaryIO, part_bytes: int) -> list[Part]:
    parts: list[Part] = []
    start, line = 0, 1
    while True:
        data = handle.read(part_bytes)
        if not data:
            return parts
        data += handle.readline()  # to the end of the part's last line
        parts.append(("lines", start, start + len(data), line))
        start += len(data)
        line += data.count(b"\n")


def _ndjson_part(path: str, start: int, stop: int, first_line: int) -> Iterator[Event | Problem]:
    try:
        with Path(path).open("rb") as handle:
            handle.seek(start)
            data = handle.read(stop - start)
    except OSError as exc:
        yield Problem(path, f"cannot read the file: {exc.strerror or exc}")
        return
    yield from _ndjson_events(path, data, first_line)


def _evtx_part(path: str, first: int, count: int, threads: int) -> Iterator[Event | Problem]:
    try:
        with Path(path).open("rb") as handle:
            header = handle.read(HEADER_BLOCK)
            size = os.fstat(handle.fileno()).st_size
            handle.seek(HEADER_BLOCK + first * CHUNK_SIZE)
            body = handle.read(count * CHUNK_SIZE)
    except OSError as exc:
        yield Problem(path, f"cannot read the file: {exc.strerror or exc}")
        return
    # Only the first part says whether the whole file is truncated.
    yield from _evtx_events(path, io.BytesIO(header + body), header, size if first == 0 else None, threads)


def _evtx_events(
    path: str, source: str | io.BytesIO, header: bytes, size: int | None, threads: int
) -> Iterator[Event | Problem]:
    declared = struct.unpack_from("<H", header, 42)[0] if len(header) >= 44 else 1
    if size is not None and size < HEADER_BLOCK + declared * CHUNK_SIZE:
        yield Problem(path, f"truncated: the header declares {declared} chunk(s) "
                            f"({HEADER_BLOCK + declared * CHUNK_SIZE} bytes) but the file has {size} bytes; "
                            "records in the missing part are lost")
    try:
        records = PyEvtxParser(source, number_of_threads=threads).records_json()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # RuntimeError/OSError/ValueError, or a panic (pyo3's PanicException)
        yield Problem(path, f"not a readable EVTX file: {_reason(exc)}")
        return
    loads = orjson.loads
    errors_in_row = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a damaged chunk (also a panic of the native reader): report it, go on
            yield Problem(path, _reason(exc))
            errors_in_row += 1
            if errors_in_row >= MAX_ERRORS_IN_ROW:
                yield Problem(path, f"gave up after {errors_in_row} errors in a row")
                return
            continue
        errors_in_row = 0
        try:
            yield native_event(loads(record["data"]))  # type: ignore[index]  # records are dicts
        except (orjson.JSONDecodeError, ParseError, KeyError, TypeError) as exc:
            record_id = record.get("event_record_id") if isinstance(record, dict) else None
            yield Problem(path, f"record {record_id}: {exc}")


def _json_events(path: str, data: bytes) -> Iterator[Event | Problem]:
    """One JSON object, an array of objects, one object per line (NDJSON; blank lines skipped), or
    pretty-printed objects one after the other (evtx_dump's JSON output, with or without its
    ``Record N`` lines)."""
    start = data.lstrip()[:7]
    if start[:1] in (b"{", b"["):
        try:
            whole = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # more than one value
        else:
            if isinstance(whole, list):
                for number, item in enumerate(whole, 1):
                    yield _event_or_problem(path, item, f"item {number} of the array: ")
            else:
                yield _event_or_problem(path, whole, "")
            return
        first_line = data.lstrip().split(b"\n", 1)[0]
        try:
            orjson.loads(first_line)
        except orjson.JSONDecodeError:
            yield from _concatenated_events(path, data.decode("utf-8", errors="replace"))
            return
    elif start == b"Record ":
        yield from _concatenated_events(path, data.decode("utf-8", errors="replace"))
        return
    yield from _ndjson_events(path, data, 1)


def _ndjson_events(path: str, data: bytes, first_line: int) -> Iterator[Event | Problem]:
    loads = orjson.loads
    for number, line in enumerate(data.split(b"\n"), first_line):
        if not line.strip():
            continue
        try:
            item = loads(line)
        except orjson.JSONDecodeError as exc:
            yield Problem(path, f"not JSON: {exc}", number)
            continue
        yield _event_or_problem(path, item, "", number)


def _concatenated_events(path: str, text: str) -> Iterator[Event | Problem]:
    """JSON values one after the other, each over many lines; after a broken one, the next ``{`` line."""
    decoder = json.JSONDecoder()
    position = 0
    while True:
        gap = _GAP.match(text, position)
        position = gap.end() if gap else position
        if position >= len(text):
            return
        try:
            item, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            yield Problem(path, f"not JSON: {exc.msg}", exc.lineno)
            following = text.find("\n{", exc.pos)
            if following < 0:
                return
            position = following + 1
            continue
        event = _event_or_problem(path, item, "")
        if isinstance(event, Problem):
            event = Problem(path, event.reason, text.count("\n", 0, position) + 1)
        yield event
        position = end


def _event_or_problem(path: str, item: Any, where: str, line: int | None = None) -> Event | Problem:
    """An object as its event: a Windows event flattened, any other object as it is."""
    if type(item) is not dict:
        return Problem(path, f"{where}expected a JSON object, got {_json_type(item)}", line)
    root = item.get("Event")
    if type(root) is not dict or type(root.get("System")) is not dict:
        return item
    try:
        return native_event(item)
    except ParseError as exc:
        return Problem(path, f"{where}{exc}", line)


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _reason(exc: BaseException) -> str:
    return str(exc).replace(_NOISE, "").strip() or type(exc).__name__


# --- Windows events --------------------------------------------------------------------------------


def native_event(document: dict[str, Any]) -> Event:
    """A Windows event document (evtx_dump's shape) as the flat native fields Sigma rules name.

    The same fields and names as ``WindowsJsonParser`` gives (its ECS fields aside). The common shapes
    take a fast path; anything unusual goes through the parser's own ``system_fields`` and
    ``payload_fields``. Raises ``ParseError`` for a document without ``Event.System`` or a numeric
    ``EventID``.
    """
    root = document.get("Event")
    system = root.get("System") if isinstance(root, dict) else None
    if not isinstance(root, dict) or not isinstance(system, dict):
        raise ParseError("not a Windows event: no Event.System object")
    fields = _system(system)
    if fields is None:
        fields = system_fields(system)
    for section in ("EventData", "UserData", "ProcessingErrorData"):
        body = root.get(section)
        if body is None:
            continue
        if section != "UserData" and type(body) is dict and _plain(body):
            extracted: Event = body
        elif section == "UserData" and isinstance(body, dict):
            # UserData holds one element (e.g. LogFileCleared) whose children are the fields.
            extracted = {}
            for name, child in body.items():
                if not name.startswith("#"):
                    extracted.update(payload_fields(child))
        else:
            extracted = payload_fields(body)
        if fields.keys().isdisjoint(extracted):
            fields.update(extracted)
        else:
            for key, value in extracted.items():
                fields[f"EventData_{key}" if key in fields else key] = value
    if not RESERVED.isdisjoint(fields):  # as the parser: a native name that is an ECS root is kept aside
        fields = {f"EventData_{key}" if key in RESERVED else key: value for key, value in fields.items()}
    return fields


def _system(system: dict[str, Any]) -> Event | None:
    """``system_fields`` for the shape the ``evtx`` package writes; None for any other (let it decide)."""
    keys = tuple(system)
    usual = _USUAL_SYSTEMS.get(keys)
    if usual is None:
        usual = not any(name[:1] == "#" or name.endswith("_attributes") for name in keys)
        _remember(_USUAL_SYSTEMS, keys, usual)
    if not usual:
        return None
    native: Event = {}
    scalars = _SCALARS
    # Nested values, a text EventID: system_fields knows what to keep and what to refuse.
    for name, value in system.items():
        if value.__class__ is dict:
            attributes = value.get("#attributes")
            if attributes is not None:
                if attributes.__class__ is not dict:
                    return None
                names = _ATTRIBUTE_NAMES.get(name) or _attribute_names(name)
                for attribute, item in attributes.items():
                    if item.__class__ not in scalars:
                        return None
                    native[names.get(attribute) or _attribute_name(names, name, attribute)] = item
            value = value.get("#text")
            if value is None:
                continue
        elif value is None:
            continue
        if value.__class__ not in scalars:
            return None
        native[name] = value
    if native.get("EventID").__class__ is not int or native.get("EventRecordID", 0).__class__ is not int:
        return None
    if "Channel" not in native:
        native["Channel"] = None
    return native


def _attribute_names(name: str) -> dict[str, str]:
    if len(_ATTRIBUTE_NAMES) >= _MAX_SHAPES:  # a hostile file cannot grow it without end
        _ATTRIBUTE_NAMES.clear()
    names = _ATTRIBUTE_NAMES[name] = {}
    return names


def _attribute_name(names: dict[str, str], name: str, attribute: str) -> str:
    if len(names) >= _MAX_SHAPES:
        names.clear()
    joined = names[attribute] = name + "_" + attribute
    return joined


def _plain(body: dict[str, Any]) -> bool:
    """Whether ``payload_fields`` would give an EventData object back as it is: named scalar fields only."""
    keys = tuple(body)
    plain = _PLAIN_SHAPES.get(keys)
    if plain is None:
        # What payload_fields would change: attributes, <Data>, names with spaces (also kept without them).
        plain = "Data" not in body and not any(k[:1] == "#" or k.endswith("_attributes") or " " in k for k in keys)
        _remember(_PLAIN_SHAPES, keys, plain)
    return plain and set(map(type, body.values())) <= _SCALARS


def _remember(shapes: dict[tuple[str, ...], bool], keys: tuple[str, ...], verdict: bool) -> None:
    if len(shapes) >= _MAX_SHAPES:  # a hostile file cannot grow it without end
        shapes.clear()
    shapes[keys] = verdict
