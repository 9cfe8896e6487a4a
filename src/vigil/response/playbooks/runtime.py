"""Response automation inside `vigil serve`: one thread that starts the playbooks an incident event matches
and rolls back response actions whose TTL has passed (``executions.tick``, every ``tick_seconds``).

Incident events arrive on the bus after their transaction commits (``IncidentOpened``, ``IncidentReclassified``);
the subscriber only queues the incident, so the request that opened it never waits for a playbook. Each
incident is then handled in a transaction of its own, as the system ("vigil"), so a playbook that fails leaves
the incident and the other playbooks untouched.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime

from vigil.core.config import Settings
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.core.events import bus
from vigil.incidents.events import IncidentOpened, IncidentReclassified
from vigil.intel.runtime import Intel
from vigil.response.actions import executions
from vigil.response.playbooks.runs import Options, run_matching_playbooks

log = logging.getLogger(__name__)
TICK_SECONDS = 5.0


class ResponseRunner:
    def __init__(self, settings: Settings, database: Database, *, intel: Intel | None = None,
                 tick_seconds: float = TICK_SECONDS) -> None:
        self.settings = settings
        self.db = database
        self.intel = intel
        self.tick_seconds = tick_seconds
        self._queue: queue.Queue[tuple[int, str] | None] = queue.Queue()  # None wakes the loop to stop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: list[Callable[[], None]] = []

    @property
    def options(self) -> Options:
        return Options(intel=self.intel, retry_delay=self.settings.notify_retry_seconds,
                       base_url=self.settings.public_url)

    def on_opened(self, event: IncidentOpened) -> None:
        self._queue.put((event.incident_id, "opened"))

    def on_reclassified(self, event: IncidentReclassified) -> None:
        for changed in event.changed:
            self._queue.put((event.incident_id, f"{changed}_changed"))

    def handle(self, incident_id: int, event: str) -> list[int]:
        """Start the playbooks ``event`` matches on the incident; the ids of the runs started."""
        with self.db.transaction(Scope.system()) as session:
            ctx = Context(session=session, actor=executions.system_actor(session))
            runs = run_matching_playbooks(ctx, incident_id=incident_id, event=event, options=self.options)
            return [run.id for run in runs]

    def tick(self, now: datetime | None = None) -> list[int]:
        return executions.tick(self.db, now=now)

    def subscribe(self) -> None:
        if not self._unsubscribe:
            self._unsubscribe = [bus.subscribe(IncidentOpened, self.on_opened),
                                 bus.subscribe(IncidentReclassified, self.on_reclassified)]

    def unsubscribe(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def drain(self) -> list[int]:
        """Handle the incident events queued so far, in this thread (a shell command, before it exits); the ids
        of the runs started."""
        started: list[int] = []
        while True:
            try:
                queued = self._queue.get_nowait()
            except queue.Empty:
                return started
            if queued is None:
                continue
            try:
                started += self.handle(*queued)
            except Exception:  # as in the server's loop: one incident's playbooks failing never stops the others
                log.exception("playbooks for incident %d (%s) failed", *queued)

    def start(self) -> None:
        if self._thread is not None:
            return
        self.subscribe()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="vigil-response", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.unsubscribe()
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        next_tick = time.monotonic() + self.tick_seconds
        while not self._stop.is_set():
            try:
                queued = self._queue.get(timeout=max(0.05, min(1.0, next_tick - time.monotonic())))
            except queue.Empty:
                pass
            else:
                if queued is None:
                    continue
                incident_id, event = queued
                try:
                    self.handle(incident_id, event)
                except Exception:  # one incident's playbooks failing never stops the others or the rollbacks
                    log.exception("playbooks for incident %d (%s) failed", incident_id, event)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.tick_seconds
                try:
                    self.tick()
                except Exception:  # the next tick tries again
                    log.exception("response actions: rolling back due executions failed")
