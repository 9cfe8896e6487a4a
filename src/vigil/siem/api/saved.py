"""/api/v1/saved-searches: the caller's own saved searches (list, save, delete).

Saving searches is part of searching events, so it needs ``events:read``; each user sees and deletes
only their own (another user's id answers 404, like an id that does not exist).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.pagination import PageParams, page_params
from vigil.siem import saved
from vigil.siem.schemas import SavedSearchCreate, SavedSearchPage, SavedSearchRead
from vigil.web.deps import SessionDep, context, require

router = APIRouter(prefix="/api/v1/saved-searches", tags=["saved searches"])
Searcher = Annotated[Principal, Depends(require(Permission.EVENTS_READ))]
Id = Annotated[int, Path(ge=1, le=MAX_RECORD_ID, description="A saved search's id.")]


@router.get("")
def list_saved_searches(principal: Searcher, session: SessionDep,
                        pages: Annotated[PageParams, Depends(page_params)]) -> SavedSearchPage:
    saved.scope_to_owner(session, principal)
    items, total = saved.list_saved(session, owner_id=principal.user_id, params=pages)
    return SavedSearchPage(items=[SavedSearchRead.model_validate(item) for item in items], total=total,
                           **pages.model_dump())


@router.post("", status_code=status.HTTP_201_CREATED)
def save_search(data: SavedSearchCreate, request: Request, principal: Searcher,
                session: SessionDep) -> SavedSearchRead:
    saved.scope_to_owner(session, principal)
    created = saved.create_saved(context(request, session, principal), data=data)
    return SavedSearchRead.model_validate(created)


@router.delete("/{saved_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_saved_search(saved_id: Id, request: Request, principal: Searcher, session: SessionDep) -> None:
    saved.scope_to_owner(session, principal)
    found = saved.get_saved(session, owner_id=principal.user_id, saved_id=saved_id)
    saved.delete_saved(context(request, session, principal), saved=found)
