"""Markdown to PDF (A4), for reports that leave the building: incident reports, knowledge-base pages.

The Markdown is parsed as the knowledge base parses it (CommonMark with tables, raw HTML off, unsafe links
dropped) and laid out with ReportLab: headings, paragraphs with bold, italic, code and links, bullet and
numbered lists, tables, code blocks, quotes and rules. Chinese text is set in Adobe's STSong-Light, a CID
font every PDF reader carries, so nothing is embedded and 简体中文 needs no font files on the server; the rest
is Helvetica. Every character of the input is escaped before ReportLab's paragraph markup sees it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape

from markdown_it.token import Token
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import (
    Flowable,
    HRFlowable,
    KeepTogether,
    ListFlowable,
    ListItem,
    Paragraph,
    Preformatted,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from vigil.kb.render import parse

CJK_FONT = "STSong-Light"
# Han, CJK punctuation, full-width forms and kana: set in the CID font (Helvetica has none of them).
_CJK_RUN = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]+")
PAGE_MARGIN = 18 * mm


@lru_cache(maxsize=1)
def _styles() -> dict[str, ParagraphStyle]:
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    body = ParagraphStyle("body", fontName="Helvetica", fontSize=10, leading=14, alignment=TA_LEFT,
                          spaceAfter=4, wordWrap="CJK")
    return {
        "body": body,
        "h1": ParagraphStyle("h1", parent=body, fontName="Helvetica-Bold", fontSize=17, leading=22, spaceBefore=4,
                             spaceAfter=8),
        "h2": ParagraphStyle("h2", parent=body, fontName="Helvetica-Bold", fontSize=13, leading=17, spaceBefore=10,
                             spaceAfter=5),
        "h3": ParagraphStyle("h3", parent=body, fontName="Helvetica-Bold", fontSize=11, leading=15, spaceBefore=8,
                             spaceAfter=4),
        "cell": ParagraphStyle("cell", parent=body, fontSize=8.5, leading=11, spaceAfter=0),
        "code": ParagraphStyle("code", parent=body, fontName="Courier", fontSize=8.5, leading=11,
                               backColor=colors.HexColor("#f3f4f6"), borderPadding=4, spaceBefore=2, spaceAfter=8),
    }


def _text(value: str) -> str:
    """``value`` escaped for ReportLab's markup, its Chinese runs in the CID font."""
    return _CJK_RUN.sub(lambda found: f'<font name="{CJK_FONT}">{found.group(0)}</font>', escape(value))


def _inline(token: Token) -> str:
    """An inline token's children as paragraph markup (bold, italic, code, links, line breaks). The parser
    keeps only safe link targets (``kb.render.safe_link``); an unsafe one arrives as plain text."""
    tags = {"strong_open": "<b>", "strong_close": "</b>", "em_open": "<i>", "em_close": "</i>",
            "s_open": "<strike>", "s_close": "</strike>", "link_close": "</link>", "softbreak": " ",
            "hardbreak": "<br/>"}
    parts: list[str] = []
    for child in token.children or []:
        if child.type == "text":
            parts.append(_text(child.content))
        elif child.type == "code_inline":
            parts.append(f'<font name="Courier">{_text(child.content)}</font>')
        elif child.type == "link_open":
            parts.append(f'<link href="{escape(str(child.attrGet("href") or ""), {chr(34): "&quot;"})}" '
                         'color="blue">')
        elif child.type == "image":
            parts.append(_text(f"[{child.content}]"))
        else:
            parts.append(tags.get(child.type, ""))
    return "".join(parts)


