"""The encoding modifiers (base64, base64offset, wide/utf16le, utf16be, utf16) done on bytes.

pySigma 1.5.1 carries an encoded value as text and turns it back into bytes by writing the text as UTF-8
with its escapes: so ``wide`` refuses anything but ASCII, ``utf16`` writes its byte order mark as
EF BB BF instead of FF FE, the escaped ``\\*`` is encoded with its backslash, and ``base64offset``
counts characters where it means bytes. These replacements keep the exact bytes between modifiers
(``EncodedString``) and encode what the Sigma specification says. Registered in pySigma's modifier
table when this module is imported (``compile.py`` does).
"""

from __future__ import annotations

from base64 import b64encode
from typing import Any

from sigma.exceptions import SigmaRuleLocation, SigmaValueError
from sigma.modifiers import (
    SigmaBase64Modifier,
    SigmaBase64OffsetModifier,
    SigmaModifier,
    SigmaUTF16BEModifier,
    SigmaUTF16Modifier,
    SigmaValueModifier,
    SigmaWideModifier,
    modifier_mapping,
    reverse_modifier_mapping,
)
from sigma.types import SigmaExpansion, SigmaString


class EncodedString(SigmaString):
    """A value that is bytes now (after wide, utf16...): one character per byte, kept exactly."""

    raw: bytes

    @classmethod
    def of(cls, raw: bytes) -> EncodedString:
        value = cls(raw.decode("latin-1"))
        value.raw = raw
        return value


def _bytes_of(val: SigmaString, source: SigmaRuleLocation | None) -> bytes:
    if isinstance(val, EncodedString):
        return val.raw
    if val.contains_special():
        raise SigmaValueError("Base64 encoding of strings with wildcards is not allowed", source=source)
    return "".join(part for part in val.s if isinstance(part, str)).encode("utf-8")


def _text_of(val: SigmaString, source: SigmaRuleLocation | None, modifier: str) -> str:
    if val.contains_special():
        raise SigmaValueError(f"the {modifier} modifier needs a value without wildcards", source=source)
    return "".join(part for part in val.s if isinstance(part, str))


class Base64(SigmaValueModifier[SigmaString, SigmaString]):
    """The value's bytes in Base64."""

    def modify(self, val: SigmaString) -> SigmaString:
        return SigmaString(b64encode(_bytes_of(val, self.source)).decode())


class Base64Offset(SigmaValueModifier[SigmaString, SigmaExpansion]):
    """The three Base64 forms of the value's bytes, as they appear inside a longer encoded text starting
    at any offset (leading and trailing characters that depend on the neighbours cut off)."""

    def modify(self, val: SigmaString) -> SigmaExpansion:
        raw = _bytes_of(val, self.source)
        starts, ends = (0, 2, 3), (None, -3, -2)
        return SigmaExpansion([SigmaString(b64encode(i * b" " + raw)[starts[i]: ends[(len(raw) + i) % 3]].decode())
                               for i in range(3)])


class Utf16Le(SigmaValueModifier[SigmaString, SigmaString]):
    """The value as UTF-16LE bytes (``wide``, ``utf16le``)."""

    def modify(self, val: SigmaString) -> SigmaString:
        return EncodedString.of(_text_of(val, self.source, "wide").encode("utf-16-le"))


class Utf16Be(SigmaValueModifier[SigmaString, SigmaString]):
    def modify(self, val: SigmaString) -> SigmaString:
        return EncodedString.of(_text_of(val, self.source, "utf16be").encode("utf-16-be"))


class Utf16(SigmaValueModifier[SigmaString, SigmaString]):
    """UTF-16 with its byte order mark: FF FE, then UTF-16LE."""

    def modify(self, val: SigmaString) -> SigmaString:
        return EncodedString.of(b"\xff\xfe" + _text_of(val, self.source, "utf16").encode("utf-16-le"))


REPLACED: dict[str, tuple[type[SigmaModifier[Any, Any]], type[SigmaModifier[Any, Any]]]] = {
    "base64": (SigmaBase64Modifier, Base64),
    "base64offset": (SigmaBase64OffsetModifier, Base64Offset),
    "wide": (SigmaWideModifier, Utf16Le),
    "utf16le": (SigmaWideModifier, Utf16Le),
    "utf16be": (SigmaUTF16BEModifier, Utf16Be),
    "utf16": (SigmaUTF16Modifier, Utf16),
}


def register() -> None:
    """Put these modifiers in pySigma's table (idempotent)."""
    for name, (_original, replacement) in REPLACED.items():
        modifier_mapping[name] = replacement
        reverse_modifier_mapping[replacement.__name__] = "wide" if replacement is Utf16Le else name
