"""The knowledge base's service: pages and their versions, search, export, and publishing to the git wiki.

Every change of a page's title, body or tags adds a version (a save that changes nothing adds none), and
writes the audit trail; nothing here commits, the caller owns the transaction. Pages are unit-scoped:
the session's scope decides which ones a caller sees and may change, and a page of another unit is
"not found" like one that does not exist. A slug is unique across the platform (``models``), so taking
one that another unit's page holds is refused without telling which unit holds it.

For the incidents domain, ``publish_page`` creates or updates a page from a post-mortem in one call, and
``publish_to_git`` commits the page's current version to the configured git wiki.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import unicodedata
from datetime import UTC
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import String, cast, delete, func, literal, select
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core.config import Settings
from vigil.core.context import Context
from vigil.core.db import get_scope, utcnow
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.pagination import Page, PageParams
from vigil.kb import gitwiki, search
from vigil.kb.models import KbPage, KbPageVersion
from vigil.kb.render import plain_text
from vigil.kb.schemas import SLUG_PATTERN, GitPublication, PageCreate, PageSummary, PageUpdate, VersionDiff

UNSCOPED = {"vigil_unscoped": True}
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


# --- slugs and the unit a page goes to -------------------------------------------------------------


def slug_for(title: str) -> str:
    """A slug made from the title's Latin letters and digits ("VPN brute force" -> "vpn-brute-force"); a title
    with none (Chinese) gets "page-" and a digest of it, since a slug is plain ASCII in links and file names."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    slug = _NOT_SLUG.sub("-", ascii_text).strip("-")[:80].strip("-")
    if len(slug) < 3:
        slug = (slug + "-" if slug else "page-") + hashlib.sha256(title.encode()).hexdigest()[:10]
    return slug


def _unit_for(ctx: Context, unit_id: int | None) -> int:
    """The unit a new page goes to: the one asked for (within the caller's scope), else the caller's own unit
    when they may write there, else the first unit where they may."""
    scope = get_scope(ctx.session)
    if unit_id is None:
        if scope.allows(ctx.actor.unit_id):
            return ctx.actor.unit_id
        if not scope.unit_ids:
            raise BadInput("name the unit of the page (unit_id)", errors=[{"field": "unit_id", "message": "required"}])
        return min(scope.unit_ids)
    if not scope.allows(unit_id):
        raise NotFound(f"organisation unit {unit_id} does not exist or is outside your scope")
    accounts.get_unit(ctx.session, unit_id)
    return unit_id


def _check_slug_free(session: Session, slug: str) -> None:
    if session.scalar(select(KbPage.id).where(KbPage.slug == slug), execution_options=UNSCOPED) is not None:
        raise Conflict(f"the slug {slug!r} is taken by another page; choose another one",
                       errors=[{"field": "slug", "message": "already used"}])


# --- reading ---------------------------------------------------------------------------------------


def get_page(session: Session, slug: str) -> KbPage:
    page = session.scalar(select(KbPage).where(KbPage.slug == slug))
    if page is None:
        raise NotFound(f"no knowledge-base page {slug!r} (or it is outside your units)")
    return page


def page_exists(session: Session, slug: str) -> bool:
    """A page of the session's units holds ``slug``."""
    return session.scalar(select(KbPage.id).where(KbPage.slug == slug)) is not None


def get_version(session: Session, page: KbPage, number: int) -> KbPageVersion:
    found = session.scalar(select(KbPageVersion).where(KbPageVersion.page_id == page.id,
                                                       KbPageVersion.number == number))
    if found is None:
        raise NotFound(f"the page {page.slug!r} has no version {number}; its newest is {page.version}")
    return found


def list_versions(session: Session, page: KbPage, params: PageParams) -> tuple[list[KbPageVersion], int]:
    """Versions of the page, newest first."""
    query = select(KbPageVersion).where(KbPageVersion.page_id == page.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(KbPageVersion.number.desc()).limit(params.limit).offset(params.offset))
    return list(rows), total


