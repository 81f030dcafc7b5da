"""A BERT encoder without torch, and the embedder machinery the BERT models share.

``Bert`` lays the weights out for ``x @ W`` and runs the encoder either in numpy or as an ONNX
graph written here directly (no ``onnx`` package), on onnxruntime's fused kernels.
``BertEmbedder`` is the common :class:`domain.ports.Embedder` body: one worker thread at a lower
priority, length-sorted batches under a token budget, mean pooling over the mask, unit vectors,
and an int8 encoder for single queries. A model module supplies the weights, the tokenizer and its
name (``minilm``, ``e5_small``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import os
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import NDArray

from domain.ports import Vector

F32 = NDArray[np.float32]
Encoder = Callable[[F32, F32], F32]
WordLookup = Callable[[NDArray[np.int64]], F32]
Backend = Literal["auto", "onnxruntime", "numpy"]
_WORKER_NICENESS = 10
# Padded tokens per forward pass (4 texts of 256 tokens, 32 of 32). A pass's activations
# then stay in the CPU's caches (the feed-forward's are 1,536 floats a token): embedding
# 2,048 LoCoMo turns ran at 220-234 texts/s with 512-1,024 tokens a pass, 201-206 with 4,096.
_BATCH_TOKENS = 1024
_LAYER_PARTS = [
    *("attention.output.dense", "attention.output.LayerNorm", "intermediate.dense"),
    *("output.dense", "output.LayerNorm"),
]

# Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), pre-scaled to give Phi(-|x|) directly: numpy
# has no erf, and BERT's GELU is the exact erf form, not the tanh approximation.
_ERF_P = np.float32(0.3275911 / np.sqrt(2.0))
_ERF_A = [
    np.float32(a / 2) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
]


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


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative ints go as 64-bit two's complement, as protobuf does
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def _pb(number: int, value: int | float | str | bytes) -> bytes:
    """One protobuf field (varint, fixed32 float or length-delimited): enough to write ONNX."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    if isinstance(value, float):
        return _varint(number << 3 | 5) + struct.pack("<f", value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _tensor(name: str, array: F32) -> bytes:
    """A float32 TensorProto (dims, data_type 1 = FLOAT, name, little-endian raw_data)."""
    dims = b"".join(_pb(1, d) for d in array.shape)
    return dims + _pb(2, 1) + _pb(8, name) + _pb(9, np.asarray(array, "<f4").tobytes())


def _int8_tensor(name: str, array: NDArray[np.int8]) -> bytes:
    """An int8 TensorProto (data_type 3 = INT8)."""
    dims = b"".join(_pb(1, d) for d in array.shape)
    return dims + _pb(2, 3) + _pb(8, name) + _pb(9, np.asarray(array, np.int8).tobytes())


def _quantized(w: F32) -> tuple[NDArray[np.int8], F32]:
    """Symmetric per-column int8 weights and their scales (``w ~= q * scale``)."""
    scale = np.maximum(np.abs(w).max(axis=0), np.float32(1e-12)) / np.float32(127.0)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def _attribute(name: str, value: int | float) -> bytes:
    """An AttributeProto: ``i`` with type 2 (INT) or ``f`` with type 1 (FLOAT)."""
    is_int = isinstance(value, int)
    return _pb(1, name) + _pb(3 if is_int else 2, value) + _pb(20, 2 if is_int else 1)


def _rows_of(table: F32) -> WordLookup:
    def rows(ids: NDArray[np.int64]) -> F32:
        return table[ids]

    return rows


class Bert:
    """The weights, laid out for ``x @ W`` (transposed once, fused Q/K/V, query pre-scaled).

    ``tensors`` uses Hugging Face's names without the ``bert.`` prefix
    (``encoder.layer.0.attention.self.query.weight``, weights as ``[out, in]``). ``word``
    replaces the word-embedding table with a lookup (e.g. rows dequantized on demand), and
    then ``embeddings.word_embeddings.weight`` may be absent.
    """

    def __init__(
        self,
        tensors: Mapping[str, NDArray[Any]],
        config: Mapping[str, Any],
        max_tokens: int,
        *,
        word: WordLookup | None = None,
    ) -> None:
        w = tensors
        self.hidden, self.heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        scale = np.float32(1.0 / np.sqrt(self.hidden // self.heads))

        def get(name: str, transpose: bool = False, s: np.float32 = np.float32(1.0)) -> F32:
            array = np.asarray(w[name], dtype=np.float32)
            return np.ascontiguousarray((array.T if transpose else array) * s)

        self.word = word or _rows_of(get("embeddings.word_embeddings.weight"))
        # One segment only, so token type 0 folds into the position table.
        self.position = (
            get("embeddings.position_embeddings.weight")[:max_tokens]
            + get("embeddings.token_type_embeddings.weight")[0]
        )
        self.embed_ln = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        # Each layer: qkv_w, qkv_b, out_w, out_b, g1, b1, up_w, up_b, down_w, down_b, g2, b2
        self.layers: list[list[F32]] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv = [
                (p + f"attention.self.{n}", scale if n == "query" else np.float32(1.0))
                for n in ("query", "key", "value")
            ]
            layer = [
                np.concatenate([get(n + ".weight", True, s) for n, s in qkv], axis=1),
                np.concatenate([get(n + ".bias", False, s) for n, s in qkv]),
            ]
            for name in _LAYER_PARTS:
                layer += [get(p + name + ".weight", "dense" in name), get(p + name + ".bias")]
            self.layers.append(layer)

    def embed(self, ids: NDArray[np.int64]) -> F32:
        return _layer_norm(self.word(ids) + self.position[: ids.shape[1]], *self.embed_ln, self.eps)

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
            up: F32 = x @ up_w + up_b
            _gelu_(up)
            down = up @ down_w + down_b
            down += x
            x = _layer_norm(down, g2, b2, self.eps)
        return x.reshape(b, n, h)

    def onnx_encoder(self, *, int8: bool = False) -> bytes:
        """The encoder as an ONNX model, written directly: the ``onnx`` package is not needed.

        With ``int8``, the dense layers after attention (output, up and down projections: 3/4
        of the multiply-adds) run as ``DynamicQuantizeMatMul``: int8 weights per column,
        activations quantized per call. The fused attention keeps float Q/K/V weights."""
        nodes: list[bytes] = []
        weights: list[bytes] = []

        def node(op: str, inputs: list[str], output: str, **attrs: int | float) -> None:
            body = b"".join(_pb(1, i) for i in inputs) + _pb(2, output) + _pb(4, op)
            body += b"".join(_pb(5, _attribute(k, v)) for k, v in attrs.items())
            # ORT's fused kernels, domain com.microsoft
            contrib = op in ("Attention", "BiasGelu", "DynamicQuantizeMatMul")
            nodes.append(_pb(1, body + (_pb(7, "com.microsoft") if contrib else b"")))

        quantized = {2, 6, 8} if int8 else set()  # out_w, up_w, down_w in a layer's list
        int8_names: set[str] = set()  # filled as the weights are written, below

        def matmul(x: str, w: str, out: str) -> None:
            if w in int8_names:
                node("DynamicQuantizeMatMul", [x, w, w + "s", w + "z"], out)
            else:
                node("MatMul", [x, w], out)

        def io(field: int, name: str, elem_type: int, dims: list[int | str]) -> bytes:
            shape = b"".join(_pb(1, _pb(1 if isinstance(d, int) else 2, d)) for d in dims)
            return _pb(field, _pb(1, name) + _pb(2, _pb(1, _pb(1, elem_type) + _pb(2, shape))))

        def dense_norm(x: str, w: str, b: str, residual: str, g: str, beta: str, out: str) -> None:
            matmul(x, w, out + "m")
            node("Add", [out + "m", b], out + "b")
            node("Add", [out + "b", residual], out + "r")
            node("LayerNormalization", [out + "r", g, beta], out, epsilon=self.eps)

        x = "x"
        for i, layer in enumerate(self.layers):
            names = [f"w{i}_{j}" for j in range(len(layer))]
            for j, (n, a) in enumerate(zip(names, layer, strict=True)):
                if j in quantized:
                    q, scale = _quantized(a)
                    int8_names.add(n)
                    weights.append(_pb(5, _int8_tensor(n, q)))
                    weights.append(_pb(5, _tensor(n + "s", scale)))
                    weights.append(_pb(5, _int8_tensor(n + "z", np.zeros(len(scale), np.int8))))
                else:
                    weights.append(_pb(5, _tensor(n, a)))
            qkv_w, qkv_b, out_w, out_b, g1, b1, up_w, up_b, down_w, down_b, g2, b2 = names
            node("Attention", [x, qkv_w, qkv_b, "mask"], f"a{i}", num_heads=self.heads, scale=1.0)
            dense_norm(f"a{i}", out_w, out_b, x, g1, b1, f"s{i}")
            matmul(f"s{i}", up_w, f"u{i}")
            node("BiasGelu", [f"u{i}", up_b], f"g{i}")  # the exact erf GELU
            x = "h" if i == len(self.layers) - 1 else f"x{i}"
            dense_norm(f"g{i}", down_w, down_b, f"s{i}", g2, b2, x)
        inputs = io(11, "x", 1, ["b", "n", self.hidden]) + io(11, "mask", 6, ["b", "n"])
        outputs = io(12, "h", 1, ["b", "n", self.hidden])  # elem_type 1 = FLOAT, 6 = INT32
        graph = [*nodes, _pb(2, "bert"), *weights, inputs, outputs]
        opsets = _pb(8, _pb(2, 17)) + _pb(8, _pb(1, "com.microsoft") + _pb(2, 1))
        # The graph field's key and length, then its parts: the weights are copied once.
        graph_field = _varint(7 << 3 | 2) + _varint(sum(map(len, graph)))
        return b"".join([_pb(1, 8), opsets, graph_field, *graph])


def onnx_encoder(bert: Bert, *, int8: bool = False, threads: int = 0) -> Encoder:
    """``bert`` on an onnxruntime session; ``threads`` 0 leaves the intra-op pool to ORT."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    # Idle workers spinning would take the server's two cores to save under 1 ms of latency.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # ORT's fused SkipLayerNormalization measured ~10% slower here than MatMul+Add+LayerNorm.
    session = ort.InferenceSession(
        bert.onnx_encoder(int8=int8),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=["SkipLayerNormFusion"],
    )

    def encode(x: F32, mask: F32) -> F32:
        return cast(F32, session.run(["h"], {"x": x, "mask": mask.astype(np.int32)})[0])

    return encode


def _yield_to_the_event_loop() -> None:
    """Lower this worker thread's scheduling priority (Linux: nice is per thread, and the
    onnxruntime threads it starts inherit it). On a small machine a forward pass would
    otherwise preempt the event loop relaying streams; now the loop wins a contended core
    and embedding takes what is left."""
    if hasattr(os, "setpriority"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _WORKER_NICENESS)


class BertEmbedder:
    """The body of the offline BERT embedders (:class:`domain.ports.Embedder`), unit vectors.

    A subclass names the model and supplies ``_load_model`` (tokenizer and weights, called
    once, on first use) and ``_token_ids``. ``embed`` runs on one dedicated worker thread, so
    the event loop never blocks and forward passes never fight over the cores.
    ``backend="auto"`` uses onnxruntime when installed, else numpy; ``int8_queries`` sends
    ``embed_query`` through the int8 encoder (onnxruntime only), on one thread. ``threads``
    caps onnxruntime's intra-op threads for everything else (0: its default, one per core).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        max_tokens: int,
        batch_size: int = 32,
        backend: Backend = "auto",
        int8_queries: bool = True,
        threads: int = 0,
        thread_name: str = "bert",
    ) -> None:
        self._config = dict(config)
        self._max_tokens = max_tokens
        if backend == "auto":
            found = importlib.util.find_spec("onnxruntime") is not None
            backend = "onnxruntime" if found else "numpy"
        self.backend = backend  # which encoder runs, once "auto" is resolved
        self._batch_size = batch_size
        self._int8_queries = int8_queries
        self._threads = threads
        self._lock = threading.Lock()
        self._loaded: tuple[Bert, Encoder] | None = None
        self._query_encoder: Encoder | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=thread_name, initializer=_yield_to_the_event_loop
        )

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def dimension(self) -> int:
        return int(self._config["hidden_size"])

    def _load_model(self) -> Bert:
        """Load the tokenizer and the weights (once, under the lock)."""
        raise NotImplementedError

    def _token_ids(self, texts: list[str], *, query: bool) -> list[list[int]]:
        """Token ids of each text, special tokens included, truncated to ``max_tokens``."""
        raise NotImplementedError

    def _load(self) -> tuple[Bert, Encoder]:
        with self._lock:
            if self._loaded is None:
                bert = self._load_model()
                onnx = self.backend == "onnxruntime"
                threads = self._threads
                encoder = onnx_encoder(bert, threads=threads) if onnx else bert.encode_numpy
                # Queries take the int8 encoder (see embed_query) when asked for; without
                # onnxruntime, numpy's float one.
                int8 = onnx and self._int8_queries
                # One thread for queries: a question of ~15 tokens is too small to split, and
                # splitting it cost ~1.2 ms more CPU for ~0.2 ms less wall time (MiniLM,
                # two cores); CPU is what a loaded server runs out of.
                self._query_encoder = onnx_encoder(bert, int8=True, threads=1) if int8 else encoder
                self._loaded = (bert, encoder)
            return self._loaded

    def embed_sync(self, texts: Sequence[str], *, query: bool = False) -> F32:
        """Embed on the calling thread; returns a float32 (len(texts), dimension) array.
        ``query`` embeds the texts as search queries (a model's query prefix or instruction)
        through the query encoder (see :meth:`embed_query`)."""
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of strings, not one string")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        bert, encode = self._loaded or self._load()
        if query and self._query_encoder is not None:
            encode = self._query_encoder
        ids = self._token_ids(list(texts), query=query)
        # Length-sorted batches waste almost nothing on padding, and a token budget keeps one long
        # text from padding a whole batch of short ones; rows go back to input order at the end.
        batches: list[list[int]] = []
        for i in sorted(range(len(ids)), key=lambda i: len(ids[i])):
            width = len(ids[i])  # ascending, so the newcomer sets the padded width
            if not batches or len(batches[-1]) >= min(self._batch_size, _BATCH_TOKENS // width):
                batches.append([])
            batches[-1].append(i)
        for rows in batches:
            lengths = np.array([len(ids[i]) for i in rows])
            batch = np.zeros((len(rows), lengths[-1]), dtype=np.int64)
            for r, i in enumerate(rows):
                batch[r, : lengths[r]] = ids[i]
            mask = (np.arange(lengths[-1]) < lengths[:, None]).astype(np.float32)
            hidden = encode(bert.embed(batch), mask)
            pooled = np.einsum("bnh,bn->bh", hidden, mask) / mask.sum(axis=1, keepdims=True)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[rows] = pooled / np.maximum(norms, np.float32(1e-12))
        return out

    @property
    def loaded(self) -> bool:
        """Whether the weights are loaded (on first use, or by :meth:`load`)."""
        return self._loaded is not None

    async def load(self) -> None:
        """Load the weights and build the encoders now, off the event loop (~0.7 s for
        MiniLM here), instead of in the first request that embeds something."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load)

    async def embed(self, texts: Sequence[str]) -> Sequence[Vector]:
        """Embed off the event loop, one forward pass at a time (see :meth:`embed_sync`).
        The float32 matrix's rows are the port's vectors (numpy is not a typing.Sequence)."""
        loop = asyncio.get_running_loop()
        matrix = await loop.run_in_executor(self._executor, self.embed_sync, texts)
        return cast("Sequence[Vector]", matrix)

    async def embed_query(self, text: str) -> Vector:
        """One search query, embedded as a query and through the query encoder (int8 when
        ``int8_queries``): stored vectors stay float32, as they are embedded once and
        queries on every search."""
        loop = asyncio.get_running_loop()
        matrix = await loop.run_in_executor(
            self._executor, functools.partial(self.embed_sync, [text], query=True)
        )
        return cast("Vector", matrix[0])

    def close(self) -> None:
        """Stop the worker thread (it also stops at interpreter exit)."""
        self._executor.shutdown(wait=False)
