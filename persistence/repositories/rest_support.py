"""Repositories behind the REST compatibility features: quota usage, TOTP state, blobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from domain.mfa import MfaState
from domain.usage import QuotaUsage
from persistence.session import Transaction
from persistence.tables import conversations, memories, messages
from persistence.tables_rest import blobs, user_mfa


def upsert(tx: Transaction, table: Any) -> Any:
    """``INSERT ... ON CONFLICT`` in the connection's dialect (both support it)."""
    dialect = tx.conn.dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


class SqlUsageReader:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def quota_usage(self, *, user_id: str) -> QuotaUsage:
        def total(table: Any, column: Any) -> Any:
            return (
                select(func.coalesce(func.sum(column), 0))
                .where(table.c.user_id == user_id)
                .scalar_subquery()
            )

        stmt = select(
            select(func.count())
            .select_from(conversations)
            .where(conversations.c.user_id == user_id)
            .scalar_subquery(),
            select(func.count())
            .select_from(messages)
            .where(messages.c.user_id == user_id)
            .scalar_subquery(),
            total(memories, func.length(memories.c.content)),
            total(messages, func.length(messages.c.content)),
            total(blobs, blobs.c.size),
        )
        values = list((await self._tx.read(stmt)).one())
        conversation_count, message_count, *sizes = (int(v) for v in values)
        return QuotaUsage(
            conversations=conversation_count, messages=message_count, storage_bytes=sum(sizes)
        )


class SqlMfaRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def get(self, user_id: str) -> MfaState | None:
        row = (await self._tx.read(select(user_mfa).where(user_mfa.c.user_id == user_id))).first()
        if row is None:
            return None
        return MfaState(
            user_id=row.user_id,
            pending_secret_encrypted=row.pending_secret,
            last_used_step=row.last_used_step,
        )

    async def set_pending(
        self, user_id: str, secret_encrypted: str | None, *, at: datetime
    ) -> None:
        stmt = upsert(self._tx, user_mfa).values(
            user_id=user_id, pending_secret=secret_encrypted, last_used_step=None, updated_at=at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[user_mfa.c.user_id],
            set_={"pending_secret": secret_encrypted, "updated_at": at},
        )
        await self._tx.write(stmt)

    async def use_step(self, user_id: str, step: int, *, at: datetime) -> bool:
        # One statement: a concurrent login with the same code waits on the row lock and then
        # finds the step used, so exactly one of them wins.
        stmt = upsert(self._tx, user_mfa).values(
            user_id=user_id, pending_secret=None, last_used_step=step, updated_at=at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[user_mfa.c.user_id],
            set_={"last_used_step": step, "updated_at": at},
            where=(user_mfa.c.last_used_step.is_(None)) | (user_mfa.c.last_used_step < step),
        ).returning(user_mfa.c.user_id)
        result = await self._tx.write(stmt)
        return result.first() is not None


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
