"""Ports for patterns, webhooks, data sources and statistics (reached through the
``UnitOfWork``), plus the outbound adapters their services need."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from domain.patterns import Pattern, PatternChange, RequestObservation
from domain.sources import DataSource, ItemRecord, SourceFile, SyncRun
from domain.stats import Stats
from domain.webhooks import DeliveryAttempt, SendResult, Webhook, WebhookDelivery


class PatternRepository(Protocol):
    async def add(self, pattern: Pattern) -> None: ...

    async def update(self, pattern: Pattern) -> None: ...

    async def delete(self, pattern_id: str, *, user_id: str) -> bool: ...

    async def get(self, pattern_id: str, *, user_id: str) -> Pattern | None: ...

    async def active(self, *, user_id: str) -> list[Pattern]: ...

    async def page(
        self, *, user_id: str, first: int, after: str | None
    ) -> tuple[list[Pattern], bool, int]: ...

    async def slice(
        self, *, user_id: str, offset: int, limit: int
    ) -> tuple[list[Pattern], int]: ...

    async def add_change(self, change: PatternChange) -> None: ...

    async def history(self, pattern_id: str, *, user_id: str) -> list[PatternChange]: ...

    async def mark_used(
        self, pattern_ids: Sequence[str], *, user_id: str, at: datetime
    ) -> None: ...

    async def observe(self, observation: RequestObservation) -> None: ...

    async def recent_observations(
        self, *, user_id: str, limit: int
    ) -> list[RequestObservation]: ...


class WebhookRepository(Protocol):
    async def add(self, webhook: Webhook) -> None: ...

    async def get(self, webhook_id: str, *, user_id: str) -> Webhook | None: ...

    async def list(self, *, user_id: str) -> list[Webhook]: ...

    async def delete(self, webhook_id: str, *, user_id: str) -> bool: ...

    async def set_secret(self, webhook_id: str, *, user_id: str, secret_encrypted: str) -> None: ...

    async def deliveries(
        self, webhook_id: str, *, user_id: str, limit: int
    ) -> builtins.list[WebhookDelivery]: ...

    async def attempts(
        self, delivery_id: str, *, user_id: str
    ) -> builtins.list[DeliveryAttempt]: ...

    async def claim_due(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> builtins.list[tuple[WebhookDelivery, Webhook]]:
        """Due deliveries of every user (the worker is not a tenant), leased so no other
        worker takes them until ``lease_until``."""

    async def record_attempt(self, delivery: WebhookDelivery, attempt: DeliveryAttempt) -> None:
        """Store ``attempt`` and the delivery's new state (status, attempts, next time)."""


class SourceRepository(Protocol):
    async def add(self, source: DataSource) -> None: ...

    async def get(self, source_id: str, *, user_id: str) -> DataSource | None: ...

    async def list(self, *, user_id: str) -> list[DataSource]: ...

    async def update(self, source: DataSource) -> None: ...

    async def delete(self, source_id: str, *, user_id: str) -> bool: ...

    async def item(self, source_id: str, external_id: str) -> ItemRecord | None: ...

    async def put_item(self, record: ItemRecord, *, user_id: str, at: datetime) -> None: ...

    async def add_file(self, file: SourceFile) -> None: ...

    async def files(self, source_id: str, *, user_id: str) -> builtins.list[SourceFile]: ...

    async def add_sync(self, run: SyncRun) -> None: ...

    async def update_sync(self, run: SyncRun) -> None: ...

    async def get_sync(self, run_id: str, *, user_id: str) -> SyncRun | None: ...

    async def syncs_since(self, *, user_id: str, since: datetime) -> int: ...

    async def claim_sync(self, *, now: datetime, lease_until: datetime) -> SyncRun | None:
        """The oldest queued run (or a running one whose lease lapsed), leased to the caller."""


class StatsQuery(Protocol):
    async def stats(self, *, user_id: str) -> Stats: ...


class SecretCipher(Protocol):
    """Symmetric encryption of secrets at rest (Fernet in providers.security)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


class UrlGuard(Protocol):
    """Refuses URLs that resolve to private, loopback or link-local addresses (SSRF)."""

    async def check(self, url: str) -> None:
        """Raise ``BadUserInput`` when the URL is not an allowed public http(s) address."""


class WebhookSender(Protocol):
    async def send(
        self, *, url: str, secret: str, event_id: str, event: str, body: bytes
    ) -> SendResult: ...
