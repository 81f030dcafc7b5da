"""``memoria export``: the database (or some users' part of it) as JSON Lines, streamed.

Rows are read in keyset pages (``id > last``, ordered by id) and written as they arrive, so
memory use does not grow with the data; every page reads the same snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.ports import Embedder
from memoria import __version__
from memoria.transfer.jsonl import dumps
from memoria.transfer.progress import progress_bar
from memoria.transfer.records import FORMAT, FORMAT_VERSION, KINDS, RecordKind, encode
from memoria.transfer.snapshot import snapshot
from persistence.database import Database
from persistence.tables.accounts import users

PAGE_SIZE = 1_000


class ExportError(Exception):
    """An export that cannot be made as asked (e.g. an unknown user)."""


def _owner(kind: RecordKind) -> Any:
    return kind.table.c.id if kind.table is users else kind.table.c.user_id


async def _user_ids(conn: AsyncConnection, usernames: Sequence[str]) -> list[str]:
    rows = await conn.execute(
        select(users.c.id, users.c.username).where(users.c.username.in_(list(usernames)))
    )
    found = {r.username: r.id for r in rows}
    missing = [name for name in usernames if name not in found]
    if missing:
        raise ExportError(f"no user named {', '.join(repr(m) for m in missing)}")
    return list(found.values())


async def _count(conn: AsyncConnection, kind: RecordKind, owners: list[str] | None) -> int:
    stmt = select(func.count()).select_from(kind.table)
    if owners is not None:
        stmt = stmt.where(_owner(kind).in_(owners))
    return int((await conn.execute(stmt)).scalar_one())


async def export_jsonl(
    db: Database,
    out: IO[bytes],
    *,
    embedder: Embedder,
    usernames: Sequence[str] = (),
    quiet: bool = False,
    page_size: int = PAGE_SIZE,
) -> dict[str, int]:
    """Write the export to ``out``; returns how many records of each type it holds."""
    counts = {kind.name: 0 for kind in KINDS}
    async with snapshot(db) as conn:
        owners = await _user_ids(conn, usernames) if usernames else None
        total = sum([await _count(conn, kind, owners) for kind in KINDS])
        header = {
            "type": "header",
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "memoria": __version__,
            "embedder": embedder.name,
            "exported_at": datetime.now(UTC).isoformat(),
            "users": sorted(usernames) or None,
        }
        out.write(dumps(header))
        field_embedders: dict[str, str] = {}  # one entry per field: small
        with progress_bar(total=total, unit="rec", description="export", quiet=quiet) as bar:
            for kind in KINDS:
                after: tuple[Any, ...] | None = None
                while True:
                    stmt = select(*kind.columns)
                    if after is not None:
                        stmt = stmt.where(tuple_(*kind.key) > tuple_(*after))
                    if owners is not None:
                        stmt = stmt.where(_owner(kind).in_(owners))
                    page = min(page_size, kind.page_size or page_size)
                    rows = list(await conn.execute(stmt.order_by(*kind.key).limit(page)))
                    if not rows:
                        break
                    chunk = bytearray()
                    for row in rows:
                        if kind.name == "field":
                            field_embedders[row.id] = row.embedder
                        made_by = (
                            field_embedders.get(row.field_id) if kind.name == "memory" else None
                        )
                        chunk += dumps(encode(kind, row, embedder=made_by))
                    out.write(chunk)
                    counts[kind.name] += len(rows)
                    bar.update(len(rows))
                    after = tuple(getattr(rows[-1], c.name) for c in kind.key)
        out.write(dumps({"type": "end", "counts": counts}))
    return counts
