"""Wiring of patterns, webhooks, data sources and statistics (issue 5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from domain.clock import Clock
from domain.ports import Embedder
from domain.services.patterns import PatternService, ProceduralPatterns
from domain.services.registry import Services
from domain.services.source_sync import SourceSyncRunner
from domain.services.sources import SourceService
from domain.services.stats import StatsService
from domain.services.webhook_dispatch import RetryPolicy, WebhookDispatcher
from domain.services.webhooks import WebhookService
from domain.sources import Connector, SourceKind
from memoria.ext_workers import ExtWorkers, PatternLearner, WorkLoop
from memoria.settings import Settings
from persistence.database import Database
from persistence.outbox import write_outbox
from providers.connectors.extract import FileTextExtractor
from providers.connectors.folder import FolderConnector
from providers.connectors.github import GitHubConnector
from providers.connectors.imap import ImapConnector
from providers.connectors.notion import NotionConnector
from providers.connectors.oauth import HmacStateSigner, OAuth2Client
from providers.connectors.slack import SlackConnector
from providers.security import SecretBox
from providers.webhooks.sender import HttpWebhookSender
from providers.webhooks.url_guard import NetworkUrlGuard

OAUTH_CALLBACK_PATH = "/api/sources/oauth/callback"


@dataclass
class ExtParts:
    patterns: PatternService
    procedural: ProceduralPatterns
    webhooks: WebhookService
    dispatcher: WebhookDispatcher
    sources: SourceService
    sync_runner: SourceSyncRunner
    stats: StatsService
    workers: ExtWorkers
    sender: HttpWebhookSender

    def registry_fields(self) -> dict[str, Any]:
        return {
            "patterns": self.patterns,
            "webhooks": self.webhooks,
            "sources": self.sources,
            "stats": self.stats,
        }

    async def start(self) -> None:
        self.workers.start()

    async def aclose(self) -> None:
        await self.workers.stop()
        await self.sender.close()


def build_ext_services(
    settings: Settings,
    *,
    db: Database,
    clock: Clock,
    deps: Services,
    embedder: Embedder,
    encryption_key: bytes,
    state_key: bytes,
) -> ExtParts:
    ext = settings.ext
    cipher = SecretBox(encryption_key)
    guard = NetworkUrlGuard(allow_private=ext.allow_private_urls)
    patterns = PatternService(embedder=embedder, clock=clock, limits=settings.limits)
    webhooks = WebhookService(cipher=cipher, url_guard=guard, clock=clock)
    sender = HttpWebhookSender(timeout=ext.webhook_timeout_seconds)
    dispatcher = WebhookDispatcher(
        uow_factory=deps.uow_factory,
        sender=sender,
        cipher=cipher,
        url_guard=guard,
        clock=clock,
        retry=RetryPolicy(
            base=timedelta(seconds=ext.webhook_retry_base_seconds),
            cap=timedelta(seconds=ext.webhook_retry_cap_seconds),
            window=timedelta(seconds=ext.webhook_retry_window_seconds),
        ),
        # A send never outlives its timeout, so a lease of a few timeouts is safe.
        lease=timedelta(seconds=max(30.0, ext.webhook_timeout_seconds * 3)),
    )
    public = ext.public_url or f"http://{settings.host}:{settings.port}"
    oauth = (
        OAuth2Client(providers=ext.oauth, redirect_uri=public.rstrip("/") + OAUTH_CALLBACK_PATH)
        if ext.oauth
        else None
    )
    wait = ext.connector_max_retry_wait_seconds
    connectors: dict[SourceKind, Connector] = {
        SourceKind.GITHUB: GitHubConnector(base_url=ext.api_urls["github"], max_wait=wait),
        SourceKind.SLACK: SlackConnector(base_url=ext.api_urls["slack"], max_wait=wait),
        SourceKind.NOTION: NotionConnector(base_url=ext.api_urls["notion"], max_wait=wait),
        SourceKind.EMAIL: ImapConnector(),
        SourceKind.FILES: FolderConnector(roots=ext.files_roots),
    }
    sources = SourceService(
        cipher=cipher,
        signer=HmacStateSigner(state_key),
        oauth=oauth,
        fields=deps.fields,
        clock=clock,
        syncs_per_minute=ext.syncs_per_minute,
    )
    sync_runner = SourceSyncRunner(
        uow_factory=deps.uow_factory,
        connectors=connectors,
        memories=deps.memories,
        cipher=cipher,
        oauth=oauth,
        extractor=FileTextExtractor(),
        clock=clock,
    )

    async def deliver() -> bool:
        return await dispatcher.run_once() > 0

    async def sync() -> bool:
        return await sync_runner.run_once() is not None

    workers = ExtWorkers(
        webhooks=WorkLoop("webhooks", deliver, poll=ext.worker_poll_seconds),
        syncs=WorkLoop("syncs", sync, poll=ext.worker_poll_seconds),
        learner=PatternLearner(uow_factory=deps.uow_factory, patterns=patterns),
        enabled=ext.background_workers,
    )
    db.before_commit.append(write_outbox)
    db.after_commit.append(workers.on_commit)
    return ExtParts(
        patterns=patterns,
        procedural=ProceduralPatterns(patterns),
        webhooks=webhooks,
        dispatcher=dispatcher,
        sources=sources,
        sync_runner=sync_runner,
        stats=StatsService(),
        workers=workers,
        sender=sender,
    )
