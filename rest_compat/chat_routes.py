"""Chat on the two memory APIs: Senua's ``POST /api/chat`` (JSON or SSE) and MemoryKit's
``/v1/conversations/{id}/query`` and ``/context``. Both render ``ChatService``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import JSONResponse, Response

from domain.policy import Limits
from domain.rate_policy import CHAT, MEMORY_SEARCH
from domain.services.chat import (
    ChatCompleted,
    ChatDelta,
    ChatEvent,
    ChatFailed,
    ChatService,
    ChatStarted,
)
from domain.services.context import ContextPack
from rest_compat.dialects import MEMORYKIT, SENUA
from rest_compat.endpoint import Call, Endpoint, Group
from rest_compat.fields import INT, NUM, STR, STRS, Field, arr, fields, obj
from rest_compat.openai_chat import _failure
from rest_compat.sse import close_quietly, open_stream, sse, stream_response

LAYERS = {
    "working": "WorkingMemory",
    "short_term": "EpisodicMemory",
    "long_term": "SemanticMemory",
    "procedural": "ProceduralMemory",
}
SECTIONS = (
    ("procedural", "=== Procedural Memory ==="),
    ("long_term", "=== Semantic Memory ==="),
    ("short_term", "=== Episodic Memory ==="),
    ("working", "=== Recent Conversation ==="),
)

SENUA_REPLY = obj(
    ["id", "conversation_id", "response", "model", "memory_used", "tokens"],
    id=STR,
    conversation_id=STR,
    response=STR,
    model=STR,
    memory_used=obj(
        ["short_term", "long_term", "sources"], short_term=INT, long_term=INT, sources=STRS
    ),
    tokens=obj(["prompt", "completion"], prompt=INT, completion=INT),
)


def senua_reply(started: ChatStarted, done: ChatCompleted) -> dict[str, Any]:
    return {
        "id": done.message.id,
        "conversation_id": started.conversation_id,
        "response": done.message.content,
        "model": started.model,
        "memory_used": {
            "short_term": done.memory_used.short_term,
            "long_term": done.memory_used.long_term,
            "sources": list(done.memory_used.sources),
        },
        "tokens": {"prompt": done.usage.prompt_tokens, "completion": done.usage.completion_tokens},
    }


async def senua_chat(call: Call) -> Response:
    """Send a message and receive an AI response with personal context"""
    chat: ChatService = call.services.chat
    body = call.body
    events: AsyncIterator[ChatEvent] = chat.stream_reply(
        actor=call.actor,
        message=body["message"],
        conversation_id=body["conversation_id"],
        model=body["model"] or None,
        include_memory=body["include_memory"],
    )
    first, events = await open_stream(events, unknown_model=None)
    assert isinstance(first, ChatStarted)
    if body["stream"]:
        return stream_response(_senua_events(first, events))
    try:
        async for event in events:
            if isinstance(event, ChatFailed):
                raise _failure(event)
            if isinstance(event, ChatCompleted):
                return JSONResponse(senua_reply(first, event))
    finally:
        await close_quietly(events)
    raise RuntimeError("chat stream ended without a terminal event")


async def _senua_events(
    started: ChatStarted, events: AsyncIterator[ChatEvent]
) -> AsyncIterator[str]:
    try:
        yield sse(
            {"conversation_id": started.conversation_id, "model": started.model}, event="start"
        )
        async for event in events:
            if isinstance(event, ChatDelta):
                yield sse({"token": event.text}, event="token")
            elif isinstance(event, ChatCompleted):
                yield sse(senua_reply(started, event), event="done")
            elif isinstance(event, ChatFailed):
                yield sse(SENUA.render(_failure(event))[1], event="error")
    finally:
        await close_quietly(events)


def render_context(pack: ContextPack) -> str:
    parts: list[str] = []
    for layer, title in SECTIONS:
        items = [i for i in pack.items if i.layer == layer]
        if not items:
            continue
        lines = [f"{i.role}: {i.text}" if i.role else f"- {i.text}" for i in items]
        parts.append("\n".join([title, *lines]))
    return "\n\n".join(parts)


async def _pack(
    call: Call, chat: ChatService, query: str, max_tokens: int
) -> tuple[ContextPack, int]:
    started = time.perf_counter()
    async with call.services.uow_factory() as uow:
        pack = await chat.context(
            uow=uow,
            actor=call.actor,
            conversation_id=call.path["conversationId"],
            query=query,
            max_tokens=max_tokens,
        )
    return pack, round((time.perf_counter() - started) * 1000)


async def context(call: Call) -> dict[str, Any]:
    """The layered context a question on this conversation gets"""
    chat: ChatService = call.services.chat
    pack, latency = await _pack(call, chat, call.query["query"], call.query["maxTokens"])
    return {
        "context": render_context(pack),
        "totalTokens": pack.tokens,
        "retrievalLatencyMs": latency,
    }


async def query(call: Call) -> dict[str, Any]:
    """Ask a question answered from this conversation's memory"""
    chat: ChatService = call.services.chat
    question = call.body["question"]
    pack, latency = await _pack(call, chat, question, call.body["maxTokens"])
    done = await chat.reply(
        actor=call.actor, message=question, conversation_id=call.path["conversationId"]
    )
    sources = [
        {
            "type": LAYERS.get(item.layer, "SemanticMemory"),
            "content": item.text,
            "relevanceScore": round(item.score, 4) if item.score is not None else None,
        }
        for item in pack.items
        if item.layer != "working"
    ]
    answer: dict[str, Any] = {"answer": done.message.content, "sources": sources}
    if call.body["includeDebugInfo"]:
        used = [LAYERS[layer] for layer, _title in SECTIONS if pack.count(layer)]
        answer["debugInfo"] = {
            "queryType": "FactRetrieval" if pack.count("long_term") else "Conversational",
            "layersUsed": used,
            "tokensUsed": done.usage.total_tokens,
            "retrievalTimeMs": latency,
        }
    return answer


