"""The knowledge base's pages: the list with a search box, a page (rendered Markdown, tags, history, export,
"publish to git"), the create and edit forms, the history and an old version, and a print-ready page.

Every page goes through ``kb.service`` as the API does; reading needs ``kb:read``, changing ``kb:write`` in the
page's unit (the guard narrows the session to those units). A refused form comes back with the reason.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core.auth import Permission, Principal
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.pagination import PageParams
from vigil.kb import service
from vigil.kb.api import markdown_response, pdf_response
from vigil.kb.gitwiki import GitWikiError
from vigil.kb.models import KbPage, KbPageVersion
from vigil.kb.render import render_markdown
from vigil.kb.schemas import PageCreate, PageUpdate
from vigil.kb.search import Snippet
from vigil.web.deps import SessionDep, context, settings_of
from vigil.web.templating import (
    FormDep,
    Pager,
    PageRoute,
    Translator,
    describe_error,
    field_errors,
    page_guard,
    redirect,
    render,
    text_fields,
    translator,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Reader = Annotated[Principal, Depends(page_guard(Permission.KB_READ))]
Writer = Annotated[Principal, Depends(page_guard(Permission.KB_WRITE))]
SlugPath = Annotated[str, Path(min_length=1, max_length=100)]
Number = Annotated[int, Path(ge=1, le=1_000_000)]
PAGE_SIZE = 25
REFUSED = (BadInput, Conflict, NotFound)
# Confirmations after a redirect (``?done=key``): the templates hold their fixed texts, never the URL's.
DONE = frozenset({"created", "saved", "unchanged", "published", "published-unchanged", "deleted"})
_TAG_SPLIT = re.compile(r"[,，、]")


def done_of(request: Request) -> str:
    done = request.query_params.get("done", "")
    return done if done in DONE else ""


def split_tags(text: str) -> list[str]:
    """Tags typed in one field, separated by commas (also the Chinese "，" and "、")."""
    return [tag.strip() for tag in _TAG_SPLIT.split(text) if tag.strip()]


def unit_names(session: Session) -> dict[int, str]:
    return {unit.id: unit.name for unit in accounts.list_units(session)}


@router.get("/kb")
def list_page(request: Request, principal: Reader, session: SessionDep,
              q: Annotated[str, Query(max_length=500)] = "", tag: Annotated[str, Query(max_length=50)] = "",
              offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> HTMLResponse:
    error = ""
    try:
        found = service.list_pages(session, q=q, tag=tag, params=PageParams(limit=PAGE_SIZE, offset=offset))
        items, total = found.items, found.total
    except BadInput as exc:
        error, items, total = describe_error(exc, translator(request)), [], 0
    snippets = {item.slug: Snippet(item.snippet, item.highlights).parts() for item in items}
    return render(request, "kb/pages.html", {
        "items": items, "snippets": snippets, "q": q, "tag": tag, "error": error, "done": done_of(request),
        "pager": Pager("/kb", total, PAGE_SIZE, offset, {"q": q, "tag": tag}), "units": unit_names(session),
    }, status=422 if error else 200)


# --- creating and editing --------------------------------------------------------------------------


def _form(request: Request, session: Session, principal: Principal, *, page: KbPage | None,
          values: dict[str, str], errors: dict[str, str] | None = None, error: str = "",
          status: int = 200) -> HTMLResponse:
    units = [(unit.id, unit.name) for unit in accounts.list_units(session)]
    return render(request, "kb/edit.html", {"page": page, "values": values, "errors": errors or {}, "error": error,
                                            "units": units}, status=status)


def _refusal(exc: ValidationError | BadInput | Conflict | NotFound, _: Translator) -> tuple[dict[str, str], str]:
    if isinstance(exc, ValidationError):
        return field_errors(exc, _), _("Correct the marked fields.")
    return {}, describe_error(exc, _)


@router.get("/kb/new")
def new_page(request: Request, principal: Writer, session: SessionDep) -> HTMLResponse:
    values = {"title": "", "slug": "", "body": "", "tags": "", "comment": "", "unit_id": str(principal.unit_id)}
    return _form(request, session, principal, page=None, values=values)


@router.post("/kb/new")
def create_page(request: Request, principal: Writer, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    values = text_fields(form, "title", "slug", "tags", "comment", "unit_id")
    body = form.get("body")
    values["body"] = body.replace("\r\n", "\n") if isinstance(body, str) else ""
    try:
        data = PageCreate(title=values["title"], slug=values["slug"] or None, body=values["body"],
                          tags=split_tags(values["tags"]), comment=values["comment"],
                          unit_id=int(values["unit_id"]) if values["unit_id"].isdigit() else None)
        with session.begin_nested():
            page = service.create_page(context(request, session, principal), data=data)
    except (ValidationError, *REFUSED) as exc:
        errors, error = _refusal(exc, _)
        return _form(request, session, principal, page=None, values=values, errors=errors, error=error,
                     status=409 if isinstance(exc, Conflict) else 422)
    return redirect(f"/kb/pages/{page.slug}?done=created")


@router.get("/kb/pages/{slug}/edit")
def edit_page(slug: SlugPath, request: Request, principal: Writer, session: SessionDep) -> HTMLResponse:
    page = service.get_page(session, slug)
    values = {"title": page.title, "body": page.body, "tags": ", ".join(page.tags), "comment": "",
              "base_version": str(page.version)}
    return _form(request, session, principal, page=page, values=values)


@router.post("/kb/pages/{slug}/edit")
def save_page(slug: SlugPath, request: Request, principal: Writer, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    page = service.get_page(session, slug)
    values = text_fields(form, "title", "tags", "comment", "base_version")
    body = form.get("body")
    values["body"] = body.replace("\r\n", "\n") if isinstance(body, str) else ""
    before = page.version
    try:
        data = PageUpdate(title=values["title"], body=values["body"], tags=split_tags(values["tags"]),
                          comment=values["comment"],
                          base_version=int(values["base_version"]) if values["base_version"].isdigit() else None)
        with session.begin_nested():
            saved = service.update_page(context(request, session, principal), slug=slug, data=data)
    except (ValidationError, *REFUSED) as exc:
        errors, error = _refusal(exc, _)
        return _form(request, session, principal, page=page, values=values, errors=errors, error=error,
                     status=409 if isinstance(exc, Conflict) else 422)
    return redirect(f"/kb/pages/{slug}?done={'saved' if saved.version != before else 'unchanged'}")


@router.post("/kb/pages/{slug}/delete")
def delete_page(slug: SlugPath, request: Request, principal: Writer, session: SessionDep) -> Response:
    service.delete_page(context(request, session, principal), slug=slug)
    return redirect("/kb?done=deleted")


# --- reading ---------------------------------------------------------------------------------------


def _view(request: Request, session: Session, page: KbPage, *, version: KbPageVersion | None = None,
          git_error: str = "", status: int = 200) -> HTMLResponse:
    shown = version or page
    return render(request, "kb/page.html", {
        "page": page, "version": version, "html": render_markdown(shown.body), "title": shown.title,
        "tags": shown.tags, "done": done_of(request), "git_error": git_error,
        "git_configured": settings_of(request).kb_git_path is not None,
        "unit": unit_names(session).get(page.unit_id, str(page.unit_id)),
    }, status=status)


@router.get("/kb/pages/{slug}")
def view_page(slug: SlugPath, request: Request, principal: Reader, session: SessionDep) -> HTMLResponse:
    return _view(request, session, service.get_page(session, slug))


@router.get("/kb/pages/{slug}/history")
def history_page(slug: SlugPath, request: Request, principal: Reader, session: SessionDep,
                 offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> HTMLResponse:
    page = service.get_page(session, slug)
    versions, total = service.list_versions(session, page, PageParams(limit=PAGE_SIZE, offset=offset))
    return render(request, "kb/history.html", {
        "page": page, "versions": versions, "pager": Pager(f"/kb/pages/{slug}/history", total, PAGE_SIZE, offset)})


@router.get("/kb/pages/{slug}/versions/{number}")
def version_page(slug: SlugPath, number: Number, request: Request, principal: Reader,
                 session: SessionDep) -> HTMLResponse:
    page = service.get_page(session, slug)
    return _view(request, session, page, version=service.get_version(session, page, number))


@router.get("/kb/pages/{slug}/versions/{number}/diff")
def diff_page(slug: SlugPath, number: Number, request: Request, principal: Reader, session: SessionDep,
              against: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> HTMLResponse:
    page = service.get_page(session, slug)
    found = service.diff_versions(session, page, number=number, against=against)
    lines = [("add" if line.startswith("+") and not line.startswith("+++") else
              "del" if line.startswith("-") and not line.startswith("---") else
              "hunk" if line.startswith("@@") else "", line) for line in found.diff.splitlines()]
    return render(request, "kb/diff.html", {"page": page, "found": found, "lines": lines})


@router.get("/kb/pages/{slug}/export.md")
def export_markdown(slug: SlugPath, principal: Reader, session: SessionDep,
                    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> Response:
    return markdown_response(session, slug, version)


@router.get("/kb/pages/{slug}/export.pdf")
def export_pdf(slug: SlugPath, principal: Reader, session: SessionDep,
               version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> Response:
    return pdf_response(session, slug, version)


@router.get("/kb/pages/{slug}/print")
def print_page(slug: SlugPath, request: Request, principal: Reader, session: SessionDep) -> HTMLResponse:
    """The page alone, laid out for paper: the browser's "Print" makes the PDF."""
    page = service.get_page(session, slug)
    context_: dict[str, Any] = {"page": page, "html": render_markdown(page.body),
                                "unit": unit_names(session).get(page.unit_id, str(page.unit_id))}
    return render(request, "kb/print.html", context_)


@router.post("/kb/pages/{slug}/publish")
def publish_page(slug: SlugPath, request: Request, principal: Writer, session: SessionDep) -> Response:
    page = service.get_page(session, slug)
    try:
        done = service.publish_to_git(context(request, session, principal), settings=settings_of(request), page=page)
    except GitWikiError as exc:
        return _view(request, session, page, git_error=exc.detail, status=503)
    return redirect(f"/kb/pages/{slug}?done={'published' if done.changed else 'published-unchanged'}")
