"""A typed Python client for Memoria's GraphQL API.

>>> from memoria_client import MemoriaClient
>>> with MemoriaClient("http://127.0.0.1:8000") as client:  # doctest: +SKIP
...     client.login("dana", "a-long-password")
...     field = client.create_memory_field("life")

:class:`MemoriaClient` blocks, :class:`AsyncMemoriaClient` is for asyncio; both have one
method per root field of ``schema.graphql`` (generated into ``memoria_client._generated``
by ``tools/generate_client.py``), typed inputs and results (every schema type is importable
from here), subscriptions as iterators, and errors as exceptions by ``extensions.code``.
It imports nothing of the server: only httpx, websockets and the standard library.
"""

from memoria_client._generated import *  # noqa: F403  # every schema type; the list is generated
from memoria_client._generated import __all__ as _schema_types
from memoria_client.async_client import AsyncMemoriaClient
from memoria_client.errors import (
    BadUserInputError,
    ForbiddenError,
    InsufficientBalanceError,
    InternalError,
    MemoriaClientError,
    MemoriaError,
    MemoriaResponseError,
    MemoriaTransportError,
    NotFoundError,
    ProviderUnavailableError,
    RateLimitedError,
    UnauthenticatedError,
)
from memoria_client.scalars import JsonValue
from memoria_client.subscriptions import AsyncSubscription, Subscription
from memoria_client.sync_client import MemoriaClient

__all__ = [
    "AsyncMemoriaClient",
    "AsyncSubscription",
    "BadUserInputError",
    "ForbiddenError",
    "InsufficientBalanceError",
    "InternalError",
    "JsonValue",
    "MemoriaClient",
    "MemoriaClientError",
    "MemoriaError",
    "MemoriaResponseError",
    "MemoriaTransportError",
    "NotFoundError",
    "ProviderUnavailableError",
    "RateLimitedError",
    "Subscription",
    "UnauthenticatedError",
    *_schema_types,
]
