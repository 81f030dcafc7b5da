"""The LLM adapters against fake OpenAI-compatible and Anthropic servers over real HTTP."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest
from conftest import RunningServer
from fake_llm import FakeLLM, Reply

from domain.errors import BadUserInput, ProviderUnavailable, RateLimited
from domain.llm import GenerationOptions, ModelChunk, ModelRequest, PromptMessage, ProviderEndpoint
from providers.llm.extractive import ExtractiveChatModel
from providers.llm.factory import HttpChatModelFactory
from providers.llm.http_base import HttpSettings
from providers.tokenizer import HfTokenCounter


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeLLM, str]]:
    llm = FakeLLM()
    server = await RunningServer(llm.app()).start()
    try:
        yield llm, server.url
    finally:
        await server.stop()


@pytest.fixture(params=["lean", "httpx"])
async def factory(request: pytest.FixtureRequest) -> AsyncIterator[HttpChatModelFactory]:
    # Every adapter test runs on both OpenAI-compatible transports (sse_client.py, httpx).
    made = HttpChatModelFactory(
        HttpSettings(read_timeout=0.5, retry_pause=0.05), lean=request.param == "lean"
    )
    try:
        yield made
    finally:
        await made.aclose()


def request(**options: object) -> ModelRequest:
    return ModelRequest(
        model="fake-model",
        messages=[PromptMessage("system", "be brief"), PromptMessage("user", "hi")],
        options=GenerationOptions(**options),  # type: ignore[arg-type]
    )


async def collect(model_stream: AsyncIterator[ModelChunk]) -> tuple[str, list[ModelChunk]]:
    chunks = [c async for c in model_stream]
    return "".join(c.text for c in chunks), chunks


def openai(factory: HttpChatModelFactory, url: str, key: str | None = "sk-test"):  # type: ignore[no-untyped-def]
    return factory.for_endpoint(ProviderEndpoint("openai", f"{url}/v1", key))


async def test_openai_streams_tokens_in_order_with_usage_and_options(fake, factory) -> None:
    llm, url = fake
    llm.script(Reply(tokens=["a", "b", "c", "d"], prompt_tokens=42))
    text, chunks = await collect(
        openai(factory, url).stream(request(temperature=0.2, max_tokens=50, stop=("X",)))
    )
    assert text == "abcd"
    assert chunks[-1].prompt_tokens == 42
    assert chunks[-1].completion_tokens == 4
    body = llm.requests[0]
    assert body["stream"] is True
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 50
    assert body["stop"] == ["X"]
    assert "top_p" not in body
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert llm.headers[0]["authorization"] == "Bearer sk-test"


async def test_openai_retries_once_after_429_honouring_retry_after(fake, factory) -> None:
    llm, url = fake
    llm.script(Reply(status=429, headers={"Retry-After": "0.3"}), Reply(tokens=["ok"]))
    started = time.monotonic()
    text, _ = await collect(openai(factory, url).stream(request()))
    assert text == "ok"
    assert len(llm.requests) == 2
    assert time.monotonic() - started >= 0.3


async def test_openai_gives_up_after_second_5xx(fake, factory) -> None:
    llm, url = fake
    llm.script(Reply(status=500))
    with pytest.raises(ProviderUnavailable):
        await collect(openai(factory, url).stream(request()))
    assert len(llm.requests) == 2


async def test_openai_429_twice_is_rate_limited_with_retry_after(fake, factory) -> None:
    llm, url = fake
    llm.script(Reply(status=429, headers={"Retry-After": "0"}))
    with pytest.raises(RateLimited) as caught:
        await collect(openai(factory, url).stream(request()))
    assert caught.value.code == "RATE_LIMITED"
    assert len(llm.requests) == 2


async def test_openai_400_is_not_retried_and_is_bad_input(fake, factory) -> None:
    llm, url = fake
    llm.script(Reply(status=400))
    with pytest.raises(BadUserInput, match="scripted 400"):
        await collect(openai(factory, url).stream(request()))
    assert len(llm.requests) == 1


async def test_openai_mid_stream_failure_keeps_tokens_then_fails(fake, factory) -> None:
    llm, url = fake
    llm.script(Reply(tokens=["one ", "two ", "three"], fail_after=2))
    got: list[str] = []

    async def consume() -> None:
        async for chunk in openai(factory, url).stream(request()):
            got.append(chunk.text)

    with pytest.raises(ProviderUnavailable):
        await consume()
    assert "".join(got) == "one two "
    assert len(llm.requests) == 1  # never retried once text was received


async def test_openai_in_band_error_event_fails(fake, factory) -> None:
    llm, url = fake
    llm.script(Reply(tokens=["x", "y"], error_event_after=1))
    with pytest.raises(ProviderUnavailable, match="in-band"):
        await collect(openai(factory, url).stream(request()))


async def test_openai_hang_past_read_timeout_fails_fast(fake, factory) -> None:
    llm, url = fake
    llm.script(Reply(hang=5.0))
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match=r"timed out|stopped responding"):
        await collect(openai(factory, url).stream(request()))
    assert time.monotonic() - started < 3.0
    await asyncio.wait_for(llm.disconnected.wait(), 2.0)  # and the request was dropped


async def test_openai_unreachable_endpoint_is_provider_unavailable(factory) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connection refused
        model = factory.for_endpoint(
            ProviderEndpoint("openai", f"http://127.0.0.1:{port}/v1", None)
        )
        with pytest.raises(ProviderUnavailable, match="unreachable"):
            await collect(model.stream(request()))


async def test_closing_the_stream_cancels_the_upstream_request(fake, factory) -> None:
    llm, url = fake
    llm.script(Reply(tokens=[f"t{i} " for i in range(100)], delay=0.05))
    stream = openai(factory, url).stream(request())
    assert (await anext(stream)).text == "t0 "
    closed = time.monotonic()
    await stream.aclose()
    await asyncio.wait_for(llm.disconnected.wait(), 1.0)
    assert llm.disconnected_at is not None
    assert llm.disconnected_at - closed < 1.0


async def test_anthropic_streams_text_usage_and_maps_system(fake, factory) -> None:
    llm, url = fake
    llm.script(Reply(tokens=["Bon", "jour"], prompt_tokens=9))
    model = factory.for_endpoint(ProviderEndpoint("anthropic", url, "ak-test"))
    history = [
        PromptMessage("system", "sys A"),
        PromptMessage("assistant", "earlier reply"),
        PromptMessage("user", "u1"),
        PromptMessage("user", "u2"),
    ]
    text, chunks = await collect(model.stream(ModelRequest(model="claude-fake", messages=history)))
    assert text == "Bonjour"
    assert chunks[-1].prompt_tokens == 9
    assert chunks[-1].completion_tokens == 2
    assert chunks[-1].finish_reason == "stop"
    body = llm.requests[0]
    assert body["system"] == "sys A"
    assert body["max_tokens"] == 1024
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == "u1\n\nu2"
    assert llm.headers[0]["x-api-key"] == "ak-test"
    assert llm.headers[0]["anthropic-version"] == "2023-06-01"


async def test_anthropic_error_event_and_status_mapping(fake, factory) -> None:
    llm, url = fake
    model = factory.for_endpoint(ProviderEndpoint("anthropic", url, "k"))
    llm.script(Reply(tokens=["a", "b"], error_event_after=1))
    with pytest.raises(ProviderUnavailable, match="busy"):
        await collect(model.stream(request()))
    llm.script(Reply(status=401))
    with pytest.raises(ProviderUnavailable, match="API key"):
        await collect(model.stream(request()))
    assert len(llm.requests) == 1  # 401 is not retried


async def test_extractive_model_quotes_memories_and_says_so() -> None:
    model = ExtractiveChatModel()
    req = ModelRequest(model="x", messages=[], memories=["I live in Lisbon", "I like tea"])
    text, chunks = await collect(model.stream(req))
    assert text == "From what you told me:\n- I live in Lisbon\n- I like tea"
    assert len(chunks) > 3  # streamed in pieces
    empty, _ = await collect(model.stream(ModelRequest(model="x", messages=[])))
    assert "no language model is configured" in empty


def test_token_counter_uses_a_real_tokenizer() -> None:
    counter = HfTokenCounter()
    assert counter.count("") == 0
    assert counter.count("hello") == 1
    # WordPiece splits unknown words into several pieces: not a word or character count.
    assert counter.count("antidisestablishmentarianism") > 1
    assert counter.count("hello world") == 2


async def test_lean_client_reuses_kept_alive_connections(fake) -> None:
    llm, url = fake
    made = HttpChatModelFactory(HttpSettings(read_timeout=2.0), lean=True)
    try:
        model = openai(made, url)
        for i in range(3):
            llm.script(Reply(tokens=[f"r{i}", "!"]))
            text, _ = await collect(model.stream(request()))
            assert text == f"r{i}!"
            await asyncio.sleep(0.1)  # the end of the body after [DONE] is read meanwhile
        assert made._lean is not None
        assert sum(len(idle) for idle in made._lean._idle.values()) == 1  # one socket, reused
    finally:
        await made.aclose()


async def test_lean_client_splits_chunks_and_events_across_reads() -> None:
    """Chunk sizes, CRLFs and SSE events cut at every byte still give the same text."""
    from providers.llm.http_base import sse_batches
    from providers.llm.sse_client import StreamResponse, _Connection

    events = [
        b'data: {"choices":[{"delta":{"content":"h\xc3\xa9"}}]}\n\n',
        b'data: {"choices":[{"delta":{"content":"llo"}}]}\n\n',
        b"data: [DONE]\n\n",
    ]
    wire = b"".join(f"{len(e):x};ext=1\r\n".encode() + e + b"\r\n" for e in events)
    wire += b"0\r\nX-Trailer: y\r\n\r\n"
    import httpx

    conn = _Connection()
    response = StreamResponse(
        conn, 200, httpx.Headers({"transfer-encoding": "chunked"}), read_timeout=1.0
    )

    async def feed() -> None:
        for i in range(len(wire)):
            conn.data_received(wire[i : i + 1])
            await asyncio.sleep(0)

    feeder = asyncio.create_task(feed())
    got = [data async for batch in sse_batches(response) for _, data in batch]
    await feeder
    assert got == [e[6:-2].decode() for e in events]
    assert response.complete