def endpoints(limits: Limits) -> list[Endpoint]:
    senua = Group(dialect=SENUA, tag="Senua Memory")
    senua.post(
        "/api/chat",
        senua_chat,
        rate_class=CHAT,
        own_transactions=True,
        streams=True,
        body=fields(
            Field("message", required=True, max_length=limits.max_content_chars),
            Field("conversation_id", description="Continue an existing conversation"),
            Field("model", description="Override the default model"),
            Field("include_memory", "boolean", default=True),
            Field("stream", "boolean", default=False, description="Stream tokens as SSE"),
        ),
        quota=lambda _call: {"messages": 2},
        response=SENUA_REPLY,
        errors=(400, 401, 402, 403, 404, 503),
    )
    kit = Group(dialect=MEMORYKIT, tag="MemoryKit")
    kit.post(
        "/v1/conversations/{conversationId}/query",
        query,
        rate_class=CHAT,  # a chat turn, as sendMessage
        own_transactions=True,
        body=fields(
            Field("question", required=True, max_length=limits.max_content_chars),
            Field("maxTokens", "integer", default=2000, minimum=64, maximum=1_000_000),
            Field("includeDebugInfo", "boolean", default=False),
        ),
        quota=lambda _call: {"messages": 2},
        response=obj(
            ["answer", "sources"],
            answer=STR,
            sources=arr(
                obj(
                    ["type", "content"],
                    type=STR,
                    content=STR,
                    relevanceScore={"type": "number", "nullable": True},
                )
            ),
            debugInfo=obj([], queryType=STR, layersUsed=STRS, tokensUsed=INT, retrievalTimeMs=NUM),
        ),
        errors=(400, 401, 403, 404, 503),
    )
    kit.get(
        "/v1/conversations/{conversationId}/context",
        context,
        rate_class=MEMORY_SEARCH,  # as the GraphQL context field
        own_transactions=True,
        query=fields(
            Field("query", required=True),
            Field("maxTokens", "integer", default=2000, minimum=64, maximum=1_000_000),
        ),
        response=obj(
            ["context", "totalTokens", "retrievalLatencyMs"],
            context=STR,
            totalTokens=INT,
            retrievalLatencyMs=INT,
        ),
        errors=(400, 401, 404),
    )
    return senua.endpoints + kit.endpoints
