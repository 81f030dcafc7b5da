"""Wiring of data sources: the connectors per kind, OAuth2, the source service and the
loop that runs queued syncs."""

from __future__ import annotations

from dataclasses import dataclass

from domain.clock import Clock
from domain.events import DomainEvent
from domain.ports import SecretCipher, UnitOfWorkFactory
from domain.services.fields import FieldService
from domain.services.memories import MemoryService
from domain.services.source_sync import SourceSyncRunner
from domain.services.sources import SYNC_REQUESTED, SourceService
from domain.sources import Connector, SourceKind
from memoria.integration_settings import IntegrationSettings
from memoria.workers import WorkLoop
from providers.connectors.extract import FileTextExtractor
from providers.connectors.folder import FolderConnector
from providers.connectors.github import GitHubConnector
from providers.connectors.imap import ImapConnector
from providers.connectors.notion import NotionConnector
from providers.connectors.oauth import HmacStateSigner, OAuth2Client
from providers.connectors.slack import SlackConnector
from providers.connectors.targets import SourceTargets
from providers.outbound.guard import OutboundGuard

OAUTH_CALLBACK_PATH = "/api/sources/oauth/callback"


@dataclass
class SourceParts:
    service: SourceService
    runner: SourceSyncRunner
    loop: WorkLoop

    def notice(self, event: DomainEvent) -> None:
        if event.name == SYNC_REQUESTED:
            self.loop.wake()


def build_sources(
    settings: IntegrationSettings,
    *,
    public_url: str,
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    cipher: SecretCipher,
    state_key: bytes,
    fields: FieldService,
    memories: MemoryService,
) -> SourceParts:
    guard = OutboundGuard(settings.outbound_policy)
    oauth = (
        OAuth2Client(
            providers=settings.oauth,
            redirect_uri=public_url.rstrip("/") + OAUTH_CALLBACK_PATH,
            guard=guard,
        )
        if settings.oauth
        else None
    )
    wait = settings.connector_max_retry_wait_seconds
    folders = FolderConnector(roots=settings.files_roots)
    connectors: dict[SourceKind, Connector] = {
        SourceKind.GITHUB: GitHubConnector(
            base_url=settings.api_urls["github"], max_wait=wait, guard=guard
        ),
        SourceKind.SLACK: SlackConnector(
            base_url=settings.api_urls["slack"], max_wait=wait, guard=guard
        ),
        SourceKind.NOTION: NotionConnector(
            base_url=settings.api_urls["notion"], max_wait=wait, guard=guard
        ),
        SourceKind.EMAIL: ImapConnector(guard=guard),
        SourceKind.FILES: folders,
    }
    service = SourceService(
        cipher=cipher,
        signer=HmacStateSigner(state_key),
        oauth=oauth,
        fields=fields,
        clock=clock,
        syncs_per_minute=settings.syncs_per_minute,
        targets=SourceTargets(guard=guard, folders=folders),
    )
    runner = SourceSyncRunner(
        uow_factory=uow_factory,
        connectors=connectors,
        memories=memories,
        cipher=cipher,
        oauth=oauth,
        extractor=FileTextExtractor(),
        clock=clock,
    )

    async def sync() -> bool:
        return await runner.run_once() is not None

    return SourceParts(
        service=service,
        runner=runner,
        loop=WorkLoop("syncs", sync, poll=settings.worker_poll_seconds),
    )
