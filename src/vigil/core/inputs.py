"""Value types of request input that every domain's schemas share.

They keep values the records store cannot hold out of the service layer, so such input is a 422
that names the field, never a database error: ids beyond the 32-bit range of record ids, and text
with NUL characters (PostgreSQL refuses them; SQLite would store them, so both refuse alike).
"""

from __future__ import annotations

from typing import Annotated

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
