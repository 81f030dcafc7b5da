"""Webhook subscriptions and their delivery outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.events import (
    MEMORY_CREATED,
    MEMORY_DELETED,
    MEMORY_UPDATED,
    MESSAGE_CREATED,
    PATTERN_DETECTED,
    SOURCE_SYNCED,
)

WEBHOOK_EVENTS: tuple[str, ...] = (
    MESSAGE_CREATED,
    MEMORY_CREATED,
    MEMORY_UPDATED,
    MEMORY_DELETED,
    PATTERN_DETECTED,
    SOURCE_SYNCED,
)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # gave up after the retry window


@dataclass(slots=True)
class Webhook:
    """``secret_encrypted`` is the signing secret under the server's key: it must be
    recoverable to sign deliveries, so it is encrypted rather than hashed."""

    id: str
    user_id: str
    url: str
    events: list[str]
    secret_encrypted: str
    created_at: datetime
    active: bool = True


@dataclass(slots=True)
class WebhookDelivery:
    """One outbox row: one event for one webhook, retried until delivered or dead."""

    id: str
    webhook_id: str
    user_id: str
    event_id: str
    event: str
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    id: str
    delivery_id: str
    user_id: str
    attempt: int
    status_code: int | None  # None when no HTTP answer came (refused, timeout, blocked URL)
    latency_ms: float
    error: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class SendResult:
    status_code: int | None
    latency_ms: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
