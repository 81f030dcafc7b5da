"""One transaction over every repository; the edge commits it."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from domain.blobs import BlobRepository
from domain.events import DomainEvent
from domain.llm import LlmCatalogRepository, SpendRepository
from domain.mfa import MfaRepository
from domain.ports.accounts import ApiKeyRepository, UserRepository
from domain.ports.conversations import (
    AttachmentRepository,
    ConversationRepository,
    MessageRepository,
)
from domain.ports.jobs import JobRepository
from domain.ports.memories import (
    LexicalIndex,
    MaintenanceRepository,
    MemoryFieldRepository,
    MemoryHistoryRepository,
    MemoryQuery,
    MemoryRepository,
    VectorIndex,
)
from domain.ports.patterns import PatternRepository
from domain.ports.sources import SourceRepository
from domain.ports.stats import StatsQuery
from domain.ports.webhooks import WebhookRepository
from domain.usage import UsageReader


class UnitOfWork(Protocol):
    """One transaction over all repositories. The edge calls ``commit``; leaving without
    committing rolls everything back, so nothing half-written survives an error."""

    users: UserRepository
    api_keys: ApiKeyRepository
    fields: MemoryFieldRepository
    memories: MemoryRepository
    history: MemoryHistoryRepository
    vectors: VectorIndex
    lexical: LexicalIndex
    memory_query: MemoryQuery
    conversations: ConversationRepository
    messages: MessageRepository
    attachments: AttachmentRepository
    patterns: PatternRepository
    webhooks: WebhookRepository
    sources: SourceRepository
    stats: StatsQuery
    llm: LlmCatalogRepository
    spend: SpendRepository
    usage: UsageReader  # quota counts
    mfa: MfaRepository  # TOTP enrolment and replay protection
    blobs: BlobRepository  # uploaded attachment bytes
    maintenance: MaintenanceRepository  # background work across users: re-embedding, promotion
    jobs: JobRepository  # durable background jobs, and claims on shared work

    def record(self, event: DomainEvent) -> None:
        """Queue an event; it is delivered only if this unit of work commits."""

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
