"""Layered context assembly, packed to a token budget counted with a real tokenizer.

Layers, in the order they claim the budget:

1. ``procedural``: hints from the user's learnt patterns (a :class:`PatternMatcher` port;
   none by default, the patterns capability plugs one in);
2. ``long_term`` / ``short_term``: memories retrieved from the user's field(s) by
   :meth:`MemoryService.search`, best first (capped at ``memory_share`` of the budget so the
   conversation itself always has room);
3. ``working``: the recent turns of the conversation (or the caller's ``history``), newest
   first, kept in chronological order in the prompt.

The result, a :class:`ContextPack`, says exactly what it used so callers can report it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from domain.entities import Actor, MemoryLayer
from domain.errors import BadUserInput
from domain.llm import PromptMessage, TokenCounter
from domain.ports import UnitOfWork
from domain.services.memories import MemoryService

SYSTEM_PROMPT = (
    "You are a helpful assistant with a long-term memory of this user. Use the memories "
    "below when they are relevant; do not invent memories."
)
_PER_MESSAGE_OVERHEAD = 4  # role markers and separators of chat templates
_COUNT_CACHE_SIZE = 4_096  # texts of at most 2,000 chars: a few MB at worst
_CACHED_TEXT_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class ProceduralHint:
    pattern_id: str
    text: str


class PatternMatcher(Protocol):
    """Finds the user's learnt patterns that apply to a query (procedural memory)."""

    async def match(
        self, *, uow: UnitOfWork, actor: Actor, query: str, limit: int
    ) -> list[ProceduralHint]: ...


class NoPatterns:
    """Default matcher: no procedural layer."""

    async def match(
        self, *, uow: UnitOfWork, actor: Actor, query: str, limit: int
    ) -> list[ProceduralHint]:
        return []


@dataclass(frozen=True, slots=True)
class ContextItem:
    layer: str  # procedural | long_term | short_term | working
    text: str
    tokens: int
    source: str | None = None  # Memory.source, or "conversation" for working turns
    ref_id: str | None = None  # memory, message or pattern id
    role: str | None = None  # for working turns
    score: float | None = None


@dataclass(frozen=True, slots=True)
class ContextPack:
    """What went into the prompt, and the prompt itself."""

    items: list[ContextItem]
    messages: list[PromptMessage]
    tokens: int  # tokens of ``messages`` (whole prompt), by ``tokenizer``
    max_tokens: int
    tokenizer: str
    dropped: int = 0  # candidates that did not fit
    memory_texts: list[str] = field(default_factory=list)

    def count(self, layer: str) -> int:
        return sum(1 for item in self.items if item.layer == layer)

    @property
    def sources(self) -> list[str]:
        seen: dict[str, None] = {}
        for item in self.items:
            if item.source:
                seen.setdefault(item.source, None)
        return list(seen)

    @property
    def memory_ids(self) -> list[str]:
        return [i.ref_id for i in self.items if i.layer in ("long_term", "short_term") and i.ref_id]


