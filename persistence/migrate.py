"""Run Alembic migrations programmatically (``memoria serve`` does this on start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _collapse_branch_heads(connection: Connection) -> None:
    """Databases made while 0002-0005 were sibling branches of 0001 record several heads.
    The history is linear now and those revisions are consecutive, so the newest recorded
    one implies the others: keep only it, or alembic refuses the overlapping heads."""
    if not inspect(connection).has_table("alembic_version"):
        return
    recorded = [r[0] for r in connection.execute(text("SELECT version_num FROM alembic_version"))]
    if len(recorded) > 1 and all(r.isdigit() for r in recorded):
        newest = max(recorded, key=int)
        connection.execute(
            text("DELETE FROM alembic_version WHERE version_num <> :v"), {"v": newest}
        )


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_collapse_branch_heads)
        await conn.run_sync(lambda sync: command.upgrade(_config(sync), revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(_config(sync), revision))
