"""The one error tree. Every failure a user can cause is a ``VigilError`` subclass with an HTTP status
and a stable ``code``; the web layer renders them as ``application/problem+json`` (RFC 9457).

VigilError
 ├── BadInput            422  the request is well formed but a value is wrong
 ├── NotAuthenticated    401  no valid session or token
 ├── PermissionDenied    403  signed in, but not allowed
 ├── CsrfFailed          403  state-changing form without a valid CSRF token
 ├── NotFound            404  no such record, or not visible in the caller's units
 ├── Conflict            409  the record's state refuses the change
 │    └── InvalidTransition  409  a workflow refused a transition
 ├── PayloadTooLarge     413
 ├── RateLimited         429
 └── Unavailable         503  a store is not reachable
"""

from __future__ import annotations

from typing import Any, ClassVar


class VigilError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BadInput(VigilError):
    status = 422
    code = "bad-input"
    title = "Invalid input"

    def __init__(self, detail: str, *, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail, errors=errors or [])


class NotAuthenticated(VigilError):
    status = 401
    code = "not-authenticated"
    title = "Authentication required"


class PermissionDenied(VigilError):
    status = 403
    code = "permission-denied"
    title = "Permission denied"


class CsrfFailed(PermissionDenied):
    code = "csrf-failed"
    title = "CSRF check failed"


class NotFound(VigilError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(VigilError):
    status = 409
    code = "conflict"
    title = "Conflict"


class InvalidTransition(Conflict):
    code = "invalid-transition"
    title = "Transition not allowed"


class PayloadTooLarge(VigilError):
    status = 413
    code = "payload-too-large"
    title = "Request body too large"


class RateLimited(VigilError):
    status = 429
    code = "rate-limited"
    title = "Too many requests"


class Unavailable(VigilError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"
