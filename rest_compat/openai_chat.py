"""OpenAI chat completions, twice: Sentech's ``/v1/chat/completions`` and SID's
``/v1/memory/chat/completions?namespace=`` (memories of the namespace go into the context and
the exchange is stored there). Both accept the full OpenAI request and answer in OpenAI's
shapes: ``chat.completion``, or ``chat.completion.chunk`` SSE ending with ``data: [DONE]``
(plus a usage chunk with ``stream_options.include_usage``). Errors use OpenAI's body."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import JSONResponse, Response

from domain.errors import BadUserInput, MemoriaError, NotFound
from domain.llm import GenerationOptions, PromptMessage
from domain.policy import Limits
from domain.rate_policy import CHAT
from domain.services.chat import (
    ChatCompleted,
    ChatDelta,
    ChatEvent,
    ChatFailed,
    ChatService,
    ChatStarted,
)
from rest_compat.dialects import OPENAI
from rest_compat.endpoint import Call, Endpoint, Group
from rest_compat.fields import BOOL, INT, OBJ, STR, Field, arr, fields, obj
from rest_compat.sse import close_quietly, open_stream, sse, stream_response

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
FINGERPRINT = "fp_memoria"

USAGE = obj(
    ["prompt_tokens", "completion_tokens", "total_tokens"],
    prompt_tokens=INT,
    completion_tokens=INT,
    total_tokens=INT,
)
COMPLETION = obj(
    ["id", "object", "created", "model", "choices", "usage"],
    id=STR,
    object={"type": "string", "enum": ["chat.completion"]},
    created=INT,
    model=STR,
    system_fingerprint=STR,
    choices=arr(
        obj(
            ["index", "message", "finish_reason"],
            index=INT,
            message=obj(["role", "content"], role=STR, content=STR),
            logprobs={"type": "object", "nullable": True},
            finish_reason=STR,
        )
    ),
    usage=USAGE,
)
MESSAGE_SCHEMA = obj(
    ["role"],
    role={"type": "string", "enum": list(ROLES)},
    content={"oneOf": [STR, arr(OBJ)], "nullable": True},
    name=STR,
)


def _text(content: Any, index: int) -> str:
    """OpenAI content: a string, null, or a list of parts of which text parts count."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict):
                raise BadUserInput(f"messages[{index}].content parts must be objects")
            if part.get("type") == "text":
                if not isinstance(part.get("text"), str):
                    raise BadUserInput(f"messages[{index}].content text must be a string")
                texts.append(part["text"])
        return "\n".join(texts)
    raise BadUserInput(f"messages[{index}].content must be a string or an array")


def parse_messages(raw: list[Any]) -> tuple[str, list[PromptMessage]]:
    """The last user message is the turn; everything before it is the caller's history."""
    parsed: list[PromptMessage] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise BadUserInput("Messages must be a non-empty array", details={"field": "messages"})
        role = item.get("role")
        if role not in ROLES:
            raise BadUserInput(
                f"messages[{index}].role must be one of {', '.join(ROLES)}",
                details={"field": "messages"},
            )
        role = "system" if role == "developer" else role
        parsed.append(PromptMessage(role=role, content=_text(item.get("content"), index)))
    if parsed[-1].role != "user" or not parsed[-1].content.strip():
        raise BadUserInput(
            "The last message must be a non-empty user message", details={"field": "messages"}
        )
    return parsed[-1].content, parsed[:-1]


def options_of(body: dict[str, Any]) -> GenerationOptions:
    stop = body["stop"]
    if isinstance(stop, str):
        stops: tuple[str, ...] | None = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        stops = tuple(stop)
    elif stop is None:
        stops = None
    else:
        raise BadUserInput("stop must be a string or up to 4 strings", details={"field": "stop"})
    return GenerationOptions(
        temperature=body["temperature"],
        top_p=body["top_p"],
        max_tokens=body["max_completion_tokens"] or body["max_tokens"],
        stop=stops,
        presence_penalty=body["presence_penalty"],
        frequency_penalty=body["frequency_penalty"],
        seed=body["seed"],
    )


