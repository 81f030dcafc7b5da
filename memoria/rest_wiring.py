"""Wires the REST compatibility edge: rate-limit counters (in-process for SQLite, a shared
table for PostgreSQL), quotas, attachments, TOTP, and the route table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute

from domain.clock import Clock
from domain.rate_policy import RateLimitCounter
from domain.services.attachments import AttachmentService
from domain.services.conversations import ConversationService
from domain.services.mfa import MfaService
from domain.services.quotas import QuotaService
from domain.services.rate_limits import RateLimitService
from domain.services.registry import Services
from memoria.settings import Settings
from persistence.database import Database
from persistence.rate_limits import MemoryRateLimitCounter, SqlRateLimitCounter
from providers.security import SecretBox
from providers.totp import PyotpTotp
from rest_compat.app import rest_routes
from rest_compat.endpoint import RestConfig


@dataclass(frozen=True)
class RestServices:
    rate_limits: RateLimitService
    quotas: QuotaService
    attachments: AttachmentService
    mfa: MfaService

    def registry_fields(self) -> dict[str, Any]:
        return {
            "rate_limits": self.rate_limits,
            "quotas": self.quotas,
            "attachments": self.attachments,
            "mfa": self.mfa,
        }


def build_rest_services(
    settings: Settings,
    *,
    db: Database,
    clock: Clock,
    encryption_key: bytes,
    conversations: ConversationService,
) -> RestServices:
    counter: RateLimitCounter = (
        MemoryRateLimitCounter() if db.is_sqlite else SqlRateLimitCounter(db.engine)
    )
    rate_limits = RateLimitService(counter=counter, policy=settings.rate_limits, clock=clock)
    return RestServices(
        rate_limits=rate_limits,
        quotas=QuotaService(policy=settings.rate_limits, rate_limits=rate_limits),
        attachments=AttachmentService(
            conversations=conversations, clock=clock, max_upload_bytes=settings.max_upload_bytes
        ),
        mfa=MfaService(totp=PyotpTotp(), cipher=SecretBox(encryption_key), clock=clock),
    )


def build_rest_routes(settings: Settings, services: Services) -> list[BaseRoute]:
    config = RestConfig(
        max_body_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        version=services.version,
    )
    return rest_routes(services, config)
