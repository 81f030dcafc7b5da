"""Which schema revision the database is at, and which one this code needs (Alembic)."""

from __future__ import annotations

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from memoria.cli.common import CliError
from persistence.migrate import MIGRATIONS


def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None  # the history is linear and never empty
    return head


def _current(connection: Connection) -> str | None:
    heads = MigrationContext.configure(connection).get_current_heads()
    if not heads:
        return None
    # A database from when 0002-0005 were sibling branches records several: the newest
    # implies the others (see persistence.migrate).
    return max(heads, key=lambda r: (r.isdigit(), int(r) if r.isdigit() else 0, r))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's revision; None for a database without Memoria's schema."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


def is_known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def describe_gap(current: str | None, head: str) -> str | None:
    """Why the schema is not usable by this code, or None when it is current."""
    if current == head:
        return None
    if current is None:
        return f"the database has no schema yet (this version needs {head})"
    if not is_known(current):
        return (
            f"the database is at revision {current}, unknown to this version "
            f"(it needs {head}): was it migrated by a newer release?"
        )
    return f"the database is at revision {current}, this version needs {head}"


async def require_current_schema(engine: AsyncEngine) -> None:
    gap = describe_gap(await current_revision(engine), head_revision())
    if gap is not None:
        raise CliError(f"{gap}: run `memoria migrate` first")
