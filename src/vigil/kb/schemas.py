"""Request and response shapes of the knowledge base: pages, versions, search hits, git publication."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from vigil.core.db import MAX_RECORD_ID
from vigil.core.inputs import Text

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$"
MAX_BODY = 1_000_000  # characters of one page's Markdown (a long post-mortem is some 50,000)
MAX_TAGS = 20


def _tags(values: list[str]) -> list[str]:
    """Tags trimmed, empty ones dropped, repeats removed (first spelling kept), each at most 50 characters."""
    kept: list[str] = []
    for value in values:
        tag = " ".join(value.split())
        if not tag:
            continue
        if len(tag) > 50:
            raise ValueError(f"the tag {tag[:20]!r}... is longer than 50 characters")
        if tag.casefold() not in (known.casefold() for known in kept):
            kept.append(tag)
    if len(kept) > MAX_TAGS:
        raise ValueError(f"a page takes at most {MAX_TAGS} tags")
    return kept


Tags = Annotated[list[Text], AfterValidator(_tags)]
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, description=(
    "The page's name in links and in the git wiki (<slug>.md): lower-case letters, digits and single dashes, "
    "at most 100; unique across the platform."))]
Title = Annotated[Text, Field(min_length=1, max_length=300)]
Body = Annotated[Text, Field(max_length=MAX_BODY, description="The page in Markdown (CommonMark with tables).")]
SourceKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$", description="What the page was written "
                                  "from: manual, or postmortem (with source_id).")]


class PageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    slug: Slug | None = Field(default=None, description="Default: made from the title.")
    body: Body = ""
    tags: Tags = Field(default_factory=list)
    comment: Text = Field(default="", max_length=500, description="What this version is (shown in history).")
    unit_id: int | None = Field(default=None, ge=1, le=MAX_RECORD_ID, description="The page's unit; default: yours.")


class PageUpdate(BaseModel):
    """Only the fields given change; a change of title, body or tags makes a new version."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    body: Body | None = None
    tags: Tags | None = None
    comment: Text = Field(default="", max_length=500)
    base_version: int | None = Field(default=None, ge=1, description=(
        "The version the edit started from: refused with 409 when the page has a newer one since."))


class PageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    unit_id: int
    title: str
    body: str
    tags: list[str]
    version: int
    source_kind: str
    source_id: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    git_commit: str
    published_at: datetime | None


class PageSummary(BaseModel):
    """A page in a listing or a search result: no body; ``snippet`` and ``highlights`` when searching."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    unit_id: int
    title: str
    tags: list[str]
    version: int
    source_kind: str
    source_id: str
    updated_at: datetime
    updated_by: str
    git_commit: str
    snippet: str = ""
    highlights: list[tuple[int, int]] = Field(default_factory=list, description=(
        "Where the search terms occur in the snippet: [start, end) character offsets."))
    score: int = Field(default=0, description="10 per term in the title or tags, 1 per term in the body.")


class VersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    title: str
    body: str
    tags: list[str]
    comment: str
    source_kind: str
    source_id: str
    author: str
    created_at: datetime
    git_commit: str
    git_path: str


class VersionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    title: str
    comment: str
    author: str
    created_at: datetime
    git_commit: str


class GitPublication(BaseModel):
    """What publishing a page to the git wiki did."""

    slug: str
    version: int
    commit: str = Field(description="The commit that holds this version of the page (SHA-1 or SHA-256, hex).")
    path: str = Field(description="The page's file inside the repository.")
    branch: str
    changed: bool = Field(description="False when the repository already held this text: no new commit.")
    pushed: bool = Field(description="True when the commit was pushed to the configured remote.")


class VersionDiff(BaseModel):
    """What changed between two versions of a page."""

    slug: str
    number: int
    against: int = Field(description="The version compared with; 0 for the first version (compared with nothing).")
    title_before: str
    title_after: str
    tags_before: list[str]
    tags_after: list[str]
    diff: str = Field(description="A unified diff of the Markdown; empty when the text did not change.")
