"""Secrets at rest and outbound safety, shared by every service that stores a credential
or dials out."""

from __future__ import annotations

from typing import Protocol


class SecretCipher(Protocol):
    """Symmetric encryption of secrets at rest (Fernet in providers.security)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


class UrlGuard(Protocol):
    """Refuses URLs that resolve to private, loopback or link-local addresses (SSRF)."""

    async def check(self, url: str) -> None:
        """Raise ``BadUserInput`` when the URL is not an allowed public http(s) address."""