def diff_versions(session: Session, page: KbPage, *, number: int, against: int | None = None) -> VersionDiff:
    """What changed from version ``against`` (default: the one before) to version ``number``: the title and tags
    before and after, and a unified diff of the Markdown (lines starting ``-`` removed, ``+`` added)."""
    new = get_version(session, page, number)
    base_number = against if against is not None else number - 1
    old = get_version(session, page, base_number) if base_number >= 1 else None
    lines = list(difflib.unified_diff(
        (old.body if old else "").splitlines(), new.body.splitlines(),
        fromfile=f"{page.slug}.md (version {base_number})" if old else "/dev/null",
        tofile=f"{page.slug}.md (version {number})", lineterm="", n=3))
    return VersionDiff(slug=page.slug, number=number, against=base_number if old else 0,
                       title_before=old.title if old else "", title_after=new.title,
                       tags_before=list(old.tags) if old else [], tags_after=list(new.tags), diff="\n".join(lines))


def _has_tag(tag: str) -> Any:
    """The page's tags (a JSON list, stored as ``json.dumps`` writes it: non-ASCII as \\u escapes) hold ``tag``."""
    encoded = json.dumps(tag)
    escaped = encoded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return cast(KbPage.tags, String).like(f"%{escaped}%", escape="\\")


def list_pages(session: Session, *, q: str = "", tag: str = "", params: PageParams) -> Page[PageSummary]:
    """Pages of the caller's units: all of them by last change, or those matching the search ``q`` (every term
    in the title, tags or body), best first, each with a snippet around the terms."""
    terms = search.parse_terms(q)
    query = select(KbPage)
    if tag.strip():
        query = query.where(_has_tag(tag.strip()))
    if terms:
        score = search.rank(terms).label("score")
        query = query.add_columns(score).where(search.matches(terms)).order_by(
            score.desc(), KbPage.updated_at.desc(), KbPage.id.desc())
    else:
        query = query.add_columns(literal(0).label("score")).order_by(KbPage.updated_at.desc(), KbPage.id.desc())
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items: list[PageSummary] = []
    rows: list[Any] = list(session.execute(query.limit(params.limit).offset(params.offset)).all())
    for page, score in rows:
        summary = PageSummary.model_validate(page)
        if terms:
            found = search.snippet(plain_text(page.body), terms)
            summary = summary.model_copy(update={"snippet": found.text, "highlights": found.highlights,
                                                 "score": int(score)})
        items.append(summary)
    return Page(items=items, total=total, limit=params.limit, offset=params.offset)


# --- changing --------------------------------------------------------------------------------------


def _index(page: KbPage) -> None:
    page.search_title = search.fold("\n".join([page.title, *page.tags]))
    page.search_body = search.fold(page.body)


def _add_version(ctx: Context, page: KbPage, *, comment: str) -> KbPageVersion:
    version = KbPageVersion(page_id=page.id, unit_id=page.unit_id, number=page.version, title=page.title,
                            body=page.body, tags=list(page.tags), comment=comment, source_kind=page.source_kind,
                            source_id=page.source_id, author=ctx.actor.name, created_at=page.updated_at)
    ctx.session.add(version)
    return version


def create_page(ctx: Context, *, data: PageCreate, source_kind: str = "manual", source_id: str = "") -> KbPage:
    """A new page at version 1; ``Conflict`` when its slug is taken."""
    slug = data.slug or slug_for(data.title)
    if not re.fullmatch(SLUG_PATTERN, slug):
        raise BadInput(f"{slug!r} is not a slug", errors=[{"field": "slug", "message": "not a slug"}])
    unit_id = _unit_for(ctx, data.unit_id)
    _check_slug_free(ctx.session, slug)
    now = utcnow()
    page = KbPage(slug=slug, unit_id=unit_id, title=data.title, body=data.body, tags=list(data.tags), version=1,
                  source_kind=source_kind, source_id=source_id, created_at=now, created_by=ctx.actor.name,
                  updated_at=now, updated_by=ctx.actor.name, git_commit="")
    _index(page)
    ctx.session.add(page)
    ctx.session.flush()
    _add_version(ctx, page, comment=data.comment)
    ctx.session.flush()
    ctx.audit("kb.page.create", target_type="kb_page", target_id=page.id, unit_id=page.unit_id,
              details={"slug": slug, "title": page.title, "tags": page.tags, "source": _source(page)})
    return page


