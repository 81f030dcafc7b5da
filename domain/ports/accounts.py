"""Who may call: users, API keys, password hashing and access tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.entities import (
    ApiKey,
    User,
)


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...


class TokenIssuer(Protocol):
    """Signs and checks access tokens (JWT). ``decode`` raises ``Unauthenticated``."""

    def issue(self, *, user_id: str, role: str) -> tuple[str, int]: ...

    def decode(self, token: str) -> dict[str, object]: ...


class UserRepository(Protocol):
    async def add(self, user: User) -> None: ...

    async def get(self, user_id: str) -> User | None: ...

    async def by_login(self, username_or_email: str) -> User | None: ...

    async def exists(self, *, username: str, email: str) -> bool: ...

    async def update(self, user: User) -> None: ...

    async def list_all(self) -> list[User]:
        """Every user, oldest first (operator tooling; deployments hold few accounts)."""
        ...

    async def delete(self, user_id: str) -> None:
        """Remove the user; everything the user owns goes with it (foreign-key cascade)."""
        ...


class ApiKeyRepository(Protocol):
    async def add(self, key: ApiKey) -> None: ...

    async def by_hash(self, secret_hash: str) -> ApiKey | None: ...

    async def get(self, key_id: str, *, user_id: str) -> ApiKey | None: ...

    async def list(self, *, user_id: str) -> list[ApiKey]: ...

    async def revoke(self, key_id: str, *, at: datetime) -> None: ...

    async def touch(self, key_id: str, *, at: datetime) -> None: ...
