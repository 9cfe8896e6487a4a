"""/api/v1/kb: the knowledge base's pages, their versions, export as Markdown, and publishing to the git wiki.

Reading needs ``kb:read`` (every business role) and covers the pages of the units where the caller holds
it; creating, editing, deleting and publishing need ``kb:write`` (analysts, responders, security
administrators) on the page's unit. A page of another unit answers 404 like one that does not exist.
Every change is on the audit trail.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import Response

from vigil.core.auth import Permission, Principal
from vigil.core.pagination import Page, PageParams, page_params
from vigil.kb import service
from vigil.kb.pdf import markdown_pdf
from vigil.kb.schemas import (
    GitPublication,
    PageCreate,
    PageRead,
    PageSummary,
    PageUpdate,
    VersionDiff,
    VersionRead,
    VersionSummary,
)
from vigil.web.deps import SessionDep, context, require, settings_of

router = APIRouter(prefix="/api/v1/kb", tags=["knowledge base"])
Reader = Annotated[Principal, Depends(require(Permission.KB_READ))]
Writer = Annotated[Principal, Depends(require(Permission.KB_WRITE))]
SlugPath = Annotated[str, Path(min_length=1, max_length=100, description="The page's slug.")]
Number = Annotated[int, Path(ge=1, le=1_000_000, description="A version number, from 1.")]


@router.get("/pages")
def list_pages(principal: Reader, session: SessionDep, pages: Annotated[PageParams, Depends(page_params)],
               q: Annotated[str, Query(max_length=500, description=(
                   "Search: every term (space-separated; \"a phrase\" in quotes) in the title, tags or body, in any "
                   "language; best matches first, title hits above body hits."))] = "",
               tag: Annotated[str, Query(max_length=50, description="Only pages with this tag.")] = "",
               ) -> Page[PageSummary]:
    """Pages of your units, changed last first; with ``q``, the matching ones best first, each with a snippet
    of its text around the terms and where they are in it (``highlights``)."""
    return service.list_pages(session, q=q, tag=tag, params=pages)


@router.post("/pages", status_code=status.HTTP_201_CREATED)
def create_page(data: PageCreate, request: Request, principal: Writer, session: SessionDep) -> PageRead:
    """A new page (version 1); 409 when its slug is taken."""
    return PageRead.model_validate(service.create_page(context(request, session, principal), data=data))


@router.get("/pages/{slug}")
def read_page(slug: SlugPath, principal: Reader, session: SessionDep) -> PageRead:
    return PageRead.model_validate(service.get_page(session, slug))


@router.patch("/pages/{slug}")
def update_page(slug: SlugPath, data: PageUpdate, request: Request, principal: Writer,
                session: SessionDep) -> PageRead:
    """Change the fields given as a new version (none when nothing changes); with ``base_version``, 409 when
    someone saved a newer version in between."""
    page = service.update_page(context(request, session, principal), slug=slug, data=data)
    return PageRead.model_validate(page)


@router.delete("/pages/{slug}")
def delete_page(slug: SlugPath, request: Request, principal: Writer, session: SessionDep) -> PageRead:
    """Remove the page and its versions; the answer is the page as it was. What was published to git stays in
    the wiki's history."""
    ctx = context(request, session, principal)
    read = PageRead.model_validate(service.get_page(session, slug))
    service.delete_page(ctx, slug=slug)
    return read


@router.get("/pages/{slug}/versions")
def list_versions(slug: SlugPath, principal: Reader, session: SessionDep,
                  pages: Annotated[PageParams, Depends(page_params)]) -> Page[VersionSummary]:
    """The page's versions, newest first."""
    versions, total = service.list_versions(session, service.get_page(session, slug), pages)
    return Page(items=[VersionSummary.model_validate(v) for v in versions], total=total, limit=pages.limit,
                offset=pages.offset)


@router.get("/pages/{slug}/versions/{number}")
def read_version(slug: SlugPath, number: Number, principal: Reader, session: SessionDep) -> VersionRead:
    return VersionRead.model_validate(service.get_version(session, service.get_page(session, slug), number))


@router.get("/pages/{slug}/versions/{number}/diff")
def diff_version(slug: SlugPath, number: Number, principal: Reader, session: SessionDep,
                 against: Annotated[int | None, Query(ge=1, le=1_000_000, description=(
                     "The version to compare with; default: the one before."))] = None) -> VersionDiff:
    """What changed in a version: title and tags before and after, and a unified diff of the text."""
    return service.diff_versions(session, service.get_page(session, slug), number=number, against=against)


@router.get("/pages/{slug}/export.md", response_class=Response,
            responses={200: {"content": {"text/markdown": {}}, "description": "The page as a Markdown file."}})
def export_markdown(slug: SlugPath, principal: Reader, session: SessionDep,
                    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> Response:
    """The page (or one of its versions) as a Markdown file with a YAML front matter (title, tags, updated,
    source, slug, version), as it is written to the git wiki."""
    return markdown_response(session, slug, version)


def markdown_response(session: SessionDep, slug: str, version: int | None) -> Response:
    page = service.get_page(session, slug)
    if version is None:
        text = service.markdown_document(page, slug=page.slug, updated=page.updated_at)
    else:
        found = service.get_version(session, page, version)
        text = service.markdown_document(found, slug=page.slug, updated=found.created_at)
    name = f"{page.slug}.md" if version is None else f"{page.slug}-v{version}.md"
    return Response(text, media_type="text/markdown; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"})


@router.get("/pages/{slug}/export.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}, "description": "The page as an A4 PDF."}})
def export_pdf(slug: SlugPath, principal: Reader, session: SessionDep,
               version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> Response:
    """The page (or one of its versions) as an A4 PDF, titled and dated."""
    return pdf_response(session, slug, version)


def pdf_response(session: SessionDep, slug: str, version: int | None) -> Response:
    page = service.get_page(session, slug)
    found = page if version is None else service.get_version(session, page, version)
    stamp = page.updated_at if version is None else found.created_at
    label = page.slug if version is None else f"{page.slug} v{version}"
    data = markdown_pdf(f"# {found.title}\n\n{found.body}", title=found.title,
                        footer=f"{label} · {stamp:%Y-%m-%d %H:%M} UTC")
    name = f"{page.slug}.pdf" if version is None else f"{page.slug}-v{version}.pdf"
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"})


@router.post("/pages/{slug}/publish")
def publish_page(slug: SlugPath, request: Request, principal: Writer, session: SessionDep) -> GitPublication:
    """Commit the page's current version to the configured git wiki as ``<slug>.md`` and push it; the commit is
    recorded on the version. 503 with git's reason when the wiki is not configured, missing or refuses the
    push: nothing is committed then."""
    ctx = context(request, session, principal)
    return service.publish_to_git(ctx, settings=settings_of(request), page=service.get_page(session, slug))
