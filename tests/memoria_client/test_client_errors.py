"""GraphQL errors arrive as the exception class of their ``extensions.code``; transport
failures as MemoriaTransportError."""

from __future__ import annotations

import socket

import pytest
from client_support import sqlite_only  # noqa: F401  # fixture used by name
from conftest import RunningServer

import domain.errors
from memoria_client import (
    AsyncMemoriaClient,
    BadUserInputError,
    ForbiddenError,
    MemoriaError,
    MemoriaTransportError,
    MemoryInput,
    MemoryPatch,
    NotFoundError,
    RateLimitedError,
    UnauthenticatedError,
)
from memoria_client.errors import ERRORS_BY_CODE, error_from_graphql


async def test_server_errors_map_to_their_classes(server: RunningServer) -> None:
    async with AsyncMemoriaClient(server.url) as client:
        with pytest.raises(UnauthenticatedError) as anonymous:
            await client.me()
        assert (anonymous.value.code, anonymous.value.path) == ("UNAUTHENTICATED", ("me",))
        with pytest.raises(UnauthenticatedError):
            await client.login("nobody", "wrong-password-1")

        await client.register("joe", "joe@example.com", "a-long-password")
        with pytest.raises(BadUserInputError) as taken:
            await client.register("joe", "joe2@example.com", "a-long-password")
        assert taken.value.code == "BAD_USER_INPUT"
        assert taken.value.message
        field = await client.create_memory_field("notes")
        with pytest.raises(BadUserInputError):
            await client.add_memory(field.id, MemoryInput(content="   "))
        with pytest.raises(NotFoundError) as missing:
            await client.update_memory("no-such-memory", MemoryPatch(content="x"))
        assert missing.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
        with pytest.raises(ForbiddenError):
            await client.create_provider("mine", "openai", api_endpoint="http://127.0.0.1:9/v1")


async def test_transport_failures(server: RunningServer) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    async with AsyncMemoriaClient(f"http://127.0.0.1:{closed_port}", timeout=2) as client:
        with pytest.raises(MemoriaTransportError):
            await client.health()
        with pytest.raises(MemoriaTransportError):
            await anext(client.chat("hello"))
    async with AsyncMemoriaClient(f"{server.url}/no-such-page/") as lost:
        with pytest.raises(MemoriaTransportError) as not_graphql:
            await lost.health()
        assert not_graphql.value.status_code == 404
    with pytest.raises(ValueError, match="http"):
        AsyncMemoriaClient("127.0.0.1:8000")
    with pytest.raises(ValueError, match="not both"):
        AsyncMemoriaClient(server.url, token="a", api_key="b")


def test_every_server_error_code_has_a_class() -> None:
    codes = {
        cls.code
        for cls in vars(domain.errors).values()
        if isinstance(cls, type) and issubclass(cls, domain.errors.MemoriaError)
    }
    assert codes <= set(ERRORS_BY_CODE), codes - set(ERRORS_BY_CODE)


def test_rate_limited_carries_retry_after_and_unknown_codes_stay_readable() -> None:
    limited = error_from_graphql(
        [
            {
                "message": "slow down",
                "path": ["chat"],
                "extensions": {"code": "RATE_LIMITED", "details": {"retry_after": 7}},
            }
        ]
    )
    assert isinstance(limited, RateLimitedError)
    assert (limited.retry_after, limited.path, str(limited)) == (
        7,
        ("chat",),
        "RATE_LIMITED: slow down",
    )
    novel = error_from_graphql([{"message": "m", "extensions": {"code": "SOMETHING_NEW"}}])
    assert type(novel) is MemoriaError
    assert novel.code == "SOMETHING_NEW"
