"""An incremental reader of one JSON document whose big part is an array under a top-level key.

A STIX bundle is ``{"type": "bundle", "id": …, "objects": [ … ]}`` and the array may hold millions of
objects; ``JsonArrayReader`` yields its elements one at a time while reading the binary source in
chunks, so memory holds one element (plus one chunk), never the document. The other top-level members
(``type``, ``id``, …) are small: they are decoded whole and kept in ``members``, complete once the
elements are exhausted (they may come after the array, JSON does not order members).

Each element is decoded with ``json.JSONDecoder.raw_decode`` over a text buffer that grows only while
the element at its head is incomplete (the read size doubles then, so a single huge element still costs
linear time). A document that is not JSON raises ``JsonStreamError`` saying at which character and
why.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

DEFAULT_CHUNK_SIZE = 64 * 1024
DEFAULT_MAX_ELEMENT = 256 * 1024 * 1024  # characters; a bigger element is refused rather than held
_WHITESPACE = " \t\n\r"
_NUMBER_CHARS = "0123456789+-.eE"
_JSON_NAMES: dict[type, str] = {str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


class JsonStreamError(ValueError):
    """The document is not JSON of the expected shape; the message says where and why."""


class JsonArrayReader:
    """Reads ``source`` (binary, UTF-8 with or without a byte-order mark) once.

    ``elements()`` yields each element of the array under ``array_key``; when the document is not an
    object, it yields nothing and ``top_level`` says what the document was ("array", "string", …; an
    array is not read); an object without that array yields nothing and ``members`` holds its members.
    """

    def __init__(self, source: BinaryIO, *, array_key: str = "objects", chunk_size: int = DEFAULT_CHUNK_SIZE,
                 max_element: int = DEFAULT_MAX_ELEMENT) -> None:
        if chunk_size < 1 or max_element < chunk_size:
            raise ValueError("chunk_size must be positive and max_element at least chunk_size")
        self.array_key = array_key
        self.chunk_size = chunk_size
        self.max_element = max_element
        self.members: dict[str, Any] = {}
        self.top_level = ""
        self.has_array = False
        # What reading cost, for callers and tests that check the document is never held whole.
        self.chunks_read = 0
        self.bytes_read = 0
        self.largest_buffer = 0  # the most characters held at once
        self._source = source
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
        self._json = json.JSONDecoder()
        self._buffer = ""
        self._pos = 0
        self._consumed = 0  # characters dropped from the front of the buffer
        self._eof = False
        self._started = False

    # --- the document's structure ---------------------------------------------------------------

    def elements(self) -> Iterator[Any]:
        if self._started:
            raise RuntimeError("a JsonArrayReader reads its source once")
        self._started = True
        first = self._next_char()
        if first == "":
            raise self._error("the document is empty")
        if first == "[":
            self.top_level = "array"  # not read: an array is not what this reader is for
            return
        if first != "{":
            self.top_level = _JSON_NAMES.get(type(self._value()), "value")
            self._expect_end()
            return
        self.top_level = "object"
        self._pos += 1
        if self._next_char() == "}":
            self._pos += 1
            self._expect_end()
            return
        while True:
            key = self._key()
            if key == self.array_key and self._next_char() == "[":
                self.has_array = True
                yield from self._array()
            else:
                self.members[key] = self._value()
            separator = self._next_char()
            self._pos += 1
            if separator == "}":
                break
            if separator == "":
                raise self._error("the document ends before its closing '}'", back=1)
            if separator != ",":
                raise self._error(f"expected ',' or '}}' after the member {key!r}", back=1)
        self._expect_end()

    def _key(self) -> str:
        if self._next_char() != '"':
            raise self._error("expected a member name in double quotes")
        key = self._value()
        if self._next_char() != ":":
            raise self._error(f"expected ':' after the member name {key!r}")
        self._pos += 1
        return str(key)

    def _array(self) -> Iterator[Any]:
        self._pos += 1  # the "["
        if self._next_char() == "]":
            self._pos += 1
            return
        index = 0
        while True:
            yield self._value()
            index += 1
            separator = self._next_char()
            self._pos += 1
            if separator == "]":
                return
            if separator == "":
                raise self._error(f"the document ends inside the {self.array_key!r} array", back=1)
            if separator != ",":
                raise self._error(f"expected ',' or ']' after element {index - 1} of {self.array_key!r}", back=1)

    def _expect_end(self) -> None:
        if self._next_char() != "":
            raise self._error("unexpected data after the end of the JSON document")

    # --- the buffer ---------------------------------------------------------------------------------

    def _value(self) -> Any:
        """Decode the value at the head of the buffer, reading more while it is incomplete."""
        self._next_char()
        want = self.chunk_size
        while True:
            try:
                value, end = self._json.raw_decode(self._buffer, self._pos)
            except json.JSONDecodeError as exc:
                if self._eof:
                    raise self._error(exc.msg, at=exc.pos) from None
                if len(self._buffer) - self._pos > self.max_element:  # broken JSON, or a value too big to hold
                    raise self._error(f"{exc.msg} (or a value longer than {self.max_element} characters)",
                                      at=exc.pos) from None
                self._read(want)
                want = max(want, len(self._buffer) - self._pos)  # double what is held: linear in all
                continue
            # A number may have been cut by the chunk boundary ("-2.5|e3"): decode again once more is known.
            if not self._eof and isinstance(value, int | float) and \
                    self._buffer[end:].strip(_NUMBER_CHARS) == "":
                self._read(want)
                continue
            self._pos = end
            return value

    def _next_char(self) -> str:
        """The next character that is not white space ("" at the end), without consuming it."""
        while True:
            buffer, pos = self._buffer, self._pos
            while pos < len(buffer) and buffer[pos] in _WHITESPACE:
                pos += 1
            self._pos = pos
            if pos < len(buffer):
                return buffer[pos]
            if self._eof:
                return ""
            self._read(self.chunk_size)

    def _read(self, size: int) -> None:
        if self._pos > 0:  # drop what has been consumed, so the buffer holds one element at most
            self._consumed += self._pos
            self._buffer = self._buffer[self._pos:]
            self._pos = 0
        data = self._source.read(size)
        if not data:
            self._eof = True
            tail = self._decode(b"", final=True)
        else:
            self.chunks_read += 1
            self.bytes_read += len(data)
            tail = self._decode(data, final=False)
        self._buffer += tail
        self.largest_buffer = max(self.largest_buffer, len(self._buffer))

    def _decode(self, data: bytes, *, final: bool) -> str:
        try:
            return self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise JsonStreamError(f"not UTF-8 text near byte {self.bytes_read - len(data) + exc.start}: "
                                  f"{exc.reason}") from None

    def _error(self, reason: str, *, at: int | None = None, back: int = 0) -> JsonStreamError:
        where = self._consumed + (self._pos - back if at is None else at)
        return JsonStreamError(f"not valid JSON at character {where}: {reason}")