def _unsupported_model(_missing: NotFound) -> MemoriaError:
    return BadUserInput("Unsupported model", details={"field": "model", "code": "model_not_found"})


def _failure(event: ChatFailed) -> MemoriaError:
    from domain import errors

    kinds: dict[str, type[MemoriaError]] = {
        "BAD_USER_INPUT": errors.BadUserInput,
        "INSUFFICIENT_BALANCE": errors.InsufficientBalance,
        "NOT_FOUND": errors.NotFound,
        "FORBIDDEN": errors.Forbidden,
    }
    return kinds.get(event.code, errors.ProviderUnavailable)(event.message)


class Completion:
    """Accumulates one chat stream into OpenAI fields."""

    def __init__(self, started: ChatStarted) -> None:
        self.id = f"chatcmpl-{started.message_id}"
        self.created = int(started.created_at or time.time())
        self.model = started.model

    def chunk(self, delta: dict[str, Any], finish: str | None, usage: Any = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **({"usage": usage} if usage is not False else {}),
        }


def _usage(done: ChatCompleted) -> dict[str, int]:
    return {
        "prompt_tokens": done.usage.prompt_tokens,
        "completion_tokens": done.usage.completion_tokens,
        "total_tokens": done.usage.total_tokens,
    }


async def complete(call: Call, *, namespace: str | None) -> Response:
    """``namespace``: SID's memory space (created with the turn's first write, so a refused
    request creates nothing), or None for Sentech's."""
    chat: ChatService = call.services.chat
    body = call.body
    message, history = parse_messages(body["messages"])
    if body["n"] not in (None, 1):
        raise BadUserInput("only n=1 is supported", details={"field": "n"})
    options = options_of(body)
    events: AsyncIterator[ChatEvent] = chat.stream_reply(
        actor=call.actor,
        message=message,
        model=body["model"] or None,
        namespace=namespace,
        history=history,
        options=options,
    )
    first, events = await open_stream(events, unknown_model=_unsupported_model)
    assert isinstance(first, ChatStarted)
    completion = Completion(first)
    if body["stream"]:
        include_usage = bool((body["stream_options"] or {}).get("include_usage"))
        return stream_response(_chunks(completion, events, include_usage=include_usage))
    text: list[str] = []
    try:
        async for event in events:
            if isinstance(event, ChatDelta):
                text.append(event.text)
            elif isinstance(event, ChatFailed):
                raise _failure(event)
            elif isinstance(event, ChatCompleted):
                return JSONResponse(
                    {
                        "id": completion.id,
                        "object": "chat.completion",
                        "created": completion.created,
                        "model": completion.model,
                        "system_fingerprint": FINGERPRINT,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "".join(text)},
                                "logprobs": None,
                                "finish_reason": event.finish_reason,
                            }
                        ],
                        "usage": _usage(event),
                    }
                )
    finally:
        await close_quietly(events)
    raise BadUserInput("the chat stream ended without a reply")  # contract says it cannot


async def _chunks(
    completion: Completion, events: AsyncIterator[ChatEvent], *, include_usage: bool
) -> AsyncIterator[str]:
    usage_field: Any = None if include_usage else False
    try:
        yield sse(completion.chunk({"role": "assistant", "content": ""}, None, usage_field))
        async for event in events:
            if isinstance(event, ChatDelta) and event.text:
                yield sse(completion.chunk({"content": event.text}, None, usage_field))
            elif isinstance(event, ChatCompleted):
                yield sse(completion.chunk({}, event.finish_reason, usage_field))
                if include_usage:
                    final = completion.chunk({}, None, _usage(event))
                    final["choices"] = []
                    yield sse(final)
            elif isinstance(event, ChatFailed):
                _status, error = OPENAI.render(_failure(event))
                yield sse(error)
        yield sse("[DONE]")
    finally:
        await close_quietly(events)


