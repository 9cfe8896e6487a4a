"""Helpers for the STIX and TAXII tests: STIX objects written inline, bundles as bytes, a source that
records how it is read, and a generated bundle of many indicators."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import orjson

from vigil.intel.feeds.stix import StixParser
from vigil.intel.indicators import ItemError, ParsedEntity, ParsedIndicator, ParsedItem

SHARED_STIX = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "intel" / "stix"
STAMP = "2024-05-01T12:00:00.000Z"


def stix_id(kind: str, number: int) -> str:
    """A stable id per (kind, number), so tests can name objects they link."""
    return f"{kind}--{uuid.uuid5(uuid.NAMESPACE_URL, f'vigil-test/{kind}/{number}')}"


def indicator(number: int, pattern: str, **extra: Any) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": stix_id("indicator", number), "created": STAMP,
            "modified": STAMP, "pattern": pattern, "pattern_type": "stix", "valid_from": STAMP, **extra}


def sdo(kind: str, number: int, name: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "spec_version": "2.1", "id": stix_id(kind, number), "created": STAMP, "modified": STAMP,
            "name": name, **extra}


def relationship(number: int, source: str, kind: str, target: str) -> dict[str, Any]:
    return {"type": "relationship", "spec_version": "2.1", "id": stix_id("relationship", number), "created": STAMP,
            "modified": STAMP, "relationship_type": kind, "source_ref": source, "target_ref": target}


def bundle(*objects: Any) -> bytes:
    return orjson.dumps({"type": "bundle", "id": "bundle--" + str(uuid.uuid4()), "objects": list(objects)})


def parse(data: bytes, **options: Any) -> list[ParsedItem]:
    return list(StixParser().parse(io.BytesIO(data), options))


def indicators(items: list[ParsedItem]) -> list[ParsedIndicator]:
    return [item for item in items if isinstance(item, ParsedIndicator)]


def entities(items: list[ParsedItem]) -> list[ParsedEntity]:
    return [item for item in items if isinstance(item, ParsedEntity)]


def errors(items: list[ParsedItem]) -> list[ItemError]:
    return [item for item in items if isinstance(item, ItemError)]


class RecordingSource(io.RawIOBase):
    """A binary file that remembers every read: how much each asked for, and how far it had read when."""

    def __init__(self, path: Path, *, seekable: bool = True) -> None:
        self._file = path.open("rb")
        self._seekable = seekable
        self.requests: list[int] = []
        self.position = 0  # bytes read since the last seek to the start
        self.total = 0  # bytes read in all

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def read(self, size: int | None = -1) -> bytes:
        self.requests.append(-1 if size is None else size)
        data = self._file.read(size)
        self.position += len(data)
        self.total += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("seek")
        self.position = self._file.seek(offset, whence)
        return self.position

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
        super().close()


def write_large_bundle(path: Path, count: int) -> None:
    """A bundle of ``count`` indicators (one IPv4 each) and one malware they all indicate, the
    relationships last; written object by object."""
    malware = sdo("malware", 1, "Generated RAT", is_family=True)
    with path.open("wb") as out:
        out.write(b'{"type": "bundle", "id": "bundle--' + str(uuid.uuid4()).encode() + b'", "objects": [\n')
        out.write(orjson.dumps(malware))
        for number in range(count):
            address = f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"
            out.write(b",\n" + orjson.dumps(indicator(number, f"[ipv4-addr:value = '{address}']",
                                                       indicator_types=["malicious-activity"])))
        for number in range(count):
            out.write(b",\n" + orjson.dumps(relationship(number, stix_id("indicator", number), "indicates",
                                                         malware["id"])))
        out.write(b"\n]}\n")
