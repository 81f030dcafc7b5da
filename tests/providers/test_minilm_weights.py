"""The packaged MiniLM weights are read from the ONNX file into the model's own tensor names."""

from __future__ import annotations

import json

import numpy as np
import pytest

from providers.embedders.minilm_weights import (
    CONFIG,
    minilm_tensors,
    read_initializers,
    tokenizer_json,
    weights_file,
)


@pytest.fixture(scope="module")
def tensors() -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    return minilm_tensors()


def test_every_tensor_of_the_encoder_is_named_with_its_shape(
    tensors: dict[str, np.ndarray],
) -> None:  # type: ignore[type-arg]
    h, inner = CONFIG["hidden_size"], CONFIG["intermediate_size"]
    assert tensors["embeddings.word_embeddings.weight"].shape == (CONFIG["vocab_size"], h)
    assert tensors["embeddings.position_embeddings.weight"].shape == (512, h)
    assert tensors["embeddings.token_type_embeddings.weight"].shape == (2, h)
    for layer in range(CONFIG["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        for part in ("query", "key", "value"):
            assert tensors[p + f"attention.self.{part}.weight"].shape == (h, h)
            assert tensors[p + f"attention.self.{part}.bias"].shape == (h,)
        assert tensors[p + "attention.output.dense.weight"].shape == (h, h)
        assert tensors[p + "intermediate.dense.weight"].shape == (inner, h)  # [out, in]
        assert tensors[p + "output.dense.weight"].shape == (h, inner)
    assert all(t.dtype == np.float32 for t in tensors.values())
    assert not [name for name in tensors if name.endswith(("_q", "_scale"))]


def test_matrices_are_the_int8_values_times_their_scales(tensors: dict[str, np.ndarray]) -> None:  # type: ignore[type-arg]
    raw = read_initializers(weights_file())
    quantized = [n for n in raw if n.endswith("_q") and not n.startswith("inner.")]
    first = quantized[0].removesuffix("_q")  # layer 0's query, stored [in, out]
    expected = raw[first + "_q"].astype(np.float32) * raw[first + "_scale"]
    np.testing.assert_array_equal(
        tensors["encoder.layer.0.attention.self.query.weight"], expected.T
    )


def test_the_tokenizer_ships_with_the_package() -> None:
    vocab = json.loads(tokenizer_json())["model"]["vocab"]
    assert len(vocab) == CONFIG["vocab_size"]
    assert vocab["[CLS]"] == 101
