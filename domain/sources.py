"""Data sources: where a user's memories are pulled from, and the connector contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

JSON = dict[str, Any]


class SourceKind(StrEnum):
    FILES = "files"
    GITHUB = "github"
    SLACK = "slack"
    NOTION = "notion"
    EMAIL = "email"


# Cloud services a user may connect with the OAuth2 authorization-code flow.
OAUTH_KINDS = frozenset({SourceKind.GITHUB, SourceKind.SLACK, SourceKind.NOTION})


class SourceStatus(StrEnum):
    PENDING_AUTH = "pending_auth"  # waiting for the OAuth callback
    CONNECTED = "connected"  # ready, never synced
    QUEUED = "queued"
    SYNCING = "syncing"
    IDLE = "idle"  # last sync succeeded
    ERROR = "error"


class SyncStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(slots=True)
class DataSource:
    id: str
    user_id: str
    kind: SourceKind
    name: str
    status: SourceStatus
    config: JSON
    credentials_encrypted: str | None  # JSON of secrets, encrypted; never returned
    cursor: JSON
    field_id: str | None
    item_count: int
    created_at: datetime
    last_sync_at: datetime | None = None
    last_error: str | None = None


@dataclass(slots=True)
class SyncRun:
    """One requested sync: the durable job row the background worker claims."""

    id: str
    source_id: str
    user_id: str
    status: SyncStatus
    requested_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    items_added: int = 0
    items_updated: int = 0
    items_skipped: int = 0
    error: str | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One item a connector found: an issue, a comment, a Slack message, a page, an email, a
    file. ``version`` changes when the item changes (an edit time or a content hash)."""

    external_id: str
    title: str
    text: str
    occurred_at: datetime
    url: str | None
    version: str
    metadata: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceBatch:
    """Documents plus the cursor to store once they are saved: progress survives a failure."""

    documents: list[SourceDocument]
    cursor: JSON


class TokenExpired(Exception):  # a condition, like StopIteration
    """The access token was refused mid-sync; the sync refreshes it and resumes."""


@dataclass(frozen=True, slots=True)
class ItemRecord:
    source_id: str
    external_id: str
    version: str
    memory_ids: list[str]


class Connector(Protocol):
    """Reads one kind of source. Yields batches after ``cursor``, each with the cursor to
    resume from; raises ``TokenExpired`` when the token is refused (the sync refreshes it and
    calls again with the last saved cursor) and ``ProviderUnavailable`` when the service
    fails for good. Waits out rate-limit answers itself."""

    kind: SourceKind

    def fetch(
        self, *, source: DataSource, credentials: JSON, cursor: JSON
    ) -> AsyncIterator[SourceBatch]: ...


@dataclass(frozen=True, slots=True)
class OAuthTokens:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None


class OAuthClient(Protocol):
    """The authorization-code flow against one provider."""

    def authorization_url(self, *, kind: SourceKind, state: str) -> str: ...

    async def exchange(self, *, kind: SourceKind, code: str) -> OAuthTokens: ...

    async def refresh(self, *, kind: SourceKind, refresh_token: str) -> OAuthTokens: ...

    def supports(self, kind: SourceKind) -> bool: ...


class StateSigner(Protocol):
    """Signs the OAuth ``state`` so a callback can only complete a flow this server began."""

    def sign(self, payload: JSON) -> str: ...

    def verify(self, state: str) -> JSON: ...


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file uploaded into a ``files`` source; the sync extracts and chunks it."""

    id: str
    source_id: str
    user_id: str
    name: str
    data: bytes
    sha256: str
    uploaded_at: datetime


class TextExtractor(Protocol):
    """Plain text of a text, Markdown, HTML or PDF file; ``BadUserInput`` if unsupported."""

    def extract(self, *, name: str, data: bytes) -> str: ...
