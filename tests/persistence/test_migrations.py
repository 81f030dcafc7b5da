"""Migrations are one linear history that goes up, all the way down and up again, on both
backends: a deployment can always be upgraded (and rolled back) one step at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from persistence.migrate import MIGRATIONS, downgrade, upgrade
from persistence.tables.accounts import users
from persistence.tables.memories import memories, memory_fields


def test_history_is_linear() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert all(len(r._all_down_revisions) <= 1 for r in revisions)
    assert revisions[-1].down_revision is None


async def test_up_down_up(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:

        async def tables() -> set[str]:
            async with engine.connect() as conn:
                names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
            return set(names) - {"alembic_version"}

        await upgrade(engine)
        full = await tables()
        assert {"users", "memories", "conversations", "messages"} <= full
        await downgrade(engine, "base")
        assert not await tables()
        await upgrade(engine)
        assert await tables() == full
    finally:
        await engine.dispose()


async def test_database_from_the_branched_history_upgrades(database_url: str) -> None:
    """0002-0005 were once siblings of 0001: such a database records four heads."""
    engine = create_async_engine(database_url)
    try:
        await upgrade(engine, "0005")
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM alembic_version"))
            await conn.execute(
                text("INSERT INTO alembic_version VALUES (:v)"),
                [{"v": head} for head in ("0002", "0003", "0004", "0005")],
            )
        await upgrade(engine)
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert [r[0] for r in rows] == ["0012"]  # collapsed to 0005, then upgraded
    finally:
        await engine.dispose()


async def test_existing_turns_get_their_order_and_sessions(database_url: str) -> None:
    """0006 numbers the turns stored before it in time order, and splits sessions at long
    silences; facts get neither. (Only columns that exist at 0005 are written.)"""
    engine = create_async_engine(database_url)
    day = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    rows = [  # id, kind, minutes after the first turn
        ("m3", "episode", 2),
        ("m1", "episode", 0),
        ("m2", "message", 1),
        ("m4", "episode", 4 * 24 * 60),
        ("f1", "fact", 0),
    ]
    try:
        await upgrade(engine, "0005")
        async with engine.begin() as conn:
            await conn.execute(
                users.insert().values(
                    id="u",
                    username="u",
                    email="u@example.com",
                    password_hash="x",
                    role="user",
                    tier="free",
                    created_at=day,
                )
            )
            await conn.execute(
                memory_fields.insert().values(
                    id="f", user_id="u", name="f", embedder="e", dimension=3, created_at=day
                )
            )
            for memory_id, kind, minutes in rows:
                at = day + timedelta(minutes=minutes)
                await conn.execute(
                    memories.insert().values(
                        id=memory_id,
                        user_id="u",
                        field_id="f",
                        content=memory_id,
                        kind=kind,
                        source="api",
                        layer="long_term",
                        importance=0.5,
                        tags=[],
                        metadata={},
                        occurred_at=at,
                        created_at=at,
                        updated_at=at,
                        content_hash=memory_id,
                    )
                )
        await upgrade(engine)
        async with engine.connect() as conn:
            found = {
                r.id: (r.turn_seq, r.turn_session)
                for r in await conn.execute(text("SELECT id, turn_seq, turn_session FROM memories"))
            }
            counters = (
                await conn.execute(
                    text("SELECT turn_seq_next, session_seq_next FROM memory_fields")
                )
            ).one()
        assert found == {
            "m1": (1, 1),
            "m2": (2, 1),
            "m3": (3, 1),
            "m4": (4, 2),
            "f1": (None, None),
        }
        assert tuple(counters) == (4, 2)
    finally:
        await engine.dispose()
