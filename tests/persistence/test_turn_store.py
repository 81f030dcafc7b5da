"""Embedded mode's in-process turn order on a real SQLite database: built on a field's first
search with context (SQL answers meanwhile), then giving what SQL gives, kept in step with
committed writes (new turns, rewritten times, deletions), never with rolled-back ones, and
left aside by a transaction that has written memories itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from engine_support import Engine, engine

from domain.memory_drafts import MemoryDraft, MemoryPatchInput
from domain.ports.memories import SearchContext

__all__ = ["engine"]  # the fixture, used by name

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

_DAY1 = datetime(2023, 5, 8, 13, 0, tzinfo=UTC)
_DAY2 = _DAY1 + timedelta(days=3)
_SPAN = 7 * 86400


async def _context(uow: Any, engine: Engine, ids: list[str], user: str | None = None) -> Any:
    return await uow.memory_query.search_context(
        field_id=engine.field_id,
        user_id=user or engine.actor.user_id,
        load=ids[:2],
        anchors=ids,
        steps=2,
        max_span_seconds=_SPAN,
        session_of=ids,
    )


async def _by_sql(engine: Engine, ids: list[str]) -> tuple[Any, Any]:
    """What the SQL reads give (the repository's separate statements, never the store)."""
    async with engine.runtime.deps.uow_factory() as uow:
        q, user = uow.memory_query, engine.actor.user_id
        around = await q.turns_around(
            field_id=engine.field_id, user_id=user, memory_ids=ids, steps=2, max_span_seconds=_SPAN
        )
        sessions = await q.sessions(field_id=engine.field_id, user_id=user, memory_ids=ids)
    return around, sessions


async def _from_store(engine: Engine, ids: list[str]) -> SearchContext:
    store = engine.runtime.db.turns
    async with engine.runtime.deps.uow_factory() as uow:
        await _context(uow, engine, ids)  # builds the store's copy if it has none
    await store.settled()
    assert store.get(engine.field_id) is not None
    async with engine.runtime.deps.uow_factory() as uow:
        return await _context(uow, engine, ids)


async def _turns(engine: Engine) -> list[str]:
    added = await engine.add(
        *[
            MemoryDraft(f"Alex: turn {i} of day one", kind="episode", occurred_at=_DAY1)
            for i in range(4)  # one shared timestamp: the stored order decides
        ],
        *[
            MemoryDraft(
                f"Sam: turn {i} of day two",
                kind="episode",
                occurred_at=_DAY2 + timedelta(minutes=i),
            )
            for i in range(3)
        ],
        MemoryDraft("Alex likes beagles", kind="fact", occurred_at=_DAY1),
    )
    return [m.id for m in added]


async def test_the_store_gives_what_sql_gives(engine: Engine) -> None:
    ids = await _turns(engine)
    asked = [*ids, "no-such-memory"]
    context = await _from_store(engine, asked)
    around, sessions = await _by_sql(engine, asked)
    assert context.around == around
    assert [m for m, _ in around[ids[5]]] == ids[3:7]  # the window crosses to day one
    assert context.sessions == sessions
    assert len(set(sessions.values())) == 2
    assert set(context.memories) == set(ids[:2])
    async with engine.runtime.deps.uow_factory() as uow:
        stranger = await _context(uow, engine, ids, user="someone-else")
    assert stranger == SearchContext(memories={}, around={}, sessions={})


async def test_committed_changes_reach_the_store_and_rollbacks_do_not(engine: Engine) -> None:
    ids = await _turns(engine)
    await _from_store(engine, ids)
    deps, actor = engine.runtime.deps, engine.actor
    (late,) = await engine.add(
        MemoryDraft("Sam: a turn sent late", kind="episode", occurred_at=_DAY1)
    )
    async with deps.uow_factory() as uow:  # never committed
        await engine.add_within(
            uow, MemoryDraft("Sam: rolled back", kind="episode", occurred_at=_DAY2)
        )
    async with deps.uow_factory() as uow:
        await deps.memories.update(
            uow=uow,
            actor=actor,
            memory_id=ids[0],
            patch=MemoryPatchInput(occurred_at=_DAY2 + timedelta(minutes=10)),
        )
        await deps.memories.delete(uow=uow, actor=actor, memory_id=ids[5])
        await uow.commit()
    asked = [*ids, late.id]
    context = await _from_store(engine, asked)
    around, sessions = await _by_sql(engine, asked)
    assert context.around == around
    assert context.sessions == sessions
    assert [m for m, _ in around[late.id]] == [ids[2], ids[3], late.id, ids[4], ids[6]]
    assert [m for m, _ in around[ids[0]]][-1] == ids[0]  # moved after day two's turns


async def test_changes_committed_while_building_are_not_lost(engine: Engine) -> None:
    ids = await _turns(engine)
    store = engine.runtime.db.turns
    store.build(engine.field_id)
    (during,) = await engine.add(
        MemoryDraft("Sam: sent while the order was read", kind="episode", occurred_at=_DAY2)
    )
    asked = [*ids, during.id]
    context = await _from_store(engine, asked)
    around, _ = await _by_sql(engine, asked)
    assert context.around == around
    assert during.id in context.around


async def test_a_transaction_that_wrote_turns_reads_them_from_sql(engine: Engine) -> None:
    ids = await _turns(engine)
    await _from_store(engine, ids)
    deps = engine.runtime.deps
    async with deps.uow_factory() as uow:
        (own,) = await engine.add_within(
            uow,
            MemoryDraft(
                "Alex: not committed yet", kind="episode", occurred_at=_DAY2 + timedelta(hours=1)
            ),
        )
        context = await _context(uow, engine, [ids[6], own.id])
    assert [m for m, _ in context.around[ids[6]]] == [ids[4], ids[5], ids[6], own.id]
