"""Token counting with a real tokenizer (HuggingFace ``tokenizers``).

By default the tokenizer is the MiniLM embedder's (shipped with us, nothing is downloaded); a
``tokenizer.json`` path may be given instead. It is a WordPiece vocabulary, not the chat
model's own BPE, so counts are a close estimate of what a provider bills; usage the provider
reports always wins over it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from tokenizers import Tokenizer

from providers.embedders.minilm_weights import tokenizer_json

DEFAULT_NAME = "hf:all-MiniLM-L6-v2"


class HfTokenCounter:
    """Counts tokens of a text (special tokens excluded; no truncation)."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._tokenizer: Tokenizer | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"hf:{self._path.parent.parent.name}" if self._path else DEFAULT_NAME

    def _load(self) -> Tokenizer:
        with self._lock:
            if self._tokenizer is None:
                if self._path is None:
                    tokenizer = Tokenizer.from_str(tokenizer_json())
                else:
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
