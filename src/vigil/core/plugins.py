"""Plugins through entry points: each group has one typed Protocol, and built-in plugins load through
the same path as third-party ones (they are declared in Vigil's own pyproject.toml).

A plugin that fails to import, or does not satisfy its group's protocol, is reported in
``Loaded.broken`` with the reason while the others load: one bad plugin never takes the rest down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

T = TypeVar("T")

GROUPS = ("vigil.parsers", "vigil.consumers", "vigil.notifiers", "vigil.importers", "vigil.actions", "vigil.feeds")


@dataclass(frozen=True)
class BrokenPlugin:
    group: str
    name: str
    target: str
    reason: str


@dataclass
class Loaded(Generic[T]):
    plugins: dict[str, T] = field(default_factory=dict)
    broken: list[BrokenPlugin] = field(default_factory=list)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def load_group(group: str, protocol: type[T], *, instantiate: bool = True) -> Loaded[T]:
    """Load every plugin of ``group``; classes are instantiated without arguments when ``instantiate``."""
    loaded: Loaded[T] = Loaded()
    found: list[EntryPoint] = sorted(entry_points(group=group), key=lambda ep: ep.name)
    for entry in found:
        try:
            target = entry.load()
            plugin = target() if instantiate and isinstance(target, type) else target
        except Exception as exc:  # a third-party plugin may fail in any way; report, never crash
            loaded.broken.append(BrokenPlugin(group, entry.name, entry.value, _describe(exc)))
            continue
        if not isinstance(plugin, protocol):
            loaded.broken.append(
                BrokenPlugin(group, entry.name, entry.value, f"does not implement {protocol.__name__}")
            )
            continue
        if entry.name in loaded.plugins:
            loaded.broken.append(BrokenPlugin(group, entry.name, entry.value, "a plugin of this name is loaded"))
            continue
        loaded.plugins[entry.name] = plugin
    return loaded
