"""Ports for TOTP multi-factor authentication."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class TotpProvider(Protocol):
    """RFC 6238 codes. ``matching_step`` returns the time step a code belongs to (accepting
    one step of clock drift either way), or ``None`` when it matches none."""

    def new_secret(self) -> str: ...

    def provisioning_uri(self, secret: str, *, account: str, issuer: str) -> str: ...

    def matching_step(self, secret: str, code: str, *, at: datetime) -> int | None: ...


@dataclass(frozen=True, slots=True)
class MfaState:
    user_id: str
    pending_secret_encrypted: str | None
    last_used_step: int | None


class MfaRepository(Protocol):
    async def get(self, user_id: str) -> MfaState | None: ...

    async def set_pending(
        self, user_id: str, secret_encrypted: str | None, *, at: datetime
    ) -> None:
        """Store (or clear, with ``None``) a secret awaiting confirmation."""

    async def use_step(self, user_id: str, step: int, *, at: datetime) -> bool:
        """Record ``step`` as used; ``False`` if it (or a later one) was used already.

        Atomic against concurrent logins, so one code admits one login only.
        """
