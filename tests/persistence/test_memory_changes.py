"""PostgreSQL mode's in-process vector copies: two runtimes (as two processes would have) on
one real PostgreSQL database; what one commits reaches the other's copy through
``MEMORIES_CHANGED``, and a process that does not hear the others searches with pgvector."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from conftest import PgServer
from process_pair import fanout, listening, migrated_pair, pg_settings
from sqlalchemy import event

from domain.entities import Actor, Memory, Role
from domain.memory_drafts import MemoryDraft, MemoryPatchInput
from domain.services.user_admin import UserAdminService
from memoria.bootstrap import migrate
from memoria.runtime import Runtime, build_runtime
from persistence.copied_vectors import CopiedVectorIndex
from persistence.memory_changes import change_notes
from persistence.pgvector_index import PgVectorIndex
from providers.embedders.hashing import HashingEmbedder

EMBEDDER = HashingEmbedder()


def test_a_transactions_changes_are_sent_in_notes_under_the_payload_limit() -> None:
    upserts = [("f1", f"{i:036d}", None) for i in range(400)]
    deletes = [("f1", "gone-1"), ("f2", "gone-2")]
    notes = [json.loads(n) for n in change_notes("me", upserts, deletes)]
    assert all(len(json.dumps(n)) < 8000 for n in notes)
    assert all(n["o"] == "me" for n in notes)
    sent = [m for n in notes if n["f"] == "f1" for m in n["u"]]
    assert sent == [m for _, m, _ in upserts]  # each once, in order
    assert [m for n in notes for m in n["d"]] == ["gone-1", "gone-2"]
    assert {n["f"] for n in notes if "gone-2" in n["d"]} == {"f2"}


def test_a_reembedded_field_or_a_huge_change_is_sent_as_drop_the_copy() -> None:
    huge = [("big", f"m{i}", None) for i in range(20_001)]
    notes = [json.loads(n) for n in change_notes("me", huge, [], dropped={"moved"})]
    assert notes == [{"o": "me", "f": "big", "x": True}, {"o": "me", "f": "moved", "x": True}]


@dataclass
class Pair:
    a: Runtime
    b: Runtime
    actor: Actor
    field_id: str

    async def add(self, runtime: Runtime, content: str) -> Memory:
        async with runtime.deps.uow_factory() as uow:
            (memory,) = await runtime.deps.memories.add_many(
                uow=uow,
                actor=self.actor,
                field_id=self.field_id,
                drafts=[MemoryDraft(content=content)],
            )
            await uow.commit()
        return memory

    async def fill(self, runtime: Runtime, word: str) -> None:
        """250 memories holding ``word``: past the size keyword postings are kept from."""
        async with runtime.deps.uow_factory() as uow:
            await runtime.deps.memories.add_many(
                uow=uow,
                actor=self.actor,
                field_id=self.field_id,
                drafts=[MemoryDraft(content=f"Note {i} about the {word}") for i in range(250)],
            )
            await uow.commit()

    async def patch(self, runtime: Runtime, memory_id: str, patch: MemoryPatchInput) -> None:
        async with runtime.deps.uow_factory() as uow:
            await runtime.deps.memories.update(
                uow=uow, actor=self.actor, memory_id=memory_id, patch=patch
            )
            await uow.commit()

    async def nearest(self, runtime: Runtime, text: str) -> list[str]:
        """The field's ids nearest ``text``'s vector, as ``runtime``'s search finds them."""
        (vector,) = await EMBEDDER.embed([text])
        async with runtime.deps.uow_factory() as uow:
            hits = await uow.vectors.search(field_id=self.field_id, vector=vector, k=3)
        return [memory_id for memory_id, _ in hits]


