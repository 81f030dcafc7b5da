"""TOTP enrolment and replay state per user."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from domain.mfa import MfaState
from persistence.session import Transaction, upsert
from persistence.tables.accounts import user_mfa


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
