"""Message events cross processes through PostgreSQL LISTEN/NOTIFY: two runtimes (as two
processes would have) on one real PostgreSQL database, each with its own in-process bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import PgServer
from process_pair import fanout, listening, migrated_pair, pg_settings
from sqlalchemy import text

from domain.entities import Actor, Role
from domain.events import DomainEvent
from domain.memory_drafts import MemoryDraft
from domain.services.llm_admin import CATALOG_TTL_SECONDS, ModelDraft, ProviderDraft
from memoria.runtime import Runtime
from persistence.event_fanout import APPLICATION_NAME
from providers.embedders.hashing import HashingEmbedder


@dataclass
class Pair:
    a: Runtime
    b: Runtime
    actor: Actor
    conversation_id: str

    async def say(self, runtime: Runtime, content: str) -> str:
        deps = runtime.deps
        async with deps.uow_factory() as uow:
            message = await deps.conversations.add_message(
                uow=uow,
                actor=self.actor,
                conversation_id=self.conversation_id,
                role="user",
                content=content,
            )
            await uow.commit()
        return message.id


async def next_event(sub: Any) -> DomainEvent:
    event: DomainEvent = await asyncio.wait_for(sub.__anext__(), 5)
    return event


@pytest.fixture
async def pair(pg_server: PgServer, tmp_path: Path) -> AsyncIterator[Pair]:
    a, b = await migrated_pair(pg_settings(pg_server, tmp_path), HashingEmbedder())
    deps = a.deps
    async with deps.uow_factory() as uow:
        result = await deps.auth.register(
            uow=uow, username="alice", email="alice@example.com", password="correct-horse-1"
        )
        actor = Actor(user_id=result.user.id, role=Role.USER, via="jwt")
        conversation = await deps.conversations.create(uow=uow, actor=actor, title="talk")
        await uow.commit()
    async with listening(a, b):
        yield Pair(a, b, actor, conversation.id)


def in_conversation(pair: Pair) -> Any:
    return pair.b.deps.events.subscribe(
        user_id=pair.actor.user_id,
        predicate=lambda e: e.payload.get("conversation_id") == pair.conversation_id,
    )


async def test_a_message_stored_by_one_process_reaches_the_others_subscribers(
    pair: Pair,
) -> None:
    async with asyncio.timeout(30):  # a hang fails here, with its traceback
        async with (
            in_conversation(pair) as on_b,
            pair.a.deps.events.subscribe(
                user_id=pair.actor.user_id, predicate=lambda e: True
            ) as on_a,
        ):
            message_id = await pair.say(pair.a, "hello from A")
            remote = await next_event(on_b)
            assert remote.payload["id"] == message_id
            assert remote.payload["content"] == "hello from A"  # read from the row, not the NOTIFY
            local = await next_event(on_a)
            assert local.payload["id"] == message_id
            # A ignores its own notification: the message reaches A's subscriber once.
            second = await pair.say(pair.b, "and back from B")
            assert (await next_event(on_a)).payload["id"] == second
            assert on_a.queue.empty()


async def test_a_listener_that_was_away_catches_up_from_the_database(pair: Pair) -> None:
    async with asyncio.timeout(30):  # a hang fails here, with its traceback
        async with in_conversation(pair) as on_b:
            await fanout(pair.b).aclose()  # B stops listening, as if its connection dropped
            missed = await pair.say(pair.a, "said while B was away")
            fanout(pair.b).start()
            assert (await next_event(on_b)).payload["id"] == missed
            after = await pair.say(pair.a, "said after B came back")
            assert (await next_event(on_b)).payload["id"] == after
            assert on_b.queue.empty()  # the caught-up message was not delivered twice


async def test_a_killed_listen_connection_reconnects(pair: Pair) -> None:
    async with asyncio.timeout(30):  # a hang fails here, with its traceback
        async with in_conversation(pair) as on_b:
            async with pair.a.db.engine.connect() as conn:
                killed = await conn.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = :name"
                    ),
                    {"name": APPLICATION_NAME},
                )
            assert killed == 2  # A's and B's listeners
            for _ in range(100):
                if fanout(pair.b).reconnects and fanout(pair.b).listening.is_set():
                    break
                await asyncio.sleep(0.05)
            assert fanout(pair.b).reconnects >= 1
            message_id = await pair.say(pair.a, "after the reconnect")
            assert (await next_event(on_b)).payload["id"] == message_id


async def test_a_catalog_change_in_one_process_is_seen_at_once_by_the_others(pair: Pair) -> None:
    """The LLM catalog is cached for a few seconds per process; a provider added through A
    reaches B's next turn at once, through the same notifications as messages."""
    admin = Actor(user_id=pair.actor.user_id, role=Role.ADMIN, via="jwt")
    async with asyncio.timeout(30):  # a hang fails here, with its traceback
        async with pair.b.deps.uow_factory() as uow:
            before = await pair.b.deps.llm.resolve(uow=uow, actor=pair.actor, model=None)
        assert before.model.name != "house-model"  # cached by B from now on
        async with pair.a.deps.uow_factory() as uow:
            await pair.a.deps.llm.create_provider(
                uow=uow,
                actor=admin,
                draft=ProviderDraft(
                    name="house", kind="anthropic", models=[ModelDraft(name="house-model")]
                ),
            )
            await uow.commit()
        started = time.monotonic()
        for _ in range(100):
            async with pair.b.deps.uow_factory() as uow:
                after = await pair.b.deps.llm.resolve(uow=uow, actor=pair.actor, model=None)
            if after.model.name == "house-model":
                break
            await asyncio.sleep(0.02)
        assert after.model.name == "house-model"
        assert time.monotonic() - started < CATALOG_TTL_SECONDS  # not by the cache's expiry


async def test_a_memory_written_by_one_process_drops_what_the_others_kept_of_its_field(
    pair: Pair,
) -> None:
    """Field sizes, term counts and vector plans are kept per process between searches; a
    write through A drops B's for that field at once (not at their expiry), and B keeps what
    it knows of other fields. A reconnect drops everything: what it missed is unknown."""
    caches = (pair.b.db.field_rows, pair.b.db.term_counts, pair.b.db.vector_paths)

    def keep(field_id: str) -> None:
        pair.b.db.field_rows.put(field_id, 5_000)
        pair.b.db.term_counts.put(field_id, {"piano": 40})
        pair.b.db.vector_paths.put(field_id, True)

    def kept(field_id: str) -> list[object]:
        return [cache.get(field_id) for cache in caches]

    deps = pair.a.deps
    async with asyncio.timeout(30):  # a hang fails here, with its traceback
        async with deps.uow_factory() as uow:
            written = await deps.fields.create(uow=uow, actor=pair.actor, name="notes")
            other = await deps.fields.create(uow=uow, actor=pair.actor, name="other")
            await uow.commit()
        keep(written.id)
        keep(other.id)
        async with deps.uow_factory() as uow:
            await deps.memories.add_many(
                uow=uow,
                actor=pair.actor,
                field_id=written.id,
                drafts=[MemoryDraft("The piano tuner comes on Tuesday")],
            )
            await uow.commit()
        started = time.monotonic()
        while kept(written.id) != [None, None, None]:
            assert time.monotonic() - started < 5, "B still keeps the written field's facts"
            await asyncio.sleep(0.01)
        assert kept(other.id) == [5_000, {"piano": 40}, True]
        await fanout(pair.b).aclose()  # B's listener goes away, and comes back
        fanout(pair.b).start()
        await asyncio.wait_for(fanout(pair.b).listening.wait(), 5)
        assert kept(other.id) == [None, None, None]
