"""The offline MiniLM embedder runs the real all-MiniLM-L6-v2 model (the packaged int8 weights,
dequantized), on either backend."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import numpy as np
import pytest

from providers.embedders.minilm import MiniLMEmbedder
from providers.embedders.minilm_weights import CONFIG

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None

# First five components of sentence-transformers' own vectors (torch, same model folder).
REFERENCE = {
    "The cat sits on the mat": [0.1349, -0.0321, -0.0203, 0.0359, -0.0283],
    "A kitten is sitting on a rug": [0.0547, -0.0159, 0.0208, 0.0419, -0.0352],
    "Stock markets fell sharply today": [0.0271, -0.0342, 0.0739, 0.0431, -0.0053],
}

# Lengths from 2 to 256+ tokens, more than one batch, deliberately not sorted.
MIXED = [
    "Where does John live now? He moved to Seattle in 2021 after his divorce.",
    "Hi",
    "",
    "I went to the LGBTQ support group yesterday and it was so powerful, everyone shared stories.",
    " ".join(["Melanie painted a sunrise over the lake last year."] * 40),
    "Tokyo, Kyōto and Ōsaka — naïve café résumé 東京 🚀",
    *[
        f"Turn {i}: {'we talked about hiking and painting ' * (i % 7)}then went home."
        for i in range(36)
    ],
]


@pytest.fixture(
    scope="module",
    params=[
        "numpy",
        pytest.param(
            "onnxruntime",
            marks=pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed"),
        ),
    ],
)
def embedder(request: pytest.FixtureRequest) -> Iterator[MiniLMEmbedder]:
    model = MiniLMEmbedder(backend=request.param)
    yield model
    model.close()


def test_dimension_is_read_from_the_model(embedder: MiniLMEmbedder) -> None:
    assert embedder.dimension == CONFIG["hidden_size"] == 384
    assert embedder.name == "all-MiniLM-L6-v2"
    assert embedder.embed_sync(["hello"]).shape == (1, 384)


def test_vectors_are_float32_and_unit_length(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed_sync(MIXED)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(MIXED), embedder.dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_matches_reference_values_of_the_real_model(embedder: MiniLMEmbedder) -> None:
    # The packaged weights are int8 per output channel: components move by up to ~0.004 (whole
    # vectors stay within a cosine of 0.9987 of the float32 model's on LoCoMo turns).
    vectors = embedder.embed_sync(list(REFERENCE))
    np.testing.assert_allclose(vectors[:, :5], list(REFERENCE.values()), atol=5e-3)


def test_similar_sentences_score_higher_than_unrelated(embedder: MiniLMEmbedder) -> None:
    cat, kitten, stocks = embedder.embed_sync(list(REFERENCE))
    assert float(cat @ kitten) > 0.5
    assert float(cat @ kitten) > float(cat @ stocks) + 0.3
    assert float(cat @ kitten) > float(kitten @ stocks) + 0.3


def test_length_sorted_batching_keeps_input_order(embedder: MiniLMEmbedder) -> None:
    together = embedder.embed_sync(MIXED)
    alone = np.stack([embedder.embed_sync([text])[0] for text in MIXED])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_empty_inputs(embedder: MiniLMEmbedder) -> None:
    assert embedder.embed_sync([]).shape == (0, embedder.dimension)
    (vector,) = embedder.embed_sync([""])
    assert np.isfinite(vector).all()
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_texts_are_truncated_at_256_tokens_like_sentence_transformers(
    embedder: MiniLMEmbedder,
) -> None:
    tail = " And then something else happened."
    sentence = "The quick brown fox jumps over the lazy dog."  # 10 tokens
    medium, long = " ".join([sentence] * 18), " ".join([sentence] * 60)  # ~180, ~600 tokens
    vectors = embedder.embed_sync([medium, medium + tail, long, long + tail])
    assert float(vectors[0] @ vectors[1]) < 0.99999  # the tail still counts at ~190 tokens
    np.testing.assert_allclose(vectors[2], vectors[3], atol=1e-6)  # cut before the tail


def test_a_bare_string_is_refused(embedder: MiniLMEmbedder) -> None:
    with pytest.raises(TypeError):
        embedder.embed_sync("not a list")


@pytest.mark.asyncio
async def test_async_embed_matches_sync(embedder: MiniLMEmbedder) -> None:
    texts = ["What did Caroline say about adoption?", "She went camping in June."]
    vectors = await embedder.embed(texts)
    np.testing.assert_allclose(vectors, embedder.embed_sync(texts), atol=1e-6)


@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed")
def test_backends_agree() -> None:
    numpy_vectors = MiniLMEmbedder(backend="numpy").embed_sync(MIXED)
    ort_vectors = MiniLMEmbedder(backend="onnxruntime").embed_sync(MIXED)
    assert float((numpy_vectors * ort_vectors).sum(axis=1).min()) > 0.99999


@pytest.mark.asyncio
async def test_query_vectors_are_comparable_with_stored_ones(embedder: MiniLMEmbedder) -> None:
    """``embed_query`` may take the int8 path (onnxruntime): its vectors stay close to the
    float32 ones and rank stored texts the same way."""
    stored = embedder.embed_sync(MIXED)
    for i in (0, 3, 5):
        query = np.asarray(await embedder.embed_query(MIXED[i]), dtype=np.float32)
        assert query.dtype == np.float32
        assert query.shape == (embedder.dimension,)
        assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-5
        assert float(query @ stored[i]) > 0.97
        assert int(np.argmax(stored @ query)) == i
    if embedder.backend == "numpy":  # no int8 encoder there: the very same vectors
        np.testing.assert_allclose(await embedder.embed_query(MIXED[0]), stored[0], atol=1e-6)


@pytest.mark.asyncio
async def test_load_builds_the_model_before_the_first_embedding() -> None:
    model = MiniLMEmbedder()
    try:
        assert not model.loaded  # construction only checks that the weights exist
        await model.load()
        assert model.loaded
        vector = await model.embed_query("where is the kettle?")
        assert len(vector) == model.dimension
    finally:
        model.close()
