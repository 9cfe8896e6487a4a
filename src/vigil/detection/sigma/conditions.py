"""The engine's rule conditions as compiled Python: one function of ``t`` (the per-event predicate test)
per variant, kept as marshalled code in a cache folder so that a restart does not compile them again."""

from __future__ import annotations

import hashlib
import marshal
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any

from vigil.detection.sigma.load import write_atomically


def condition_source(expressions: list[str]) -> str:
    """Each variant's condition as a Python function of ``t`` (the per-event predicate test).

    The source is generated from predicate numbers and the words and/or/not only (no rule text), so
    compiling it runs nothing a rule author wrote."""
    return "\n".join(f"def v{index}(t):\n    return {expression}" for index, expression in enumerate(expressions))


def condition_functions(code: CodeType, count: int) -> list[Callable[[Callable[[int], bool]], bool]]:
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 - code compiled from condition_source only
    return [namespace[f"v{index}"] for index in range(count)]


def cached_code(source: str, code_cache: Path | None) -> CodeType:
    """The compiled conditions; with ``code_cache``, kept there by the digest of their source (and Python's
    version: marshal's format is Python's own)."""
    if code_cache is None:
        return compile(source, "<sigma conditions>", "exec")
    digest = hashlib.sha256(f"{sys.version}\0{source}".encode()).hexdigest()[:32]
    path = code_cache / f"conditions-{digest}.marshal"
    try:
        code = marshal.loads(path.read_bytes())  # noqa: S302 - our own cache, in the user's cache folder
        if isinstance(code, CodeType):
            return code
    except (OSError, ValueError, EOFError, TypeError):
        pass  # not there yet, or damaged: compiled again
    code = compile(source, "<sigma conditions>", "exec")
    write_atomically(path, marshal.dumps(code))  # no cache folder: compiled each time
    return code
