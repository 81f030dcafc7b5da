"""What the client raises: GraphQL errors by ``extensions.code``, and transport failures.

Every GraphQL error of Memoria carries ``extensions.code``; :func:`error_from_graphql` turns
the first error of a response into the :class:`MemoriaError` subclass for that code (an
unknown code gives a plain :class:`MemoriaError`, so new codes never break a client).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class MemoriaClientError(Exception):
    """Base of everything this client raises."""


class MemoriaTransportError(MemoriaClientError):
    """The server could not be reached or did not answer GraphQL (``status_code`` when an
    HTTP answer came)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class MemoriaResponseError(MemoriaTransportError):
    """The server answered something this client cannot read (a newer schema, a proxy page)."""


class MemoriaError(MemoriaClientError):
    """A GraphQL error: ``code`` is its ``extensions.code``; ``errors`` are all the errors
    of the response, as sent."""

    CODE: ClassVar[str] = ""

    def __init__(
        self,
        code: str,
        message: str,
        path: Sequence[str | int] = (),
        extensions: Mapping[str, Any] | None = None,
        errors: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.path = tuple(path)
        self.extensions = dict(extensions or {})
        self.errors = list(errors)

    @property
    def details(self) -> dict[str, Any]:
        """``extensions.details``: what the server adds to some codes (``retry_after``...)."""
        details = self.extensions.get("details")
        return dict(details) if isinstance(details, Mapping) else {}


class UnauthenticatedError(MemoriaError):
    """No credentials, or ones that name no live user (bad, expired or revoked)."""

    CODE = "UNAUTHENTICATED"


class ForbiddenError(MemoriaError):
    """The caller is known but may not do this (e.g. a non-admin creating a provider)."""

    CODE = "FORBIDDEN"


class NotFoundError(MemoriaError):
    """Unknown id, or another user's: the server never tells them apart."""

    CODE = "NOT_FOUND"


class BadUserInputError(MemoriaError):
    """Missing, empty, malformed or over-long input, or a document the schema rejects."""

    CODE = "BAD_USER_INPUT"


class RateLimitedError(MemoriaError):
    """Too many requests; ``retry_after`` is in seconds when the server said."""

    CODE = "RATE_LIMITED"

    @property
    def retry_after(self) -> int | None:
        value = self.details.get("retry_after")
        return int(value) if isinstance(value, int | float) else None


class InsufficientBalanceError(MemoriaError):
    """The user's balance does not cover the model's price."""

    CODE = "INSUFFICIENT_BALANCE"


class ProviderUnavailableError(MemoriaError):
    """An upstream model or embedding service failed or timed out."""

    CODE = "PROVIDER_UNAVAILABLE"


class InternalError(MemoriaError):
    """The server failed; its message is masked."""

    CODE = "INTERNAL"


ERRORS_BY_CODE: dict[str, type[MemoriaError]] = {
    cls.CODE: cls
    for cls in (
        UnauthenticatedError,
        ForbiddenError,
        NotFoundError,
        BadUserInputError,
        RateLimitedError,
        InsufficientBalanceError,
        ProviderUnavailableError,
        InternalError,
    )
}


def error_from_graphql(errors: Any) -> MemoriaClientError:
    """The exception for a response's ``errors`` list (its first error decides the class)."""
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], Mapping):
        return MemoriaResponseError(f"malformed GraphQL errors: {errors!r}")
    first = errors[0]
    raw_extensions = first.get("extensions")
    extensions: Mapping[str, Any] = raw_extensions if isinstance(raw_extensions, Mapping) else {}
    code = str(extensions.get("code") or "INTERNAL")
    raw_path = first.get("path")
    path = [p for p in raw_path if isinstance(p, str | int)] if isinstance(raw_path, list) else []
    cls = ERRORS_BY_CODE.get(code, MemoriaError)
    return cls(code, str(first.get("message", "")), path, extensions, errors)
