"""The ATT&CK coverage page as an analyst sees it: the matrix with each technique's counts, the rules of a
technique, the window of days, the layer download, and the ids outside the ATT&CK data."""

from __future__ import annotations

import html as markup
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from tests.web.support import signed_in, text_of

from .test_coverage import add_alert, add_rule


def cell_of(html: str, technique_id: str) -> str:
    """The first matrix cell of a technique (its opening tag)."""
    found = re.search(rf'<(?:a|span) class="tech[^"]*"[^>]*data-technique="{re.escape(technique_id)}"[^>]*>', html)
    assert found, f"no matrix cell for {technique_id}"
    return found.group(0)


def test_the_page_shows_each_technique_with_its_rules_and_alerts(world: Any, app: FastAPI) -> None:
    first = add_rule(world.database, "Encoded PowerShell command line", ["attack.execution", "attack.t1059.001"])
    add_rule(world.database, "Cmd spawned by Office", ["attack.t1059.003"])
    add_rule(world.database, "Switched off", ["attack.t1003.001"], enabled=False)
    add_rule(world.database, "Tagged with a revoked id", ["attack.t1086"])
    add_alert(world.database, world.hq, ["T1059.001"], last_seen=datetime.now(UTC) - timedelta(hours=1))
    browser = signed_in(app, "analyst")

    page = browser.get("/detection/coverage", params={"days": 7})
    assert page.status_code == 200, page.text[:500]
    html, text = page.text, text_of(page)
    cell = cell_of(html, "T1059")
    assert 'data-rules="2"' in cell and 'data-alerts="1"' in cell and "alerted" in cell
    assert "Command and Scripting Interpreter" in text and "2 rules · 1 alerts" in text
    assert 'data-rules="0"' in cell_of(html, "T1003")  # the disabled rule does not colour the cell
    # The tactic's total and the overall share.
    assert re.search(r"1 of \d+ covered", text)
    assert re.search(r"1 of \d+ techniques covered by enabled rules", text)
    # Clicking the cell leads to the technique's rules and sub-techniques.
    assert 'href="#technique-T1059"' in cell
    detail = html[html.index('id="technique-T1059"'):]
    detail = detail[:detail.index("</article>")]
    assert f'href="/detection/rules/{first}"' in detail and "Cmd spawned by Office" in detail
    assert "PowerShell" in detail and "T1059.003" in detail
    # The window, and the layer of the same window to download.
    assert re.search(r'<option value="7" selected>', html)
    assert 'href="/api/v1/coverage/navigator?days=7"' in html
    # Outside the ATT&CK data, with what replaced it.
    unknown = html[html.index('id="unknown"'):]
    assert "T1086" in unknown and "Revoked in ATT&amp;CK" in unknown and "T1059.001" in unknown
    assert "Tagged with a revoked id" in unknown

    month = browser.get("/detection/coverage", params={"days": 30, "platform": "Linux"})
    assert 'href="/api/v1/coverage/navigator?days=30&amp;platform=Linux"' in month.text
    assert 'data-technique="T1059"' in month.text


def test_the_page_in_chinese_and_for_a_reader_of_rules_only(world: Any, app: FastAPI) -> None:
    add_rule(world.database, "Mimikatz", ["attack.t1003.001"])
    add_alert(world.database, world.hq, ["T1003.001"], last_seen=datetime.now(UTC))
    browser = signed_in(app, "secadmin")
    browser.cookies.set("vigil_lang", "zh_CN")
    page = browser.get("/detection/coverage")
    assert page.status_code == 200
    text = markup.unescape(text_of(page))
    assert "已启用规则" in text and "下载 ATT&CK Navigator 图层" in text
    assert "您无权查看告警，因此只统计规则。" in text
    cell = cell_of(page.text, "T1003")
    assert 'data-rules="1"' in cell and 'data-alerts="0"' in cell


def test_the_page_is_refused_to_a_viewer(world: Any, app: FastAPI) -> None:
    browser = signed_in(app, "viewer")
    assert browser.get("/detection/coverage").status_code == 403


def test_a_technique_with_many_rules_lists_some_and_links_to_the_rest(world: Any, app: FastAPI) -> None:
    for n in range(27):
        add_rule(world.database, f"Discovery rule {n:02d}", ["attack.t1087.001"])
    page = signed_in(app, "analyst").get("/detection/coverage")
    assert 'data-rules="27"' in cell_of(page.text, "T1087")
    detail = page.text[page.text.index('id="technique-T1087"'):]
    detail = detail[:detail.index("</article>")]
    assert detail.count('href="/detection/rules/') == 25
    assert 'href="/detection/rules?technique=T1087"' in detail and "All 27 rules of T1087" in detail
