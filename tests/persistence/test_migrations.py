"""Migrations are one linear history that goes up, all the way down and up again, on both
backends: a deployment can always be upgraded (and rolled back) one step at a time."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from persistence.migrate import MIGRATIONS, downgrade, upgrade


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
        assert [r[0] for r in rows] == ["0006"]  # collapsed to 0005, then upgraded
    finally:
        await engine.dispose()