@contextlib.contextmanager
def statements_of(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL statements ``runtime`` sends while the block runs."""
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    engines = [runtime.db.engine.sync_engine]
    if runtime.db.beside is not None:
        engines.append(runtime.db.beside.engine.sync_engine)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Notes cross processes in milliseconds; a few seconds is a generous bound."""
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the other process's change never reached this one")


@pytest.fixture
async def pair(pg_server: PgServer, tmp_path: Path) -> AsyncIterator[Pair]:
    a, b = await migrated_pair(pg_settings(pg_server, tmp_path), EMBEDDER)
    deps = a.deps
    async with deps.uow_factory() as uow:
        result = await deps.auth.register(
            uow=uow, username="alice", email="alice@example.com", password="correct-horse-1"
        )
        actor = Actor(user_id=result.user.id, role=Role.USER, via="jwt")
        field = await deps.fields.create(uow=uow, actor=actor, name="notes")
        await uow.commit()
    async with listening(a, b):
        yield Pair(a, b, actor, field.id)


async def test_what_one_process_writes_reaches_the_others_copy(pair: Pair) -> None:
    async with asyncio.timeout(60):  # a hang fails here, with its traceback
        kept = await pair.add(pair.a, "The lighthouse keeper feeds seventeen cats")
        async with pair.a.deps.uow_factory() as uow:
            assert isinstance(uow.vectors, CopiedVectorIndex)  # A searches its own copy...
        store = pair.a.db.faiss
        assert store is not None
        # ...once loaded: the first search is pgvector's, and starts the load.
        assert await pair.nearest(pair.a, "lighthouse keeper cats") == [kept.id]
        await store.settled()
        assert store.loaded(pair.field_id)
        assert await pair.nearest(pair.a, "lighthouse keeper cats") == [kept.id]

        added = await pair.add(pair.b, "Our allotment grows purple carrots every June")

        async def a_finds_it() -> bool:
            return (await pair.nearest(pair.a, "purple carrots allotment"))[:1] == [added.id]

        await eventually(a_finds_it)

        async with pair.b.deps.uow_factory() as uow:  # B rewrites it: A's copy follows
            await pair.b.deps.memories.update(
                uow=uow,
                actor=pair.actor,
                memory_id=added.id,
                patch=MemoryPatchInput(content="The harbour ferry leaves at dawn on Sundays"),
            )
            await uow.commit()

        async def a_finds_the_new_words() -> bool:
            found = await pair.nearest(pair.a, "harbour ferry dawn Sundays")
            return found[:1] == [added.id]

        await eventually(a_finds_the_new_words)

        async with pair.b.deps.uow_factory() as uow:  # B deletes it: gone from A's copy
            await pair.b.deps.memories.delete(uow=uow, actor=pair.actor, memory_id=added.id)
            await uow.commit()

        async def a_lost_it() -> bool:
            return added.id not in await pair.nearest(pair.a, "harbour ferry dawn Sundays")

        await eventually(a_lost_it)
        assert await pair.nearest(pair.a, "lighthouse keeper cats") == [kept.id]


async def test_a_process_that_does_not_hear_the_others_searches_the_database(
    pair: Pair,
) -> None:
    async with asyncio.timeout(60):
        await pair.add(pair.a, "The lighthouse keeper feeds seventeen cats")
        await pair.nearest(pair.a, "lighthouse")  # A's copy of the field is loaded
        assert pair.a.db.faiss is not None
        await pair.a.db.faiss.settled()
        await fanout(pair.a).aclose()  # as if A's listening connection dropped
        assert not pair.a.db.copies_in_step
        added = await pair.add(pair.b, "Our allotment grows purple carrots every June")
        async with pair.a.deps.uow_factory() as uow:
            assert isinstance(uow.vectors, PgVectorIndex)
        # Unheard, yet found at once: pgvector reads the rows themselves.
        assert (await pair.nearest(pair.a, "purple carrots allotment"))[:1] == [added.id]
        fanout(pair.a).start()
        await asyncio.wait_for(fanout(pair.a).listening.wait(), 5)
        # Listening again, A starts its copies over: what it missed is in them.
        assert pair.a.db.faiss is not None
        assert pair.a.db.faiss.loaded(pair.field_id) is None
        assert (await pair.nearest(pair.a, "purple carrots allotment"))[:1] == [added.id]


async def test_a_field_switched_to_new_vectors_is_loaded_again_everywhere(pair: Pair) -> None:
    async with asyncio.timeout(60):
        await pair.add(pair.a, "The lighthouse keeper feeds seventeen cats")
        await pair.nearest(pair.a, "lighthouse")
        assert pair.a.db.faiss is not None
        store = pair.a.db.faiss
        await store.settled()
        assert store.loaded(pair.field_id) is not None
        async with pair.b.deps.uow_factory() as uow:  # the last step of re-embedding
            await uow.maintenance.set_field_embedder(
                pair.field_id, embedder=EMBEDDER.name, dimension=EMBEDDER.dimension
            )
            await uow.commit()

        async def dropped() -> bool:
            return store.loaded(pair.field_id) is None

        await eventually(dropped)


async def test_a_deleted_users_fields_leave_every_processs_copies(pair: Pair) -> None:
    async with asyncio.timeout(60):
        for _ in range(2):  # the keyword postings are kept from 200 memories up
            async with pair.a.deps.uow_factory() as uow:
                await pair.a.deps.memories.add_many(
                    uow=uow,
                    actor=pair.actor,
                    field_id=pair.field_id,
                    drafts=[
                        MemoryDraft(content=f"Lighthouse note {i} {uuid4().hex}")
                        for i in range(110)
                    ],
                )
                await uow.commit()
        stores = [(r.db.faiss, r.db.terms) for r in (pair.a, pair.b)]
        for runtime, (faiss, terms) in zip((pair.a, pair.b), stores, strict=True):
            async with runtime.deps.uow_factory() as uow:
                await runtime.deps.memories.search(
                    uow=uow,
                    actor=pair.actor,
                    field_ids=[pair.field_id],
                    query="lighthouse",
                    top_k=3,
                )
            assert faiss is not None
            assert terms is not None
            await faiss.settled()
            await terms.settled()
            assert faiss.loaded(pair.field_id) is not None
            assert terms.get(pair.field_id) is not None
        async with pair.b.deps.uow_factory() as uow:  # as `memoria users delete` does
            deleted = await UserAdminService().delete(uow=uow, username="alice")
            await uow.commit()
        assert deleted.field_ids == [pair.field_id]

        async def gone_everywhere() -> bool:
            return all(
                faiss is not None
                and faiss.loaded(pair.field_id) is None
                and terms is not None
                and terms.get(pair.field_id) is None
                for faiss, terms in stores
            )

        await eventually(gone_everywhere)


async def test_vectors_searched_in_the_database_keep_no_copy(
    pg_server: PgServer, tmp_path: Path
) -> None:
    settings = pg_settings(pg_server, tmp_path, vector_search="database")
    runtime = build_runtime(settings, embedder=EMBEDDER)
    await asyncio.wait_for(migrate(runtime.db), 60)
    async with listening(runtime):
        assert runtime.db.faiss is None
        async with runtime.deps.uow_factory() as uow:
            assert isinstance(uow.vectors, PgVectorIndex)  # listening or not


async def test_another_process_words_reach_this_ones_keyword_postings(pair: Pair) -> None:
    async with asyncio.timeout(60):
        await pair.fill(pair.a, "garden")

        async def a_finds(word: str) -> list[str]:
            async with pair.a.deps.uow_factory() as uow:
                hits = await uow.lexical.search(field_id=pair.field_id, terms=[word], k=5)
            return [memory_id for memory_id, _ in hits]

        assert len(await a_finds("garden")) == 5  # the statement, which starts the build
        terms = pair.a.db.terms
        assert terms is not None
        await terms.settled()
        kept = terms.get(pair.field_id)
        assert kept is not None
        assert len(kept) == 250

        added = await pair.add(pair.b, "The zeppelin hangar smells of varnish")

        async def a_finds_the_zeppelin() -> bool:
            return await a_finds("zeppelin") == [added.id]

        await eventually(a_finds_the_zeppelin)
        assert terms.get(pair.field_id) is kept  # answered from the postings, kept in step
        async with pair.b.deps.uow_factory() as uow:
            await pair.b.deps.memories.delete(uow=uow, actor=pair.actor, memory_id=added.id)
            await uow.commit()

        async def a_lost_it() -> bool:
            return await a_finds("zeppelin") == []

        await eventually(a_lost_it)
        async with pair.a.deps.uow_factory() as uow:  # not committed: only this one sees it
            (draft,) = await pair.a.deps.memories.add_many(
                uow=uow,
                actor=pair.actor,
                field_id=pair.field_id,
                drafts=[MemoryDraft(content="A zeppelin moored over the allotments")],
            )
            hits = await uow.lexical.search(field_id=pair.field_id, terms=["zeppelin"], k=5)
            assert [memory_id for memory_id, _ in hits] == [draft.id]
        assert await a_finds("zeppelin") == []  # rolled back

        async with pair.a.deps.uow_factory() as uow:  # wrote a conversation, no memory
            await pair.a.deps.conversations.create(uow=uow, actor=pair.actor, title="talk")
            with statements_of(pair.a) as statements:
                hits = await uow.lexical.search(field_id=pair.field_id, terms=["garden"], k=5)
        assert len(hits) == 5
        assert statements == []  # from the postings: no statement


async def test_a_note_reads_its_rows_once_for_the_vectors_and_the_postings(pair: Pair) -> None:
    """A field whose vectors and keyword postings both live in A: B's write reaches both
    through one read of the rows it names (the vectors used to be read on their own)."""
    async with asyncio.timeout(60):
        await pair.fill(pair.a, "orchard")
        async with pair.a.deps.uow_factory() as uow:
            await uow.lexical.search(field_id=pair.field_id, terms=["orchard"], k=5)
        await pair.nearest(pair.a, "orchard")
        terms, store = pair.a.db.terms, pair.a.db.faiss
        assert terms is not None
        assert store is not None
        await terms.settled()
        await store.settled()
        assert terms.get(pair.field_id) is not None
        assert store.loaded(pair.field_id)

        with statements_of(pair.a) as statements:
            added = await pair.add(pair.b, "The zeppelin hangar smells of varnish")

            async def a_has_it_in_both() -> bool:
                async with pair.a.deps.uow_factory() as uow:
                    words = await uow.lexical.search(
                        field_id=pair.field_id, terms=["zeppelin"], k=5
                    )
                near = await pair.nearest(pair.a, "The zeppelin hangar smells of varnish")
                return [m for m, _ in words] == [added.id] and near[:1] == [added.id]

            await eventually(a_has_it_in_both)
        reads = [s for s in statements if "FROM memories" in s and "memories.id IN" in s]
        assert len(reads) == 1, reads
        assert "memories.content" in reads[0]
        assert "embedding" in reads[0]


async def test_the_turn_order_in_process_answers_as_sql_and_follows_other_processes(
    pair: Pair,
) -> None:
    async with asyncio.timeout(60):
        start = datetime(2025, 5, 1, 18, 0, tzinfo=UTC)
        topics = ["sailing", "violin", "marathon", "pottery", "chess"]
        drafts = [
            MemoryDraft(
                f"{['Ana', 'Ben'][i % 2]}: shall we talk about {topics[i % 5]} again, {i}?",
                kind="episode",
                occurred_at=start + timedelta(minutes=i if i < 20 else 600 + i),
            )
            for i in range(40)
        ]
        async with pair.a.deps.uow_factory() as uow:
            added = await pair.a.deps.memories.add_many(
                uow=uow, actor=pair.actor, field_id=pair.field_id, drafts=drafts
            )
            await uow.commit()
        drafts_ids = [memory.id for memory in added]

        async def search() -> list[tuple[str, float]]:
            deps = pair.a.deps
            async with deps.uow_factory() as uow:
                hits = await deps.memories.search(
                    uow=uow, actor=pair.actor, field_ids=[pair.field_id], query="the violin"
                )
            return [(hit.memory.id, round(hit.score, 6)) for hit in hits]

        turns = pair.a.db.turns
        assert turns is not None
        with statements_of(pair.a) as before:
            from_sql = await search()  # and the order is built meanwhile
        await turns.settled()
        assert turns.get(pair.field_id) is not None
        with statements_of(pair.a) as after:
            assert await search() == from_sql  # the same context...
        assert len(after) < len(before)  # ...without the statement that read it

        # B writes: two turns in the silence that join the two sessions (relabelling
        # turns the write did not touch), a turn moved, a rewritten text, a deletion that
        # splits the session again. A's turn order follows each, and stays the database's.
        deps = pair.b.deps
        async with deps.uow_factory() as uow:
            (bridge, _) = await deps.memories.add_many(
                uow=uow,
                actor=pair.actor,
                field_id=pair.field_id,
                drafts=[
                    MemoryDraft(
                        f"Ben: and pottery on Sunday, {minutes}?",
                        kind="episode",
                        occurred_at=start + timedelta(minutes=minutes),
                    )
                    for minutes in (200, 420)  # each within four hours of the next
                ],
            )
            await uow.commit()
        kept = turns.get(pair.field_id)
        assert kept is not None

        async def in_step() -> bool:
            fresh = await turns._load(pair.field_id)  # the database's order, read now
            return kept._turns == fresh._turns and kept._ids == fresh._ids

        await eventually(in_step)
        first, last = drafts_ids[0], drafts_ids[39]
        assert kept.sessions([first])[first] == kept.sessions([last])[last]  # joined
        for memory_id, patch in (
            (drafts_ids[30], MemoryPatchInput(occurred_at=start + timedelta(minutes=700))),
            (drafts_ids[5], MemoryPatchInput(content="Ana: the violin, at last")),
        ):
            await pair.patch(pair.b, memory_id, patch)
            await eventually(in_step)
        async with deps.uow_factory() as uow:
            await deps.memories.delete(uow=uow, actor=pair.actor, memory_id=bridge.id)
            await uow.commit()
        await eventually(in_step)
        assert kept.sessions([first])[first] != kept.sessions([last])[last]  # split
        assert turns.get(pair.field_id) is kept  # followed, never read again
        with statements_of(pair.a) as followed:
            from_copy = await search()
        turns.forget(pair.field_id)
        with statements_of(pair.a) as read:
            assert await search() == from_copy  # as SQL answers
        assert len(followed) < len(read)
