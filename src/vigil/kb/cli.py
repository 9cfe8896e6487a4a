"""`vigil kb`: the knowledge base from the command line: list and search pages, show one, put a Markdown file
as a page (a new version when the page exists), and publish a page to the git wiki.

The CLI acts as the local operator (every unit, audited as ``cli:<login>``). A file's front matter (``title``,
``tags``, ``slug``, as `vigil kb show --markdown` and the git wiki write it) fills what the options leave out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from vigil.cli.runtime import (
    EXIT_CODES_HELP,
    EXIT_USAGE,
    JsonOption,
    describe_invalid,
    fail,
    local_time,
    note,
    operation,
    print_json,
    print_table,
)
from vigil.core.config import Settings
from vigil.core.pagination import PageParams
from vigil.kb import service
from vigil.kb.schemas import PageCreate, PageRead, PageSummary, PageUpdate, VersionRead

app = typer.Typer(help="The knowledge base: Markdown pages, search, and the git wiki.", no_args_is_help=True)
Slug = Annotated[str, typer.Argument(help="The page's slug.", show_default=False)]
MAX_FILE = 4 * 1024 * 1024


def _listing(items: list[PageSummary], settings: Settings, as_json: bool, *, searching: bool) -> None:
    if as_json:
        print_json([item.model_dump(mode="json") for item in items])
        return
    if not items:
        note("no page matches" if searching else "no pages yet")
        return
    headers = ["SLUG", "TITLE", "VERSION", "UPDATED", "BY", "TAGS"] + (["SNIPPET"] if searching else [])
    rows = [[item.slug, item.title, str(item.version), local_time(settings, item.updated_at), item.updated_by,
             ", ".join(item.tags)] + ([item.snippet[:80]] if searching else []) for item in items]
    print_table(headers, rows)


@app.command("list", epilog=EXIT_CODES_HELP)
def list_pages(
    tag: Annotated[str, typer.Option("--tag", "-t", help="Only pages with this tag.")] = "",
    limit: Annotated[int, typer.Option("--limit", "-n", help="Pages to list at most.", min=1, max=500)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Pages, changed last first."""
    with operation() as op, op.transaction() as ctx:
        found = service.list_pages(ctx.session, tag=tag, params=PageParams(limit=limit, offset=0))
    _listing(found.items, op.settings, as_json, searching=False)


@app.command("search", epilog=EXIT_CODES_HELP)
def search_pages(
    query: Annotated[str, typer.Argument(help='Terms that must all occur (any language); "a phrase" in quotes.',
                                         show_default=False)],
    limit: Annotated[int, typer.Option("--limit", "-n", help="Pages to list at most.", min=1, max=500)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Pages matching every term, title hits first, each with a snippet around the terms."""
    with operation() as op, op.transaction() as ctx:
        found = service.list_pages(ctx.session, q=query, params=PageParams(limit=limit, offset=0))
    _listing(found.items, op.settings, as_json, searching=True)


@app.command("show", epilog=EXIT_CODES_HELP)
def show_page(
    slug: Slug,
    version: Annotated[int | None, typer.Option("--version", "-v", help="An older version.", min=1)] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the page as a Markdown file (front matter "
                                           "and text), as exported and written to the git wiki.")] = False,
    as_json: JsonOption = False,
) -> None:
    """A page (or one of its versions): its facts and text."""
    with operation() as op, op.transaction() as ctx:
        page = service.get_page(ctx.session, slug)
        shown: Any = page if version is None else service.get_version(ctx.session, page, version)
        updated = page.updated_at if version is None else shown.created_at
        document = service.markdown_document(shown, slug=page.slug, updated=updated)
        read: dict[str, Any] = (PageRead.model_validate(page) if version is None
                                else VersionRead.model_validate(shown)).model_dump(mode="json")
        settings = op.settings
    if markdown:
        typer.echo(document, nl=False)
        return
    if as_json:
        print_json(read)
        return
    typer.echo(f"{read['title']}\n")
    facts = [("slug", slug), ("version", str(read.get("version", read.get("number")))),
             ("tags", ", ".join(read["tags"])), ("updated", local_time(settings, updated)),
             ("by", read.get("updated_by", read.get("author", ""))), ("git commit", read["git_commit"] or "-")]
    for name, value in facts:
        typer.echo(f"{name + ':':<12}{value}")
    typer.echo("\n" + read["body"])


@app.command("put", epilog=EXIT_CODES_HELP)
def put_page(
    file: Annotated[Path, typer.Argument(help="A Markdown file (front matter: title, tags, slug).", exists=True,
                                         dir_okay=False, readable=True, show_default=False)],
    slug: Annotated[str | None, typer.Option("--slug", "-s", help="Default: the front matter's, else from the "
                                             "title.", show_default=False)] = None,
    title: Annotated[str | None, typer.Option("--title", help="Default: the front matter's, else the first "
                                              "heading, else the file's name.", show_default=False)] = None,
    tags: Annotated[list[str] | None, typer.Option("--tag", "-t", help="A tag (repeat it); default: the front "
                                                   "matter's.", show_default=False)] = None,
    unit: Annotated[int | None, typer.Option("--unit", help="Unit of a new page (id); default: the root unit.",
                                             min=1, show_default=False)] = None,
    comment: Annotated[str, typer.Option("--comment", "-m", help="What this version is.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a page from a Markdown file, or save it as a new version of the page of that slug."""
    if file.stat().st_size > MAX_FILE:
        fail(f"{file} is larger than {MAX_FILE // (1024 * 1024)} MiB", EXIT_USAGE)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        fail(f"{file} is not UTF-8 text", EXIT_USAGE)
    with operation() as op, op.transaction() as ctx:
        meta, body = service.read_markdown_document(text)
        chosen_title = title or str(meta.get("title") or "") or _first_heading(body) or file.stem
        chosen_tags = list(tags) if tags else [str(tag) for tag in meta.get("tags") or []]
        chosen_slug = slug or (str(meta["slug"]) if meta.get("slug") else None)
        try:
            exists = chosen_slug is not None and service.page_exists(ctx.session, chosen_slug)
            if exists and chosen_slug is not None:
                page = service.update_page(ctx, slug=chosen_slug, data=PageUpdate(
                    title=chosen_title, body=body, tags=chosen_tags, comment=comment))
            else:
                page = service.create_page(ctx, data=PageCreate(title=chosen_title, slug=chosen_slug, body=body,
                                                                tags=chosen_tags, comment=comment, unit_id=unit))
        except ValidationError as exc:
            fail(describe_invalid(exc))
        read = PageRead.model_validate(page)
    if as_json:
        print_json(read.model_dump(mode="json"))
        return
    typer.echo(f"{read.slug}: version {read.version} ({read.title})")


def _first_heading(body: str) -> str:
    for line in body.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return ""


@app.command("publish", epilog=EXIT_CODES_HELP)
def publish_page(slug: Slug, as_json: JsonOption = False) -> None:
    """Commit the page's current version to the git wiki (kb_git_path) and push it (kb_git_remote)."""
    with operation() as op, op.transaction() as ctx:
        done = service.publish_to_git(ctx, settings=op.settings, page=service.get_page(ctx.session, slug))
    if as_json:
        print_json(done.model_dump(mode="json"))
        return
    what = "committed" if done.changed else "already in the wiki as"
    typer.echo(f"{done.path}: {what} {done.commit} on {done.branch}" + (" (pushed)" if done.pushed else ""))
