"""What `vigil serve` does when an incident opens or changes, done by a shell command that changed it.

The server reacts to incident events in its own threads: paging by severity and "incident opened"
(``paging.IncidentPaging``), playbooks (``playbooks.runtime.ResponseRunner``) and publishing an approved
post-mortem. Events stay in the process that committed them, so a command of `vigil incident` that opens,
escalates, acknowledges or approves does the same itself, after its commit and before it exits; timeouts
and rollbacks later are the server's (they are rows in the store). Threat-intel enrichment of playbooks is
skipped here (the indicator store lives in the server).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from vigil.core.config import Settings
from vigil.core.db import Database
from vigil.response.oncall_runtime import EscalationRunner
from vigil.response.paging import ChannelNotify, IncidentPaging
from vigil.response.playbooks.runtime import ResponseRunner

log = logging.getLogger(__name__)


@contextmanager
def incident_reactions(settings: Settings, database: Database) -> Iterator[None]:
    """Listen to the incident events committed inside the block, then page, notify, start playbooks and
    publish as the server would."""
    escalations = EscalationRunner(settings, database)
    escalations.notify = ChannelNotify(settings, database)
    paging = IncidentPaging(escalations)
    playbooks = ResponseRunner(settings, database)
    paging.start()
    playbooks.subscribe()
    try:
        yield
    finally:
        paging.stop()
        playbooks.unsubscribe()
        try:
            escalations.work()
            playbooks.drain()
        except Exception:  # the change is saved; the server's clock and the pages' retries take it from here
            log.exception("reacting to the incident change failed")
