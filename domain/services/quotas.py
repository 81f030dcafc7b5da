"""Tier quotas (free: 5 conversations, 1,000 messages, 10 MB), computed from the store.

The services that write what a quota counts call :meth:`QuotaService.check_quota` before the
write, in the same unit of work, so a refused request writes nothing and every edge (GraphQL,
REST, background syncs) meets the same quota: ``ConversationService`` (conversations,
messages, attachments; ``ChatService`` and ``AttachmentService`` go through it) and
``MemoryService`` (stored memory text).
"""

from __future__ import annotations

from domain.entities import Actor, Tier
from domain.errors import Forbidden
from domain.ports import UnitOfWork
from domain.rate_policy import RateLimitPolicy
from domain.services.rate_limits import RateLimitService


class QuotaExceeded(Forbidden):
    """A write that would take the user past their tier's quota (``FORBIDDEN``, REST 403);
    ``details.quota`` names which one."""


class QuotaService:
    """Checks a write against the user's tier quota before it happens."""

    def __init__(self, *, policy: RateLimitPolicy, rate_limits: RateLimitService) -> None:
        self._policy = policy
        self._rate_limits = rate_limits

    async def tier(self, *, uow: UnitOfWork, actor: Actor) -> Tier:
        return await self._rate_limits.tier_of(uow=uow, actor=actor)

    async def check_quota(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor,
        conversations: int = 0,
        messages: int = 0,
        storage_bytes: int = 0,
    ) -> None:
        """Refuse (:class:`QuotaExceeded`) a write that would pass the tier's quota."""
        if not (conversations or messages or storage_bytes):
            return
        tier = await self.tier(uow=uow, actor=actor)
        quota = self._policy.quota_for(tier)
        if quota.unlimited:
            return
        counts = await uow.usage.quota_usage(user_id=actor.user_id)
        checks = (
            ("conversations", conversations, counts.conversations, quota.conversations),
            ("messages", messages, counts.messages, quota.messages),
            ("storage_bytes", storage_bytes, counts.storage_bytes, quota.storage_bytes),
        )
        for name, adding, used, allowed in checks:
            if adding and allowed is not None and used + adding > allowed:
                label = name.replace("_", " ")
                raise QuotaExceeded(
                    f"The {tier.value} tier quota of {allowed} {label} is reached",
                    details={"quota": name, "limit": allowed, "used": used, "tier": tier.value},
                )