async def chat_completions(call: Call) -> Response:
    """Chat completion (OpenAI format) with your memory"""
    return await complete(call, namespace=None)


async def memory_chat_completions(call: Call) -> Response:
    """Chat completion (OpenAI format) with the memory of a namespace"""
    namespace = (call.query["namespace"] or "").strip() or call.config.default_namespace
    return await complete(call, namespace=namespace)


def request_fields(limits: Limits) -> Any:
    return fields(
        Field("model", description="A model id from /api/models (default: the server's)."),
        Field(
            "messages",
            "array",
            required=True,
            missing="Messages must be a non-empty array",
            wrong_type="Messages must be a non-empty array",
            schema={"items": MESSAGE_SCHEMA, "minItems": 1},
        ),
        Field("stream", "boolean", default=False),
        Field("stream_options", "object", schema={"properties": {"include_usage": BOOL}}),
        Field("max_tokens", "integer", minimum=1, maximum=1_000_000),
        Field("max_completion_tokens", "integer", minimum=1, maximum=1_000_000),
        Field("temperature", "number", minimum=0, maximum=2),
        Field("top_p", "number", minimum=0, maximum=1),
        Field("top_k", "integer", minimum=0, maximum=1000, description="Accepted; sampling hint."),
        Field("frequency_penalty", "number", minimum=-2, maximum=2),
        Field("presence_penalty", "number", minimum=-2, maximum=2),
        Field("stop", "any", schema={"oneOf": [STR, arr(STR)]}, description="Stop sequences."),
        Field("n", "integer", minimum=1, maximum=1),
        Field("seed", "integer"),
        Field("user", description="End-user id, accepted for compatibility."),
    )


MODEL_LIST = obj(
    ["object", "data"],
    object=STR,
    data=arr(
        obj(["id", "object", "created", "owned_by"], id=STR, object=STR, created=INT, owned_by=STR)
    ),
)


async def list_models(call: Call) -> dict[str, Any]:
    """The models a completion may name, as OpenAI's model list (``client.models.list()``)"""
    llm = call.services.llm
    providers = {p.id: p.kind for p in await llm.providers(uow=call.uow, actor=call.actor)}
    models = await llm.models(uow=call.uow, actor=call.actor)
    return {
        "object": "list",
        "data": [
            {
                "id": m.name,
                "object": "model",
                "created": int(m.created_at.timestamp()),
                "owned_by": providers.get(m.provider_id, "memoria"),
            }
            for m in models
            if m.status == "active"
        ],
    }


def endpoints(limits: Limits) -> list[Endpoint]:
    sentech = Group(dialect=OPENAI, tag="Sentech chat completions (OpenAI format)")
    sentech.get("/v1/models", list_models, response=MODEL_LIST, errors=(401,))
    sentech.post(
        "/v1/chat/completions",
        chat_completions,
        rate_class=CHAT,
        body=request_fields(limits),
        response=COMPLETION,
        streams=True,
        own_transactions=True,
        quota=lambda _call: {"messages": 2},
        errors=(400, 401, 402, 503),
    )
    sid = Group(dialect=OPENAI, tag="SID memory chat completions (OpenAI format)")
    sid.get("/v1/memory/models", list_models, response=MODEL_LIST, errors=(401,))
    sid.post(
        "/v1/memory/chat/completions",
        memory_chat_completions,
        rate_class=CHAT,
        body=request_fields(limits),
        query=fields(
            Field(
                "namespace",
                description="Memory namespace to read and store in (default: global).",
                default="",
            )
        ),
        response=COMPLETION,
        streams=True,
        own_transactions=True,
        quota=lambda _call: {"messages": 2},
        errors=(400, 401, 402, 503),
    )
    return sentech.endpoints + sid.endpoints
