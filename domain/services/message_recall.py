"""Conversation messages kept as searchable memories (kind ``message``).

A conversation's latest turns reach a chat's context as working memory; an older message
was found again only if extraction had picked a first-person fact out of it ("What was the
restaurant you recommended last month?" could not be answered). So every stored user or
assistant message is also kept as a ``message`` memory in its conversation's field (the
user's ``conversations`` field for a conversation that has none: apart from the facts
extraction keeps in ``default``, which stay a short list). To the engine that is a
conversation turn, ordered by the message's time, with the turns beside it as neighbours.
Search finds it, and so does chat context (its short-term layer: MemoryKit's
EpisodicMemory, Senua's ``short_term``).

It never delays the request that stored the message. A durable job is written in the
message's own transaction (a ``before_commit`` planner, as pattern learning's), and any
process of the deployment runs it. The copy costs an embedding, and its text counts toward
the storage quota like any memory's: a user over the quota keeps the message, not the copy.
"""

from __future__ import annotations

import logging

from domain.clock import Clock
from domain.entities import Actor, Message, Role
from domain.errors import NotFound
from domain.events import MESSAGE_CREATED, DomainEvent
from domain.jobs import MESSAGE_RECALL, Job, JobDraft, JobPolicy, JobRunner
from domain.memory_drafts import MemoryDraft
from domain.ports import UnitOfWorkFactory
from domain.retrieval.speakers import label_of
from domain.services.fields import DefaultFields, FieldService
from domain.services.memories import MemoryService
from domain.services.quotas import QuotaExceeded

log = logging.getLogger("memoria.message_recall")

SOURCE = "chat"
MESSAGES_FIELD = "conversations"
_ROLES = frozenset({"user", "assistant"})


def recalled(message: Message) -> MemoryDraft:
    """The memory a message is kept as: its text, at its time, with where it came from.
    Its speaker is its role, unless its text names one ("Caroline: ..."), as a client
    logging a conversation between people writes it."""
    return MemoryDraft(
        content=message.content,
        source=SOURCE,
        occurred_at=message.created_at,
        tags=list(message.tags),
        metadata={
            "conversation_id": message.conversation_id,
            "message_id": message.id,
            "role": message.role.value,
        },
        kind="message",
        speaker=None if label_of(message.content) else message.role.value,
    )


class MessageRecall:
    """Plans a job for each stored user or assistant message (:meth:`plan`, a
    ``before_commit`` planner) and runs those jobs (:attr:`jobs`): each keeps its message as
    a memory, in one unit of work that also removes the job."""

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        memories: MemoryService,
        fields: FieldService,
        clock: Clock,
        policy: JobPolicy | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._memories = memories
        self._default_fields = DefaultFields(
            uow_factory=uow_factory, fields=fields, name=MESSAGES_FIELD
        )
        self.jobs = JobRunner(
            uow_factory=uow_factory,
            clock=clock,
            handlers={MESSAGE_RECALL: self.handle},
            policy=policy,
        )

    def plan(self, event: DomainEvent) -> JobDraft | None:
        payload = event.payload
        if (
            event.name != MESSAGE_CREATED
            or payload.get("role") not in _ROLES
            or not str(payload.get("content") or "").strip()
        ):
            return None
        return JobDraft(
            kind=MESSAGE_RECALL, user_id=event.user_id, payload={"message_id": str(payload["id"])}
        )

    async def drain(self) -> None:
        """Run the jobs queued so far to the end (tests and benchmarks)."""
        while await self.jobs.run_once():
            pass
        await self.jobs.settle()

    async def handle(self, job: Job) -> bool:
        """Keep the job's message as a memory; True when the job was removed with it."""
        actor = Actor(user_id=job.user_id, role=Role.USER, via="worker")
        async with self._uow_factory() as uow:
            message = await uow.messages.get(str(job.payload["message_id"]), user_id=job.user_id)
            if message is None:
                return False  # deleted meanwhile (with its user): nothing to keep
            conversation = await uow.conversations.get(message.conversation_id, user_id=job.user_id)
            field_id = conversation.field_id if conversation is not None else None
        try:
            if field_id is None:
                field_id = await self._default_fields.field_id(actor)
            async with self._uow_factory() as uow:
                await self._memories.add_many(
                    uow=uow, actor=actor, field_id=field_id, drafts=[recalled(message)]
                )
                if await uow.jobs.finish(job):
                    await uow.commit()
                # else: our lease lapsed and a later claim holds the job; it stores the copy
        except NotFound:
            # The field was deleted meanwhile: trying again would not bring it back.
            self._default_fields.forget(job.user_id)
            log.info("message %s not kept as a memory: its field is gone", message.id)
            return False
        except QuotaExceeded:
            log.info("message %s not kept as a memory: storage quota reached", message.id)
            return False
        return True
