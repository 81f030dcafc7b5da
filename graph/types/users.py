"""Users, API keys and authentication payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.entities import ApiKey as ApiKeyEntity
from domain.entities import User as UserEntity


@strawberry.type
class User:
    id: strawberry.ID
    username: str
    email: str
    role: str
    tier: str
    balance: float = strawberry.field(description="Remaining balance in USD.")
    mfa_enabled: bool
    created_at: datetime

    @classmethod
    def of(cls, user: UserEntity) -> User:
        return cls(
            id=strawberry.ID(user.id),
            username=user.username,
            email=user.email,
            role=user.role.value,
            tier=user.tier.value,
            balance=user.balance_micros / 1_000_000,
            mfa_enabled=user.mfa_secret_encrypted is not None,
            created_at=user.created_at,
        )


@strawberry.type
class ApiKey:
    id: strawberry.ID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool

    @classmethod
    def of(cls, key: ApiKeyEntity) -> ApiKey:
        return cls(
            id=strawberry.ID(key.id),
            name=key.name,
            prefix=key.prefix,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked=key.revoked_at is not None,
        )


@strawberry.type
class NewApiKey:
    key: str = strawberry.field(description="The secret. Shown once; only its hash is stored.")
    api_key: ApiKey


@strawberry.type
class AuthPayload:
    access_token: str
    token_type: str
    expires_in: int
    user: User


@strawberry.input
class RegisterInput:
    username: str
    email: str
    password: str


@strawberry.input
class LoginInput:
    username_or_email: str
    password: str
    mfa_code: str | None = None
