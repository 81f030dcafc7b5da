"""Near-duplicate detection at ingest: a restated fact updates the existing memory.

A new memory of a de-duplicated kind whose vector has cosine >= threshold with an existing
memory of the same field (and kind family) becomes an UPDATE of that memory: newest wording,
merged tags and metadata, later ``occurred_at``, importance reinforced and the long-term
layer (being said again is evidence it matters). Identical texts within one batch collapse
to the first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from domain.entities import Memory, MemoryField, MemoryKind, MemoryLayer
from domain.ports import UnitOfWork, Vector

REINFORCEMENT = 0.1

Merge = tuple[Memory, Memory, Vector]  # (before, after, new vector)


def merged(old: Memory, new: Memory) -> Memory:
    return replace(
        old,
        content=new.content,
        content_hash=new.content_hash,
        tags=list(dict.fromkeys([*old.tags, *new.tags])),
        metadata={**old.metadata, **new.metadata},
        occurred_at=max(old.occurred_at, new.occurred_at),
        importance=round(min(1.0, max(old.importance, new.importance) + REINFORCEMENT), 3),
        layer=MemoryLayer.LONG_TERM,
        updated_at=new.updated_at,
    )


async def plan_dedupe(
    uow: UnitOfWork,
    field: MemoryField,
    memories: Sequence[Memory],
    vectors: Sequence[Vector],
    *,
    threshold: float,
    kinds: Collection[MemoryKind],
) -> tuple[list[Memory], list[tuple[Memory, Vector]], list[Merge]]:
    """Split a batch into rows to insert and updates of existing rows.

    Returns (result per input in order, fresh rows with vectors, merges)."""
    results: list[Memory] = list(memories)
    fresh: list[tuple[Memory, Vector]] = []
    checked = [i for i, m in enumerate(memories) if m.kind in kinds]
    nearest: dict[int, list[tuple[str, float]]] = {}
    if checked and threshold <= 1.0:
        found = await uow.vectors.nearest(
            field_id=field.id, vectors=[vectors[i] for i in checked], k=1
        )
        nearest = dict(zip(checked, found, strict=True))
    wanted = {hits[0][0] for hits in nearest.values() if hits and hits[0][1] >= threshold}
    existing = {
        m.id: m
        for m in await uow.memories.get_many(sorted(wanted), user_id=field.user_id)
        if m.kind in kinds and m.field_id == field.id
    }
    first_by_hash: dict[str, Memory] = {}
    merges: dict[str, Merge] = {}
    for i, memory in enumerate(memories):
        if memory.kind in kinds:
            earlier = first_by_hash.get(memory.content_hash)
            if earlier is not None:
                results[i] = earlier
                continue
            hits = nearest.get(i) or []
            target = existing.get(hits[0][0]) if hits and hits[0][1] >= threshold else None
            if target is not None:
                before = merges[target.id][0] if target.id in merges else target
                current = merges[target.id][1] if target.id in merges else target
                after = merged(current, memory)
                merges[target.id] = (before, after, vectors[i])
                results[i] = after
                continue
            first_by_hash[memory.content_hash] = memory
        fresh.append((memory, vectors[i]))
    # Later merges into the same memory superseded earlier result objects: return the last.
    final = {after.id: after for _, after, _ in merges.values()}
    results = [final.get(m.id, m) for m in results]
    return results, fresh, list(merges.values())
