"""Acting on behalf of a named user (the Chat API's ``user_id`` fields)."""

from __future__ import annotations

from domain.entities import Actor
from domain.errors import Forbidden, NotFound
from domain.ports import UnitOfWork


async def act_as(*, uow: UnitOfWork, actor: Actor, user_id: str) -> Actor:
    """The caller itself, or -- for admins only -- the named user. Others get FORBIDDEN."""
    if user_id == actor.user_id:
        return actor
    if not actor.is_admin:
        raise Forbidden("user_id must be the authenticated user's id")
    user = await uow.users.get(user_id)
    if user is None:
        raise NotFound("User not found")
    return Actor(user_id=user.id, role=user.role, via=f"admin:{actor.user_id}")
