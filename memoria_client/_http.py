"""The HTTP side shared by both clients: endpoint URLs, request bodies, reading answers."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from memoria_client.errors import (
    MemoriaResponseError,
    MemoriaTransportError,
    error_from_graphql,
)

DEFAULT_URL = "http://127.0.0.1:8000"


class Endpoint:
    """The GraphQL URLs of one server: ``http`` for queries and mutations, ``ws`` for
    subscriptions. Give the server's base URL; a path ending in ``/graphql`` is kept."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http(s) URL such as {DEFAULT_URL}, got {url!r}")
        path = parts.path.rstrip("/")
        if not path.endswith("/graphql"):
            path += "/graphql"
        self.http = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
        ws_scheme = "wss" if parts.scheme == "https" else "ws"
        self.ws = urlunsplit((ws_scheme, parts.netloc, path, parts.query, ""))


def credential(token: str | None, api_key: str | None) -> str | None:
    """The bearer secret: a JWT from login/register or an API key (both travel the same way)."""
    if token is not None and api_key is not None:
        raise ValueError("give either token or api_key, not both")
    return token if token is not None else api_key


def headers(token: str | None) -> dict[str, str]:
    found = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        found["Authorization"] = f"Bearer {token}"
    return found


def request_body(document: str, variables: dict[str, Any]) -> bytes:
    return json.dumps({"query": document, "variables": variables}).encode()


def read_response(status_code: int, content: bytes) -> dict[str, Any]:
    """The ``data`` of a GraphQL answer; its errors raised as typed exceptions."""
    try:
        body = json.loads(content)
    except ValueError:
        raise MemoriaTransportError(
            f"HTTP {status_code} without a GraphQL answer: {content[:200]!r}",
            status_code=status_code,
        ) from None
    if not isinstance(body, dict):
        raise MemoriaResponseError(f"HTTP {status_code}: not a GraphQL answer: {body!r}")
    if body.get("errors"):
        raise error_from_graphql(body["errors"])
    if status_code >= 400:
        raise MemoriaTransportError(f"HTTP {status_code}: {body!r}", status_code=status_code)
    data = body.get("data")
    if not isinstance(data, dict):
        raise MemoriaResponseError(f"HTTP {status_code}: a GraphQL answer without data")
    return data
