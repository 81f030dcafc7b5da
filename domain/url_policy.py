"""Which network destinations Memoria may dial out to (the SSRF policy), decided purely.

Every adapter that connects somewhere a user or an admin named (webhooks, LLM providers,
IMAP sources, the embeddings service) resolves the host first and asks
:meth:`OutboundPolicy.refusal` about *each* resolved address; the connection then goes to
a checked address, never to a second look-up of the name. The decision is on addresses, not
on how the host was written, so ``2130706433``, ``0x7f000001`` and ``[::ffff:127.0.0.1]``
are refused as what they resolve to: 127.0.0.1.

An address is public when :attr:`ipaddress.IPv4Address.is_global` holds (this excludes
100.64.0.0/10, where some clouds keep their metadata service, 169.254.0.0/16, private and
loopback ranges), it is not multicast, and an IPv4 address embedded in an IPv6 one
(IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64) is public too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from domain.errors import BadUserInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
HTTP_SCHEMES = ("http", "https")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a packet to ``ip`` may really reach: IPv4-mapped and -compatible
    (``::ffff:a.b.c.d``, ``::a.b.c.d``), 6to4 (``2002:AABB:CCDD::``), Teredo (server and
    client) and NAT64 (``64:ff9b::a.b.c.d``)."""
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _plainly_public(ip: IPAddress) -> bool:
    # is_global alone lets multicast through on some Python versions (224.0.0.1, ff02::1).
    return ip.is_global and not ip.is_multicast and not ip.is_unspecified


def is_public(address: str | IPAddress) -> bool:
    """Whether ``address`` is a public unicast address, embedded IPv4 included."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if not _plainly_public(ip):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        return all(_plainly_public(inner) for inner in embedded_ipv4(ip))
    return True


def _host_key(host: str) -> str:
    return host.strip().replace("[", "").replace("]", "").rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Public addresses only, unless the operator said otherwise: ``allow_private`` lets
    every address through (tests, a trusted LAN), ``allowed_hosts`` lets named hosts through
    whatever they resolve to (``localhost`` for an Ollama next to Memoria), and
    ``allowed_networks`` lets addresses in those networks through."""

    allow_private: bool = False
    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str], *, allow_private: bool = False) -> OutboundPolicy:
        """Entries are host names, IP addresses or CIDR networks (``localhost``,
        ``127.0.0.1``, ``10.0.0.0/8``, ``[::1]``). ``ValueError`` names a malformed one."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = _host_key(raw)
            if not entry:
                continue
            if "/" in entry or entry[0].isdigit() or ":" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                    continue
                except ValueError:
                    if "/" in entry or ":" in entry:
                        raise ValueError(f"not a host, address or network: {raw!r}") from None
            hosts.add(entry)
        return cls(
            allow_private=allow_private,
            allowed_hosts=frozenset(hosts),
            allowed_networks=tuple(networks),
        )

    def refusal(self, *, host: str, address: str) -> str | None:
        """Why connecting to ``address`` (one of ``host``'s resolved addresses) is refused,
        or ``None`` when it is allowed."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"resolves to an unusable address {address!r}"
        if self.allow_private or is_public(ip) or _host_key(host) in self.allowed_hosts:
            return None
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            candidates += embedded_ipv4(ip)
        for network in self.allowed_networks:
            if any(c.version == network.version and c in network for c in candidates):
                return None
        return f"resolves to a non-public address {ip}"


@dataclass(frozen=True, slots=True)
class OutboundTarget:
    """Where a URL points: the scheme, the host as written (no brackets) and the port."""

    scheme: str
    host: str
    port: int


def parse_target(
    url: str, *, field: str = "url", schemes: tuple[str, ...] = HTTP_SCHEMES
) -> OutboundTarget:
    """Split an outbound URL, refusing other schemes, a missing host, credentials in the URL
    (``http://public@10.0.0.1/`` reads as one host and is another) and a bad port."""
    details = {"field": field}
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise BadUserInput(f"{field} is not a valid URL", details=details) from None
    scheme = parts.scheme.lower()
    if scheme not in schemes or not parts.hostname:
        allowed = "/".join(schemes)
        raise BadUserInput(f"{field} must be an {allowed} URL with a host", details=details)
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise BadUserInput(f"{field} must not carry credentials", details=details)
    if any(c in parts.hostname for c in "\\%\x00 "):
        raise BadUserInput(f"{field} has an invalid host", details=details)
    default = 443 if scheme == "https" else 80
    return OutboundTarget(scheme=scheme, host=parts.hostname, port=port or default)
