"""Server-sent events over a chat stream: the first event is awaited *before* the response
starts, so errors raised up front (bad input, unknown model, no balance) still become a
proper status in the route's dialect; after that, failures travel inside the stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse

from domain.errors import MemoriaError, NotFound
from domain.services.chat import ChatEvent

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(data: Any, *, event: str | None = None) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n"


async def open_stream(
    events: AsyncIterator[ChatEvent], *, unknown_model: Callable[[NotFound], MemoriaError] | None
) -> tuple[ChatEvent, AsyncIterator[ChatEvent]]:
    """Pull the first event (errors raise here), return it with the rest of the stream."""
    try:
        first = await anext(events)
    except NotFound as missing:
        if unknown_model is not None and missing.message.startswith("Model"):
            raise unknown_model(missing) from None
        raise
    return first, events


def stream_response(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)


async def close_quietly(events: AsyncIterator[ChatEvent]) -> None:
    """Closing the chat stream early cancels upstream and stores the partial reply."""
    closer = getattr(events, "aclose", None)
    if closer is not None:
        await closer()
