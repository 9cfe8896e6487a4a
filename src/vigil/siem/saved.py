"""Saved searches: a user's own named queries with their time ranges.

A saved search belongs to the user who saved it and to that user's unit. Nobody else sees it, not even
an administrator of the same unit: every function here takes the owner and filters on it, so another
user's saved search is "not found" exactly like one that does not exist. Creating and deleting one is on
the audit trail.

The owner filter is narrower than any unit scope, so the owner's rows are read whatever unit they were
saved in: a user moved to another unit keeps their saved searches, and one is moved along to the
owner's current unit when it is deleted (the session may write only there).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vigil.accounts.service import UNSCOPED
from vigil.core.auth import Principal
from vigil.core.context import Context
from vigil.core.db import Scope, set_scope
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.pagination import PageParams
from vigil.siem import search
from vigil.siem.models import SavedSearch
from vigil.siem.schemas import SavedSearchCreate


def scope_to_owner(session: Session, principal: Principal) -> None:
    """Narrow the session to the caller's own unit, where their saved searches live.

    The caller's permission to search events is checked before (``require(EVENTS_READ)``); their own unit
    need not be among the units whose events they read, yet it is where their saved searches are kept.
    """
    set_scope(session, Scope(frozenset({principal.unit_id})))


def list_saved(session: Session, *, owner_id: int, params: PageParams) -> tuple[list[SavedSearch], int]:
    mine = SavedSearch.user_id == owner_id
    total = session.scalar(select(func.count(SavedSearch.id)).where(mine), execution_options=UNSCOPED) or 0
    items = session.scalars(select(SavedSearch).where(mine).order_by(SavedSearch.name, SavedSearch.id)
                            .limit(params.limit).offset(params.offset), execution_options=UNSCOPED)
    return list(items), total


def get_saved(session: Session, *, owner_id: int, saved_id: int) -> SavedSearch:
    """The owner's saved search; ``NotFound`` for a missing id and for another user's alike."""
    found = session.scalar(select(SavedSearch).where(SavedSearch.id == saved_id, SavedSearch.user_id == owner_id),
                           execution_options=UNSCOPED)
    if found is None:
        raise NotFound(f"No saved search {saved_id}")
    return found


def check_search(query: str, time_range: str) -> None:
    """``BadInput`` naming the field when the query does not parse or the time range cannot be read."""
    try:
        search.time_range(time_range)
    except BadInput as exc:
        raise BadInput(exc.detail, errors=[{"field": "time_range", "message": exc.detail}]) from exc
    search.compile_text(query)  # QuerySyntaxError already names the field, line and column


def create_saved(ctx: Context, *, data: SavedSearchCreate) -> SavedSearch:
    """Save a search for the acting user; ``Conflict`` when they already have one of that name."""
    owner_id = ctx.actor.user_id
    if owner_id is None:
        raise BadInput("only a user can save a search")
    check_search(data.query, data.time_range)
    clash = ctx.session.scalar(select(SavedSearch.id).where(SavedSearch.user_id == owner_id,
                                                            SavedSearch.name == data.name),
                               execution_options=UNSCOPED)
    if clash is not None:
        raise Conflict(f"you already have a saved search named {data.name!r}",
                       errors=[{"field": "name", "message": "already used"}])
    saved = SavedSearch(user_id=owner_id, unit_id=ctx.actor.unit_id, name=data.name, query=data.query,
                        time_range=data.time_range, columns=list(data.columns))
    ctx.session.add(saved)
    ctx.session.flush()
    ctx.audit("saved_search.create", target_type="saved_search", target_id=saved.id, unit_id=saved.unit_id,
              details={"name": saved.name, "query": saved.query, "time_range": saved.time_range})
    return saved


def delete_saved(ctx: Context, *, saved: SavedSearch) -> None:
    saved.unit_id = ctx.actor.unit_id  # saved before the owner moved: follows them, where the session may write
    ctx.audit("saved_search.delete", target_type="saved_search", target_id=saved.id, unit_id=saved.unit_id,
              details={"name": saved.name, "query": saved.query, "time_range": saved.time_range})
    ctx.session.delete(saved)
    ctx.session.flush()
