"""Shared GraphQL pieces: JSON, Relay page info and cursors, health."""

from __future__ import annotations

import base64
import binascii
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from domain.errors import BadUserInput
from graph.context import OperationContext

__all__ = ["JSON", "Health", "PageInfo", "ctx", "decode_cursor", "encode_cursor"]


def ctx(info: Info[Any, Any]) -> OperationContext:
    return cast(OperationContext, info.context)


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def encode_cursor(kind: str, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{item_id}".encode()).decode()


def decode_cursor(kind: str, cursor: str | None) -> str | None:
    """Opaque cursors; a malformed one is the client's error, not ours."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadUserInput("after is not a valid cursor", details={"field": "after"}) from None
    prefix, _, item_id = raw.partition(":")
    if prefix != kind or not item_id:
        raise BadUserInput("after is not a valid cursor", details={"field": "after"})
    return item_id


@strawberry.type
class Health:
    status: str
    database: str
    version: str
