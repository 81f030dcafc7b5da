"""Split long text into overlapping chunks on paragraph and sentence boundaries."""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def chunk_text(text: str, *, max_chars: int = 1_500, overlap: int = 150) -> list[str]:
    """Chunks of at most ``max_chars``; each after the first repeats the tail of the one
    before (``overlap`` characters, whole words) so a fact cut in two is still findable."""
    clean = "\n\n".join(p.strip() for p in re.split(r"\n\s*\n", text) if p.strip())
    if len(clean) <= max_chars:
        return [clean] if clean else []
    pieces: list[str] = []
    for paragraph in clean.split("\n\n"):
        if len(paragraph) <= max_chars:
            pieces.append(paragraph)
            continue
        for sentence in _SENTENCE.split(paragraph):
            while len(sentence) > max_chars:  # a run-on with no full stop: cut on a space
                cut = sentence.rfind(" ", 0, max_chars)
                cut = cut if cut > max_chars // 2 else max_chars
                pieces.append(sentence[:cut])
                sentence = sentence[cut:].strip()
            if sentence:
                pieces.append(sentence)
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}\n\n{piece}" if current else piece
        if len(candidate) <= max_chars:
            current = candidate
            continue
        chunks.append(current)
        tail = current[-overlap:]
        tail = tail[tail.find(" ") + 1 :] if " " in tail else ""
        current = f"{tail} {piece}".strip() if len(tail) + len(piece) < max_chars else piece
    if current:
        chunks.append(current)
    return chunks
