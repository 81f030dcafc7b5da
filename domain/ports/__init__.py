"""Ports: what the domain needs from the outside world, as Protocols, one module per aggregate.

Adapters in ``persistence`` and ``providers`` implement these; services only see the ports.
Repositories are reached through a :class:`UnitOfWork`, which the edge commits once per
request or operation: services never commit. Import from here; the submodules group the
protocols for reading.
"""

from domain.ports.accounts import ApiKeyRepository, PasswordHasher, TokenIssuer, UserRepository
from domain.ports.conversations import (
    AttachmentRepository,
    ConversationRepository,
    MessageRepository,
)
from domain.ports.jobs import JobRepository
from domain.ports.memories import (
    Embedder,
    LexicalIndex,
    MaintenanceRepository,
    MemoryFieldRepository,
    MemoryHistoryRepository,
    MemoryQuery,
    MemoryRepository,
    Vector,
    VectorIndex,
)
from domain.ports.patterns import PatternRepository
from domain.ports.security import SecretCipher, UrlGuard
from domain.ports.sources import SourceRepository
from domain.ports.stats import StatsQuery
from domain.ports.unit_of_work import UnitOfWork, UnitOfWorkFactory
from domain.ports.webhooks import WebhookRepository, WebhookSender

__all__ = [
    "ApiKeyRepository",
    "AttachmentRepository",
    "ConversationRepository",
    "Embedder",
    "JobRepository",
    "LexicalIndex",
    "MaintenanceRepository",
    "MemoryFieldRepository",
    "MemoryHistoryRepository",
    "MemoryQuery",
    "MemoryRepository",
    "MessageRepository",
    "PasswordHasher",
    "PatternRepository",
    "SecretCipher",
    "SourceRepository",
    "StatsQuery",
    "TokenIssuer",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "UrlGuard",
    "UserRepository",
    "Vector",
    "VectorIndex",
    "WebhookRepository",
    "WebhookSender",
]
