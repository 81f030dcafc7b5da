"""The asyncio client: every root field of the schema as an ``async`` method."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from memoria_client._generated.async_operations import AsyncOperations
from memoria_client._generated.objects import AuthPayload
from memoria_client._http import (
    DEFAULT_URL,
    Endpoint,
    credential,
    headers,
    read_response,
    request_body,
)
from memoria_client._websocket import subscribe_async
from memoria_client.errors import MemoriaTransportError
from memoria_client.subscriptions import AsyncSubscription

T = TypeVar("T")


class AsyncMemoriaClient(AsyncOperations):
    """A Memoria server over GraphQL, for asyncio.

    ``token`` is a JWT from ``login``/``register`` or an API key from ``create_api_key``
    (``api_key=`` says the same); ``login`` and ``register`` keep the token they get.
    Queries and mutations go over one pooled HTTP connection; each subscription opens its
    own WebSocket (graphql-transport-ws). Close with ``aclose()`` or ``async with``.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.endpoint = Endpoint(url)
        self.token = credential(token, api_key)
        self.timeout = timeout
        self._http = httpx.AsyncClient(timeout=timeout)

    def __repr__(self) -> str:  # never shows the token
        return f"AsyncMemoriaClient({self.endpoint.http!r})"

    async def _execute(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post(
                self.endpoint.http,
                content=request_body(document, variables),
                headers=headers(self.token),
            )
        except httpx.HTTPError as exc:
            raise MemoriaTransportError(f"{self.endpoint.http}: {exc!r}") from exc
        return read_response(response.status_code, response.content)

    def _subscribe(
        self, document: str, variables: dict[str, Any], field: str, parse: Callable[[Any], T]
    ) -> AsyncSubscription[T]:
        source = subscribe_async(
            self.endpoint.ws, self.token, document, variables, open_timeout=self.timeout
        )
        return AsyncSubscription(source, field, parse)

    async def login(
        self, username_or_email: str, password: str, *, mfa_code: str | None = None
    ) -> AuthPayload:
        """Log in; later calls of this client use the returned access token."""
        payload = await super().login(username_or_email, password, mfa_code=mfa_code)
        self.token = payload.access_token
        return payload

    async def register(self, username: str, email: str, password: str) -> AuthPayload:
        """Create an account; later calls of this client use the returned access token."""
        payload = await super().register(username, email, password)
        self.token = payload.access_token
        return payload

    async def aclose(self) -> None:
        """Close the HTTP connections (subscriptions close on their own)."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMemoriaClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
