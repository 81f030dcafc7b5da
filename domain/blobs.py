"""Port for uploaded bytes (attachments), stored per user and addressed by SHA-256."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class BlobRepository(Protocol):
    async def put(self, *, user_id: str, sha256: str, data: bytes, at: datetime) -> None:
        """Store ``data``; storing the same bytes twice for one user keeps one copy."""

    async def get(self, *, user_id: str, sha256: str) -> bytes | None: ...
