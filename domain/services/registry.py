"""The set of use-case services one deployment runs, handed to every edge (GraphQL, REST).

Both surfaces call the same instances, so authorization, limits and validation cannot drift
between them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.event_bus import EventBus
from domain.policy import Limits
from domain.ports import UnitOfWorkFactory
from domain.services.attachments import AttachmentService
from domain.services.auth import AuthService
from domain.services.chat import ChatService
from domain.services.conversations import ConversationService
from domain.services.fields import FieldService
from domain.services.llm_admin import LlmAdminService
from domain.services.memories import MemoryService
from domain.services.mfa import MfaService
from domain.services.patterns import PatternService
from domain.services.quotas import QuotaService
from domain.services.rate_limits import RateLimitService
from domain.services.sources import SourceService
from domain.services.stats import StatsService
from domain.services.webhooks import WebhookService


@dataclass(frozen=True)
class Services:
    uow_factory: UnitOfWorkFactory
    auth: AuthService
    fields: FieldService
    memories: MemoryService
    conversations: ConversationService
    limits: Limits
    health: Callable[[], Awaitable[Mapping[str, Any]]]
    version: str = "0.1.0"
    chat: ChatService | None = None  # memory-augmented chat turns (issue 3)
    llm: LlmAdminService | None = None  # providers, models, user LLM keys (issue 3)
    events: EventBus | None = None  # committed domain events, for subscriptions (issue 3)
    rate_limits: RateLimitService | None = None  # per-user request budgets (issue 4)
    quotas: QuotaService | None = None  # tier quotas (issue 4)
    attachments: AttachmentService | None = None  # uploads and by-reference files (issue 4)
    mfa: MfaService | None = None  # TOTP enrolment (issue 4)
    patterns: PatternService | None = None  # procedural memory (issue 5)
    webhooks: WebhookService | None = None  # webhook subscriptions (issue 5)
    sources: SourceService | None = None  # data sources and syncs (issue 5)
    stats: StatsService | None = None  # per-user statistics (issue 5)
