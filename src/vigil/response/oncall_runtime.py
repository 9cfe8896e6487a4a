"""The escalation engine inside `vigil serve`: a thread that calls ``escalation.tick`` every
``escalation_tick_seconds`` (as the intel feed scheduler runs its pulls).

Notification channels plug in by setting ``EscalationRunner.notify`` (a ``escalation.Notify``); until then the
``UnwiredNotify`` path records and logs what would have been sent.
"""

from __future__ import annotations

import logging
import threading

from vigil.core.config import Settings
from vigil.core.db import Database, utcnow
from vigil.response.escalation import AckLinks, Notify, Pager, UnwiredNotify, tick

log = logging.getLogger(__name__)


class EscalationRunner:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.db = database
        self.notify: Notify = UnwiredNotify()
        self._links: AckLinks | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def links(self) -> AckLinks:
        if self._links is None:
            self._links = AckLinks(self.settings.effective_secret_key())
        return self._links

    @property
    def pager(self) -> Pager:
        return Pager(links=self.links, notify=self.notify, base_url=self.settings.public_url)

    def tick(self) -> int:
        return tick(self.db, now=utcnow(), pager=self.pager)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="vigil-escalations", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.escalation_tick_seconds):
            try:
                self.tick()
            except Exception:  # the engine keeps going; the next tick tries again
                log.exception("escalation: a tick of the engine failed")
