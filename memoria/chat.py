"""Wiring of the chat capability: LLM adapters, context assembly, chat, extraction, events.

With no provider configured the built-in extractive model is the default, so
``memoria serve`` can chat with no external service.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from domain.clock import Clock
from domain.event_bus import EventBus
from domain.jobs import JobPolicy
from domain.services.chat import ChatService
from domain.services.context import ContextBuilder, PatternMatcher
from domain.services.conversations import ConversationService
from domain.services.extraction import MemoryExtractor
from domain.services.fields import FieldService
from domain.services.llm_admin import LlmAdminService
from domain.services.memories import MemoryService
from domain.services.message_recall import MessageRecall
from memoria.settings import Settings
from memoria.workers import WorkLoop
from persistence.database import Database
from providers.llm.factory import HttpChatModelFactory
from providers.llm.http_base import HttpSettings
from providers.outbound.guard import OutboundGuard
from providers.security import SecretBox
from providers.tokenizer import HfTokenCounter


@dataclass
class ChatParts:
    chat: ChatService
    llm: LlmAdminService
    events: EventBus
    context: ContextBuilder
    extractor: MemoryExtractor
    extraction: WorkLoop  # claims extraction jobs (started with the other workers)
    recall: MessageRecall  # keeps messages as memories
    recalling: WorkLoop  # claims its jobs
    factory: HttpChatModelFactory

    async def aclose(self) -> None:
        await self.extractor.settle()  # what is queued behind stays for the next claimer
        await self.recall.jobs.settle()
        await self.factory.aclose()


def build_chat_services(
    settings: Settings,
    *,
    db: Database,
    clock: Clock,
    fields: FieldService,
    memories: MemoryService,
    conversations: ConversationService,
    encryption_key: bytes,
    jobs: JobPolicy,
    patterns: PatternMatcher | None = None,
) -> ChatParts:
    guard = OutboundGuard(settings.integrations.outbound_policy)
    factory = HttpChatModelFactory(
        HttpSettings(
            connect_timeout=settings.llm_connect_timeout_seconds,
            read_timeout=settings.llm_read_timeout_seconds,
            retry_pause=settings.llm_retry_pause_seconds,
        ),
        guard=guard,
    )
    llm = LlmAdminService(
        clock=clock,
        url_guard=guard,
        cipher=SecretBox(encryption_key),
        factory=factory,
        default_model=settings.default_model,
    )
    context = ContextBuilder(memories=memories, counter=HfTokenCounter(), patterns=patterns)
    extractor = MemoryExtractor(
        uow_factory=db.unit_of_work,
        memories=memories,
        fields=fields,
        llm=llm,
        clock=clock,
        policy=replace(jobs, batch=2),  # at most two extractions at once per process
        llm_interval=settings.extraction_interval_seconds,
    )

    async def extract() -> bool:
        return await extractor.jobs.run_once() > 0

    extraction = WorkLoop("extraction", extract, poll=settings.integrations.worker_poll_seconds)
    extractor.on_queued = extraction.wake
    recall = MessageRecall(
        uow_factory=db.unit_of_work,
        memories=memories,
        fields=fields,
        clock=clock,
        policy=replace(jobs, batch=64),  # kept in one unit of work, one embedding pass
    )

    async def keep_messages() -> bool:
        # Straight on only after a full round: a trickle waits for the next poll, and is
        # kept with what arrives meanwhile.
        return await recall.jobs.run_once() >= recall.jobs.policy.batch

    # Not woken by each commit: what a poll interval collects is kept in one round (one
    # unit of work, one embedding pass per field), so a busy chat pays per batch, not per
    # message.
    recalling = WorkLoop(
        "message-recall", keep_messages, poll=settings.integrations.worker_poll_seconds
    )
    chat = ChatService(
        uow_factory=db.unit_of_work,
        conversations=conversations,
        fields=fields,
        llm=llm,
        context=context,
        clock=clock,
        limits=settings.limits,
        observer=extractor,
    )
    events = EventBus()
    db.after_commit.append(events.publish)
    return ChatParts(
        chat=chat,
        llm=llm,
        events=events,
        context=context,
        extractor=extractor,
        extraction=extraction,
        recall=recall,
        recalling=recalling,
        factory=factory,
    )
