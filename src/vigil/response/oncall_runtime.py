"""The escalation engine inside `vigil serve`: a thread that calls ``escalation.tick`` every
``escalation_tick_seconds`` (as the intel feed scheduler runs its pulls), and does the work handed to it.

Notification channels plug in by setting ``EscalationRunner.notify``: `vigil serve` sets a
``paging.ChannelNotify``, whose queued pages the thread sends (``dispatch``) after every tick and whenever it
is woken (an escalation started in a request, an incident event). ``UnwiredNotify`` (the default) records and
logs what would have been sent. ``submit`` hands the thread a job (the incident events' work), so a request
never waits for a notification endpoint.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime

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
        self._wake = threading.Event()
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._work_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def links(self) -> AckLinks:
        if self._links is None:
            self._links = AckLinks(self.settings.effective_secret_key())
        return self._links

    @property
    def pager(self) -> Pager:
        return Pager(links=self.links, notify=self.notify, base_url=self.settings.public_url)

    @property
    def status(self) -> str:
        """What the pages go through: the channels, or nothing (said plainly on the escalations)."""
        return self.notify.name

    def tick(self, now: datetime | None = None) -> int:
        """Advance the escalations due at ``now`` (default: the present), then send what that queued."""
        moved = tick(self.db, now=now or utcnow(), pager=self.pager)
        self.work()
        return moved

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def work(self) -> int:
        """Run the jobs handed in, then send the queued pages; the number of pages sent. One at a time."""
        with self._work_lock:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                try:
                    job()
                except Exception:  # one failing job must not stop the others
                    log.exception("escalation: a job of the runner failed")
            dispatch: Callable[[Pager], int] | None = getattr(self.notify, "dispatch", None)
            return dispatch(self.pager) if dispatch is not None else 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="vigil-escalations", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        interval = self.settings.escalation_tick_seconds
        last_tick = utcnow()
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if (utcnow() - last_tick).total_seconds() >= interval:
                    last_tick = utcnow()
                    self.tick()
                else:
                    self.work()
            except Exception:  # the engine keeps going; the next tick tries again
                log.exception("escalation: a tick of the engine failed")
