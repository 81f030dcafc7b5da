"""Conversation turns changed in the middle of a conversation, and the turns after them.

A turn's stored vector leans on the turn before it (:mod:`domain.turn_vectors`). Appending
turns changes no stored vector, but a turn stored before turns already there (a client
sending history out of order), a turn rewritten, moved in time or deleted changes what the
turns after it lean on. :class:`TurnChanges` finds those turns and blends them again
(:func:`domain.turn_vectors.blend_again`), in the same unit of work as the change.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.entities import Memory, MemoryField
from domain.ports import Embedder, UnitOfWork, Vector
from domain.sessions import SESSION_GAP
from domain.turn_vectors import FOLLOWING, TURN_KINDS, blend_again, turns_after


class TurnChanges:
    """``weight``: the turn-context weight turns are stored with (0: nothing to keep)."""

    def __init__(self, *, embedder: Embedder, weight: float) -> None:
        self._embedder = embedder
        self._weight = weight

    def blends(self, field: MemoryField | None) -> bool:
        """Whether ``field``'s turns are stored in context by this embedder (a field
        waiting to be re-embedded is walked in turn order by the re-embedder instead)."""
        return self._weight > 0.0 and field is not None and field.embedder == self._embedder.name

    async def after_insert(
        self, *, uow: UnitOfWork, field: MemoryField, items: Sequence[tuple[Memory, Vector]]
    ) -> None:
        """After ``items`` (memories just stored, with their own vectors) are written: if
        turns stored earlier come after the first new turn (a conversation sent out of
        order), blend again from it through the new turns, the stored ones among them and
        the :data:`FOLLOWING` turns after the last new one. One read when turns arrive in
        order."""
        turns = sorted((m for m, _ in items if m.kind in TURN_KINDS), key=lambda m: m.occurred_at)
        if not turns or not self.blends(field):
            return
        first, last, new = turns[0], turns[-1], {m.id for m in turns}
        count = len(turns) - 1 + FOLLOWING
        while True:
            after = await turns_after(
                uow.memory_query,
                field_id=field.id,
                user_id=field.user_id,
                memory_id=first.id,
                count=count,
                span=last.occurred_at - first.occurred_at + FOLLOWING * SESSION_GAP,
            )
            if all(m in new for m in after):
                return  # appended: no stored turn leans on a new one
            if last.id in after or len(after) < count:
                break
            count += sum(m not in new for m in after)  # stored turns between new ones
        end = after.index(last.id) + 1 + FOLLOWING if last.id in after else len(after)
        own = {m.id: v for m, v in items if m.id in new}
        await self.blend_again(
            uow=uow, user_id=field.user_id, memory_ids=[first.id, *after[:end]], own=own
        )

    async def in_context(self, *, uow: UnitOfWork, memory: Memory) -> bool:
        """Whether ``memory`` is a turn stored leaning on the turn before it."""
        if memory.kind not in TURN_KINDS or self._weight <= 0.0:
            return False
        return self.blends(await uow.fields.get(memory.field_id, user_id=memory.user_id))

    async def following(self, *, uow: UnitOfWork, memory: Memory) -> list[str]:
        """The turns that lean on the turn ``memory`` (directly or through each other) where
        it is stored now: to blend again once it is changed, moved or gone."""
        return await turns_after(
            uow.memory_query, field_id=memory.field_id, user_id=memory.user_id, memory_id=memory.id
        )

    async def blend_again(
        self,
        *,
        uow: UnitOfWork,
        user_id: str,
        memory_ids: Sequence[str],
        own: dict[str, Vector] | None = None,
    ) -> None:
        """:func:`domain.turn_vectors.blend_again` with this embedder and weight."""
        await blend_again(
            uow,
            self._embedder,
            user_id=user_id,
            memory_ids=memory_ids,
            weight=self._weight,
            own=own,
        )
