"""The outbound guard: the address policy, resolution of odd host spellings, the operator's
allow-list, and the httpx transport that dials only what was checked (real sockets on
loopback, real resolver)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from conftest import RunningServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from domain.errors import BadUserInput
from domain.url_policy import OutboundPolicy, is_public, parse_target
from memoria.integration_settings import IntegrationSettings
from providers.outbound.guard import DestinationRefused, OutboundGuard
from providers.outbound.transport import guarded_client

# Each resolves (the resolver reads decimal, hex and IPv6 forms) to a non-public address.
REFUSED_HOSTS = [
    "169.254.169.254",  # cloud metadata, link-local
    "100.100.100.200",  # cloud metadata in 100.64.0.0/10 (shared address space)
    "2130706433",  # 127.0.0.1 as one decimal number
    "0x7f000001",  # 127.0.0.1 in hex
    "::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "2002:a9fe:a9fe::",  # 6to4 wrapping 169.254.169.254
    "10.0.0.1",
    "127.0.0.1",
    "localhost",
]


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "100.100.100.200",
        "10.0.0.1",
        "127.0.0.1",
        "0.0.0.0",  # noqa: S104  # an address to refuse, not one to bind
        "224.0.0.1",  # multicast: is_global on some Python versions
        "::1",
        "::ffff:127.0.0.1",
        "2002:a9fe:a9fe::",
        "64:ff9b::a9fe:a9fe",  # NAT64 wrapping 169.254.169.254
        "::a9fe:a9fe",  # IPv4-compatible
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "ff02::1",
        "fe80::1%eth0",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public(address)
    assert OutboundPolicy().refusal(host="h", address=address) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "2002:808:808::"])
def test_public_addresses(address: str) -> None:
    assert is_public(address)
    assert OutboundPolicy().refusal(host="h", address=address) is None


@pytest.mark.parametrize("host", REFUSED_HOSTS)
async def test_guard_refuses_what_hosts_resolve_to(host: str) -> None:
    guard = OutboundGuard()
    with pytest.raises(DestinationRefused, match="resolves to a non-public address"):
        await guard.resolve(host, 80)
    url = f"http://[{host}]/x" if ":" in host else f"http://{host}/x"
    with pytest.raises(BadUserInput, match="non-public address") as refused:
        await guard.check(url, field="apiEndpoint")
    assert refused.value.details == {"field": "apiEndpoint"}


async def test_refusal_names_the_resolved_address() -> None:
    with pytest.raises(BadUserInput) as refused:
        await OutboundGuard().check("http://2130706433:8080/v1")
    assert refused.value.message == "url: 2130706433 resolves to a non-public address 127.0.0.1"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://8.8.8.8/", "must be an http/https URL"),
        ("file:///etc/passwd", "must be an http/https URL"),
        ("http:///path", "must be an http/https URL"),
        ("http://8.8.8.8@127.0.0.1/", "must not carry credentials"),
        ("http://user:pw@example.com/", "must not carry credentials"),
        ("http://8.8.8.8:99999/", "not a valid URL"),
    ],
)
def test_url_shapes_refused(url: str, problem: str) -> None:
    with pytest.raises(BadUserInput, match=problem):
        parse_target(url)


def test_parse_target_defaults_ports() -> None:
    assert parse_target("https://Example.com/v1").port == 443
    assert parse_target("http://[::1]:8080/").host == "::1"


async def test_allow_list_names_addresses_and_networks() -> None:
    by_name = OutboundGuard(OutboundPolicy.from_entries(["LOCALHOST"]))
    assert "127.0.0.1" in await by_name.resolve("localhost", 80)
    with pytest.raises(DestinationRefused):
        await by_name.resolve("127.0.0.2", 80)  # the name was allowed, not the address

    by_network = OutboundPolicy.from_entries(["127.0.0.0/8", "[fd00::]/8"])
    assert by_network.refusal(host="x", address="127.0.0.2") is None
    assert by_network.refusal(host="x", address="::ffff:127.0.0.1") is None  # embedded
    assert by_network.refusal(host="x", address="fd12::1") is None
    assert by_network.refusal(host="x", address="10.0.0.1") is not None
    assert by_network.refusal(host="x", address="169.254.169.254") is not None

    everything = OutboundPolicy(allow_private=True)
    assert everything.refusal(host="x", address="169.254.169.254") is None


def test_allow_list_from_the_environment() -> None:
    settings = IntegrationSettings.from_env(
        {"MEMORIA_ALLOWED_PRIVATE_HOSTS": " localhost, 10.1.0.0/16 ,ollama.lan"}
    )
    assert settings.allowed_private_hosts == ("localhost", "10.1.0.0/16", "ollama.lan")
    policy = settings.outbound_policy
    assert policy.allowed_hosts == frozenset({"localhost", "ollama.lan"})
    assert not policy.allow_private
    assert policy.refusal(host="x", address="10.1.2.3") is None
    with pytest.raises(ValueError, match="MEMORIA_ALLOWED_PRIVATE_HOSTS"):
        IntegrationSettings.from_env({"MEMORIA_ALLOWED_PRIVATE_HOSTS": "10.0.0.0/33"})
    assert IntegrationSettings.from_env({}).outbound_policy == OutboundPolicy()


@pytest.fixture
async def echo() -> AsyncIterator[tuple[list[str], int]]:
    """A server on loopback that records the Host header of every request."""
    hosts: list[str] = []

    async def handle(request: Request) -> PlainTextResponse:
        hosts.append(request.headers["host"])
        return PlainTextResponse("hello")

    running = await RunningServer(Starlette(routes=[Route("/", handle)])).start()
    try:
        yield hosts, int(running.url.rsplit(":", 1)[1])
    finally:
        await running.stop()


async def test_transport_refuses_at_connect_time(echo: tuple[list[str], int]) -> None:
    hosts, port = echo
    async with guarded_client(OutboundGuard(), timeout=5) as client:
        for host in ("localhost", "127.0.0.1", "2130706433"):
            with pytest.raises(DestinationRefused, match=r"non-public address 127\.0\.0\.1"):
                await client.get(f"http://{host}:{port}/")
    assert hosts == []  # nothing reached the server


async def test_transport_dials_the_checked_address_keeping_the_name(
    echo: tuple[list[str], int],
) -> None:
    hosts, port = echo
    allowed = OutboundGuard(OutboundPolicy.from_entries(["localhost"]))
    async with guarded_client(allowed, timeout=5) as client:
        response = await client.get(f"http://localhost:{port}/")
    assert response.text == "hello"
    assert hosts == [f"localhost:{port}"]
