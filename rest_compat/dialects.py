"""Error dialects: how each documented API family writes an error body and which HTTP status
and message each domain error gets in it.

The domain raises one error tree (``domain.errors``); only here does it become HTTP. A
dialect decides three things: the status (``status_of``), the message (``message_of``, where
a document fixes a wording, e.g. Sentech's "Invalid API key") and the body (``body``).
"""

from __future__ import annotations

from typing import Any

from domain.errors import (
    BadUserInput,
    Forbidden,
    InsufficientBalance,
    MemoriaError,
    NotFound,
    ProviderUnavailable,
    RateLimited,
    Unauthenticated,
    UserNotFound,
)

INTERNAL_MESSAGE = "Internal server error"


class HttpError(MemoriaError):
    """A protocol-level refusal (413, 415, 405) raised by the REST framework itself."""

    status = 400

    def __init__(self, message: str, *, status: int, details: dict[str, Any] | None = None):
        super().__init__(message, details=details)
        self.status = status


class InternalError(MemoriaError):
    """Stands for any unexpected exception: its message is never the original one."""

    def __init__(self) -> None:
        super().__init__(INTERNAL_MESSAGE)


_STATUS: tuple[tuple[type[MemoriaError], int], ...] = (
    (UserNotFound, 401),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (RateLimited, 429),
    (InsufficientBalance, 402),
    (ProviderUnavailable, 503),
    (BadUserInput, 400),
)

_REASONS = {
    400: "bad_request",
    401: "unauthorized",
    402: "insufficient_balance",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class Dialect:
    """Base dialect: the status table shared by all families, ``{"error": message}`` body."""

    name = "plain"
    # The wording of a 401 for a refused bearer token, where the document fixes one.
    bearer_refusal: str | None = None

    def status_of(self, error: MemoriaError) -> int:
        if isinstance(error, HttpError):
            return error.status
        if isinstance(error, InternalError):
            return 500
        for kind, status in _STATUS:
            if isinstance(error, kind):
                return status
        return 500

    def message_of(self, error: MemoriaError, status: int) -> str:
        return error.message if status != 500 else INTERNAL_MESSAGE

    def body(self, *, status: int, error: MemoriaError, message: str) -> Any:
        return {"error": message}

    def render(self, error: MemoriaError, *, token: bool = False) -> tuple[int, Any]:
        """``token``: the error refused the request's bearer token (not, say, a login)."""
        status = self.status_of(error)
        if token and status == 401 and self.bearer_refusal:
            message = self.bearer_refusal
        else:
            message = self.message_of(error, status)
        return status, self.body(status=status, error=error, message=message)

    def error_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        }


def reason(status: int) -> str:
    return _REASONS.get(status, "bad_request" if status < 500 else "internal_error")


def public_details(error: MemoriaError) -> dict[str, Any]:
    """Details safe to show: the domain puts only client-facing facts there."""
    return {k: v for k, v in error.details.items() if k != "reason"}


class SentechDialect(Dialect):
    """``{"error": "<message>"}``; a token whose user is gone is 404 "User not found"."""

    name = "sentech"

    def status_of(self, error: MemoriaError) -> int:
        if isinstance(error, UserNotFound):
            return 404
        if isinstance(error, InsufficientBalance):
            return 400
        return super().status_of(error)

    def message_of(self, error: MemoriaError, status: int) -> str:
        if status == 401:
            return "Invalid API key"
        if isinstance(error, InsufficientBalance):
            return "Insufficient balance"
        return super().message_of(error, status)


class ChatApiDialect(Dialect):
    """The Chat API document: ``{"error": "<message>"}``."""

    name = "chat_api"


class SenuaDialect(Dialect):
    """``{"error": {"code", "message", "details"}}`` with lower-case codes; MFA refusals carry
    their reason (``mfa_required``/``invalid_mfa_code``) as the code."""

    name = "senua"
    bearer_refusal = "Invalid or expired token"  # the document's example error

    def body(self, *, status: int, error: MemoriaError, message: str) -> Any:
        code = str(error.details.get("reason") or reason(status))
        return {"error": {"code": code, "message": message, "details": public_details(error)}}

    def error_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                    },
                }
            },
        }


class MemoryKitDialect(Dialect):
    """``{"error": "NOT_FOUND", "message", "details"}`` with upper-case codes."""

    name = "memorykit"

    def body(self, *, status: int, error: MemoriaError, message: str) -> Any:
        return {
            "error": reason(status).upper(),
            "message": message,
            "details": public_details(error),
        }

    def error_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["error", "message", "details"],
            "properties": {
                "error": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }


_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}


class OpenAIDialect(SentechDialect):
    """OpenAI's ``{"error": {"message", "type", "param", "code"}}``, with the Sentech
    document's statuses and wordings (both chat-completion routes share it)."""

    name = "openai"

    def status_of(self, error: MemoriaError) -> int:
        # Neither completions document lists 404 "User not found" (only the Sentech memory
        # routes do): a token whose user is gone is an invalid key, 401, as elsewhere.
        if isinstance(error, UserNotFound):
            return 401
        return super().status_of(error)

    def body(self, *, status: int, error: MemoriaError, message: str) -> Any:
        code: str | None = None
        if status == 401:
            code = "invalid_api_key"
        elif status == 429:
            code = "rate_limit_exceeded"
        elif isinstance(error, InsufficientBalance):
            code = "insufficient_balance"
        elif error.details.get("code"):
            code = str(error.details["code"])
        param = error.details.get("field")
        return {
            "error": {
                "message": message,
                "type": _OPENAI_TYPES.get(
                    status, "server_error" if status >= 500 else "invalid_request_error"
                ),
                "param": str(param) if param else None,
                "code": code,
            }
        }

    def error_schema(self) -> dict[str, Any]:
        nullable_string = {"type": "string", "nullable": True}
        return {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["message", "type", "param", "code"],
                    "properties": {
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                        "param": nullable_string,
                        "code": nullable_string,
                    },
                }
            },
        }


SENTECH = SentechDialect()
SENUA = SenuaDialect()
MEMORYKIT = MemoryKitDialect()
CHAT_API = ChatApiDialect()
OPENAI = OpenAIDialect()
