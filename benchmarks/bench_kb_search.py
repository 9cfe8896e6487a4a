"""Knowledge-base search: milliseconds per search over 5,000 pages (Chinese and English, about 3 KB of Markdown
each), first page of 50 results with snippets, on SQLite and PostgreSQL.

Search is a substring match (``LIKE '%term%'`` over folded text, see kb/search.py), so it reads every page; this
says how long that takes at a size a SOC's knowledge base reaches in years.
"""

from __future__ import annotations

import random
import statistics
import time

from _common import each_backend, machine, report, skip

from vigil.accounts import service as accounts
from vigil.core.db import Database, Scope, utcnow
from vigil.core.pagination import PageParams
from vigil.kb import search, service
from vigil.kb.models import KbPage

PAGES = 5_000
QUERIES = {"one Chinese word": "钓鱼", "one English word": "ransomware", "two terms": "VPN 密码",
           "a phrase": '"lateral movement"'}
WORDS_EN = ["alert", "firewall", "phishing", "ransomware", "lateral", "movement", "credential", "VPN", "password",
            "host", "user", "domain", "contain", "eradicate", "recover", "review", "timeline", "root", "cause",
            "backup", "patch", "server", "endpoint"]
WORDS_CN = ["钓鱼", "邮件", "勒索", "病毒", "横向", "移动", "密码", "账号", "主机", "告警", "遏制", "根除", "恢复",
            "复盘", "备份", "补丁", "服务器", "终端", "网关", "域名"]


def fill(database: Database) -> None:
    rng = random.Random(7)
    with database.transaction(Scope.system()) as session:
        unit = accounts.root_unit_id(session)
        now = utcnow()
        for n in range(PAGES):
            chinese = n % 2 == 0
            words = [rng.choice(WORDS_CN if chinese else WORDS_EN) for _ in range(600 if chinese else 450)]
            body = "## " + (" ".join(words[:5])) + "\n\n" + ("" if chinese else " ").join(words) + "\n"
            title = f"{'事件复盘' if chinese else 'Post-mortem'} {n}: " + " ".join(words[5:9])
            page = KbPage(slug=f"page-{n}", unit_id=unit, title=title, body=body, tags=["bench"], version=1,
                          source_kind="manual", source_id="", created_at=now, created_by="bench", updated_at=now,
                          updated_by="bench", git_commit="", search_title=search.fold(title + "\nbench"),
                          search_body=search.fold(body))
            session.add(page)
            if n % 500 == 499:
                session.flush()


def timed(database: Database, query: str, runs: int = 7) -> float:
    times: list[float] = []
    for _ in range(runs):
        with database.transaction(Scope.system()) as session:
            started = time.perf_counter()
            service.list_pages(session, q=query, params=PageParams(limit=50, offset=0))
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    with each_backend() as backends:
        for label, database, reason in backends:
            if database is None:
                for what in QUERIES:
                    skip(f"kb search, {label}, {what}", reason)
                continue
            fill(database)
            for what, query in QUERIES.items():
                report(f"kb search, {label}, {what}", timed(database, query), "ms",
                       f"{PAGES:,} pages of ~3 KB, first 50 results with snippets, median of 7, {machine()}")


if __name__ == "__main__":
    main()
