"""Value types of request input that every domain's schemas share.

They keep values the records store cannot hold out of the service layer, so such input is a 422
that names the field, never a database error: ids beyond the 32-bit range of record ids, and text
with NUL characters (PostgreSQL refuses them; SQLite would store them, so both refuse alike).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from vigil.core.db import MAX_RECORD_ID


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


RecordId = Annotated[int, Field(ge=1, le=MAX_RECORD_ID)]
"""An id in a request body; outside this range it can name no record."""

Text = Annotated[str, AfterValidator(refuse_nul)]
"""Text without NUL characters."""


def merge_settings(stored: Mapping[str, Any] | None, given: Mapping[str, Any], *,
                   secrets: Collection[str]) -> dict[str, Any]:
    """Stored settings with an edit applied: ``None`` removes a key, and an empty value for a secret keeps the
    stored one (forms and API clients never see secrets, so they send them back empty)."""
    merged = dict(stored or {})
    for key, value in given.items():
        if value is None:
            merged.pop(key, None)
        elif not (key in secrets and value == ""):
            merged[key] = value
    return merged
