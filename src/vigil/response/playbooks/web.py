"""What the playbook API and pages share: the step options of a request's process."""

from __future__ import annotations

from fastapi import Request

from vigil.response.playbooks.runs import Options
from vigil.web.deps import settings_of


def options_of(request: Request) -> Options:
    """The process's intel store (for enrichment), the retry pause, Vigil's address for links."""
    settings = settings_of(request)
    return Options(intel=getattr(request.app.state, "intel", None), retry_delay=settings.notify_retry_seconds,
                   base_url=settings.public_url or str(request.base_url).rstrip("/"))
