"""What every operator command shares: settings, errors, the runtime and schema checks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from memoria.settings import Settings

if TYPE_CHECKING:  # the runtime's imports are heavy; `memoria --help` does not need them
    from memoria.runtime import Runtime

T = TypeVar("T")

USAGE = 2  # bad arguments or settings: the command was never attempted
FAILURE = 1  # the command ran and could not do what was asked


class CliError(Exception):
    """A failure to report on one line of standard error, with the exit status to use."""

    def __init__(self, message: str, status: int = FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def load_settings(**overrides: object) -> Settings:
    """The validated settings ``memoria serve`` would use (MEMORIA_DATA_DIR, DATABASE_URL...)."""
    return Settings.from_env(None, **overrides)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """The server's runtime (same services, same unit of work), on a current schema.

    Background workers are never started here; only the services are used."""
    from memoria.cli.revisions import require_current_schema
    from memoria.runtime import build_runtime

    runtime = build_runtime(settings)
    try:
        await require_reachable(runtime.db.engine, settings)
        await require_current_schema(runtime.db.engine)
        yield runtime
    finally:
        await runtime.aclose()


async def require_reachable(engine: AsyncEngine, settings: Settings) -> None:
    """Fail with where the database is (never its password) if it cannot be reached."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, SQLAlchemyError) as exc:
        where = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        raise CliError(
            f"cannot reach the database {where}: {type(reason).__name__}: {reason}"
        ) from None


def when(moment: datetime | None) -> str:
    """A timestamp as an operator reads it in a table: UTC, to the minute."""
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns separated by two spaces, header first."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
