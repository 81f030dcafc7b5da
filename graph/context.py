"""What resolvers reach through ``info.context``: one :class:`OperationContext` per operation.

A WebSocket connection carries many operations; each gets its own unit of work and its own
DataLoaders, so a loader never serves stale data across operations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from strawberry.dataloader import DataLoader

from domain.entities import Actor, Attachment, MemoryField
from domain.ports import UnitOfWork
from domain.services.registry import Services

# The GraphQL layer's dependencies are exactly the domain's service registry.
GraphDeps = Services


def bearer_token(base: Mapping[str, Any]) -> str | None:
    """Token from the HTTP ``Authorization`` header or the WebSocket ``connection_init``."""
    params = base.get("connection_params") or {}
    if isinstance(params, Mapping):
        raw = params.get("Authorization") or params.get("authorization")
        if not raw and params.get("authToken"):
            return str(params["authToken"])
        if raw:
            return _strip_bearer(str(raw))
    request = base.get("request")
    headers = getattr(request, "headers", None)
    if headers is not None and headers.get("authorization"):
        return _strip_bearer(str(headers["authorization"]))
    return None


def client_address(base: Mapping[str, Any]) -> str:
    """The peer address of the HTTP request or WebSocket (per-address budgets)."""
    client = getattr(base.get("request"), "client", None)
    return str(client.host) if client is not None else "unknown"


def _strip_bearer(value: str) -> str:
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else value.strip()


class OperationContext:
    def __init__(self, deps: GraphDeps, base: Mapping[str, Any]) -> None:
        self.deps = deps
        self.base = base
        self.token = bearer_token(base)
        self._uow: UnitOfWork | None = None
        # Root fields resolve concurrently: without this, two could each open a unit of
        # work and one would leak its connection.
        self._uow_lock = asyncio.Lock()
        self._actor: Actor | None = None
        self.field_loader: DataLoader[str, MemoryField | None] = DataLoader(self._load_fields)
        self.attachment_loader: DataLoader[str, list[Attachment]] = DataLoader(
            self._load_attachments
        )

    async def uow(self) -> UnitOfWork:
        if self._uow is None:
            async with self._uow_lock:
                if self._uow is None:
                    uow = self.deps.uow_factory()
                    self._uow = await uow.__aenter__()
        return self._uow

    async def actor(self) -> Actor:
        if self._actor is None:
            self._actor = await self.deps.auth.authenticate(uow=await self.uow(), token=self.token)
        return self._actor

    async def finish(self, *, commit: bool) -> None:
        """Commit at the operation boundary when it succeeded; otherwise roll everything back."""
        uow, self._uow = self._uow, None
        if uow is None:
            return
        try:
            if commit:
                await uow.commit()
        finally:
            await uow.__aexit__(None, None, None)

    async def _load_fields(self, ids: list[str]) -> list[MemoryField | None]:
        actor = await self.actor()
        found = await (await self.uow()).fields.get_many(ids, user_id=actor.user_id)
        by_id = {f.id: f for f in found}
        return [by_id.get(i) for i in ids]

    async def _load_attachments(self, conversation_ids: list[str]) -> list[list[Attachment]]:
        actor = await self.actor()
        uow = await self.uow()
        found = await uow.attachments.for_conversations(conversation_ids, user_id=actor.user_id)
        grouped: dict[str, list[Attachment]] = {i: [] for i in conversation_ids}
        for attachment in found:
            grouped[attachment.conversation_id].append(attachment)
        return [grouped[i] for i in conversation_ids]
