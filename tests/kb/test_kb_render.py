"""Markdown rendering: headings, tables and code come out as HTML; nothing a page says can run a script."""

from __future__ import annotations

from vigil.kb.render import plain_text, render_markdown


def test_headings_tables_and_code_blocks_render() -> None:
    html = render_markdown("# 事件复盘 Review\n\n| 阶段 | time |\n|---|---|\n| 遏制 | 10 min |\n\n"
                           "```python\nprint('<b>')\n```\n\n~~old~~ **new** `x`")
    assert '<h1 id="事件复盘-review">事件复盘 Review</h1>' in html
    assert "<table>" in html and "<td>遏制</td>" in html
    assert '<pre><code class="language-python">print(\'&lt;b&gt;\')' in html
    assert "<s>old</s>" in html and "<strong>new</strong>" in html and "<code>x</code>" in html


def test_raw_html_and_script_links_are_neutralised() -> None:
    html = render_markdown(
        "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
        "[a](javascript:alert(1)) [b](JaVaScRiPt:alert(2)) [c]( java\tscript:alert(3)) <javascript:alert(4)> "
        "[d](vbscript:x) ![e](data:image/png;base64,AA) [f](data:text/html,<script>) [g](file:///etc/passwd)\n\n"
        "[ok](https://example.com/x) [rel](/kb/other) [mail](mailto:soc@example.com) [top](#top)")
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    lowered = html.lower()
    assert html.count("<a ") == 4  # only the four safe links became links
    assert 'href="javascript' not in lowered and 'href="vbscript' not in lowered
    assert 'href="data:' not in lowered and 'src="data:' not in lowered and 'href="file:' not in lowered
    for kept in ('href="https://example.com/x"', 'href="/kb/other"', 'href="mailto:soc@example.com"',
                 'href="#top"'):
        assert kept in html


def test_plain_text_drops_the_markup() -> None:
    assert plain_text("## 概要\n\n**钓鱼** [邮件](https://x)\n\n```\nnc -e\n```") == "概要\n钓鱼 邮件\nnc -e"
