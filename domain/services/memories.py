"""Memories: add (one or a batch), update with history, delete, history and search."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from domain.clock import Clock
from domain.entities import (
    Actor,
    ChangeKind,
    Memory,
    MemoryChange,
    MemoryField,
    MemoryHit,
    MemoryKind,
    MemoryLayer,
    new_id,
)
from domain.errors import BadUserInput, NotFound
from domain.events import MEMORY_CREATED, MEMORY_DELETED, MEMORY_UPDATED, DomainEvent
from domain.memory_drafts import MemoryDraft, MemoryPatchInput
from domain.policy import Limits, check_tags, check_top_k, require_text
from domain.ports import Embedder, UnitOfWork, Vector
from domain.retrieval.engine import HybridRetriever
from domain.retrieval.query_analysis import analyze
from domain.retrieval.settings import RetrievalSettings, SearchFilter
from domain.retrieval.speakers import label_of
from domain.services.dedupe import plan_dedupe
from domain.services.importance import score_importance
from domain.services.quotas import QuotaService
from domain.services.turn_changes import TurnChanges
from domain.turn_vectors import TURN_KINDS, stored_in_context


def memory_event(name: str, memory: Memory, *, at: datetime) -> DomainEvent:
    return DomainEvent(
        name=name,
        user_id=memory.user_id,
        at=at,
        payload={
            "id": memory.id,
            "field_id": memory.field_id,
            "content": memory.content,
            "source": memory.source,
            "layer": memory.layer.value,
            "tags": list(memory.tags),
            "metadata": dict(memory.metadata),
            "occurred_at": memory.occurred_at.isoformat(),
        },
    )


def content_hash(content: str) -> str:
    return hashlib.sha256(" ".join(content.lower().split()).encode()).hexdigest()


# Kinds that state something which stays true: a near-identical restatement updates the
# existing memory. Episodes and messages are events: saying "thanks!" twice is two events.
_DEDUPED_KINDS = frozenset({MemoryKind.FACT, MemoryKind.DOCUMENT_CHUNK})
# Events this important start in the long-term layer instead of waiting for promotion.
_LONG_TERM_IMPORTANCE = 0.7


# Labels that head notes or name a record's field, not lines of a conversation
# ("Reminder: call the dentist", "Birthday: March 3").
_NOTE_LABELS = frozenset(
    {
        *("action", "agenda", "answer", "decision", "edit", "fact", "fw", "fwd", "fyi"),
        *("goal", "idea", "important", "n.b.", "nb", "note", "notes", "p.s.", "plan"),
        *("preference", "ps", "question", "re", "reminder", "status", "subject", "summary"),
        *("task", "tip", "to do", "todo", "update", "warning"),
        *("address", "age", "allergies", "allergy", "anniversary", "birthday", "budget"),
        *("contact", "date", "deadline", "diet", "dob", "email", "event", "hobbies"),
        *("hobby", "job", "link", "location", "meeting", "name", "nickname", "occupation"),
        *("phone", "preferences", "price", "project", "pronouns", "schedule", "time"),
        *("topic", "url", "website", "work"),
    }
)


def inferred_kind(content: str, speaker: str | None) -> MemoryKind:
    """The kind of a memory sent without one (``speaker``: as stored, blank as None). A
    memory that names who said it (a ``speaker``, or a leading "Name: " label other than a
    note's heading such as "Note:" or a record's field such as "Birthday:") is a
    conversation turn: stored in turn order, embedded with the turn before it and searched
    with its neighbours, as an ``EPISODE`` sent as such. Clients that never heard of
    ``kind`` send transcripts this way; stored as facts, LoCoMo's turns scored R@10 0.718
    instead of 0.788 (tune split). Anything else is a ``FACT``."""
    if speaker is not None:
        return MemoryKind.EPISODE
    label = label_of(content)
    if label is not None and label.lower() not in _NOTE_LABELS:
        return MemoryKind.EPISODE
    return MemoryKind.FACT


def _speaker(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = " ".join(raw.split())
    if len(name) > 200:
        raise BadUserInput("speaker is longer than 200 characters", details={"field": "speaker"})
    return name or None


class MemoryService:
    """Ingest (validate, embed in one batch, de-duplicate, score, layer) and hybrid search.

    ``dedupe_threshold`` is the cosine above which a new fact updates the nearest existing
    fact of the field (with history) instead of adding a row; ``retrieval`` sets ranking.
    """

    def __init__(
        self,
        *,
        embedder: Embedder,
        clock: Clock,
        limits: Limits,
        retrieval: RetrievalSettings | None = None,
        dedupe_threshold: float = 0.95,
        quotas: QuotaService | None = None,
    ) -> None:
        self._embedder = embedder
        self._clock = clock
        self._limits = limits
        # Stored memory text counts toward the tier's storage quota; public so the
        # composition root can attach it to a service built elsewhere (metrics wrapper).
        self.quotas = quotas
        self.retrieval = retrieval or RetrievalSettings()
        self.dedupe_threshold = dedupe_threshold

    @property
    def _turns(self) -> TurnChanges:
        return TurnChanges(embedder=self._embedder, weight=self.retrieval.turn_context_weight)

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    async def _field(self, uow: UnitOfWork, actor: Actor, field_id: str) -> MemoryField:
        field = await uow.fields.get(field_id, user_id=actor.user_id)
        if field is None:
            raise NotFound("Memory field not found")
        return field

    def _build(self, actor: Actor, field: MemoryField, draft: MemoryDraft) -> Memory:
        content = require_text(
            draft.content, name="content", max_chars=self._limits.max_content_chars
        )
        speaker = _speaker(draft.speaker)
        try:
            kind = inferred_kind(content, speaker) if draft.kind is None else MemoryKind(draft.kind)
        except ValueError:
            raise BadUserInput(f"unknown memory kind {draft.kind!r}") from None
        source = (draft.source or "api").strip().lower()[:64] or "api"
        now = self._clock.now()
        importance = score_importance(content)
        events = kind in (MemoryKind.MESSAGE, MemoryKind.EPISODE)
        short = events and importance < _LONG_TERM_IMPORTANCE
        return Memory(
            id=new_id(),
            user_id=actor.user_id,
            field_id=field.id,
            content=content,
            kind=kind,
            source=source,
            layer=MemoryLayer.SHORT_TERM if short else MemoryLayer.LONG_TERM,
            importance=importance,
            tags=check_tags(draft.tags, limits=self._limits),
            metadata=dict(draft.metadata or {}),
            occurred_at=draft.occurred_at or now,
            created_at=now,
            updated_at=now,
            content_hash=content_hash(content),
            speaker=speaker,
        )

    def _change(
        self, actor: Actor, memory: Memory, kind: ChangeKind, old: str | None, new: str | None
    ) -> MemoryChange:
        return MemoryChange(
            id=new_id(),
            memory_id=memory.id,
            user_id=memory.user_id,
            change=kind,
            old_content=old,
            new_content=new,
            actor=actor.user_id,
            at=self._clock.now(),
        )

    async def add(
        self, *, uow: UnitOfWork, actor: Actor, field_id: str, draft: MemoryDraft
    ) -> Memory:
        return (await self.add_many(uow=uow, actor=actor, field_id=field_id, drafts=[draft]))[0]

    async def add_many(
        self, *, uow: UnitOfWork, actor: Actor, field_id: str, drafts: Sequence[MemoryDraft]
    ) -> list[Memory]:
        """Validate everything first, embed in one batch, then write: all or nothing."""
        if not drafts:
            raise BadUserInput("at least one memory is required", details={"field": "inputs"})
        if len(drafts) > self._limits.max_batch:
            raise BadUserInput(f"at most {self._limits.max_batch} memories per batch")
        field = await self._field(uow, actor, field_id)
        memories = [self._build(actor, field, draft) for draft in drafts]
        if self.quotas is not None:
            stored = sum(len(m.content.encode()) for m in memories)
            await self.quotas.check_quota(uow=uow, actor=actor, storage_bytes=stored)
        vectors = list(await self._embedder.embed([m.content for m in memories]))
        # A field still waiting to be re-embedded holds vectors of another embedder: they
        # cannot be compared with these, so only exact repeats are caught until it is moved.
        threshold = self.dedupe_threshold if field.embedder == self._embedder.name else 2.0
        results, fresh, merges = await plan_dedupe(
            uow, field, memories, vectors, threshold=threshold, kinds=_DEDUPED_KINDS
        )
        rearranged = await uow.memories.add_many(await self._in_context(uow, field, fresh))
        if field.id in rearranged:  # appended turns lean on no stored turn: nothing to redo
            await self._turns.after_insert(uow=uow, field=field, items=fresh)
        await uow.history.add_many(
            [self._change(actor, m, ChangeKind.ADD, None, m.content) for m, _ in fresh]
        )
        for memory, _ in fresh:
            uow.record(memory_event(MEMORY_CREATED, memory, at=memory.created_at))
        for old, new, vector in merges:
            await uow.memories.update(new, vector)
            await uow.history.add(
                self._change(actor, new, ChangeKind.UPDATE, old.content, new.content)
            )
            uow.record(memory_event(MEMORY_UPDATED, new, at=new.updated_at))
        return results

    async def _in_context(
        self, uow: UnitOfWork, field: MemoryField, items: list[tuple[Memory, Vector]]
    ) -> list[tuple[Memory, Vector]]:
        """``items`` with the conversation turns' vectors blended in turn order with the turn
        before each (:mod:`domain.turn_vectors`); the order the repository numbers them in:
        by time, then as sent."""
        weight = self.retrieval.turn_context_weight
        turns = [i for i, (m, _) in enumerate(items) if m.kind in TURN_KINDS]
        if weight <= 0.0 or not turns or field.embedder != self._embedder.name:
            return items
        turns.sort(key=lambda i: items[i][0].occurred_at)
        mixed = await stored_in_context(
            uow.memory_query,
            field_id=field.id,
            user_id=field.user_id,
            own=[items[i][1] for i in turns],
            times=[items[i][0].occurred_at for i in turns],
            weight=weight,
        )
        out = list(items)
        for i, vector in zip(turns, mixed, strict=True):
            out[i] = (items[i][0], vector)
        return out

    async def promote(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor,
        field_id: str,
        older_than: timedelta = timedelta(days=7),
        min_importance: float = 0.5,
    ) -> int:
        """Move short-term memories that stayed relevant (old enough, important enough)
        to the long-term layer; returns how many moved. Run periodically per field."""
        field = await self._field(uow, actor, field_id)
        now = self._clock.now()
        ids = await uow.memory_query.short_term_ids(
            field_id=field.id,
            user_id=actor.user_id,
            occurred_before=now - older_than,
            min_importance=min_importance,
        )
        for memory in await uow.memories.get_many(ids, user_id=actor.user_id):
            await uow.memories.update(
                replace(memory, layer=MemoryLayer.LONG_TERM, updated_at=now), None
            )
        return len(ids)

    async def get(self, *, uow: UnitOfWork, actor: Actor, memory_id: str) -> Memory:
        memory = await uow.memories.get(memory_id, user_id=actor.user_id)
        if memory is None:
            raise NotFound("Memory not found")
        return memory

    async def update(
        self, *, uow: UnitOfWork, actor: Actor, memory_id: str, patch: MemoryPatchInput
    ) -> Memory:
        memory = await self.get(uow=uow, actor=actor, memory_id=memory_id)
        changes: dict[str, object] = {"updated_at": self._clock.now()}
        own: Vector | None = None
        if patch.content is not None:
            content = require_text(
                patch.content, name="content", max_chars=self._limits.max_content_chars
            )
            changes.update(content=content, content_hash=content_hash(content))
            if content != memory.content:
                own = (await self._embedder.embed([content]))[0]
        if patch.tags is not None:
            changes["tags"] = check_tags(patch.tags, limits=self._limits)
        if patch.metadata is not None:
            changes["metadata"] = dict(patch.metadata)
        moved = patch.occurred_at is not None and patch.occurred_at != memory.occurred_at
        if patch.occurred_at is not None:
            changes["occurred_at"] = patch.occurred_at
        if patch.importance is not None:
            if not 0.0 <= patch.importance <= 1.0:
                raise BadUserInput("importance must be between 0 and 1")
            changes["importance"] = patch.importance
        updated = replace(memory, **changes)  # type: ignore[arg-type]  # keys are Memory fields
        turns = self._turns
        if (own is not None or moved) and await turns.in_context(uow=uow, memory=memory):
            # It leans on the turn before its (new) place, and the turns after its old and
            # new places lean on other vectors now.
            was_after = await turns.following(uow=uow, memory=memory) if moved else []
            await uow.memories.update(updated, None)
            await turns.blend_again(uow=uow, user_id=memory.user_id, memory_ids=was_after)
            now_after = await turns.following(uow=uow, memory=updated)
            await turns.blend_again(
                uow=uow,
                user_id=memory.user_id,
                memory_ids=[memory.id, *now_after],
                own={memory.id: own} if own is not None else None,
            )
        else:
            await uow.memories.update(updated, own)
        await uow.history.add(
            self._change(actor, updated, ChangeKind.UPDATE, memory.content, updated.content)
        )
        uow.record(memory_event(MEMORY_UPDATED, updated, at=updated.updated_at))
        return updated

    async def delete(self, *, uow: UnitOfWork, actor: Actor, memory_id: str) -> bool:
        memory = await self.get(uow=uow, actor=actor, memory_id=memory_id)
        turns = self._turns
        after = (
            await turns.following(uow=uow, memory=memory)
            if await turns.in_context(uow=uow, memory=memory)
            else []
        )
        await uow.memories.delete(memory)
        # They leaned on it: now on the turn before it.
        await turns.blend_again(uow=uow, user_id=memory.user_id, memory_ids=after)
        await uow.history.add(self._change(actor, memory, ChangeKind.DELETE, memory.content, None))
        uow.record(memory_event(MEMORY_DELETED, memory, at=self._clock.now()))
        return True

    async def history(self, *, uow: UnitOfWork, actor: Actor, memory_id: str) -> list[MemoryChange]:
        changes = await uow.history.list(memory_id, user_id=actor.user_id)
        if not changes:
            raise NotFound("Memory not found")
        return changes

    async def _query_vector(self, text: str) -> Vector:
        return await self._embedder.embed_query(text)

    async def search(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor,
        field_ids: Sequence[str],
        query: str,
        top_k: int = 10,
        filter: SearchFilter | None = None,
        settings: RetrievalSettings | None = None,
    ) -> list[MemoryHit]:
        """Hybrid search (see :mod:`domain.retrieval`); ``settings`` overrides the ranking
        for one call (benchmarks compare modes with it)."""
        text = require_text(query, name="query", max_chars=self._limits.max_content_chars)
        check_top_k(top_k, limits=self._limits)
        if not field_ids:
            return []  # a user with no field yet: nothing to search, nothing to embed
        chosen = settings or self.retrieval
        # The query is embedded while the fields are read and the lexical search runs (the
        # retriever awaits it only for the dense search); it is dropped if no field has
        # vectors of this embedder after all.
        vector: asyncio.Task[Vector] | None = None
        if chosen.mode != "lexical":
            vector = asyncio.ensure_future(self._query_vector(text))
        try:
            fields = await uow.fields.get_many(field_ids, user_id=actor.user_id)
            if len(fields) != len(set(field_ids)):
                raise NotFound("Memory field not found")
        except BaseException:
            if vector is not None:
                _drop(vector)
            raise
        analysis = analyze(text, now=self._clock.now())
        # A field whose vectors came from another embedder (re-embedding pending) is
        # searched lexically only: its vectors are not comparable with this query's.
        comparable = [f for f in fields if f.embedder == self._embedder.name]
        others = [f for f in fields if f.embedder != self._embedder.name]
        if vector is not None and not comparable:
            _drop(vector)
            vector = None
        retriever = HybridRetriever(chosen)
        flt = filter or SearchFilter()
        try:
            hits = await retriever.search(
                uow=uow,
                user_id=actor.user_id,
                fields=comparable,
                analysis=analysis,
                vector=vector,
                flt=flt,
                top_k=top_k,
            )
        finally:
            if vector is not None:
                _drop(vector)
        if others:
            lexical = HybridRetriever(replace(chosen, mode="lexical"))
            hits += await lexical.search(
                uow=uow,
                user_id=actor.user_id,
                fields=others,
                analysis=analysis,
                vector=None,
                flt=flt,
                top_k=top_k,
            )
            hits.sort(key=lambda hit: -hit.score)
        return hits[:top_k]


def _drop(task: asyncio.Task[Vector]) -> None:
    """Cancel a query embedding no longer needed, or consume its outcome if it ended (an
    embedder error nobody awaits would otherwise be logged as never retrieved)."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()
