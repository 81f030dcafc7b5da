"""The OpenAI-compatible embedder against a fake /v1/embeddings server on 127.0.0.1."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from conftest import RunningServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain.errors import ProviderUnavailable
from providers.embedders.openai_compat import OpenAICompatEmbedder


class FakeEmbeddings:
    """Deterministic 12-dimensional vectors (not normalised); can fail on demand."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[int] = []

    async def handle(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append({"body": body, "auth": request.headers.get("authorization")})
        if self.fail_next:
            return JSONResponse({"error": "busy"}, status_code=self.fail_next.pop(0))
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": [b * 0.5 + 1.0 for b in hashlib.sha256(text.encode()).digest()[:12]],
            }
            for i, text in enumerate(body["input"])
        ]
        data.reverse()  # servers may answer out of order; "index" says which is which
        return JSONResponse({"object": "list", "data": data, "model": body["model"]})


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeEmbeddings, str]]:
    state = FakeEmbeddings()
    app = Starlette(routes=[Route("/v1/embeddings", state.handle, methods=["POST"])])
    server = await RunningServer(app).start()
    try:
        yield state, server.url
    finally:
        await server.stop()


async def test_detects_dimension_batches_and_normalises(fake: tuple[FakeEmbeddings, str]) -> None:
    state, url = fake
    embedder = OpenAICompatEmbedder(
        base_url=url, model="fake-embed", api_key="sk-test", batch_size=3
    )
    with pytest.raises(ProviderUnavailable):
        _ = embedder.dimension  # unknown until the server has answered
    assert await embedder.detect() == 12
    assert embedder.name == "openai:fake-embed"
    texts = [f"text number {i}" for i in range(7)]
    vectors = await embedder.embed(texts)
    assert vectors.shape == (7, 12)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    again = await embedder.embed([texts[4]])
    assert np.allclose(again[0], vectors[4], atol=1e-6)  # order restored from "index"
    sizes = [len(r["body"]["input"]) for r in state.requests[1:4]]
    assert sizes == [3, 3, 1]
    assert {r["auth"] for r in state.requests} == {"Bearer sk-test"}
    await embedder.close()


async def test_retries_transient_errors_then_gives_up(fake: tuple[FakeEmbeddings, str]) -> None:
    state, url = fake
    embedder = OpenAICompatEmbedder(base_url=url + "/v1", model="m", retries=1)
    state.fail_next = [503]
    assert (await embedder.embed(["hello"])).shape == (1, 12)
    state.fail_next = [500, 502]
    with pytest.raises(ProviderUnavailable):
        await embedder.embed(["hello"])
    state.fail_next = [401]
    with pytest.raises(ProviderUnavailable, match="401"):
        await embedder.embed(["hello"])
    await embedder.close()
    unreachable = OpenAICompatEmbedder(base_url="http://127.0.0.1:9", model="m", retries=0)
    with pytest.raises(ProviderUnavailable, match="unreachable"):
        await unreachable.embed(["hello"])
    await unreachable.close()
