"""Resolves a destination's host and keeps only addresses the outbound policy allows.

Adapters connect to the addresses this returns (see :mod:`providers.outbound.transport` for
httpx and the lean stream client, :mod:`providers.connectors.imap` for IMAP), so what was
checked is what is dialled: no second DNS look-up a rebinding name could answer
differently. Every new connection resolves and checks again.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

from domain.errors import BadUserInput, ProviderUnavailable
from domain.url_policy import HTTP_SCHEMES, OutboundPolicy, parse_target


class DestinationRefused(ProviderUnavailable):
    """A connection the outbound policy forbids (at connect time: the name may resolve
    elsewhere than when it was saved). A ``ProviderUnavailable``, so a chat turn answers
    PROVIDER_UNAVAILABLE and a sync or delivery records the reason."""


class DestinationUnresolved(ProviderUnavailable):
    """The host has no address (DNS failure)."""


def _addresses(
    infos: Sequence[tuple[object, object, object, object, tuple[object, ...]]],
) -> list[str]:
    seen: dict[str, None] = {}
    for info in infos:
        seen[str(info[4][0])] = None
    return list(seen)


class OutboundGuard:
    """The outbound policy applied to real names: :meth:`check` for a URL being saved
    (``BadUserInput``), :meth:`resolve` / :meth:`resolve_blocking` for a connection being
    made (``DestinationRefused``). Satisfies :class:`domain.ports.UrlGuard`."""

    def __init__(self, policy: OutboundPolicy | None = None) -> None:
        self.policy = policy or OutboundPolicy()

    def _vet(self, host: str, addresses: list[str]) -> list[str]:
        if not addresses:
            raise DestinationUnresolved(f"cannot resolve host {host!r}")
        for address in addresses:
            reason = self.policy.refusal(host=host, address=address)
            if reason is not None:
                raise DestinationRefused(f"{host} {reason}")
        return addresses

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``; every one of them allowed. Resolved off
        the event loop (the loop's resolver runs in its executor)."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, ValueError):
            raise DestinationUnresolved(f"cannot resolve host {host!r}") from None
        return self._vet(host, _addresses(infos))

    def resolve_blocking(self, host: str, port: int) -> list[str]:
        """:meth:`resolve` for code already on a worker thread (``imaplib``)."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, ValueError):
            raise DestinationUnresolved(f"cannot resolve host {host!r}") from None
        return self._vet(host, _addresses(infos))

    async def check(
        self, url: str, *, field: str = "url", schemes: tuple[str, ...] = HTTP_SCHEMES
    ) -> None:
        """Refuse (``BadUserInput`` naming ``field``) a URL about to be saved."""
        target = parse_target(url, field=field, schemes=schemes)
        await self.check_host(target.host, target.port, field=field)

    async def check_host(self, host: str, port: int, *, field: str = "host") -> None:
        """Refuse (``BadUserInput`` naming ``field``) a host about to be saved."""
        try:
            await self.resolve(host, port)
        except ProviderUnavailable as exc:
            raise BadUserInput(f"{field}: {exc.message}", details={"field": field}) from None
