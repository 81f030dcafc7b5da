"""Every adapter that dials out goes through the outbound guard at connect time: the
webhook sender, both OpenAI-compatible transports and the Anthropic adapter, the IMAP
connector and the embeddings client. ``localhost`` resolves to loopback, so each is refused
before a byte reaches the real server behind it, and allowed once the operator lists it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from conftest import RunningServer
from fake_embeddings import FakeEmbeddings
from fake_llm import FakeLLM
from imap_server import ImapServer, Mailbox
from worker_support import Receiver

from domain.errors import ProviderUnavailable
from domain.llm import ModelRequest, PromptMessage, ProviderEndpoint
from domain.sources import DataSource, SourceKind, SourceStatus
from domain.url_policy import OutboundPolicy
from providers.connectors.imap import ImapConnector
from providers.embedders.openai_compat import OpenAICompatEmbedder
from providers.llm.factory import HttpChatModelFactory
from providers.llm.http_base import HttpSettings
from providers.outbound.guard import DestinationRefused, OutboundGuard
from providers.webhooks.sender import HttpWebhookSender

STRICT = OutboundGuard()
LOCAL_ALLOWED = OutboundGuard(OutboundPolicy.from_entries(["localhost"]))


def _local(url: str) -> str:
    return url.replace("127.0.0.1", "localhost")


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeLLM, str]]:
    llm = FakeLLM()
    server = await RunningServer(llm.app()).start()
    try:
        yield llm, _local(server.url)
    finally:
        await server.stop()


async def test_webhook_sender_refuses_then_delivers_when_listed(
    receiver: tuple[Receiver, str],
) -> None:
    target, url = receiver
    delivery = {"secret": "s", "event_id": "e1", "event": "memory.created", "body": b"{}"}
    strict = HttpWebhookSender(guard=STRICT, timeout=5)
    refused = await strict.send(url=_local(url), **delivery)  # type: ignore[arg-type]
    await strict.close()
    assert refused.status_code is None
    assert refused.error is not None
    assert refused.error.startswith("refused: localhost resolves to a non-public address")
    assert target.received == []

    listed = HttpWebhookSender(guard=LOCAL_ALLOWED, timeout=5)
    sent = await listed.send(url=_local(url), **delivery)  # type: ignore[arg-type]
    await listed.close()
    assert sent.status_code == 200
    assert len(target.received) == 1


@pytest.mark.parametrize(
    ("kind", "lean"), [("openai", True), ("openai", False), ("anthropic", False)]
)
async def test_chat_models_refuse_at_connect_time(
    fake: tuple[FakeLLM, str], kind: str, lean: bool
) -> None:
    llm, url = fake
    endpoint = ProviderEndpoint(kind, f"{url}/v1" if kind == "openai" else url, "sk-test")
    request = ModelRequest(model="m", messages=[PromptMessage("user", "hi")])
    settings = HttpSettings(read_timeout=2.0, retry_pause=0.01)
    strict = HttpChatModelFactory(settings, lean=lean, guard=STRICT)
    try:
        with pytest.raises(ProviderUnavailable, match="localhost resolves to a non-public"):
            async for _ in strict.for_endpoint(endpoint).stream(request):
                pass
    finally:
        await strict.aclose()
    assert llm.requests == []

    listed = HttpChatModelFactory(settings, lean=lean, guard=LOCAL_ALLOWED)
    try:
        text = "".join([c.text async for c in listed.for_endpoint(endpoint).stream(request)])
    finally:
        await listed.aclose()
    assert text == "Hello there!"


async def test_imap_connector_refuses_a_loopback_mail_host() -> None:
    mailbox = Mailbox()
    mailbox.add(1, subject="hi", body="hello", date="Mon, 1 Jun 2026 10:00:00 +0000")
    imap = await ImapServer(mailbox).start()
    source = DataSource(
        id="s1",
        user_id="u1",
        kind=SourceKind.EMAIL,
        name="mail",
        status=SourceStatus.CONNECTED,
        config={"host": "localhost", "port": imap.port, "ssl": False, "username": mailbox.user},
        credentials_encrypted=None,
        cursor={},
        field_id=None,
        item_count=0,
        created_at=datetime.now(UTC),
    )
    credentials = {"password": mailbox.password}
    try:
        with pytest.raises(DestinationRefused, match="non-public address"):
            async for _ in ImapConnector(guard=STRICT).fetch(
                source=source, credentials=credentials, cursor={}
            ):
                pass
        assert mailbox.logins == 0
        listed = ImapConnector(guard=LOCAL_ALLOWED)
        batches = [b async for b in listed.fetch(source=source, credentials=credentials, cursor={})]
        assert [d.title for b in batches for d in b.documents] == ["Email: hi"]
    finally:
        await imap.stop()


async def test_embeddings_client_refuses_a_loopback_service(
    fake_embeddings: tuple[FakeEmbeddings, str],
) -> None:
    state, url = fake_embeddings
    strict = OpenAICompatEmbedder(base_url=_local(url), model="m", retries=0, guard=STRICT)
    with pytest.raises(ProviderUnavailable, match="MEMORIA_ALLOWED_PRIVATE_HOSTS"):
        await strict.detect()
    await strict.close()
    assert state.requests == []
    listed = OpenAICompatEmbedder(base_url=_local(url), model="m", guard=LOCAL_ALLOWED)
    assert await listed.detect() == 12
    await listed.close()


async def test_cloud_api_client_refuses_then_reaches_when_listed() -> None:
    """The GitHub/Slack/Notion API client dials through the guard too: its base URL and every
    link an API hands back (pagination)."""
    from fake_cloud import FakeCloud

    from providers.connectors.http import ApiClient

    cloud = await RunningServer(FakeCloud().app()).start()
    try:
        base = _local(cloud.url)
        strict = ApiClient(base_url=f"{base}/github", guard=STRICT, attempts=1)
        with pytest.raises(DestinationRefused, match="non-public address"):
            await strict.get("/repos/acme/app/issues", token="static-token")
        listed = ApiClient(base_url=f"{base}/github", guard=LOCAL_ALLOWED, max_wait=2.0)
        assert (await listed.get("/repos/acme/app/issues", token="static-token")).status_code == 200
        # A link back from the API to an address nobody listed is refused all the same.
        with pytest.raises(DestinationRefused, match="non-public address"):
            await listed.get("http://169.254.169.254/latest/meta-data", token="t")
    finally:
        await cloud.stop()
