"""Markdown to PDF: what a reader of the file sees (read back with pypdf), hostile input kept as text."""

from __future__ import annotations

import io

from pypdf import PdfReader

from vigil.kb.pdf import markdown_pdf


def read(data: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(data))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def test_headings_tables_lists_and_chinese_reach_the_page() -> None:
    data = markdown_pdf("# INC-2026-0007: 钓鱼邮件 wave\n\n| | |\n|---|---|\n| Severity | P2 |\n| 类型 | 钓鱼 |\n\n"
                        "## Summary\n\nA **phishing** wave hit `finance`; 财务部收到钓鱼邮件。\n\n"
                        "1. first why\n2. 第二个原因\n\n- item\n  - nested item\n",
                        title="INC-2026-0007: 钓鱼邮件", author="rita", footer="INC-2026-0007 incident report")
    reader, text = read(data)
    assert data.startswith(b"%PDF-") and reader.metadata is not None
    assert reader.metadata.title == "INC-2026-0007: 钓鱼邮件" and reader.metadata.author == "rita"
    for expected in ("INC-2026-0007: 钓鱼邮件 wave", "Severity", "P2", "类型", "钓鱼", "A phishing wave hit finance",
                     "财务部收到钓鱼邮件。", "1.", "first why", "第二个原因", "nested item",
                     "INC-2026-0007 incident report"):
        assert expected in text, expected


def test_markup_in_the_text_is_printed_not_obeyed() -> None:
    hostile = '<font name="x">&lt;b&gt; <script>alert(1)</script> <link href="javascript:x">y</link> & "quoted"'
    _, text = read(markdown_pdf(f"{hostile}\n\n[click](javascript:alert(1)) and [ok](https://example.cn)",
                                title="t"))
    assert '<script>alert(1)</script>' in text and '<link href="javascript:x">y</link>' in text
    assert '& "quoted"' in text and "[click](javascript:alert(1))" in text and "ok" in text


def test_long_deep_and_empty_documents_still_make_a_pdf() -> None:
    deep = "".join("  " * level + "- level\n" for level in range(60))
    table = "| a | b | c |\n|---|---|---|\n" + "".join(f"| {n} | {'word ' * 40} | x |\n" for n in range(300))
    reader, text = read(markdown_pdf(deep, title="deep"))  # the parser stops nesting where the pages do too
    assert text.count("level") >= 9
    reader, text = read(markdown_pdf(table, title="big"))
    assert len(reader.pages) > 5 and "299" in text
    empty, _ = read(markdown_pdf("", title="empty"))
    assert len(empty.pages) == 1
