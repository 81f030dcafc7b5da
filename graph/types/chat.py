"""GraphQL types of chat: events, usage, models and providers, context packs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from domain.llm import LlmModel, LlmProvider
from domain.llm import UserLlmConfig as UserLlmConfigEntity
from domain.services import chat as domain_chat
from domain.services.context import ContextPack as ContextPackEntity
from graph.types.conversations import Message


@strawberry.input
class ChatOptionsInput:
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None

    def to_domain(self) -> domain_chat.ChatOptions:
        return domain_chat.ChatOptions(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            stop=tuple(self.stop) if self.stop else None,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            seed=self.seed,
        )


@strawberry.input
class ChatInput:
    message: str
    conversation_id: strawberry.ID | None = None
    model: str | None = None
    include_memory: bool = True
    field_id: strawberry.ID | None = None
    options: ChatOptionsInput | None = None


@strawberry.type
class ChatUsage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_micros: int
    cost_usd: float

    @classmethod
    def of(cls, u: domain_chat.Usage) -> ChatUsage:
        return cls(
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            total_tokens=u.total_tokens,
            cost_micros=u.cost_micros,
            cost_usd=u.cost_micros / 1_000_000,
        )


@strawberry.type
class MemoryUsed:
    short_term: int
    long_term: int
    sources: list[str]
    memory_ids: list[strawberry.ID]

    @classmethod
    def of(cls, m: domain_chat.MemoryUsed) -> MemoryUsed:
        return cls(
            short_term=m.short_term,
            long_term=m.long_term,
            sources=list(m.sources),
            memory_ids=[strawberry.ID(i) for i in m.memory_ids],
        )


@strawberry.type
class ChatStarted:
    conversation_id: strawberry.ID
    user_message_id: strawberry.ID
    message_id: strawberry.ID
    model: str


@strawberry.type
class ChatDelta:
    text: str
    index: int


@strawberry.type
class ChatCompleted:
    message: Message
    usage: ChatUsage
    memory_used: MemoryUsed
    finish_reason: str


@strawberry.type
class ChatFailed:
    """A turn that ended in an error: ``code`` as in ``extensions.code``, ``error`` the
    message, ``partial`` the reply so far (stored, marked incomplete) if any."""

    code: str
    error: str
    partial: Message | None

    @strawberry.field(
        deprecation_reason="Use `error`: a selection of `message` on both ChatCompleted "
        "(a Message) and ChatFailed (a String) is invalid GraphQL without an alias."
    )
    def message(self) -> str:
        return self.error


ChatEvent = Annotated[
    ChatStarted | ChatDelta | ChatCompleted | ChatFailed, strawberry.union("ChatEvent")
]


def render_event(
    event: domain_chat.ChatEvent,
) -> ChatStarted | ChatDelta | ChatCompleted | ChatFailed:
    if isinstance(event, domain_chat.ChatDelta):
        return ChatDelta(text=event.text, index=event.index)
    if isinstance(event, domain_chat.ChatStarted):
        return ChatStarted(
            conversation_id=strawberry.ID(event.conversation_id),
            user_message_id=strawberry.ID(event.user_message_id),
            message_id=strawberry.ID(event.message_id),
            model=event.model,
        )
    if isinstance(event, domain_chat.ChatCompleted):
        return ChatCompleted(
            message=Message.of(event.message),
            usage=ChatUsage.of(event.usage),
            memory_used=MemoryUsed.of(event.memory_used),
            finish_reason=event.finish_reason,
        )
    return ChatFailed(
        code=event.code,
        error=event.message,
        partial=Message.of(event.partial) if event.partial else None,
    )


@strawberry.type
class ChatResult:
    conversation_id: strawberry.ID
    message: Message
    usage: ChatUsage
    memory_used: MemoryUsed
    finish_reason: str

    @classmethod
    def of(cls, c: domain_chat.ChatCompleted) -> ChatResult:
        return cls(
            conversation_id=strawberry.ID(c.message.conversation_id),
            message=Message.of(c.message),
            usage=ChatUsage.of(c.usage),
            memory_used=MemoryUsed.of(c.memory_used),
            finish_reason=c.finish_reason,
        )


@strawberry.type
class Model:
    id: strawberry.ID
    name: str
    provider_id: strawberry.ID
    provider: str
    context_window: int
    input_price_per_m: float  # USD per 1M input tokens
    output_price_per_m: float
    status: str

    @classmethod
    def of(cls, m: LlmModel, provider_name: str) -> Model:
        return cls(
            id=strawberry.ID(m.id),
            name=m.name,
            provider_id=strawberry.ID(m.provider_id),
            provider=provider_name,
            context_window=m.context_window,
            input_price_per_m=m.input_price_micros_per_m / 1_000_000,
            output_price_per_m=m.output_price_micros_per_m / 1_000_000,
            status=m.status,
        )


@strawberry.type
class Provider:
    id: strawberry.ID
    name: str
    kind: str
    api_endpoint: str | None
    has_api_key: bool
    enabled: bool
    created_at: datetime
    models: list[Model]

    @classmethod
    def of(cls, p: LlmProvider, models: list[LlmModel]) -> Provider:
        return cls(
            id=strawberry.ID(p.id),
            name=p.name,
            kind=p.kind,
            api_endpoint=p.api_endpoint,
            has_api_key=p.api_key_encrypted is not None,
            enabled=p.enabled,
            created_at=p.created_at,
            models=[Model.of(m, p.name) for m in models if m.provider_id == p.id],
        )


@strawberry.input
class ModelInput:
    name: str
    context_window: int = 8192
    input_price_per_m: float = 0.0
    output_price_per_m: float = 0.0


@strawberry.input
class ProviderInput:
    name: str
    kind: str
    api_endpoint: str | None = None
    api_key: str | None = None
    models: list[ModelInput] = strawberry.field(default_factory=list)


@strawberry.input
class UserLlmConfigInput:
    provider: str  # provider id or name
    api_key: str


@strawberry.type
class UserLlmConfig:
    id: strawberry.ID
    provider_id: strawberry.ID
    masked_key: str
    updated_at: datetime

    @classmethod
    def of(cls, c: UserLlmConfigEntity) -> UserLlmConfig:
        return cls(
            id=strawberry.ID(c.id),
            provider_id=strawberry.ID(c.provider_id),
            masked_key=c.masked_key,
            updated_at=c.updated_at,
        )


@strawberry.type
class ContextItem:
    layer: str
    text: str
    tokens: int
    source: str | None
    ref_id: strawberry.ID | None
    role: str | None
    score: float | None


@strawberry.type
class ContextLayerCount:
    layer: str
    count: int


@strawberry.type
class ContextPack:
    """What context assembly used: items per layer, sources, and the token count."""

    items: list[ContextItem]
    layers: list[ContextLayerCount]
    sources: list[str]
    tokens: int
    max_tokens: int
    tokenizer: str
    dropped: int
    prompt: str

    @classmethod
    def of(cls, p: ContextPackEntity) -> ContextPack:
        names = ("procedural", "long_term", "short_term", "working")
        return cls(
            items=[
                ContextItem(
                    layer=i.layer,
                    text=i.text,
                    tokens=i.tokens,
                    source=i.source,
                    ref_id=strawberry.ID(i.ref_id) if i.ref_id else None,
                    role=i.role,
                    score=i.score,
                )
                for i in p.items
            ],
            layers=[ContextLayerCount(layer=n, count=p.count(n)) for n in names],
            sources=p.sources,
            tokens=p.tokens,
            max_tokens=p.max_tokens,
            tokenizer=p.tokenizer,
            dropped=p.dropped,
            prompt="\n\n".join(f"{m.role}: {m.content}" for m in p.messages),
        )
