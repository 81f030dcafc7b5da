"""The one error tree of Memoria.

Every failure a caller can act on is a :class:`MemoriaError` with a stable ``code``.
Edges map codes to their own dialects (GraphQL ``extensions.code``, REST bodies); anything
that is not a ``MemoriaError`` is an internal error whose message is never shown.
"""

from __future__ import annotations

from typing import Any


class MemoriaError(Exception):
    """Base of all errors a client may see. ``code`` is the GraphQL ``extensions.code``."""

    code = "INTERNAL"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class Unauthenticated(MemoriaError):
    """No credentials, or credentials that name no live principal (bad, expired, revoked)."""

    code = "UNAUTHENTICATED"


class Forbidden(MemoriaError):
    """The caller is known but may not do this (e.g. a non-admin creating a provider)."""

    code = "FORBIDDEN"


class NotFound(MemoriaError):
    """Unknown id, or an id owned by someone else: existence is never leaked."""

    code = "NOT_FOUND"


class BadUserInput(MemoriaError):
    """Missing, empty, malformed or over-long input."""

    code = "BAD_USER_INPUT"


class Conflict(BadUserInput):
    """The input clashes with existing state (a taken username, a duplicate field name)."""


class RateLimited(MemoriaError):
    """Too many requests; ``retry_after`` is in seconds."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int, limit: int = 0) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after
        self.limit = limit


class InsufficientBalance(MemoriaError):
    code = "INSUFFICIENT_BALANCE"


class ProviderUnavailable(MemoriaError):
    """An upstream model or embedding service failed or timed out."""

    code = "PROVIDER_UNAVAILABLE"


class UserNotFound(Unauthenticated):
    """A valid token whose user no longer exists (Sentech answers 404 for this)."""
