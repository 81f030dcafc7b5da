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
    """Every service a deployment runs; all are always present."""

    uow_factory: UnitOfWorkFactory
    auth: AuthService
    fields: FieldService
    memories: MemoryService
    conversations: ConversationService
    limits: Limits
    health: Callable[[], Awaitable[Mapping[str, Any]]]
    version: str
    chat: ChatService  # memory-augmented chat turns
    llm: LlmAdminService  # providers, models, user LLM keys
    events: EventBus  # committed domain events, for subscriptions
    rate_limits: RateLimitService  # per-user request budgets
    quotas: QuotaService  # tier quotas
    attachments: AttachmentService  # uploads and by-reference files
    mfa: MfaService  # TOTP enrolment
    patterns: PatternService  # procedural memory
    webhooks: WebhookService  # webhook subscriptions
    sources: SourceService  # data sources and syncs
    stats: StatsService  # per-user statistics
