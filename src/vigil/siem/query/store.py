"""The search compiler's ``Resolver`` over the event store's fields (typed column, else JSON extraction)."""

from __future__ import annotations

from vigil.siem.fields import FieldResolver
from vigil.siem.query.compiler import FieldKind, FieldRef

# Fields searched by containment (a word matches when the field holds it), as bare words are.
FULLTEXT_FIELDS = frozenset({"message", "event.original"})

_KINDS: dict[str, FieldKind] = {"text": "text", "number": "number", "timestamp": "timestamp", "list": "list",
                                "json": "json"}


class StoreResolver:
    """``resolve(field)`` for ``compile_query`` from the store's ``FieldResolver`` (which refuses bad names)."""

    def __init__(self, fields: FieldResolver | None = None) -> None:
        self.fields = fields or FieldResolver()

    def resolve(self, field: str) -> FieldRef:
        resolved = self.fields.resolve_typed(field)
        return FieldRef(resolved.sql, _KINDS[str(resolved.kind)], fulltext=field in FULLTEXT_FIELDS)