def _source(page: KbPage) -> str:
    return f"{page.source_kind}:{page.source_id}" if page.source_id else page.source_kind


def update_page(ctx: Context, *, slug: str, data: PageUpdate, source_kind: str | None = None,
                source_id: str | None = None) -> KbPage:
    """A new version with the fields given; none when nothing changed. ``Conflict`` when ``base_version`` is
    older than the page's newest version (someone saved in between)."""
    page = get_page(ctx.session, slug)
    if data.base_version is not None and data.base_version != page.version:
        raise Conflict(f"the page changed since version {data.base_version} (it is at version {page.version}, by "
                       f"{page.updated_by}); reload it and apply your edit again",
                       errors=[{"field": "base_version", "message": "outdated"}])
    changed = [name for name, new in (("title", data.title), ("body", data.body), ("tags", data.tags))
               if new is not None and new != getattr(page, name)]
    source_changed = (source_kind is not None and source_kind != page.source_kind) or (
        source_id is not None and source_id != page.source_id)
    if not changed and not source_changed:
        return page
    for name in changed:
        setattr(page, name, list(data.tags or []) if name == "tags" else getattr(data, name))
    page.source_kind = source_kind if source_kind is not None else page.source_kind
    page.source_id = source_id if source_id is not None else page.source_id
    page.version += 1
    page.updated_at, page.updated_by = utcnow(), ctx.actor.name
    _index(page)
    _add_version(ctx, page, comment=data.comment)
    ctx.session.flush()
    ctx.audit("kb.page.update", target_type="kb_page", target_id=page.id, unit_id=page.unit_id,
              details={"slug": page.slug, "version": page.version, "changed": changed or ["source"],
                       "title": page.title})
    return page


def delete_page(ctx: Context, *, slug: str) -> KbPage:
    """Remove the page and its history (a file already published to git stays in the wiki's history)."""
    page = get_page(ctx.session, slug)
    ctx.audit("kb.page.delete", target_type="kb_page", target_id=page.id, unit_id=page.unit_id,
              details={"slug": page.slug, "title": page.title, "versions": page.version,
                       "git_commit": page.git_commit})
    ctx.session.execute(delete(KbPageVersion).where(KbPageVersion.page_id == page.id))
    ctx.session.delete(page)
    ctx.session.flush()
    return page


