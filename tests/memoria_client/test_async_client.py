"""The async client against the real server (SQLite and PostgreSQL): memories, search,
conversations, context, API keys, statistics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import RunningServer

from memoria_client import (
    AsyncMemoriaClient,
    AttachmentInput,
    MemoryFilter,
    MemoryInput,
    MemoryKind,
    MemoryLayer,
    MemoryPatch,
    MessageInput,
    NotFoundError,
    UnauthenticatedError,
)


async def test_memories_are_added_searched_updated_and_deleted(server: RunningServer) -> None:
    async with AsyncMemoriaClient(server.url) as client:
        auth = await client.register("dana", "dana@example.com", "a-long-password")
        assert auth.token_type.lower() == "bearer"
        assert (await client.me()).username == "dana"
        field = await client.create_memory_field("life")
        at = datetime(2026, 5, 8, 13, 0, tzinfo=UTC)
        added = await client.add_memories(
            field.id,
            [
                MemoryInput(content="I adopted a grey cat called Miso", tags=["pets"]),
                MemoryInput(
                    content="Do you still paint?",
                    kind=MemoryKind.EPISODE,
                    speaker="Sam",
                    occurred_at=at,
                ),
                MemoryInput(
                    content="Every Sunday, mostly lakes",
                    kind=MemoryKind.EPISODE,
                    speaker="Dana",
                    occurred_at=at,
                ),
            ],
        )
        assert [m.kind for m in added] == [MemoryKind.FACT, MemoryKind.EPISODE, MemoryKind.EPISODE]
        assert added[1].speaker == "Sam"
        assert added[1].occurred_at == at
        assert added[0].field is not None
        assert added[0].field.name == "life"
        assert isinstance(added[0].layer, MemoryLayer)
        one = await client.add_memory(
            field.id, MemoryInput(content="Dana lives in Porto", metadata={"city": "Porto"})
        )
        assert one.metadata == {"city": "Porto"}

        hits = await client.search_memories("what is my pet called?", field_id=field.id)
        assert hits[0].memory.content == "I adopted a grey cat called Miso"
        assert hits[0].score > 0
        assert hits[0].reason
        everywhere = await client.search_memories(
            "Porto", top_k=2, filter=MemoryFilter(metadata={"city": "Porto"})
        )
        assert [h.memory.id for h in everywhere] == [one.id]
        by_name = await client.search_memories(
            "cat", namespace="life", filter=MemoryFilter(tags=["pets"])
        )
        assert [h.memory.id for h in by_name] == [added[0].id]

        updated = await client.update_memory(
            one.id, MemoryPatch(content="Dana lives in Lisbon", importance=0.9)
        )
        assert (updated.content, updated.importance) == ("Dana lives in Lisbon", 0.9)
        history = await client.memory_history(one.id)
        assert any(c.new_content == "Dana lives in Lisbon" for c in history)
        assert await client.delete_memory(one.id) is True
        with pytest.raises(NotFoundError) as gone:
            await client.memory(one.id)
        assert gone.value.code == "NOT_FOUND"
        assert gone.value.path == ("memory",)
        assert (await client.memory(added[0].id)) == added[0]

        fields = await client.memory_fields()
        assert [(f.id, f.memory_count) for f in fields] == [(field.id, 3)]
        assert (await client.memory_field(field.id)) is not None
        stats = await client.stats()
        assert stats.total_memories == 3
        assert {e.key: e.count for e in stats.by_kind} == {"fact": 1, "episode": 2}
        assert (await client.health()).status == "healthy"


async def test_conversations_messages_attachments_and_context(server: RunningServer) -> None:
    async with AsyncMemoriaClient(server.url) as client:
        await client.register("erin", "erin@example.com", "a-long-password")
        field = await client.create_memory_field("work")
        await client.add_memory(field.id, MemoryInput(content="The launch is on Friday"))
        conversation = await client.create_conversation("planning", tags=["q3"], field_id=field.id)
        assert (conversation.title, conversation.tags, conversation.message_count) == (
            "planning",
            ["q3"],
            0,
        )
        first = await client.add_message(
            conversation.id, MessageInput(role="user", content="When is the launch?")
        )
        await client.add_message(
            conversation.id, MessageInput(role="assistant", content="On Friday.")
        )
        attachment = await client.add_attachment(
            first.id, AttachmentInput(file_type="pdf", size=12)
        )
        assert attachment.message_id == first.id

        page = await client.conversation(conversation.id, messages_first=1)
        assert page is not None
        assert page.messages is not None
        assert [e.node.content for e in page.messages.edges] == ["When is the launch?"]
        assert page.messages.page_info.has_next_page
        assert page.messages.total_count == 2
        rest = await client.conversation(
            conversation.id, messages_after=page.messages.page_info.end_cursor
        )
        assert rest is not None
        assert rest.messages is not None
        assert [e.node.role for e in rest.messages.edges] == ["assistant"]
        assert [a.file_type for a in rest.attachments] == ["pdf"]

        listed = await client.conversations(first=5)
        assert listed.total_count == 1
        assert listed.edges[0].node.id == conversation.id
        assert listed.edges[0].node.messages is None  # selected only where a query returns it

        pack = await client.context(conversation.id, "when is the launch?", max_tokens=500)
        assert pack.max_tokens == 500
        assert pack.tokens <= 500
        assert any("Friday" in item.text for item in pack.items)


async def test_api_keys_authenticate_until_revoked(server: RunningServer) -> None:
    async with AsyncMemoriaClient(server.url) as owner:
        await owner.register("fay", "fay@example.com", "a-long-password")
        created = await owner.create_api_key("laptop")
        assert created.api_key.name == "laptop"
        assert not created.api_key.revoked
        assert created.key.startswith(created.api_key.prefix)
        async with AsyncMemoriaClient(server.url, api_key=created.key) as keyed:
            assert (await keyed.me()).username == "fay"
            assert [k.id for k in await owner.api_keys()] == [created.api_key.id]
            assert await owner.revoke_api_key(created.api_key.id) is True
            with pytest.raises(UnauthenticatedError) as revoked:
                await keyed.me()
            assert revoked.value.code == "UNAUTHENTICATED"
        assert (await owner.api_keys())[0].revoked is True
        again = await owner.login("fay", "a-long-password")
        assert again.user.username == "fay"
        assert owner.token == again.access_token
