"""Request and response shapes of Sigma placeholders: the values ``%name%`` takes in rules with ``expand``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from vigil.core.inputs import Text, refuse_nul
from vigil.detection.sigma.placeholders import MAX_VALUE_CHARS, MAX_VALUES, check_values

Value = Annotated[str, AfterValidator(refuse_nul), Field(min_length=1, max_length=MAX_VALUE_CHARS)]


def _values(values: list[str]) -> list[str]:
    return check_values(values)


class PlaceholderSet(BaseModel):
    """A placeholder's values (each a Sigma string: ``*`` and ``?`` are wildcards) and what it is for."""

    model_config = ConfigDict(extra="forbid")

    values: Annotated[list[Value], Field(min_length=1, max_length=MAX_VALUES), AfterValidator(_values)]
    description: Annotated[Text, Field(max_length=2_000)] = ""


class PlaceholderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    values: list[str]
    description: str
    updated_by: str
    updated_at: datetime
    rules: int = 0  # stored rules whose YAML uses it
    refused: list[str] = []  # packs holding rules refused at import for lacking it: import them again


class PlaceholderUse(BaseModel):
    """A placeholder rules use that has no values: the rules refuse to load until it has some."""

    name: str
    refused: list[str]  # packs whose rules were refused at import for lacking it


class PlaceholderList(BaseModel):
    items: list[PlaceholderRead]
    missing: list[PlaceholderUse]  # placeholders without values that refused rules at import
