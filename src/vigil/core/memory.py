"""Pausing the cyclic garbage collector while many short-lived or long-lived objects are made at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch is parsed (or a rule engine loaded).

    A batch's events are tens of thousands of small acyclic dicts, freed by reference counting; the
    collector, triggered every few hundred allocations, walked them again and again and took half of the
    parse time. Cycles made meanwhile are collected once it runs again."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
