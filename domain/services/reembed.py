"""Moving memory fields onto the current embedder, in the background.

Each field records the embedder its vectors came from. After the embedder changes (a new
model, another dimension), a field's old vectors cannot be compared with new query vectors,
so until it is re-embedded it is searched lexically only and ingest skips the vector
near-duplicate check. The re-embedder walks such a field in turn order (conversation turns
lean on the turn before them: :mod:`domain.turn_vectors`), one page per unit of work, and
flips the field's embedder and dimension when the walk is done. The walk is idempotent:
after a crash it simply starts the field again, and memories written meanwhile already carry
vectors from the current embedder. (Which process walks which field, when several share one
database, is the caller's claim: memoria/maintenance.py.)
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.entities import MemoryField
from domain.ports import Embedder, UnitOfWork
from domain.retrieval.settings import RetrievalSettings
from domain.turn_vectors import stored_in_context


@dataclass(frozen=True)
class ReembedStep:
    """What one page did. ``cursor`` is None once the field was switched over."""

    field_id: str
    cursor: str | None
    embedded: int


class ReembedService:
    def __init__(
        self,
        *,
        embedder: Embedder,
        page_size: int = 128,
        retrieval: RetrievalSettings | None = None,
    ) -> None:
        self._embedder = embedder
        self._page_size = max(1, page_size)
        # Turns are stored in context (domain.turn_vectors), as MemoryService writes them.
        self._turn_context_weight = (retrieval or RetrievalSettings()).turn_context_weight

    async def next_field(self, *, uow: UnitOfWork) -> MemoryField | None:
        """A field whose vectors came from another embedder, if any is left."""
        stale = await uow.maintenance.stale_fields(embedder=self._embedder.name, limit=1)
        return stale[0] if stale else None

    async def stale_fields(self, *, uow: UnitOfWork, limit: int) -> list[MemoryField]:
        """Fields whose vectors came from another embedder, in id order."""
        return await uow.maintenance.stale_fields(embedder=self._embedder.name, limit=limit)

    async def is_stale(self, *, uow: UnitOfWork, field: MemoryField) -> bool:
        """Whether ``field`` still waits (another process may have just moved it over)."""
        now = await uow.fields.get(field.id, user_id=field.user_id)
        return now is not None and now.embedder != self._embedder.name

    async def step(self, *, uow: UnitOfWork, field_id: str, after: str = "") -> ReembedStep:
        """Re-embed the next page after ``after``; on an empty page, switch the field over."""
        rows = await uow.maintenance.page(field_id=field_id, after=after, limit=self._page_size)
        if not rows:
            await uow.maintenance.set_field_embedder(
                field_id, embedder=self._embedder.name, dimension=self._embedder.dimension
            )
            return ReembedStep(field_id=field_id, cursor=None, embedded=0)
        vectors = list(await self._embedder.embed([r.content for r in rows]))
        turns = [i for i, r in enumerate(rows) if r.is_turn]
        if turns:
            # The page is in turn order and the turns before it were re-embedded already:
            # each turn leans on the new vector before it, as when it was first written.
            first = rows[turns[0]]
            mixed = await stored_in_context(
                uow.memory_query,
                field_id=field_id,
                user_id=first.user_id,
                own=[vectors[i] for i in turns],
                times=[rows[i].occurred_at for i in turns],
                weight=self._turn_context_weight,
                place_of=first.memory_id,
            )
            for i, vector in zip(turns, mixed, strict=True):
                vectors[i] = vector
        await uow.maintenance.set_embeddings(
            [(r.memory_id, r.content_hash, v) for r, v in zip(rows, vectors, strict=True)]
        )
        return ReembedStep(field_id=field_id, cursor=rows[-1].cursor, embedded=len(rows))
