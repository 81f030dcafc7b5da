"""Wiring of procedural memory: the pattern service, its matcher for chat context, and the
learner that feeds it committed user messages.

Learning is an in-process queue of committed user messages: cheap, and it never delays the
request that stored the message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from domain.clock import Clock
from domain.entities import Actor, Role
from domain.events import MESSAGE_CREATED, DomainEvent
from domain.policy import Limits
from domain.ports import Embedder, UnitOfWorkFactory
from domain.services.pattern_rules import detect, is_request
from domain.services.patterns import PatternService, PatternSettings, ProceduralPatterns

log = logging.getLogger("memoria.workers")


def _may_teach(content: str) -> bool:
    """Whether :meth:`PatternService.observe_message` can learn anything from a user message
    with this text: it looks only at rule detections and requests. Most chat messages have
    neither; skipping them saves a unit of work and a read per turn."""
    return bool(detect(content)) or is_request(content)


class PatternLearner:
    """Feeds committed user messages to :meth:`PatternService.observe_message`."""

    def __init__(self, *, uow_factory: UnitOfWorkFactory, patterns: PatternService) -> None:
        self._uow_factory = uow_factory
        self._patterns = patterns
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=10_000)

    def notice(self, event: DomainEvent) -> None:
        if (
            event.name == MESSAGE_CREATED
            and event.payload.get("role") == "user"
            and _may_teach(str(event.payload.get("content") or ""))
        ):
            self.offer(event.user_id, str(event.payload["id"]))

    def offer(self, user_id: str, message_id: str) -> None:
        try:
            self.queue.put_nowait((user_id, message_id))
        except asyncio.QueueFull:
            log.warning("pattern learning queue full; message %s skipped", message_id)

    async def learn(self, user_id: str, message_id: str) -> None:
        async with self._uow_factory() as uow:
            message = await uow.messages.get(message_id, user_id=user_id)
            if message is None:
                return
            actor = Actor(user_id=user_id, role=Role.USER, via="worker")
            await self._patterns.observe_message(uow=uow, actor=actor, message=message)
            await uow.commit()

    async def run(self) -> None:
        while True:
            user_id, message_id = await self.queue.get()
            try:
                await self.learn(user_id, message_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad message must not stop learning from the next
                log.exception("pattern learning failed for message %s", message_id)
            finally:
                self.queue.task_done()


@dataclass
class PatternParts:
    service: PatternService
    procedural: ProceduralPatterns
    learner: PatternLearner


def build_patterns(
    *,
    uow_factory: UnitOfWorkFactory,
    embedder: Embedder,
    clock: Clock,
    limits: Limits,
    settings: PatternSettings,
) -> PatternParts:
    service = PatternService(embedder=embedder, clock=clock, limits=limits, settings=settings)
    return PatternParts(
        service=service,
        procedural=ProceduralPatterns(service),
        learner=PatternLearner(uow_factory=uow_factory, patterns=service),
    )
