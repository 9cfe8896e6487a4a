"""What a service call needs besides its arguments: the session, who is acting, and from where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from vigil.core import audit
from vigil.core.auth import Principal


@dataclass(frozen=True)
class Context:
    session: Session
    actor: audit.Actor
    principal: Principal | None = None

    @classmethod
    def of(cls, session: Session, principal: Principal, source_ip: str = "") -> Context:
        actor = audit.Actor(principal.user_id, principal.username, principal.unit_id, source_ip)
        return cls(session=session, actor=actor, principal=principal)

    def audit(self, action: str, **fields: Any) -> audit.AuditRecord:
        return audit.record(self.session, actor=self.actor, action=action, **fields)
