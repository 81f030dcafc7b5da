"""The built-in ``extractive`` model: answers from retrieved memories, generates nothing.

It lets a fresh deployment chat with no model service at all; its id
(``memoria-extractive-no-llm``) says that the reply is quoted, not generated.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from domain.llm import ModelChunk, ModelRequest

MAX_QUOTED = 3


def compose(memories: list[str]) -> str:
    if not memories:
        return (
            "I have no memories that match this yet. (This is Memoria's built-in extractive "
            "mode: no language model is configured, so I can only quote what you stored.)"
        )
    quoted = "\n".join(f"- {m.strip()}" for m in memories[:MAX_QUOTED])
    return f"From what you told me:\n{quoted}"


class ExtractiveChatModel:
    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelChunk, None]:
        text = compose(list(request.memories))
        words = text.split(" ")
        for i, word in enumerate(words):
            yield ModelChunk(text=word if i == len(words) - 1 else word + " ")
            await asyncio.sleep(0)  # stream like a model: let other tasks run between pieces
        yield ModelChunk(finish_reason="stop")
