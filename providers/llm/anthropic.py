"""Anthropic Messages API with streaming events (``message_start``, ``content_block_delta``,
``message_delta``, ``message_stop``, ``error``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx

from domain.llm import ModelChunk, ModelRequest
from providers.llm.http_base import HttpSettings, json_or_fail, open_stream, sse_batches

API_VERSION = "2023-06-01"
DEFAULT_ENDPOINT = "https://api.anthropic.com"
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


def _error_of(event: dict[str, Any]) -> str | None:
    if event.get("type") != "error":
        return None
    error = event.get("error") or {}
    return str(error.get("message") or error.get("type") or "error")[:300]


def request_body(request: ModelRequest, *, default_max_tokens: int) -> dict[str, Any]:
    """System messages go to ``system``; the rest must alternate user/assistant, starting
    with the user, so neighbours with the same role are merged."""
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    turns: list[dict[str, str]] = []
    for m in request.messages:
        if m.role == "system":
            continue
        role = "assistant" if m.role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + m.content
        else:
            turns.append({"role": role, "content": m.content})
    if turns and turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": "(conversation continues)"})
    o = request.options
    body: dict[str, Any] = {
        "model": request.model,
        "messages": turns,
        "max_tokens": o.max_tokens or default_max_tokens,
        "stream": True,
    }
    if system:
        body["system"] = system
    optional = {
        "temperature": o.temperature,
        "top_p": o.top_p,
        "stop_sequences": list(o.stop) if o.stop else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


class AnthropicChatModel:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        endpoint: str | None,
        api_key: str | None,
        settings: HttpSettings,
        default_max_tokens: int = 1024,
    ) -> None:
        base = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self._url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        self._client = client
        self._headers = {"anthropic-version": API_VERSION, "Accept": "text/event-stream"}
        if api_key:
            self._headers["x-api-key"] = api_key
        self._settings = settings
        self._default_max_tokens = default_max_tokens

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelChunk, None]:
        body = request_body(request, default_max_tokens=self._default_max_tokens)
        prompt_tokens: int | None = None
        async with open_stream(
            self._client, self._url, body=body, headers=self._headers, settings=self._settings
        ) as response:
            async for batch in sse_batches(response):
                # Everything that arrived in one read becomes one chunk (see sse_batches).
                text, usage_chunk, stop = "", None, False
                for _event, data in batch:
                    payload = json_or_fail(data, _error_of)
                    kind = payload.get("type")
                    if kind == "message_start":
                        usage = (payload.get("message") or {}).get("usage") or {}
                        prompt_tokens = usage.get("input_tokens", prompt_tokens)
                    elif kind == "content_block_delta":
                        delta = payload.get("delta") or {}
                        if delta.get("type") == "text_delta":
                            text += delta.get("text") or ""
                    elif kind == "message_delta":
                        usage = payload.get("usage") or {}
                        reason = (payload.get("delta") or {}).get("stop_reason")
                        usage_chunk = ModelChunk(
                            prompt_tokens=usage.get("input_tokens", prompt_tokens),
                            completion_tokens=usage.get("output_tokens"),
                            finish_reason=_FINISH.get(reason or "", reason),
                        )
                    elif kind == "message_stop":
                        stop = True
                        break
                if text:
                    yield ModelChunk(text=text)
                if usage_chunk is not None:
                    yield usage_chunk
                if stop:
                    return
