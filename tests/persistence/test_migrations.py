"""Migrations are one linear history that goes up, all the way down and up again, on both
backends: a deployment can always be upgraded (and rolled back) one step at a time."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
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
