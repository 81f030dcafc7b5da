"""An ensemble of embedders: its cosine is the weighted mean of its parts' cosines."""

from __future__ import annotations

import numpy as np
import pytest

from memoria.runtime import make_embedder, similarity
from memoria.settings import Settings
from providers.embedders.e5_small import E5SmallEmbedder
from providers.embedders.ensemble import EnsembleEmbedder
from providers.embedders.hashing import HashingEmbedder
from providers.embedders.minilm import MiniLMEmbedder

TEXTS = [
    "I am allergic to peanuts and shellfish.",
    "Our cat Miso only eats salmon-flavoured food.",
    "Which foods must I avoid because of allergies?",
    "",
]


async def test_cosines_are_the_weighted_mean_of_the_parts() -> None:
    small, large = HashingEmbedder(64), HashingEmbedder(256)
    ensemble = EnsembleEmbedder([(small, 1.0), (large, 3.0)])
    assert ensemble.dimension == 64 + 256
    assert ensemble.name == "hashing-64*0.25+hashing-256*0.75"
    joined = np.asarray(await ensemble.embed(TEXTS[:3]))
    a = np.asarray(await small.embed(TEXTS[:3]))
    b = np.asarray(await large.embed(TEXTS[:3]))
    np.testing.assert_allclose(np.linalg.norm(joined, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(joined @ joined.T, 0.25 * (a @ a.T) + 0.75 * (b @ b.T), atol=1e-5)
    query = np.asarray(await ensemble.embed_query(TEXTS[2]))
    np.testing.assert_allclose(query, joined[2], atol=1e-6)


async def test_an_empty_text_and_an_empty_batch() -> None:
    ensemble = EnsembleEmbedder([(HashingEmbedder(32), 0.5), (HashingEmbedder(16), 0.5)])
    assert len(await ensemble.embed([])) == 0
    empty = np.asarray(await ensemble.embed([""]))
    assert empty.shape == (1, 48)
    assert np.all(np.isfinite(empty))


@pytest.mark.parametrize(
    "parts",
    [
        [(HashingEmbedder(8), 1.0)],
        [(HashingEmbedder(8), 1.0), (HashingEmbedder(16), 0.0)],
        [(HashingEmbedder(8), 1.0), (HashingEmbedder(16), float("nan"))],
    ],
)
def test_refuses_a_single_part_or_a_weight_that_is_not_positive(
    parts: list[tuple[HashingEmbedder, float]],
) -> None:
    with pytest.raises(ValueError, match="ensemble"):
        EnsembleEmbedder(parts)  # type: ignore[arg-type]


def test_the_setting_builds_minilm_and_e5_with_weighted_thresholds() -> None:
    embedder = make_embedder(Settings(embedder="minilm+e5-small", environment="test").validated())
    assert isinstance(embedder, EnsembleEmbedder)
    (minilm, w1), (e5, w2) = embedder.parts
    assert isinstance(minilm, MiniLMEmbedder)
    assert isinstance(e5, E5SmallEmbedder)
    assert (w1, w2) == pytest.approx((0.2, 0.8))
    assert embedder.dimension == 768
    # Thresholds sit between MiniLM's and e5's, by the same weights.
    mixed, low, high = similarity(embedder), similarity(minilm), similarity(e5)
    assert mixed.near_duplicate == pytest.approx(
        0.2 * low.near_duplicate + 0.8 * high.near_duplicate
    )
    assert low.semantic_trigger < mixed.semantic_trigger < high.semantic_trigger
