"""Learning from chat: after a reply, facts from the exchange become memories.

It never delays a reply: :meth:`MemoryExtractor.reply_finished` only schedules a background
task with its own unit of work. With a generating model the task asks it for facts (added,
or updated with history when they revise a stored one), at most once per ``llm_interval``
seconds per user; otherwise, and whenever the model call fails, first-person statements are
picked out by rules.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable

from domain.entities import Actor, Conversation, Memory, Message
from domain.errors import NotFound
from domain.llm import EXTRACTIVE_MODEL, ModelRequest, PromptMessage
from domain.memory_drafts import MemoryDraft, MemoryPatchInput
from domain.ports import UnitOfWork, UnitOfWorkFactory
from domain.services.fields import FieldService
from domain.services.llm_admin import LlmAdminService
from domain.services.memories import MemoryService

log = logging.getLogger("memoria.extraction")

DEFAULT_FIELD = "default"
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
    """A ``ReplyObserver`` that turns exchanges into memories in the background."""

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        memories: MemoryService,
        fields: FieldService,
        llm: LlmAdminService,
        llm_interval: float = 60.0,
        concurrency: int = 2,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow_factory = uow_factory
        self._memories = memories
        self._fields = fields
        self._llm = llm
        self._interval = llm_interval
        self._monotonic = monotonic
        self._last_llm_call: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._default_fields: dict[str, str] = {}  # user id -> id of their "default" field
        # Background work must not crowd out replies for database connections.
        self._gate = asyncio.Semaphore(concurrency)

    def reply_finished(
        self,
        *,
        actor: Actor,
        conversation: Conversation,
        field_id: str | None,
        user_message: Message,
        assistant_message: Message,
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run(actor, conversation, field_id, user_message, assistant_message)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        """Extractions queued or running now (a queue depth for monitoring)."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for pending extractions (shutdown and tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _run(
        self,
        actor: Actor,
        conversation: Conversation,
        field_id: str | None,
        user_message: Message,
        assistant_message: Message,
    ) -> None:
        try:
            async with self._gate:
                await self._learn(actor, conversation, field_id, user_message, assistant_message)
        except Exception:  # extraction is best-effort and must never surface to the chat
            log.exception("memory extraction failed for conversation %s", conversation.id)

    async def _learn(
        self,
        actor: Actor,
        conversation: Conversation,
        field_id: str | None,
        user_message: Message,
        assistant_message: Message,
    ) -> None:
        """Short units of work around the model call, so no transaction (nor SQLite's write
        lock) is held while waiting for it."""
        meta = {"conversation_id": conversation.id, "message_id": user_message.id}
        model = assistant_message.model
        use_llm = bool(model) and self._may_call_llm(actor.user_id, str(model))
        rules: list[tuple[str, str | None]] = (
            [] if use_llm else [(f, None) for f in rule_facts(user_message.content)]
        )
        if not use_llm and not rules:
            return  # nothing to learn: no database work at all (the common chit-chat case)
        fid = field_id or await self._default_field(actor)
        facts: list[tuple[str, str | None]] | None = rules
        if use_llm:
            facts = await self._llm_facts(actor, fid, str(model), user_message.content)
            if facts is None:  # the model failed: rules still learn something
                facts = [(f, None) for f in rule_facts(user_message.content)]
        if facts:
            try:
                async with self._uow_factory() as uow:
                    await self._store(uow, actor, fid, facts, meta)
                    await uow.commit()
            except NotFound:
                self._default_fields.pop(actor.user_id, None)  # the field was deleted meanwhile
                raise

    async def _default_field(self, actor: Actor) -> str:
        """The user's default field, created on first use. Two first turns may race to
        create it: the loser's insert fails, and its second look finds the winner's."""
        known = self._default_fields.get(actor.user_id)
        if known is not None:
            return known
        for attempt in (1, 2):
            try:
                async with self._uow_factory() as uow:
                    field = await self._fields.by_namespace(
                        uow=uow, actor=actor, namespace=DEFAULT_FIELD, create=True
                    )
                    await uow.commit()
                    self._default_fields[actor.user_id] = field.id
                    return field.id
            except Exception:  # the unique (user, name) constraint of a concurrent creator
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

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
        return [h.memory for h in hits if h.score > 0]

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
