"""The blocking client against the real server: it runs in a worker thread because the
server shares this test's event loop."""

from __future__ import annotations

import asyncio

import pytest
from client_support import sqlite_only  # noqa: F401  # fixture used by name
from conftest import RunningServer

from memoria_client import (
    ChatCompleted,
    ChatDelta,
    ChatStarted,
    MemoriaClient,
    MemoryInput,
    MemoryKind,
    NotFoundError,
    UnauthenticatedError,
)


def _session(url: str) -> None:
    with MemoriaClient(url) as client:
        client.register("kim", "kim@example.com", "a-long-password")
        client.token = None
        with pytest.raises(UnauthenticatedError):
            client.me()
        auth = client.login("kim", "a-long-password")
        assert client.token == auth.access_token
        assert client.me().id == auth.user.id
        field = client.create_memory_field("life")
        client.add_memories(
            field.id,
            [
                MemoryInput(content="Kim: I climb every Tuesday", kind=MemoryKind.EPISODE),
                MemoryInput(content="Kim's sister is called Ana"),
            ],
        )
        hits = client.search_memories("what is my sister called?", field_id=field.id, top_k=1)
        assert [h.memory.content for h in hits] == ["Kim's sister is called Ana"]
        with pytest.raises(NotFoundError):
            client.delete_memory("no-such-memory")
        # No provider configured: the built-in extractive model answers from memory.
        with client.chat("who is my sister?", field_id=field.id) as stream:
            events = list(stream)
        assert isinstance(events[0], ChatStarted)
        assert isinstance(events[-1], ChatCompleted)
        text = "".join(e.text for e in events if isinstance(e, ChatDelta))
        assert text == events[-1].message.content
        assert "Ana" in text


async def test_blocking_client_session(server: RunningServer) -> None:
    await asyncio.to_thread(_session, server.url)
