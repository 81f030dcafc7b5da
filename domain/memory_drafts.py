"""What callers supply to create or change a memory; the memory service fills in the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class MemoryDraft:
    """What a caller supplies to create a memory; the service fills in the rest.

    ``kind`` None (not given): a draft with a ``speaker``, or whose content starts with a
    speaker label ("Caroline: ..."), is a conversation turn (``episode``), anything else a
    ``fact``; see :func:`domain.services.memories.inferred_kind`."""

    content: str
    source: str = "api"
    occurred_at: datetime | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str | None = None
    speaker: str | None = None


@dataclass(frozen=True, slots=True)
class MemoryPatchInput:
    content: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    occurred_at: datetime | None = None
    importance: float | None = None
