"""The knowledge base's records: a page (its current text) and every version it has had.

A page belongs to one organisation unit, like the incidents whose post-mortems it often holds. Its slug
is unique across the platform, not per unit: it names the page in links, in the API and as the file
``<slug>.md`` in the git wiki, which is one repository for the whole platform, so two units' pages of
the same slug would overwrite each other there, and a headquarters user who sees both could not tell
which one a link means.

``search_title`` and ``search_body`` hold the title (with the tags) and the body folded for matching
(``search.fold``: NFKC and case folding, character by character), so that a search is the same
substring match on SQLite and PostgreSQL, for English and for Chinese, which has no spaces between
words for a word tokenizer to split on.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vigil.core.db import Base, UnitScoped, utcnow


class KbPage(UnitScoped, Base):
    """A Markdown page as it reads now; ``version`` is the number of its newest ``KbPageVersion``."""

    __tablename__ = "kb_pages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # What the page was written from: "manual", or "postmortem" with the post-mortem's id.
    source_kind: Mapped[str] = mapped_column(String(40), default="manual")
    source_id: Mapped[str] = mapped_column(String(100), default="")
    search_title: Mapped[str] = mapped_column(Text, default="")
    search_body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    # The last publication to the git wiki: the commit and when (empty: never published).
    git_commit: Mapped[str] = mapped_column(String(64), default="")
    published_at: Mapped[datetime | None] = mapped_column()


class KbPageVersion(UnitScoped, Base):
    """One saved state of a page: every edit adds one; a version published to git keeps its commit."""

    __tablename__ = "kb_page_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("kb_pages.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    comment: Mapped[str] = mapped_column(String(500), default="")  # what the author says changed
    source_kind: Mapped[str] = mapped_column(String(40), default="manual")
    source_id: Mapped[str] = mapped_column(String(100), default="")
    author: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    git_commit: Mapped[str] = mapped_column(String(64), default="")
    git_path: Mapped[str] = mapped_column(String(300), default="")

    __table_args__ = (UniqueConstraint("page_id", "number", name="uq_kb_page_versions_page_number"),)