class ContextBuilder:
    def __init__(
        self,
        *,
        memories: MemoryService,
        counter: TokenCounter,
        patterns: PatternMatcher | None = None,
        top_k: int = 8,
        working_turns: int = 12,
        memory_share: float = 0.6,
        system_prompt: str = SYSTEM_PROMPT,
    ) -> None:
        self._memories = memories
        self.counter = counter
        self.patterns: PatternMatcher = patterns or NoPatterns()
        self._top_k = top_k
        self._working_turns = working_turns
        self._memory_share = memory_share
        self._system_prompt = system_prompt
        self._counts: dict[str, int] = {}

    def tokens(self, text: str) -> int:
        # The same texts (system prompt, a user's memories, recent turns) are counted turn
        # after turn, and a real tokenizer holds the event loop (and the GIL) while it
        # runs: remember counts of short texts, in a bounded map.
        if len(text) > _CACHED_TEXT_CHARS:
            return self.counter.count(text) + _PER_MESSAGE_OVERHEAD
        known = self._counts.get(text)
        if known is None:
            known = self.counter.count(text) + _PER_MESSAGE_OVERHEAD
            if len(self._counts) >= _COUNT_CACHE_SIZE:
                self._counts.pop(next(iter(self._counts)))  # oldest first (insertion order)
            self._counts[text] = known
        return known

    async def build(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor,
        query: str,
        max_tokens: int,
        field_ids: Sequence[str] = (),
        conversation_id: str | None = None,
        history: Sequence[PromptMessage] | None = None,
        include_memory: bool = True,
    ) -> ContextPack:
        """Pack the layers into ``max_tokens`` (the whole prompt, query included)."""
        if max_tokens < 64:
            raise BadUserInput("maxTokens must be at least 64", details={"field": "maxTokens"})
        header = self._system_prompt
        fixed = self.tokens(header) + self.tokens(query) + self.tokens("Relevant memories:")
        if fixed > max_tokens:
            raise BadUserInput(
                "the message does not fit the model's context window",
                details={"field": "message", "tokens": fixed, "max_tokens": max_tokens},
            )
        budget = max_tokens - fixed
        memory_budget = int(budget * self._memory_share)
        items: list[ContextItem] = []
        dropped = 0
        if include_memory:
            for candidate in await self._memory_candidates(uow, actor, query, field_ids):
                if candidate.tokens <= memory_budget:
                    items.append(candidate)
                    memory_budget -= candidate.tokens
                    budget -= candidate.tokens
                else:
                    dropped += 1
        turns = list(history) if history is not None else []
        refs: list[str | None] = [None] * len(turns)
        if history is None and conversation_id is not None:
            recent = await uow.messages.recent(
                conversation_id=conversation_id, user_id=actor.user_id, limit=self._working_turns
            )
            turns = [PromptMessage(m.role.value, m.content) for m in recent]
            refs = [m.id for m in recent]
        working: list[ContextItem] = []
        for turn, ref in zip(reversed(turns), reversed(refs), strict=True):
            cost = self.tokens(turn.content)
            if cost > budget:
                dropped += 1
                break  # older turns than one that does not fit would break the thread
            budget -= cost
            working.append(
                ContextItem("working", turn.content, cost, "conversation", ref, turn.role)
            )
        working.reverse()
        known = {w.text.strip() for w in working} | {query.strip()}
        items = [i for i in items if i.text.strip() not in known]
        items.extend(working)
        messages = self._messages(items, query)
        tokens = sum(self.tokens(m.content) for m in messages)
        memory_texts = [i.text for i in items if i.layer in ("long_term", "short_term")]
        return ContextPack(
            items=items,
            messages=messages,
            tokens=tokens,
            max_tokens=max_tokens,
            tokenizer=self.counter.name,
            dropped=dropped,
            memory_texts=memory_texts,
        )

    async def _memory_candidates(
        self, uow: UnitOfWork, actor: Actor, query: str, field_ids: Sequence[str]
    ) -> list[ContextItem]:
        out: list[ContextItem] = []
        for hint in await self.patterns.match(uow=uow, actor=actor, query=query, limit=5):
            out.append(
                ContextItem(
                    "procedural", hint.text, self.tokens(hint.text), "pattern", hint.pattern_id
                )
            )
        ids = list(field_ids) or [f.id for f in await uow.fields.list(user_id=actor.user_id)]
        if not ids:
            return out
        hits = await self._memories.search(
            uow=uow, actor=actor, field_ids=ids[:20], query=query, top_k=self._top_k
        )
        for hit in hits:
            if hit.score <= 0:
                continue
            m = hit.memory
            layer = "short_term" if m.layer is MemoryLayer.SHORT_TERM else "long_term"
            out.append(
                ContextItem(
                    layer, m.content, self.tokens(m.content), m.source, m.id, score=hit.score
                )
            )
        return out

    def _messages(self, items: list[ContextItem], query: str) -> list[PromptMessage]:
        procedural = [i.text for i in items if i.layer == "procedural"]
        memories = [i.text for i in items if i.layer in ("long_term", "short_term")]
        system = self._system_prompt
        if procedural:
            system += "\n\nHow this user likes things done:\n" + "\n".join(
                f"- {t}" for t in procedural
            )
        if memories:
            system += "\n\nRelevant memories:\n" + "\n".join(f"- {t}" for t in memories)
        messages = [PromptMessage("system", system)]
        messages.extend(
            PromptMessage(i.role or "user", i.text) for i in items if i.layer == "working"
        )
        messages.append(PromptMessage("user", query))
        return messages
