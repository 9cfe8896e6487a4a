"""/api/v1/rule-placeholders: the values of Sigma placeholders (``%name%`` with the ``expand`` modifier).

Placeholders are platform-wide like the rules that use them: reading needs ``rules:read``, changing
``rules:write`` at headquarters. Every change is on the audit trail; live detection recompiles the rules
using a placeholder at its next refresh. A rule refused at import for lacking a placeholder is not
stored: once the placeholder is set, import its pack again (``refused`` names the packs;
``/rule-placeholders-missing`` lists the placeholders rules asked for that have no values).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status

from vigil.core.auth import Permission, Principal
from vigil.core.pagination import Page, PageParams, page_params
from vigil.detection import placeholders_service
from vigil.detection.schemas_placeholders import PlaceholderRead, PlaceholderSet, PlaceholderUse
from vigil.web.deps import SessionDep, context, require

router = APIRouter(prefix="/api/v1", tags=["detection rules"])
RulesReader = Annotated[Principal, Depends(require(Permission.RULES_READ))]
Pages = Annotated[PageParams, Depends(page_params)]
RulesWriter = Annotated[Principal, Depends(require(Permission.RULES_WRITE, everywhere=True))]
Name = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                           description="The placeholder's name: the text between the % signs.")]


@router.get("/rule-placeholders")
def list_placeholders(principal: RulesReader, session: SessionDep, pages: Pages) -> Page[PlaceholderRead]:
    """Every placeholder with its values and how many stored rules use it, by name."""
    found = placeholders_service.read_all(session).items
    return Page(items=found[pages.offset:pages.offset + pages.limit], total=len(found), **pages.model_dump())


@router.get("/rule-placeholders-missing")
def list_missing(principal: RulesReader, session: SessionDep, pages: Pages) -> Page[PlaceholderUse]:
    """Placeholders without values that rules asked for at import (those rules were refused), with the packs
    to import again once they are set."""
    found = placeholders_service.missing(session)
    return Page(items=found[pages.offset:pages.offset + pages.limit], total=len(found), **pages.model_dump())


@router.get("/rule-placeholders/{name}")
def read_placeholder(name: Name, principal: RulesReader, session: SessionDep) -> PlaceholderRead:
    return placeholders_service.read(session, placeholders_service.get_placeholder(session, name))


@router.put("/rule-placeholders/{name}")
def set_placeholder(name: Name, data: PlaceholderSet, request: Request, principal: RulesWriter,
                    session: SessionDep) -> PlaceholderRead:
    """Create the placeholder or replace its values (1 to 1,000, each at most 1,024 characters; ``*`` and
    ``?`` are wildcards). ``refused``: packs whose rules were refused for lacking it: import them again."""
    row = placeholders_service.set_placeholder(context(request, session, principal), name=name, data=data)
    return placeholders_service.read(session, row)


@router.delete("/rule-placeholders/{name}", status_code=status.HTTP_204_NO_CONTENT)
def remove_placeholder(name: Name, request: Request, principal: RulesWriter, session: SessionDep) -> None:
    """Remove the placeholder: rules using it no longer compile, and live detection drops them."""
    placeholders_service.remove_placeholder(context(request, session, principal), name=name)
