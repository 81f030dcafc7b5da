"""Relaying a chat stream to an edge that sends frames (WebSocket, SSE), merging the deltas
that pile up behind a slow client instead of queueing one frame each."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from domain.services.chat_events import ChatDelta, ChatEvent


async def coalesced(
    events: AsyncIterator[ChatEvent], *, max_chars: int = 8192
) -> AsyncIterator[ChatEvent]:
    """Relay ``events`` from a task of their own, merging the deltas that pile up while the
    consumer is busy (a slow client, a loaded server) into one delta: the text is the same,
    in the same order, in fewer and larger frames, so a stream never falls behind by the
    per-frame cost. With a fast consumer nothing is merged. A merged delta keeps the
    ``index`` of its first piece. Errors raised by ``events`` are re-raised here; closing this
    generator cancels the task, which closes the turn (partial reply stored) at once."""
    pending: deque[ChatEvent | BaseException | None] = deque()
    wake = asyncio.Event()

    async def pump() -> None:
        try:
            async for event in events:
                pending.append(event)
                wake.set()
        except Exception as exc:  # noqa: BLE001  # handed on: the consumer raises it in its task
            pending.append(exc)
        pending.append(None)
        wake.set()

    task = asyncio.get_running_loop().create_task(pump())
    try:
        while True:
            if not pending:
                wake.clear()
                await wake.wait()
                continue
            item = pending.popleft()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, ChatDelta) and pending and isinstance(pending[0], ChatDelta):
                parts, size = [item.text], len(item.text)
                while pending and isinstance(pending[0], ChatDelta) and size < max_chars:
                    piece = pending.popleft()
                    assert isinstance(piece, ChatDelta)
                    parts.append(piece.text)
                    size += len(piece.text)
                item = ChatDelta(text="".join(parts), index=item.index)
            yield item
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
