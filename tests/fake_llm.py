"""Fake OpenAI-compatible and Anthropic servers over real HTTP on loopback, scripted per test.

Each request takes the next :class:`Reply` from the script (the last one repeats): a status
with headers and a JSON error body, or a token stream with delays, a mid-stream failure or
a hang. Every request body is recorded, and ``disconnected`` is set when a client goes away
before the stream ended.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Reply:
    tokens: list[str] = field(default_factory=lambda: ["Hello", " there", "!"])
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    first_delay: float = 0.0  # before the first token
    delay: float = 0.0  # between tokens
    fail_after: int | None = None  # break the connection after this many tokens
    hang: float = 0.0  # sleep this long before sending anything at all
    error_event_after: int | None = None  # send an in-band error event after n tokens
    prompt_tokens: int = 11
    report_usage: bool = True


class BrokenStream(Exception):
    """Raised inside the streaming body: uvicorn drops the connection mid-response."""


def _is_extraction(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or [{}]
    first = body.get("system") or messages[0].get("content") or ""
    return isinstance(first, str) and first.startswith("Extract durable facts")


@dataclass
class FakeLLM:
    replies: list[Reply] = field(default_factory=lambda: [Reply()])
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    disconnected_at: float | None = None
    sent_at: list[float] = field(default_factory=list)  # monotonic time of each token sent

    def script(self, *replies: Reply) -> FakeLLM:
        self.replies = list(replies)
        self.requests.clear()
        self.headers.clear()
        self.disconnected = asyncio.Event()
        self.disconnected_at = None
        self.sent_at.clear()
        return self

    def _next(self) -> Reply:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    @property
    def turns(self) -> list[dict[str, Any]]:
        """The chat-turn requests, without the background fact-extraction calls that the
        server makes after a reply (they may land between two turns)."""
        return [body for body in self.requests if not _is_extraction(body)]

    @property
    def turn_headers(self) -> list[dict[str, str]]:
        """The headers of the chat-turn requests (as :attr:`turns`)."""
        return [
            h
            for body, h in zip(self.requests, self.headers, strict=True)
            if not _is_extraction(body)
        ]

    def prompt_text(self, index: int = -1) -> str:
        body = self.turns[index]
        parts = [m["content"] for m in body.get("messages", [])]
        if body.get("system"):
            parts.insert(0, body["system"])
        return "\n".join(parts)

    async def _record(self, request: Request) -> tuple[Reply, dict[str, Any]]:
        body = await request.json()
        self.requests.append(body)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        return self._next(), body

    async def _guard(self, frames: AsyncIterator[str], reply: Reply) -> AsyncIterator[str]:
        finished = False
        try:
            if reply.hang:
                await asyncio.sleep(reply.hang)
            async for frame in frames:
                yield frame
            finished = True
        finally:
            if not finished and reply.fail_after is None:
                self.disconnected_at = time.monotonic()
                self.disconnected.set()

    def _error(self, reply: Reply) -> Response:
        return JSONResponse(
            {"error": {"message": f"scripted {reply.status}", "type": "scripted"}},
            status_code=reply.status,
            headers=reply.headers,
        )

    async def openai(self, request: Request) -> Response:
        reply, body = await self._record(request)
        if reply.status != 200:
            return self._error(reply)

        async def frames() -> AsyncIterator[str]:
            def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
                data = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "model": body.get("model"),
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                return f"data: {json.dumps(data)}\n\n"

            yield chunk({"role": "assistant", "content": ""})
            for i, token in enumerate(reply.tokens):
                if reply.fail_after is not None and i == reply.fail_after:
                    raise BrokenStream
                if reply.error_event_after is not None and i == reply.error_event_after:
                    yield 'data: {"error": {"message": "scripted in-band error"}}\n\n'
                    return
                await asyncio.sleep(reply.first_delay if i == 0 else reply.delay)
                self.sent_at.append(time.monotonic())
                yield chunk({"content": token})
            yield chunk({}, "stop")
            if reply.report_usage and (body.get("stream_options") or {}).get("include_usage"):
                usage = {
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": len(reply.tokens),
                    "total_tokens": reply.prompt_tokens + len(reply.tokens),
                }
                yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(self._guard(frames(), reply), media_type="text/event-stream")

    async def anthropic(self, request: Request) -> Response:
        reply, _body = await self._record(request)
        if reply.status != 200:
            return self._error(reply)

        def event(name: str, data: dict[str, Any]) -> str:
            return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"

        async def frames() -> AsyncIterator[str]:
            usage = {"input_tokens": reply.prompt_tokens, "output_tokens": 1}
            yield event("message_start", {"message": {"id": "msg_fake", "usage": usage}})
            yield event("content_block_start", {"index": 0, "content_block": {"type": "text"}})
            for i, token in enumerate(reply.tokens):
                if reply.fail_after is not None and i == reply.fail_after:
                    raise BrokenStream
                if reply.error_event_after is not None and i == reply.error_event_after:
                    yield event("error", {"error": {"type": "overloaded_error", "message": "busy"}})
                    return
                await asyncio.sleep(reply.first_delay if i == 0 else reply.delay)
                self.sent_at.append(time.monotonic())
                delta = {"type": "text_delta", "text": token}
                yield event("content_block_delta", {"index": 0, "delta": delta})
            yield event("content_block_stop", {"index": 0})
            yield event(
                "message_delta",
                {
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": len(reply.tokens)},
                },
            )
            yield event("message_stop", {})

        return StreamingResponse(self._guard(frames(), reply), media_type="text/event-stream")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.openai, methods=["POST"]),
                Route("/v1/messages", self.anthropic, methods=["POST"]),
            ]
        )
