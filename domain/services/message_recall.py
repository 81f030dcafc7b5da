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
from domain.ports import UnitOfWork, UnitOfWorkFactory
from domain.retrieval.speakers import label_of
from domain.services.fields import FieldsByName, FieldService
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
    ``before_commit`` planner) and runs a claim round of those jobs at once (:attr:`jobs`,
    :meth:`handle`): the messages become memories, field by field, each field's in one unit
    of work that also removes its jobs."""

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
        self._fields_by_name = FieldsByName(
            uow_factory=uow_factory, fields=fields, name=MESSAGES_FIELD
        )
        self.jobs = JobRunner(
            uow_factory=uow_factory,
            clock=clock,
            batch_handlers={MESSAGE_RECALL: self.handle},
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

    async def handle(self, jobs: list[Job]) -> bool:
        """Keep the jobs' messages as memories: per user, one read of the messages and one
        of their conversations, then per field one ``add_many`` (one embedding pass) in a
        unit of work that also removes those jobs. True when every job was removed so."""
        mine: dict[str, list[str]] = {}
        for job in jobs:
            mine.setdefault(job.user_id, []).append(str(job.payload["message_id"]))
        found: dict[str, list[tuple[str | None, Message]]] = {}
        async with self._uow_factory() as uow:
            for user_id, ids in mine.items():
                messages = await uow.messages.get_many(ids, user_id=user_id)
                owners = {m.conversation_id for m in messages}
                fields = {
                    c.id: c.field_id
                    for c in await uow.conversations.get_many(list(owners), user_id=user_id)
                }
                found[user_id] = [(fields.get(m.conversation_id), m) for m in messages]
        groups: dict[tuple[str, str], list[Message]] = {}
        for user_id, kept in found.items():
            actor = Actor(user_id=user_id, role=Role.USER, via="worker")
            for field_id, message in sorted(kept, key=lambda k: k[1].created_at):
                target = field_id or await self._fields_by_name.field_id(actor)
                groups.setdefault((user_id, target), []).append(message)
        # One unit of work per field: a chat turn waiting for the write lock waits for one
        # field's insert, not for the whole round's.
        owner = {str(job.payload["message_id"]): job for job in jobs}
        for (user_id, field_id), messages in groups.items():
            actor = Actor(user_id=user_id, role=Role.USER, via="worker")
            async with self._uow_factory() as uow:
                await self._keep(uow, actor, field_id, messages)
                removed = [await uow.jobs.finish(owner.pop(m.id)) for m in messages]
                if all(removed):
                    await uow.commit()
                # else: a lease lapsed and a later claim holds that job; it stores its copy
        return not owner  # the jobs of messages gone meanwhile: the runner removes them

    async def _keep(
        self, uow: UnitOfWork, actor: Actor, field_id: str, messages: list[Message]
    ) -> None:
        drafts = [recalled(m) for m in messages]
        try:
            await self._memories.add_many(uow=uow, actor=actor, field_id=field_id, drafts=drafts)
        except NotFound:
            # The field was deleted meanwhile: trying again would not bring it back.
            self._fields_by_name.forget(actor.user_id)
            log.info("%d messages not kept as memories: their field is gone", len(drafts))
        except QuotaExceeded:
            log.info("%d messages not kept as memories: storage quota reached", len(drafts))
