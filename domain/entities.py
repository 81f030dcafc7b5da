"""Entities: plain dataclasses, owned by a user. Persistence maps them to rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")

JSON = dict[str, Any]


def new_id() -> str:
    return str(uuid.uuid4())


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class Tier(StrEnum):
    FREE = "free"
    STANDARD = "standard"
    PREMIUM = "premium"
    UNLIMITED = "unlimited"


class MemoryKind(StrEnum):
    FACT = "fact"
    EPISODE = "episode"
    MESSAGE = "message"
    DOCUMENT_CHUNK = "document_chunk"


class MemoryLayer(StrEnum):
    SHORT_TERM = "short_term"
    LONG_TERM = "long_term"


class ChangeKind(StrEnum):
    ADD = "ADD"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


class MessageRole(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


@dataclass(slots=True)
class User:
    id: str
    username: str
    email: str
    password_hash: str
    role: Role
    tier: Tier
    balance_micros: int
    created_at: datetime
    mfa_secret_encrypted: str | None = None
    disabled: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(slots=True)
class ApiKey:
    """A long-lived credential. Only ``secret_hash`` (SHA-256) of the secret is kept."""

    id: str
    user_id: str
    name: str
    prefix: str
    secret_hash: str
    created_at: datetime
    scopes: list[str] = field(default_factory=list)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(slots=True)
class MemoryField:
    """A named memory space of one user; remembers which embedder made its vectors.
    ``has_turns``: conversation turns were stored in it at some time (a search reads the
    turns around its hits and their sessions only then)."""

    id: str
    user_id: str
    name: str
    embedder: str
    dimension: int
    created_at: datetime
    has_turns: bool = False


@dataclass(slots=True)
class Memory:
    id: str
    user_id: str
    field_id: str
    content: str
    kind: MemoryKind
    source: str
    layer: MemoryLayer
    importance: float
    tags: list[str]
    metadata: JSON
    occurred_at: datetime
    created_at: datetime
    updated_at: datetime
    content_hash: str
    expires_at: datetime | None = None
    superseded_by: str | None = None
    speaker: str | None = None  # who said a conversation turn, when the client says


@dataclass(slots=True)
class MemoryChange:
    id: str
    memory_id: str
    user_id: str
    change: ChangeKind
    old_content: str | None
    new_content: str | None
    actor: str
    at: datetime


@dataclass(slots=True)
class Conversation:
    id: str
    user_id: str
    title: str
    description: str
    tags: list[str]
    field_id: str | None
    created_at: datetime
    last_activity_at: datetime
    message_count: int = 0


@dataclass(slots=True)
class Message:
    id: str
    conversation_id: str
    user_id: str
    role: MessageRole
    content: str
    tags: list[str]
    importance: float
    created_at: datetime
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    incomplete: bool = False


@dataclass(slots=True)
class Attachment:
    id: str
    message_id: str
    conversation_id: str
    user_id: str
    file_type: str
    file_path: str | None
    size: int
    sha256: str | None
    created_at: datetime


@dataclass(slots=True, frozen=True)
class Actor:
    """The authenticated principal an operation runs as."""

    user_id: str
    role: Role
    via: str  # "jwt" or "api_key"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(slots=True, frozen=True)
class MemoryHit:
    memory: Memory
    score: float
    reason: str = "dense"


@dataclass(slots=True, frozen=True)
class Page(Generic[T]):
    """One page of a keyset-paginated listing; ``after`` cursors are opaque ids."""

    items: list[T]
    has_next: bool
    total: int
