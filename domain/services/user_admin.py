"""Operator administration of accounts: list users, change a role or tier, delete a user.

Reached from the operator's command line (``memoria user ...``), never from a client API:
whoever runs it already holds the deployment's data directory or database credentials.
Users are named by username, as an operator types them. The last administrator can be
neither demoted nor deleted, so a deployment always keeps someone who can manage it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from domain.entities import Actor, Role, Tier, User
from domain.errors import Conflict, NotFound
from domain.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class DeletedUser:
    """The removed account and the ids of the memory fields that went with it (so the
    caller can drop per-field caches such as vector index files)."""

    user: User
    field_ids: list[str]


class UserAdminService:
    """Account changes an operator makes; the caller commits the unit of work."""

    async def list_users(self, *, uow: UnitOfWork) -> list[User]:
        return await uow.users.list_all()

    async def get(self, *, uow: UnitOfWork, username: str) -> User:
        user = await uow.users.by_login(username)
        if user is None or user.username.lower() != username.strip().lower():
            # by_login also matches e-mail addresses; an operator names users by username.
            raise NotFound(f"no user named {username.strip()!r}")
        return user

    async def actor_for(self, *, uow: UnitOfWork, username: str) -> Actor:
        """The principal an operator acts as when managing this user's own resources."""
        user = await self.get(uow=uow, username=username)
        return Actor(user_id=user.id, role=user.role, via="operator")

    async def set_role(self, *, uow: UnitOfWork, username: str, role: Role) -> User:
        user = await self.get(uow=uow, username=username)
        if user.role is role:
            return user
        if user.role is Role.ADMIN:
            await self._keep_an_admin(uow=uow, leaving=user)
        changed = replace(user, role=role)
        await uow.users.update(changed)
        return changed

    async def set_tier(self, *, uow: UnitOfWork, username: str, tier: Tier) -> User:
        user = await self.get(uow=uow, username=username)
        if user.tier is tier:
            return user
        changed = replace(user, tier=tier)
        await uow.users.update(changed)
        return changed

    async def delete(self, *, uow: UnitOfWork, username: str) -> DeletedUser:
        user = await self.get(uow=uow, username=username)
        if user.role is Role.ADMIN:
            await self._keep_an_admin(uow=uow, leaving=user)
        fields = await uow.fields.list(user_id=user.id)
        await uow.users.delete(user.id)
        return DeletedUser(user=user, field_ids=[f.id for f in fields])

    async def _keep_an_admin(self, *, uow: UnitOfWork, leaving: User) -> None:
        others = [
            u
            for u in await uow.users.list_all()
            if u.role is Role.ADMIN and u.id != leaving.id and not u.disabled
        ]
        if not others:
            raise Conflict(f"{leaving.username!r} is the last administrator")
