"""Domain events: facts that other systems (webhooks, subscriptions) may react to.

Services record events on the unit of work; persistence writes them to the outbox in the
same transaction as the change and publishes them in-process after commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.entities import new_id

MESSAGE_CREATED = "message.created"
MEMORY_CREATED = "memory.created"
MEMORY_UPDATED = "memory.updated"
MEMORY_DELETED = "memory.deleted"
PATTERN_DETECTED = "pattern.detected"
SOURCE_SYNCED = "source.synced"
# The LLM catalog or a user's own provider key changed: processes that cache them drop
# their copies (payload: ``provider_id``, and ``user_key`` when only that user's key moved).
LLM_CATALOG_CHANGED = "llm.catalog_changed"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    name: str
    user_id: str
    at: datetime
    payload: dict[str, Any]
    id: str = field(default_factory=new_id)
