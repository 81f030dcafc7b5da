"""Uploaded attachment bytes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from persistence.session import Transaction, upsert
from persistence.tables.conversations import blobs


class SqlBlobRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def put(self, *, user_id: str, sha256: str, data: bytes, at: datetime) -> None:
        stmt = upsert(self._tx, blobs).values(
            user_id=user_id, sha256=sha256, size=len(data), data=data, created_at=at
        )
        await self._tx.write(stmt.on_conflict_do_nothing(index_elements=["user_id", "sha256"]))

    async def get(self, *, user_id: str, sha256: str) -> bytes | None:
        stmt = select(blobs.c.data).where(blobs.c.user_id == user_id, blobs.c.sha256 == sha256)
        row = (await self._tx.read(stmt)).first()
        return bytes(row.data) if row else None
