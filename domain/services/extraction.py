"""Learning from chat: after a reply, facts from the exchange become memories.

It never delays a reply: :meth:`MemoryExtractor.reply_settling` only decides whether the
turn can teach anything (most chit-chat cannot: no job at all) and queues a durable job in
the reply's own transaction, which the extraction loop of any server process claims. With a
generating model the job asks it for facts (added, or updated with history when they revise
a stored one), at most once per ``llm_interval`` seconds per user (per process); otherwise,
and whenever the model call fails, first-person statements are picked out by rules.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable

from domain.clock import Clock
from domain.entities import Actor, Conversation, Memory, MemoryKind, Message, Role
from domain.errors import NotFound
from domain.jobs import MEMORY_EXTRACTION, Job, JobDraft, JobPolicy, JobRunner
from domain.llm import EXTRACTIVE_MODEL, ModelRequest, PromptMessage
from domain.memory_drafts import MemoryDraft, MemoryPatchInput
from domain.ports import UnitOfWork, UnitOfWorkFactory
from domain.services.fields import FieldsByName, FieldService
from domain.services.llm_admin import LlmAdminService
from domain.services.memories import MemoryService

log = logging.getLogger("memoria.extraction")

_FACT = re.compile(
    r"^(?:please\s+)?(?:remember\s+(?:that\s+)?)?"
    r"(?P<fact>(?:my|i|i'm|i've|i'd|we|our)\b.{3,300})$",
    re.IGNORECASE,
)
_NOT_A_FACT = re.compile(
    r"^(?:i|we)\s+(?:wonder|think|guess|want to know|was wondering)\b|\?\s*$", re.IGNORECASE
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
_EXTRACT_PROMPT = (
    "Extract durable facts about the user from this exchange. Answer with JSON only: "
    '{"facts": [{"fact": "...", "replaces": "<id of a known fact it corrects, or null>"}]}. '
    "Known facts:\n"
)


def rule_facts(text: str) -> list[str]:
    """First-person statements ("my name is...", "I live in...", "remember that I...")."""
    facts: list[str] = []
    for sentence in _SENTENCES.split(text):
        s = sentence.strip().rstrip(".!")
        if not s or _NOT_A_FACT.search(s):
            continue
        match = _FACT.match(s)
        if match:
            fact = match.group("fact").strip()
            facts.append(fact[0].upper() + fact[1:])
    return facts


class MemoryExtractor:
    """A ``ReplyObserver`` that turns exchanges into memories in the background, through
    durable jobs (:mod:`domain.jobs`): any process of the deployment may run them."""

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        memories: MemoryService,
        fields: FieldService,
        llm: LlmAdminService,
        clock: Clock,
        policy: JobPolicy | None = None,
        llm_interval: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._memories = memories
        self._llm = llm
        self._clock = clock
        self._interval = llm_interval
        self._monotonic = monotonic
        self.on_queued = on_queued  # wakes this process's job loop
        self._last_llm_call: dict[str, float] = {}
        self._planned = False  # a reply queued a job since the last wake-up
        self._fields_by_name = FieldsByName(uow_factory=uow_factory, fields=fields)
        # The policy's batch bounds concurrent extractions per process: background work
        # must not crowd out replies for database connections.
        self.jobs = JobRunner(
            uow_factory=uow_factory,
            clock=clock,
            handlers={MEMORY_EXTRACTION: self.handle},
            policy=policy or JobPolicy(batch=2),
        )

    async def reply_settling(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor,
        conversation: Conversation,
        field_id: str | None,
        user_message: Message,
        assistant_message: Message,
    ) -> None:
        """Queue the extraction job in the reply's own unit of work: it exists exactly
        when the reply committed, so no process death between the two loses it."""
        model = assistant_message.model
        use_llm = bool(model) and self._may_call_llm(actor.user_id, str(model))
        if not use_llm and not rule_facts(user_message.content):
            return  # nothing to learn: no job, no database work (the common chit-chat case)
        draft = JobDraft(
            kind=MEMORY_EXTRACTION,
            user_id=actor.user_id,
            payload={
                "conversation_id": conversation.id,
                "message_id": user_message.id,
                "field_id": field_id,
                "model": str(model) if use_llm else None,
            },
        )
        await uow.jobs.add([draft], now=self._clock.now())
        self._planned = True

    def reply_committed(self) -> None:
        """Wake this process's job loop when the committed reply queued a job."""
        if self._planned:
            self._planned = False
            if self.on_queued is not None:
                self.on_queued()

    @property
    def pending(self) -> int:
        """Extractions running in this process (a depth for monitoring)."""
        return self.jobs.running

    async def drain(self) -> None:
        """Run the extractions queued so far to the end (tests, and a process that wants
        its turns learnt from before it exits)."""
        while await self.jobs.run_once():
            pass
        await self.jobs.settle()

    async def settle(self) -> None:
        """Wait for the jobs being run by this process (shutdown): the queue behind them
        stays in the database for the next claimer."""
        await self.jobs.settle()

    async def handle(self, job: Job) -> bool:
        """Run one extraction job; True when the job was removed with the stored facts."""
        payload = job.payload
        async with self._uow_factory() as uow:
            message = await uow.messages.get(str(payload["message_id"]), user_id=job.user_id)
        if message is None:
            return False  # deleted meanwhile: nothing to learn from
        actor = Actor(user_id=job.user_id, role=Role.USER, via="worker")
        field_id = payload.get("field_id")
        model = payload.get("model")
        return await self._learn(
            job,
            actor,
            str(payload["conversation_id"]),
            str(field_id) if field_id else None,
            message,
            str(model) if model else None,
        )

    async def _learn(
        self,
        job: Job,
        actor: Actor,
        conversation_id: str,
        field_id: str | None,
        user_message: Message,
        model: str | None,
    ) -> bool:
        """Short units of work around the model call, so no transaction (nor SQLite's write
        lock) is held while waiting for it."""
        meta = {"conversation_id": conversation_id, "message_id": user_message.id}
        fid = field_id or await self._fields_by_name.field_id(actor)
        facts: list[tuple[str, str | None]] | None = None
        if model is not None:
            facts = await self._llm_facts(actor, fid, model, user_message.content)
        if facts is None:  # rules only, or the model failed: rules still learn something
            facts = [(f, None) for f in rule_facts(user_message.content)]
        if not facts:
            return False
        try:
            async with self._uow_factory() as uow:
                await self._store(uow, actor, fid, facts, meta)
                if await uow.jobs.finish(job):
                    await uow.commit()
                # else: our lease lapsed and a later claim holds the job; it stores them
        except NotFound:
            # The field was deleted meanwhile: nothing to store into, and trying again
            # would not change that (the runner removes the job).
            self._fields_by_name.forget(actor.user_id)
            log.info("memory extraction for message %s: its field is gone", user_message.id)
            return False
        return True

    def _may_call_llm(self, user_id: str, model: str) -> bool:
        if model == EXTRACTIVE_MODEL:
            return False
        now = self._monotonic()
        last = self._last_llm_call.get(user_id)
        if last is not None and now - last < self._interval:
            return False
        self._last_llm_call[user_id] = now
        return True

    async def _known(self, uow: UnitOfWork, actor: Actor, fid: str, text: str) -> list[Memory]:
        hits = await self._memories.search(
            uow=uow, actor=actor, field_ids=[fid], query=text[:2000], top_k=5
        )
        # Kept messages (domain.services.message_recall) are what was said, not facts the
        # model may revise: a conversation bound to a field keeps both there.
        return [h.memory for h in hits if h.score > 0 and h.memory.kind is not MemoryKind.MESSAGE]

    async def _store(
        self,
        uow: UnitOfWork,
        actor: Actor,
        fid: str,
        facts: list[tuple[str, str | None]],
        meta: dict[str, str],
    ) -> None:
        """Add new facts; a fact that revises a known one updates it (with history)."""
        known = await self._known(uow, actor, fid, " ".join(f for f, _ in facts))
        by_id = {m.id: m for m in known}
        seen = {m.content.strip().lower() for m in known}
        drafts: list[MemoryDraft] = []
        for fact, replaces in facts:
            if replaces in by_id:
                patch = MemoryPatchInput(content=fact)
                await self._memories.update(uow=uow, actor=actor, memory_id=replaces, patch=patch)
            elif fact.strip().lower() not in seen:
                seen.add(fact.strip().lower())
                drafts.append(MemoryDraft(content=fact, source="chat", metadata=meta, kind="fact"))
        if drafts:
            await self._memories.add_many(uow=uow, actor=actor, field_id=fid, drafts=drafts)

    async def _llm_facts(
        self, actor: Actor, fid: str, model: str, text: str
    ) -> list[tuple[str, str | None]] | None:
        async with self._uow_factory() as uow:
            known = await self._known(uow, actor, fid, text)
            resolved = await self._llm.resolve(uow=uow, actor=actor, model=model)
        listing = "\n".join(f"[{m.id}] {m.content}" for m in known) or "(none)"
        request = ModelRequest(
            model=model,
            messages=[
                PromptMessage("system", _EXTRACT_PROMPT + listing),
                PromptMessage("user", text),
            ],
        )
        try:
            reply = "".join([c.text async for c in resolved.chat_model.stream(request)])
            items = json.loads(reply[reply.find("{") : reply.rfind("}") + 1]).get("facts", [])
        except Exception:  # any model or JSON failure: fall back to rules
            log.info("LLM extraction failed; falling back to rules", exc_info=True)
            return None
        facts: list[tuple[str, str | None]] = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and str(item.get("fact") or "").strip():
                replaces = item.get("replaces")
                facts.append((str(item["fact"]).strip(), str(replaces) if replaces else None))
        return facts