def publish_page(ctx: Context, *, slug: str, title: str, markdown: str, tags: list[str],
                 source_kind: str = "postmortem", source_id: str = "", unit_id: int | None = None,
                 comment: str = "") -> KbPage:
    """Create the page ``slug`` or, when the caller's units hold it, save a new version of it: how another
    domain (a post-mortem) writes its text into the knowledge base. ``Conflict`` when another unit's page
    holds the slug. The values are checked as the API checks them (``BadInput`` naming the field)."""
    exists = page_exists(ctx.session, slug)
    try:
        if exists:
            update = PageUpdate(title=title, body=markdown, tags=tags, comment=comment)
        else:
            create = PageCreate(title=title, slug=slug, body=markdown, tags=tags, comment=comment, unit_id=unit_id)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
                  for error in exc.errors()]
        raise BadInput("the page was not accepted: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                       errors=errors) from exc
    if exists:
        return update_page(ctx, slug=slug, data=update, source_kind=source_kind, source_id=source_id)
    return create_page(ctx, data=create, source_kind=source_kind, source_id=source_id)


# --- export and the git wiki -----------------------------------------------------------------------


def markdown_document(page: KbPage | KbPageVersion, *, slug: str, updated: Any) -> str:
    """The page as a Markdown file: a small YAML front matter (title, tags, updated, source), then the body."""
    front = {"title": page.title, "tags": list(page.tags),
             "updated": updated.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "source": f"{page.source_kind}:{page.source_id}" if page.source_id else page.source_kind,
             "slug": slug}
    if isinstance(page, KbPageVersion):
        front["version"] = page.number
    else:
        front["version"] = page.version
    header = yaml.safe_dump(front, allow_unicode=True, sort_keys=False, default_flow_style=None, width=1000)
    body = page.body if page.body.endswith("\n") or not page.body else page.body + "\n"
    return f"---\n{header}---\n\n{body}"


def read_markdown_document(text: str) -> tuple[dict[str, Any], str]:
    """A Markdown file's front matter (a YAML mapping between ``---`` lines, as ``markdown_document`` writes and
    most wikis and static-site tools read) and its body; no front matter: an empty mapping and the whole text."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if not text.startswith("---\n"):
        return {}, text
    header, found, body = text[4:].partition("\n---\n")
    if not found:
        return {}, text
    try:
        meta = yaml.safe_load(header)
    except yaml.YAMLError as exc:
        raise BadInput(f"the front matter between the --- lines is not valid YAML: {exc}") from exc
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise BadInput("the front matter between the --- lines must be a mapping (title: ..., tags: [...])")
    return meta, body.removeprefix("\n")


def wiki_config(settings: Settings) -> gitwiki.GitWikiConfig:
    if settings.kb_git_path is None:
        raise gitwiki.GitWikiError("publishing to a git wiki is not configured: set kb_git_path (VIGIL_KB_GIT_PATH) "
                                   "and, to push, kb_git_remote; see docs/knowledge-base.md")
    return gitwiki.GitWikiConfig(path=settings.kb_git_path, remote=settings.kb_git_remote,
                                 branch=settings.kb_git_branch, folder=settings.kb_git_folder,
                                 author_name=settings.kb_git_author_name, author_email=settings.kb_git_author_email,
                                 timeout_seconds=settings.kb_git_timeout_seconds)


def publish_to_git(ctx: Context, *, settings: Settings, page: KbPage) -> GitPublication:
    """Commit the page's current version to the git wiki as ``<slug>.md`` (pushed when a remote is set) and
    record the commit on that version. ``GitWikiError`` (503) when git refuses: nothing is committed then.

    The commit happens before the caller's transaction commits; if that transaction fails afterwards, the
    wiki holds a commit the records do not name, and publishing again finds the file unchanged and records
    that same commit."""
    config = wiki_config(settings)
    version = get_version(ctx.session, page, page.version)
    relative = gitwiki.page_path(config, page.slug)
    first_line = f"{'Update' if page.git_commit else 'Add'} {page.slug}: {' '.join(page.title.split())}"[:200]
    message = (f"{first_line}\n\nVersion {page.version} of the knowledge-base page, published from Vigil by "
               f"{ctx.actor.name}.\nSource: {_source(page)}\n")
    document = markdown_document(page, slug=page.slug, updated=page.updated_at)
    result = gitwiki.publish_file(config, relative=relative, content=document.encode("utf-8"), message=message)
    version.git_commit, version.git_path = result.commit, result.path
    page.git_commit, page.published_at = result.commit, utcnow()
    ctx.session.flush()
    ctx.audit("kb.page.publish", target_type="kb_page", target_id=page.id, unit_id=page.unit_id,
              details={"slug": page.slug, "version": page.version, "commit": result.commit, "path": result.path,
                       "branch": result.branch, "changed": result.changed, "pushed": result.pushed})
    return GitPublication(slug=page.slug, version=page.version, commit=result.commit, path=result.path,
                          branch=result.branch, changed=result.changed, pushed=result.pushed)
