"""Vigil: an open-source Security Operations Center platform."""

from typing import Any


def __getattr__(name: str) -> Any:
    # ``__version__`` is read from the installed package's metadata only when asked for: importing
    # importlib.metadata costs `vigil hunt` (which never asks) a tenth of its start-up.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("vigil")
        except PackageNotFoundError:  # running from a source tree that was never installed
            found = "0.0.0+unknown"
        globals()["__version__"] = found
        return found
    raise AttributeError(f"module 'vigil' has no attribute {name!r}")
