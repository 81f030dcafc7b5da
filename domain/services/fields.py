"""Memory fields (namespaces): named memory spaces of one user."""

from __future__ import annotations

from domain.clock import Clock
from domain.entities import Actor, MemoryField, new_id
from domain.errors import Conflict, NotFound
from domain.policy import Limits, require_text
from domain.ports import Embedder, UnitOfWork, UnitOfWorkFactory

DEFAULT_FIELD = "default"  # where chat's facts go when a conversation names no field


class FieldService:
    def __init__(self, *, embedder: Embedder, clock: Clock, limits: Limits) -> None:
        self._embedder = embedder
        self._clock = clock
        self._limits = limits

    async def create(self, *, uow: UnitOfWork, actor: Actor, name: str) -> MemoryField:
        label = require_text(name, name="name", max_chars=self._limits.max_name_chars)
        if await uow.fields.by_name(label, user_id=actor.user_id) is not None:
            raise Conflict(f"a memory field named {label!r} already exists")
        field = MemoryField(
            id=new_id(),
            user_id=actor.user_id,
            name=label,
            embedder=self._embedder.name,
            dimension=self._embedder.dimension,
            created_at=self._clock.now(),
        )
        await uow.fields.add(field)
        return field

    async def get(self, *, uow: UnitOfWork, actor: Actor, field_id: str) -> MemoryField:
        field = await uow.fields.get(field_id, user_id=actor.user_id)
        if field is None:
            raise NotFound("Memory field not found")
        return field

    async def list(self, *, uow: UnitOfWork, actor: Actor) -> list[MemoryField]:
        return await uow.fields.list(user_id=actor.user_id)

    async def by_namespace(
        self, *, uow: UnitOfWork, actor: Actor, namespace: str, create: bool = False
    ) -> MemoryField:
        """SID's ``namespace`` and Senua's default field are fields looked up by name."""
        field = await uow.fields.by_name(namespace, user_id=actor.user_id)
        if field is not None:
            return field
        if not create:
            raise NotFound("Memory field not found")
        return await self.create(uow=uow, actor=actor, name=namespace)


class FieldsByName:
    """Each user's field named ``name``, created on first use and remembered (background
    jobs ask for it on every chat turn). Two first turns may race to create it: the loser's
    insert fails, and its second look finds the winner's."""

    def __init__(
        self, *, uow_factory: UnitOfWorkFactory, fields: FieldService, name: str = DEFAULT_FIELD
    ) -> None:
        self._uow_factory = uow_factory
        self._fields = fields
        self._name = name
        self._known: dict[str, str] = {}  # user id -> field id

    async def field_id(self, actor: Actor) -> str:
        known = self._known.get(actor.user_id)
        if known is not None:
            return known
        for attempt in (1, 2):
            try:
                async with self._uow_factory() as uow:
                    field = await self._fields.by_namespace(
                        uow=uow, actor=actor, namespace=self._name, create=True
                    )
                    await uow.commit()
                    self._known[actor.user_id] = field.id
                    return field.id
            except Exception:  # the unique (user, name) constraint of a concurrent creator
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def forget(self, user_id: str) -> None:
        """The field was deleted: the next call looks again (and creates it anew)."""
        self._known.pop(user_id, None)
