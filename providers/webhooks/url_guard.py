"""SSRF guard: an outbound URL must resolve only to public addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from domain.errors import BadUserInput


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


class NetworkUrlGuard:
    """Resolves the host and refuses private, loopback, link-local, multicast and reserved
    addresses, unless ``allow_private`` (tests and trusted LANs) or the host is listed in
    ``allowed_hosts``."""

    def __init__(self, *, allow_private: bool = False, allowed_hosts: frozenset[str] = frozenset()):
        self._allow_private = allow_private
        self._allowed = {h.lower() for h in allowed_hosts}

    async def check(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise BadUserInput("url must be an http(s) URL with a host", details={"field": "url"})
        if self._allow_private or host in self._allowed:
            return
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise BadUserInput("url has an invalid port", details={"field": "url"}) from None
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            raise BadUserInput(f"cannot resolve host {host!r}", details={"field": "url"}) from None
        addresses = {info[4][0] for info in infos}
        if not addresses or not all(is_public(str(a)) for a in addresses):
            raise BadUserInput(
                "url resolves to a private or loopback address, which is not allowed",
                details={"field": "url"},
            )
