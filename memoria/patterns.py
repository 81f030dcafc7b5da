"""Wiring of procedural memory: the pattern service, its matcher for chat context, and the
learner that feeds it committed user messages.

Learning is a durable job (domain/jobs.py) written in the transaction that stored a user
message that may teach something, so it never delays that request, survives a restart,
and runs once across the deployment's processes. Most messages teach nothing and write no
job (:func:`_may_teach`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from domain.clock import Clock
from domain.entities import Actor, Role
from domain.events import MESSAGE_CREATED, DomainEvent
from domain.jobs import PATTERN_LEARNING, Job, JobDraft, JobPolicy, JobRunner
from domain.policy import Limits
from domain.ports import Embedder, UnitOfWorkFactory
from domain.services.pattern_rules import detect, is_request
from domain.services.patterns import PatternService, PatternSettings, ProceduralPatterns
from memoria.workers import WorkLoop

log = logging.getLogger("memoria.workers")

_REMEMBERED = 10_000  # ids of events a job was planned for, until their commit is heard


def _may_teach(content: str) -> bool:
    """Whether :meth:`PatternService.observe_message` can learn anything from a user message
    with this text: it looks only at rule detections and requests. Most chat messages have
    neither; skipping them saves a job, a unit of work and a read per turn."""
    return bool(detect(content)) or is_request(content)


class PatternLearner:
    """Plans a learning job for each committed user message that may teach (a
    ``before_commit`` planner), and runs those jobs: one unit of work each, which also
    removes the job, so a message is learnt from exactly once."""

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        patterns: PatternService,
        clock: Clock,
        policy: JobPolicy,
        poll: float,
    ) -> None:
        self._uow_factory = uow_factory
        self._patterns = patterns
        self.jobs = JobRunner(
            uow_factory=uow_factory,
            clock=clock,
            handlers={PATTERN_LEARNING: self.handle},
            policy=policy,
        )
        self.loop = WorkLoop("patterns", self._step, poll=poll)
        self._planned: OrderedDict[str, None] = OrderedDict()

    @property
    def pending(self) -> int:
        """Learning jobs this process is running now."""
        return self.jobs.running

    def plan(self, event: DomainEvent) -> JobDraft | None:
        if (
            event.name == MESSAGE_CREATED
            and event.payload.get("role") == "user"
            and _may_teach(str(event.payload.get("content") or ""))
        ):
            self._planned[event.id] = None
            while len(self._planned) > _REMEMBERED:
                self._planned.popitem(last=False)
            return JobDraft(
                kind=PATTERN_LEARNING,
                user_id=event.user_id,
                payload={"message_id": str(event.payload["id"])},
            )
        return None

    def notice(self, event: DomainEvent) -> None:
        """After a commit: wake the loop if the transaction wrote a learning job."""
        if self._planned.pop(event.id, False) is None:
            self.loop.wake()

    async def handle(self, job: Job) -> bool:
        async with self._uow_factory() as uow:
            message = await uow.messages.get(str(job.payload["message_id"]), user_id=job.user_id)
            if message is not None:
                actor = Actor(user_id=job.user_id, role=Role.USER, via="worker")
                await self._patterns.observe_message(uow=uow, actor=actor, message=message)
            if await uow.jobs.finish(job):
                await uow.commit()
            # else: our lease lapsed and a later claim holds the job; it learns, we roll back
        return True

    async def _step(self) -> bool:
        return await self.jobs.run_once() > 0


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
    jobs: JobPolicy,
    poll: float,
) -> PatternParts:
    service = PatternService(embedder=embedder, clock=clock, limits=limits, settings=settings)
    return PatternParts(
        service=service,
        procedural=ProceduralPatterns(service),
        learner=PatternLearner(
            uow_factory=uow_factory, patterns=service, clock=clock, policy=jobs, poll=poll
        ),
    )
