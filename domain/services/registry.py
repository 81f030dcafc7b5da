"""The set of use-case services one deployment runs, handed to every edge (GraphQL, REST).

Both surfaces call the same instances, so authorization, limits and validation cannot drift
between them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.policy import Limits
from domain.ports import UnitOfWorkFactory
from domain.services.auth import AuthService
from domain.services.conversations import ConversationService
from domain.services.fields import FieldService
from domain.services.memories import MemoryService


@dataclass(frozen=True)
class Services:
    uow_factory: UnitOfWorkFactory
    auth: AuthService
    fields: FieldService
    memories: MemoryService
    conversations: ConversationService
    limits: Limits
    health: Callable[[], Awaitable[Mapping[str, Any]]]
    version: str = "0.1.0"
