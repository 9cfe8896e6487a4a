"""Searching the knowledge base: the same substring match on SQLite and PostgreSQL, for English and Chinese.

Chinese has no spaces between words, so a word tokenizer (PostgreSQL's ``to_tsvector``, SQLite FTS5's
default) finds "钓鱼" in neither "钓鱼邮件" nor "处置钓鱼邮件"; SQLite's trigram tokenizer misses any
term shorter than three characters, which most Chinese words are. So a page keeps its title (with its
tags) and its body folded (``fold``: NFKC, then case folding, one character at a time, so full-width
"ＶＰＮ" finds "vpn" and "Phishing" finds "PHISHING"), and a query's terms are folded the same way and
matched as substrings with ``LIKE``: every term must occur in the title or the body. Ranking adds 10 for
each term in the title or tags and 1 for each term in the body, so title hits come first; ties go to
the page changed last. ``LIKE`` reads every page, which is fine for the thousands of pages a SOC's
knowledge base holds (see docs/knowledge-base.md).

A query is terms separated by spaces; "double quotes" keep a phrase with its spaces as one term.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, literal, or_

from vigil.core.errors import BadInput
from vigil.kb.models import KbPage

MAX_TERMS = 10
MAX_TERM_LENGTH = 100
TITLE_WEIGHT = 10
BODY_WEIGHT = 1
SNIPPET_BEFORE = 40
SNIPPET_LENGTH = 160
_TERMS = re.compile(r'"([^"]*)"|(\S+)')


def fold(text: str) -> str:
    """``text`` as searched: each character NFKC-normalised and case-folded (so offsets map back)."""
    return "".join(_fold_char(char) for char in text)


def _fold_char(char: str) -> str:
    return unicodedata.normalize("NFKC", char).casefold()


def parse_terms(query: str) -> list[str]:
    """The folded terms of a query, in order, without repeats; ``BadInput`` for too many or too long."""
    terms: list[str] = []
    for quoted, bare in _TERMS.findall(query):
        term = fold((quoted or bare.strip('"')).strip())  # a stray quote ("abc) is no part of the term
        if term and term not in terms:
            terms.append(term)
    if len(terms) > MAX_TERMS:
        raise BadInput(f"a search takes at most {MAX_TERMS} terms; this one has {len(terms)}",
                       errors=[{"field": "q", "message": "too many terms"}])
    if any(len(term) > MAX_TERM_LENGTH for term in terms):
        raise BadInput(f"a search term is at most {MAX_TERM_LENGTH} characters long",
                       errors=[{"field": "q", "message": "term too long"}])
    return terms


def _pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _in_title(term: str) -> ColumnElement[bool]:
    return KbPage.search_title.like(_pattern(term), escape="\\")


def _in_body(term: str) -> ColumnElement[bool]:
    return KbPage.search_body.like(_pattern(term), escape="\\")


def matches(terms: list[str]) -> ColumnElement[bool]:
    """Every term in the title (or tags) or in the body."""
    return and_(*(or_(_in_title(term), _in_body(term)) for term in terms))


def rank(terms: list[str]) -> ColumnElement[Any]:
    """Higher for more terms, and much higher for terms in the title or tags than in the body."""
    score: ColumnElement[Any] = literal(0)
    for term in terms:
        score = score + case((_in_title(term), TITLE_WEIGHT), else_=0) + case((_in_body(term), BODY_WEIGHT), else_=0)
    return score


@dataclass(frozen=True)
class Snippet:
    """A passage of a page around the first term found, and where each term occurs in it."""

    text: str
    highlights: list[tuple[int, int]]  # (start, end) character offsets in ``text``

    def parts(self) -> list[tuple[str, bool]]:
        """The text cut at the highlights: (piece, is a match), for a template to mark up safely."""
        pieces: list[tuple[str, bool]] = []
        position = 0
        for start, end in self.highlights:
            if start > position:
                pieces.append((self.text[position:start], False))
            pieces.append((self.text[start:end], True))
            position = end
        if position < len(self.text):
            pieces.append((self.text[position:], False))
        return pieces


def _folded_with_offsets(text: str) -> tuple[str, list[int]]:
    """``fold(text)`` and, for each of its characters, the offset of the character of ``text`` it came from."""
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        piece = _fold_char(char)
        folded.append(piece)
        origin.extend([index] * len(piece))
    return "".join(folded), origin


def _occurrences(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Where the terms occur in ``text`` (offsets of ``text``), merged where they overlap."""
    folded, origin = _folded_with_offsets(text)
    found: list[tuple[int, int]] = []
    for term in terms:
        start = folded.find(term)
        while start != -1:
            end = start + len(term)
            found.append((origin[start], origin[end - 1] + 1))
            start = folded.find(term, end)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def snippet(text: str, terms: list[str]) -> Snippet:
    """A passage of ``text`` (plain text of a page) around the first term found, with the terms marked;
    the start of the text when no term occurs in it (the page matched on its title)."""
    text = " ".join(text.split())
    found = _occurrences(text, terms)
    begin = max(found[0][0] - SNIPPET_BEFORE, 0) if found else 0
    if begin > 0:  # start at a word boundary when there is one near
        space = text.find(" ", begin, found[0][0])
        begin = space + 1 if space != -1 else begin
    end = min(begin + SNIPPET_LENGTH, len(text))
    prefix = "…" if begin > 0 else ""
    suffix = "…" if end < len(text) else ""
    shift = len(prefix) - begin
    marks = [(max(start, begin) + shift, min(stop, end) + shift) for start, stop in found
             if start < end and stop > begin]
    return Snippet(prefix + text[begin:end] + suffix, marks)
