"""httpx transports that dial only addresses the outbound guard checked.

httpcore asks its network backend for a TCP stream to ``(host, port)`` and then starts TLS
with ``server_hostname=host`` itself; the backend here resolves ``host`` through the guard
and connects to a checked IP. TLS (SNI and certificate) and the ``Host`` header keep the
name, the socket goes where the check said: a DNS answer that changes between the check and
the connect cannot redirect it.
"""

from __future__ import annotations

import asyncio
import typing

import httpcore
import httpx

from providers.outbound.guard import OutboundGuard

_SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend behind :meth:`OutboundGuard.resolve`; the addresses are
    tried in resolver order, like a plain connect."""

    def __init__(self, guard: OutboundGuard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's signature
        local_address: str | None = None,
        socket_options: typing.Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._guard.resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        options = list(socket_options or ())
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolve() never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's signature
        socket_options: typing.Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections go through
    :class:`GuardedNetworkBackend`. Never uses a proxy (a proxy would do the dialling)."""

    def __init__(
        self,
        guard: OutboundGuard,
        *,
        limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),
    ) -> None:
        super().__init__(limits=limits, trust_env=False)
        # The parent builds its pool without a way to pass a network backend; the pool is
        # rebuilt with the same settings and ours (httpcore's public constructor).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(guard),
        )


def guarded_client(
    guard: OutboundGuard,
    *,
    timeout: httpx.Timeout | float,
    limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),
    follow_redirects: bool = False,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that can only reach what ``guard`` allows. Redirects stay
    off by default: each hop would be checked, but a caller rarely wants them."""
    return httpx.AsyncClient(
        transport=GuardedTransport(guard, limits=limits),
        timeout=timeout,
        follow_redirects=follow_redirects,
        trust_env=False,
    )
