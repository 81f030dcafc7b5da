"""Subscriptions over graphql-transport-ws with the real server and the fake LLM: a chat
streamed as typed events (async and sync), messageAdded, early close, a rejected token."""

from __future__ import annotations

import asyncio

import pytest
from client_support import (  # noqa: F401  # fixtures are used by name
    MODEL,
    add_fake_provider,
    fake_llm_fixture,
    llm_server_fixture,
    sqlite_only,
)
from conftest import RunningServer
from fake_llm import FakeLLM, Reply

from memoria_client import (
    AsyncMemoriaClient,
    ChatCompleted,
    ChatDelta,
    ChatEvent,
    ChatFailed,
    ChatStarted,
    MemoriaClient,
    MemoryInput,
    Message,
    MessageInput,
    UnauthenticatedError,
)


def _text(events: list[ChatEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, ChatDelta))


async def test_chat_streams_typed_events_async_and_sync(
    llm_server: RunningServer, fake_llm: tuple[FakeLLM, str]
) -> None:
    server = llm_server
    llm, llm_url = fake_llm
    llm.script(Reply(tokens=["You ", "live ", "in ", "Porto."], prompt_tokens=30))
    await add_fake_provider(server.url, llm_url)
    async with AsyncMemoriaClient(server.url) as client:
        await client.register("gus", "gus@example.com", "a-long-password")
        field = await client.create_memory_field("home")
        memory = await client.add_memory(field.id, MemoryInput(content="Gus lives in Porto"))
        async with client.chat("Where do I live?", model=MODEL, field_id=field.id) as stream:
            events = [event async for event in stream]
        started, completed = events[0], events[-1]
        assert isinstance(started, ChatStarted)
        assert started.model == MODEL
        assert all(isinstance(e, ChatDelta) for e in events[1:-1])
        assert _text(events) == "You live in Porto."
        assert isinstance(completed, ChatCompleted)
        assert completed.message.content == "You live in Porto."
        assert completed.usage.prompt_tokens == 30
        assert memory.id in completed.memory_used.memory_ids
        assert "Gus lives in Porto" in llm.prompt_text()

        # The same turn from the blocking client, in a thread (the server runs on this loop).
        def sync_chat() -> list[ChatEvent]:
            with MemoriaClient(server.url, token=client.token) as blocking:
                stream = blocking.chat(
                    "And again?", conversation_id=started.conversation_id, model=MODEL
                )
                return list(stream)

        llm.script(Reply(tokens=["Still ", "Porto."]))
        again = await asyncio.to_thread(sync_chat)
        assert _text(again) == "Still Porto."
        assert isinstance(again[-1], ChatCompleted)
        conversation = await client.conversation(started.conversation_id)
        assert conversation is not None
        assert conversation.messages is not None
        assert [e.node.role for e in conversation.messages.edges] == ["user", "assistant"] * 2


async def test_a_failed_upstream_is_a_chat_failed_event(
    llm_server: RunningServer, fake_llm: tuple[FakeLLM, str]
) -> None:
    server = llm_server
    llm, llm_url = fake_llm
    await add_fake_provider(server.url, llm_url)
    llm.script(Reply(tokens=["half ", "a ", "reply"], fail_after=2))
    async with AsyncMemoriaClient(server.url) as client:
        await client.register("hal", "hal@example.com", "a-long-password")
        events = [e async for e in client.chat("go", model=MODEL)]
    failed = events[-1]
    assert isinstance(failed, ChatFailed)
    assert failed.code == "PROVIDER_UNAVAILABLE"
    assert failed.partial is not None
    assert failed.partial.incomplete


async def test_message_added_and_leaving_a_stream_early(server: RunningServer) -> None:
    async with AsyncMemoriaClient(server.url) as client:
        await client.register("ida", "ida@example.com", "a-long-password")
        conversation = await client.create_conversation("notes")
        async with client.message_added(conversation.id) as added:
            waiting = asyncio.ensure_future(anext(added))
            # The socket opens on the first read: post until the subscription sees one.
            while not waiting.done():
                await client.add_message(conversation.id, MessageInput(role="user", content="ping"))
                await asyncio.wait({waiting}, timeout=0.05)
            first = waiting.result()
        assert isinstance(first, Message)
        assert first.content == "ping"
        assert first.conversation_id == conversation.id

        # Built-in extractive model: no provider needed. Leaving after the first event
        # closes the socket; the client stays usable.
        async with client.chat("hello") as stream:
            assert isinstance(await anext(stream), ChatStarted)
        assert (await client.me()).username == "ida"


async def test_a_bad_token_is_rejected_on_connection_init(server: RunningServer) -> None:
    async with AsyncMemoriaClient(server.url, token="not-a-token") as client:
        with pytest.raises(UnauthenticatedError) as rejected:
            await anext(client.chat("hello"))
    assert rejected.value.code == "UNAUTHENTICATED"
    anonymous = AsyncMemoriaClient(server.url)
    try:
        with pytest.raises(UnauthenticatedError):
            await anext(anonymous.chat("hello"))
    finally:
        await anonymous.aclose()
