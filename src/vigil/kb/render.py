"""Markdown to HTML for the knowledge base's pages, safe to put into a page as it is.

CommonMark with tables and strikethrough, raw HTML off: a ``<script>`` or ``<img onerror=...>`` in a page
is shown as text, never run. Links and images keep only addresses on this site (relative paths and
``#anchors``) or ``http``, ``https`` and ``mailto`` ones; anything else (``javascript:``, ``vbscript:``,
``data:``, ``file:``) is left as plain text. Headings get ``id`` anchors so a page can link to its parts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*):")
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_ANCHOR_DROP = re.compile(r"[^\w\- ]+", re.UNICODE)


def safe_link(url: str) -> bool:
    """A link target Vigil lets through: no scheme (this site) or one of ``SAFE_SCHEMES``."""
    cleaned = "".join(char for char in url if char >= " " and char != "\x7f")
    found = _SCHEME.match(cleaned)
    return found is None or found.group(1).lower() in SAFE_SCHEMES


def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable(["table", "strikethrough"])
    parser.validateLink = safe_link  # type: ignore[method-assign]
    return parser


_markdown = _parser()


def anchor(text: str) -> str:
    """A heading's ``id``: lower case, spaces as dashes, punctuation dropped (CJK kept), as GitLab does."""
    return _ANCHOR_DROP.sub("", text.strip().lower()).replace(" ", "-") or "section"


def _add_anchors(tokens: Sequence[Token]) -> None:
    seen: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or index + 1 >= len(tokens):
            continue
        base = anchor(tokens[index + 1].content)
        count = seen.get(base, 0)
        seen[base] = count + 1
        token.attrSet("id", base if count == 0 else f"{base}-{count}")


def parse(text: str) -> list[Token]:
    """The document's block and inline tokens, as the pages and the PDF export read it."""
    tokens: list[Token] = _markdown.parse(text)
    return tokens


def render_markdown(text: str) -> str:
    """The page's HTML: safe to insert unescaped (the parser escapes all text and drops raw HTML)."""
    env: dict[str, Any] = {}
    tokens = _markdown.parse(text, env)
    _add_anchors(tokens)
    html: str = _markdown.renderer.render(tokens, _markdown.options, env)
    return html


def plain_text(text: str) -> str:
    """The words of a page without Markdown syntax (for search snippets): text, code, table cells."""
    parts: list[str] = []
    for token in _markdown.parse(text):
        if token.type == "inline":
            parts.append("".join(child.content for child in token.children or [] if child.type in (
                "text", "code_inline")) or token.content)
        elif token.type in ("fence", "code_block"):
            parts.append(token.content)
    return "\n".join(part.strip() for part in parts if part.strip())
