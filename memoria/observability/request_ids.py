"""The id of the request (or WebSocket operation) being handled, for responses and logs.

A client may send its own ``X-Request-ID`` (1-128 visible ASCII characters) so its logs and
ours correlate; anything else is replaced by a generated one. The id lives in a context
variable: every task started while handling the request inherits it, which is how GraphQL
operations over a WebSocket get ``<connection id>/<operation id>``.
"""

from __future__ import annotations

import logging
import uuid
from contextvars import ContextVar, Token

HEADER = b"x-request-id"
MAX_LENGTH = 128
MAX_OPERATION_ID = 64  # of the client's WebSocket operation id kept in the request id

_CURRENT: ContextVar[str | None] = ContextVar("memoria_request_id", default=None)


def current_request_id() -> str | None:
    return _CURRENT.get()


def set_request_id(value: str | None) -> Token[str | None]:
    """Sets the id; returns the token ``reset_request_id`` takes."""
    return _CURRENT.set(value)


def reset_request_id(token: Token[str | None]) -> None:
    _CURRENT.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_sane(raw: bytes | str) -> bool:
    """1 to 128 visible ASCII characters: safe in a header and in a log line as is."""
    data = raw.encode("latin-1", "replace") if isinstance(raw, str) else raw
    return 0 < len(data) <= MAX_LENGTH and all(0x21 <= byte <= 0x7E for byte in data)


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` if it is sane, else a new id."""
    for name, value in headers:
        if name.lower() == HEADER:
            return value.decode("ascii") if is_sane(value) else new_request_id()
    return new_request_id()


def operation_request_id(connection_id: str, operation_id: object) -> str:
    """The id of one GraphQL operation on a WebSocket; a client's odd operation id is
    replaced by ``?`` rather than copied into logs."""
    text = operation_id if isinstance(operation_id, str) else ""
    if not (0 < len(text) <= MAX_OPERATION_ID and is_sane(text)):
        text = "?"
    return f"{connection_id}/{text}"


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id`` attribute (None outside any request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _CURRENT.get()
        return True
