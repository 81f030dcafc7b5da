"""The OpenAI-compatible embedder against a fake /v1/embeddings server on 127.0.0.1."""

from __future__ import annotations

import numpy as np
import pytest
from fake_embeddings import FakeEmbeddings

from domain.errors import ProviderUnavailable
from providers.embedders.openai_compat import OpenAICompatEmbedder


async def test_detects_dimension_batches_and_normalises(
    fake_embeddings: tuple[FakeEmbeddings, str],
) -> None:
    state, url = fake_embeddings
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


async def test_retries_transient_errors_then_gives_up(
    fake_embeddings: tuple[FakeEmbeddings, str],
) -> None:
    state, url = fake_embeddings
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
