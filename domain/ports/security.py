"""Secrets at rest and outbound safety, shared by every service that stores a credential
or dials out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class SecretCipher(Protocol):
    """Symmetric encryption of secrets at rest (Fernet in providers.security)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


class UrlGuard(Protocol):
    """Refuses destinations the outbound policy forbids (SSRF): every address the host
    resolves to must be public, unless the operator allowed it (``domain.url_policy``)."""

    async def check(self, url: str, *, field: str = "url") -> None:
        """Raise ``BadUserInput`` (naming ``field``) when the URL is not an allowed http(s)
        destination."""

    async def check_host(self, host: str, port: int, *, field: str = "host") -> None:
        """Raise ``BadUserInput`` (naming ``field``) when ``host`` is not an allowed
        destination (a mail server, for example)."""


class SourceTargetCheck(Protocol):
    """Refuses a data source whose target this server must not reach (a mail host on a
    private address, a folder outside the readable roots) when the source is connected.
    The sync checks again: what a name resolves to, or what a path links to, can change."""

    async def check(self, kind: str, config: Mapping[str, Any]) -> None:
        """Raise ``BadUserInput`` naming the offending config field."""
