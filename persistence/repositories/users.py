"""Users and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select

from domain.entities import ApiKey, Role, Tier, User
from persistence.index_journal import IndexJournal
from persistence.session import Transaction
from persistence.tables.accounts import api_keys, users
from persistence.tables.memories import memory_fields

# Read on every authenticated request: built once (a statement built per call cost ~90 us of
# SQLAlchemy construction and cache-key work, more than executing it).
_BY_ID = select(users).where(users.c.id == bindparam("id"))


def _user(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        email=row.email,
        password_hash=row.password_hash,
        role=Role(row.role),
        tier=Tier(row.tier),
        balance_micros=row.balance_micros,
        created_at=row.created_at,
        mfa_secret_encrypted=row.mfa_secret,
        disabled=row.disabled,
    )


def _user_values(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "password_hash": user.password_hash,
        "role": user.role.value,
        "tier": user.tier.value,
        "balance_micros": user.balance_micros,
        "mfa_secret": user.mfa_secret_encrypted,
        "disabled": user.disabled,
        "created_at": user.created_at,
    }


class SqlUserRepository:
    def __init__(self, tx: Transaction, journal: IndexJournal) -> None:
        self._tx = tx
        self._journal = journal

    async def add(self, user: User) -> None:
        await self._tx.write(users.insert().values(**_user_values(user)))

    async def get(self, user_id: str) -> User | None:
        row = (await self._tx.read(_BY_ID, {"id": user_id})).first()
        return _user(row) if row else None

    async def by_login(self, username_or_email: str) -> User | None:
        login = username_or_email.strip()
        # Usernames ignore case, as registration's uniqueness does; an account that differs
        # only in case from another (made before that rule) is still reached by its exact name.
        stmt = (
            select(users)
            .where(
                or_(func.lower(users.c.username) == login.lower(), users.c.email == login.lower())
            )
            .order_by((users.c.username == login).desc())
            .limit(1)
        )
        row = (await self._tx.read(stmt)).first()
        return _user(row) if row else None

    async def exists(self, *, username: str, email: str) -> bool:
        stmt = select(func.count()).where(
            or_(func.lower(users.c.username) == username.lower(), users.c.email == email)
        )
        return bool((await self._tx.read(stmt)).scalar_one())

    async def update(self, user: User) -> None:
        values = _user_values(user)
        del values["id"]
        await self._tx.write(users.update().where(users.c.id == user.id).values(**values))

    async def list_all(self) -> list[User]:
        stmt = select(users).order_by(users.c.created_at, users.c.username)
        return [_user(r) for r in await self._tx.read(stmt)]

    async def delete(self, user_id: str) -> None:
        # The cascade removes the user's fields and memories outside the memory repository:
        # their copies in process memory (this process's and every other's) are dropped
        # when the deletion commits, their vector files with them.
        owned = select(memory_fields.c.id).where(memory_fields.c.user_id == user_id)
        self._journal.dropped.update(row.id for row in await self._tx.read(owned))
        await self._tx.write(users.delete().where(users.c.id == user_id))

    async def count(self) -> int:
        return int((await self._tx.read(select(func.count()).select_from(users))).scalar_one())


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        secret_hash=row.secret_hash,
        created_at=row.created_at,
        scopes=list(row.scopes or []),
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class SqlApiKeyRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, key: ApiKey) -> None:
        await self._tx.write(
            api_keys.insert().values(
                id=key.id,
                user_id=key.user_id,
                name=key.name,
                prefix=key.prefix,
                secret_hash=key.secret_hash,
                scopes=key.scopes,
                created_at=key.created_at,
            )
        )

    async def by_hash(self, secret_hash: str) -> ApiKey | None:
        stmt = select(api_keys).where(api_keys.c.secret_hash == secret_hash)
        row = (await self._tx.read(stmt)).first()
        return _key(row) if row else None

    async def get(self, key_id: str, *, user_id: str) -> ApiKey | None:
        stmt = select(api_keys).where(api_keys.c.id == key_id, api_keys.c.user_id == user_id)
        row = (await self._tx.read(stmt)).first()
        return _key(row) if row else None

    async def list(self, *, user_id: str) -> list[ApiKey]:
        stmt = select(api_keys).where(api_keys.c.user_id == user_id).order_by(api_keys.c.created_at)
        return [_key(r) for r in await self._tx.read(stmt)]

    async def revoke(self, key_id: str, *, at: datetime) -> None:
        await self._tx.write(api_keys.update().where(api_keys.c.id == key_id).values(revoked_at=at))

    async def touch(self, key_id: str, *, at: datetime) -> None:
        await self._tx.write(
            api_keys.update().where(api_keys.c.id == key_id).values(last_used_at=at)
        )
