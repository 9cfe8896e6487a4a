"""Knowledge-base pages against real SQLite and PostgreSQL: versions, unit scope, slugs, search in English and
Chinese with title hits first and snippets, and the audit trail of every change."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from vigil.core.audit import AuditRecord
from vigil.core.db import Database, Scope
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.pagination import PageParams
from vigil.kb import demo, service
from vigil.kb.schemas import PageCreate, PageUpdate

from .support import acting

ALL = PageParams(limit=50, offset=0)


def create(database: Database, **fields: Any) -> str:
    with acting(database) as ctx:
        return service.create_page(ctx, data=PageCreate(**fields)).slug


def search(database: Database, q: str, scope: Scope | None = None) -> list[Any]:
    with database.transaction(scope or Scope.system()) as session:
        return service.list_pages(session, q=q, params=ALL).items


def test_every_edit_is_a_version_and_old_versions_stay_readable(database: Database) -> None:
    slug = create(database, title="VPN brute force runbook", body="# Steps\n\n1. Block the source.", tags=["vpn"])
    assert slug == "vpn-brute-force-runbook"
    with acting(database, name="alice") as ctx:
        page = service.update_page(ctx, slug=slug, data=PageUpdate(body="# Steps\n\n1. Block.\n2. Reset.",
                                                                   comment="second step", base_version=1))
        assert page.version == 2
        unchanged = service.update_page(ctx, slug=slug, data=PageUpdate(body="# Steps\n\n1. Block.\n2. Reset."))
        assert unchanged.version == 2  # nothing changed: no new version
    with database.transaction(Scope.system()) as session:
        page = service.get_page(session, slug)
        versions, total = service.list_versions(session, page, ALL)
        assert total == 2 and [v.number for v in versions] == [2, 1]
        assert versions[0].author == "alice" and versions[0].comment == "second step"
        assert service.get_version(session, page, 1).body == "# Steps\n\n1. Block the source."
        with pytest.raises(NotFound):
            service.get_version(session, page, 3)
    with acting(database) as ctx, pytest.raises(Conflict, match="version 2"):
        service.update_page(ctx, slug=slug, data=PageUpdate(title="Stale edit", base_version=1))
    with database.transaction(Scope.system()) as session:
        actions = list(session.scalars(select(AuditRecord.action).where(AuditRecord.target_type == "kb_page")
                                       .order_by(AuditRecord.id)))
    assert actions == ["kb.page.create", "kb.page.update"]


def test_slugs_are_unique_across_units_and_chinese_titles_get_one(world: Any) -> None:
    database = world.database
    with acting(database, unit_id=world.branch_a) as ctx:
        page = service.create_page(ctx, data=PageCreate(title="钓鱼邮件处置手册", unit_id=world.branch_a))
        assert page.slug.startswith("page-") and len(page.slug) == 15
    # A branch_b author cannot take that slug, and is not told whose it is.
    scope_b = Scope(frozenset({world.branch_b}))
    with acting(database, scope_b, unit_id=world.branch_b) as ctx, pytest.raises(Conflict) as refused:
        service.create_page(ctx, data=PageCreate(title="x", slug=page.slug))
    assert "Shanghai" not in refused.value.detail
    with acting(database, scope_b, unit_id=world.branch_b) as ctx, pytest.raises(BadInput):
        service.create_page(ctx, data=PageCreate.model_construct(title="x", slug="Bad Slug", body="", tags=[],
                                                                 comment="", unit_id=None))


def test_a_unit_sees_and_changes_only_its_own_pages(world: Any) -> None:
    database = world.database
    with acting(database, unit_id=world.branch_b) as ctx:
        service.create_page(ctx, data=PageCreate(title="Beijing secrets", slug="beijing", unit_id=world.branch_b))
    with acting(database, unit_id=world.line_a) as ctx:
        service.create_page(ctx, data=PageCreate(title="Payments runbook", slug="payments", unit_id=world.line_a))
    scope_a = Scope(frozenset({world.branch_a, world.line_a}))
    assert [item.slug for item in search(database, "", scope_a)] == ["payments"]
    assert search(database, "secrets", scope_a) == []
    with acting(database, scope_a, unit_id=world.branch_a) as ctx:
        with pytest.raises(NotFound):
            service.update_page(ctx, slug="beijing", data=PageUpdate(title="taken over"))
        with pytest.raises(NotFound):
            service.delete_page(ctx, slug="beijing")
        with pytest.raises(NotFound):
            service.create_page(ctx, data=PageCreate(title="elsewhere", unit_id=world.branch_b))
        # publish_page cannot take over another unit's slug either.
        with pytest.raises(Conflict):
            service.publish_page(ctx, slug="beijing", title="mine", markdown="x", tags=[], source_id="7")
    assert {item.slug for item in search(database, "")} == {"beijing", "payments"}  # headquarters: both


CHINESE = ("事件复盘：钓鱼邮件", "## 概要\n\n员工收到伪装成财务部门的钓鱼邮件，点击链接后输入了 VPN 密码。\n\n"
           "## 根本原因\n\n邮件网关未拦截新注册域名。")


def test_search_finds_chinese_and_english_and_ranks_title_hits_first(database: Database) -> None:
    create(database, title=CHINESE[0], slug="phishing-cn", body=CHINESE[1], tags=["钓鱼", "postmortem"])
    create(database, title="Phishing playbook", slug="phishing-en",
           body="When a user reports a phishing mail, pull it from every mailbox.")
    create(database, title="VPN hardening", slug="vpn",
           body="Users typed their VPN password into a phishing page; require MFA.")
    create(database, title="Unrelated", slug="other", body="Nothing to see here.")

    # Chinese: a two-character word inside longer runs of text, in the title and in the body.
    found = search(database, "钓鱼")
    assert [item.slug for item in found] == ["phishing-cn"]
    assert "钓鱼" in found[0].snippet
    start, end = found[0].highlights[0]
    assert found[0].snippet[start:end] == "钓鱼"
    assert [item.slug for item in search(database, "网关")] == ["phishing-cn"]  # body only
    assert [item.slug for item in search(database, "新注册域名 网关")] == ["phishing-cn"]
    assert search(database, "钓鱼 MFA") == []  # every term must occur
    # English, any case, full-width letters: the page titled "Phishing ..." before those that only mention it.
    ranked = [item.slug for item in search(database, "PHISHING")]
    assert ranked[0] == "phishing-en" and set(ranked) == {"phishing-en", "vpn"}
    assert [item.slug for item in search(database, "ｖｐｎ")] == ["vpn", "phishing-cn"]  # title hit, then body
    assert [item.slug for item in search(database, "ｖｐｎ password")] == ["vpn"]
    hit = search(database, "password")[0]
    assert hit.slug == "vpn" and hit.snippet[hit.highlights[0][0]:hit.highlights[0][1]] == "password"
    # A phrase in quotes is one term; LIKE's wildcards are plain characters.
    assert [item.slug for item in search(database, '"mailbox"')] == ["phishing-en"]
    assert search(database, '"pull every"') == []
    assert search(database, "100%") == [] and search(database, "_") == []
    # Tags count as title hits.
    assert [item.slug for item in search(database, "postmortem")] == ["phishing-cn"]
    # The tag filter: exact tags, Chinese ones too; a stray quote is no part of a term.
    with database.transaction(Scope.system()) as session:
        assert [item.slug for item in service.list_pages(session, tag="钓鱼", params=ALL).items] == ["phishing-cn"]
        assert service.list_pages(session, tag="钓", params=ALL).items == []
        assert [item.slug for item in service.list_pages(session, q="钓鱼", tag="postmortem", params=ALL).items] == [
            "phishing-cn"]
    assert [item.slug for item in search(database, '"mailbox')] == ["phishing-en"]
    with pytest.raises(BadInput):
        search(database, " ".join(f"t{i}" for i in range(11)))


def test_publish_page_creates_then_versions_a_postmortem(database: Database) -> None:
    with acting(database, name="lead") as ctx:
        page = service.publish_page(ctx, slug="pm-12", title="Post-mortem: INC-12", markdown="First draft",
                                    tags=["postmortem"], source_id="12")
        assert (page.version, page.source_kind, page.source_id) == (1, "postmortem", "12")
    with acting(database, name="lead") as ctx:
        page = service.publish_page(ctx, slug="pm-12", title="Post-mortem: INC-12", markdown="Approved text",
                                    tags=["postmortem"], source_id="12", comment="approved")
        assert page.version == 2 and page.body == "Approved text"
        with pytest.raises(BadInput):
            service.publish_page(ctx, slug="PM 13", title="x", markdown="", tags=[], source_id="13")


def test_demo_pages_load_once_and_are_found(database: Database) -> None:
    with acting(database) as ctx:
        assert demo.load(ctx) == {"knowledge-base pages": 3}
    with acting(database) as ctx:
        assert demo.load(ctx) == {}
        page = service.get_page(ctx.session, "postmortem-2026-11-phishing")
        assert page.version == 2 and service.list_versions(ctx.session, page, ALL)[1] == 2
    assert [item.slug for item in search(database, "多因素认证")] == ["postmortem-2026-11-phishing"]
    assert {item.slug for item in search(database, "vpn")} == {"runbook-vpn-brute-force", "postmortem-2026-11-phishing"}
    assert [item.slug for item in search(database, "值班")] == ["shanghai-on-call-notes"]
