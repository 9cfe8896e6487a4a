"""A variant's gate: the Channel and EventID its log-source mapping requires (top-level equalities).

The engine indexes variants by their gate and the stored-event hunt puts it in its SQL WHERE; both then
evaluate the variant without it (``without_gate``), since the index or the query has checked it once.
"""

from __future__ import annotations

from vigil.detection.sigma.predicates import And, Condition, Predicate

Gate = tuple[str | None, str | None]  # (channel, event id), case-folded; None: not required


def variant_gate(condition: Condition) -> Gate:
    """The Channel and EventID a variant requires (uncased top-level equalities)."""
    items = condition.items if isinstance(condition, And) else (condition,)
    channel: str | None = None
    event_id: str | None = None
    for item in items:
        if isinstance(item, Predicate) and item.kind == "exact" and not item.cased:
            if item.field == "Channel" and channel is None:
                channel = item.value
            elif item.field == "EventID" and event_id is None:
                event_id = item.value
    return channel, event_id


def is_gate(item: Condition, gate: Gate) -> bool:
    if not isinstance(item, Predicate) or item.kind != "exact" or item.cased:
        return False
    return (item.field, item.value) in (("Channel", gate[0]), ("EventID", gate[1]))


def without_gate(condition: Condition, gate: Gate) -> Condition | None:
    """The condition less its gate predicates; None when the gate is all it asks."""
    if not isinstance(condition, And):
        return None if is_gate(condition, gate) else condition
    rest = tuple(item for item in condition.items if not is_gate(item, gate))
    if not rest:
        return None
    return rest[0] if len(rest) == 1 else And(rest)
