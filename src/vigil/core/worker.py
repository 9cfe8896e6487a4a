"""A background thread that runs a loop until stopped: the pipeline, the retention job, the source figures."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Worker:
    """One named daemon thread at a time; ``stopping`` is what its loop waits on and checks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, loop: Callable[[], None]) -> None:
        """Run ``loop`` in the thread, unless it runs already."""
        if self._thread is not None:
            return
        self.stopping.clear()
        self._thread = threading.Thread(target=loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to end and wait for it (at most ``timeout`` seconds)."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