class _Walker:
    """Turns the token stream of one document into flowables, block by block."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tokens
        self.position = 0
        self.styles = _styles()

    def _take(self) -> Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def blocks(self, until: str = "") -> list[Flowable]:
        """The blocks up to the closing token ``until`` (or the end), which is consumed. Nesting is bounded by
        the parser (markdown-it's ``maxNesting``), so the recursion is too."""
        found: list[Flowable] = []
        while self.position < len(self.tokens):
            token = self._take()
            if until and token.type == until:
                break
            found.extend(self._block(token))
        return found

    def _paragraph(self, style: str) -> Paragraph:
        markup = ""
        while self.position < len(self.tokens):
            token = self._take()
            if token.type == "inline":
                markup = _inline(token)
            elif token.type.endswith("_close"):
                break
        return Paragraph(markup, self.styles[style])

    def _block(self, token: Token) -> Iterator[Flowable]:
        kind = token.type
        if kind == "heading_open":
            level = min(int(token.tag[1:]), 3)
            yield self._paragraph(f"h{level}")
        elif kind == "paragraph_open":
            yield self._paragraph("body")
        elif kind in ("bullet_list_open", "ordered_list_open"):
            yield self._list(kind, token)
        elif kind in ("fence", "code_block"):
            yield Preformatted(token.content.rstrip("\n"), self.styles["code"], maxLineLength=110)
        elif kind == "blockquote_open":
            inner = self.blocks("blockquote_close")
            yield Table([[inner or ""]], colWidths=["100%"], style=TableStyle([
                ("LINEBEFORE", (0, 0), (0, -1), 2, colors.HexColor("#9ca3af")),
                ("LEFTPADDING", (0, 0), (-1, -1), 8)]))
        elif kind == "hr":
            yield HRFlowable(width="100%", color=colors.HexColor("#9ca3af"), spaceBefore=4, spaceAfter=6)
        elif kind == "table_open":
            yield self._table()

    def _list(self, kind: str, token: Token) -> Flowable:
        closing = kind.replace("_open", "_close")
        items: list[ListItem] = []
        while self.position < len(self.tokens):
            current = self._take()
            if current.type == closing:
                break
            if current.type == "list_item_open":
                content = self.blocks("list_item_close")
                items.append(ListItem(content or [Paragraph("&nbsp;", self.styles["body"])]))
        ordered = kind == "ordered_list_open"
        start = int(token.attrGet("start") or 1) if ordered else "•"
        return ListFlowable(items, bulletType="1" if ordered else "bullet", start=start,
                            bulletFormat="%s." if ordered else None, leftIndent=16, bulletFontSize=9,
                            bulletFontName="Helvetica")

    def _table(self) -> Flowable:
        rows: list[list[Paragraph]] = []
        header_rows = 0
        in_head = False
        while self.position < len(self.tokens):
            token = self._take()
            if token.type == "table_close":
                break
            if token.type == "thead_open":
                in_head = True
            elif token.type == "thead_close":
                in_head = False
            elif token.type == "tr_open":
                rows.append([])
                header_rows += 1 if in_head else 0
            elif token.type in ("th_open", "td_open"):
                rows[-1].append(self._paragraph("cell"))
        if header_rows and all(not cell.text.strip() for row in rows[:header_rows] for cell in row):
            rows, header_rows = rows[header_rows:], 0  # a table with an empty header (a list of facts)
        width = max((len(row) for row in rows), default=1)
        rows = [row + [Paragraph("", self.styles["cell"])] * (width - len(row)) for row in rows]
        usable = A4[0] - 2 * PAGE_MARGIN
        table = Table(rows, colWidths=[usable / width] * width, repeatRows=header_rows, hAlign="LEFT")
        table.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#d1d5db")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("BACKGROUND", (0, 0), (-1, header_rows - 1), colors.HexColor("#f3f4f6")) if header_rows
            else ("BACKGROUND", (0, 0), (0, 0), colors.white),
        ]))
        return KeepTogether([table, Spacer(1, 6)]) if len(rows) <= 12 else table


def markdown_pdf(text: str, *, title: str, author: str = "Vigil", footer: str = "") -> bytes:
    """``text`` (Markdown) as an A4 PDF; ``title`` and ``author`` go into its properties, ``footer`` (with
    the page number) on every page."""
    out = io.BytesIO()
    document = SimpleDocTemplate(out, pagesize=A4, leftMargin=PAGE_MARGIN, rightMargin=PAGE_MARGIN,
                                 topMargin=PAGE_MARGIN, bottomMargin=PAGE_MARGIN, title=title, author=author,
                                 subject=title, creator="Vigil")
    flowables = _Walker(parse(text)).blocks()

    def decorate(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        line = f"{footer}    {doc.page}" if footer else str(doc.page)
        canvas.setFont(CJK_FONT if _CJK_RUN.search(line) else "Helvetica", 8)
        canvas.setFillColor(colors.HexColor("#6b7280"))
        canvas.drawRightString(A4[0] - PAGE_MARGIN, 10 * mm, line)
        canvas.restoreState()

    document.build(flowables or [Paragraph("&nbsp;", _styles()["body"])], onFirstPage=decorate,
                   onLaterPages=decorate)
    return out.getvalue()


def generated_footer(what: str, at: datetime) -> str:
    return f"{what} · {at:%Y-%m-%d %H:%M} UTC"
