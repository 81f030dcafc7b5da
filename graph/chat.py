"""Chat root fields: ``chat``/``messageAdded`` subscriptions, ``sendMessage``, providers,
models, users' LLM keys and ``context``.

Subscriptions can live for minutes, so they never touch the operation's unit of work
(``OperationScope`` opens it lazily): they authenticate in a short unit of work of their own
and ``ChatService`` manages its own short units of work around the upstream call.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from domain.entities import Actor, MessageRole
from domain.entities import Message as MessageEntity
from domain.errors import MemoriaError, NotFound
from domain.event_bus import EventBus
from domain.events import MESSAGE_CREATED, DomainEvent
from domain.services.chat_events import ChatDelta as DomainChatDelta
from domain.services.llm_admin import ModelDraft, ProviderDraft
from graph.context import OperationContext
from graph.delta_lane import DeltaLane
from graph.types.chat import (
    ChatEvent,
    ChatInput,
    ChatResult,
    ContextPack,
    Model,
    Provider,
    ProviderInput,
    UserLlmConfig,
    UserLlmConfigInput,
    render_event,
)
from graph.types.common import ctx
from graph.types.conversations import Message


def subscription_error(exc: MemoriaError) -> GraphQLError:
    """Errors of subscription streams bypass the ErrorCodes extension: give them their code
    here, so WebSocket and SSE clients see the same ``extensions.code`` as HTTP ones."""
    extensions: dict[str, Any] = {"code": exc.code}
    if exc.details:
        extensions["details"] = exc.details
    return GraphQLError(exc.message, extensions=extensions)


async def short_lived_actor(scope: OperationContext) -> Actor:
    """The actor the WebSocket authenticated as at ``connection_init``, or else one
    authenticated in a unit of work that closes at once (for long subscriptions)."""
    known = scope.base.get("ws_actor")
    if isinstance(known, Actor):
        return known
    async with scope.deps.uow_factory() as uow:
        actor = await scope.deps.auth.authenticate(uow=uow, token=scope.token)
        await uow.commit()
    return actor


@strawberry.type
class ChatQuery:
    @strawberry.field
    async def models(self, info: Info[Any, Any]) -> list[Model]:
        scope = ctx(info)
        actor, uow = await scope.actor(), await scope.uow()
        llm = scope.deps.llm
        providers = {p.id: p.name for p in await llm.providers(uow=uow, actor=actor)}
        return [
            Model.of(m, providers.get(m.provider_id, ""))
            for m in await llm.models(uow=uow, actor=actor)
        ]

    @strawberry.field
    async def providers(self, info: Info[Any, Any]) -> list[Provider]:
        scope = ctx(info)
        actor, uow = await scope.actor(), await scope.uow()
        llm = scope.deps.llm
        models = await llm.models(uow=uow, actor=actor)
        return [Provider.of(p, models) for p in await llm.providers(uow=uow, actor=actor)]

    @strawberry.field(description="The layered context a chat turn on this conversation gets.")
    async def context(
        self,
        info: Info[Any, Any],
        conversation_id: strawberry.ID,
        query: str,
        max_tokens: int = 2000,
    ) -> ContextPack:
        scope = ctx(info)
        pack = await scope.deps.chat.context(
            uow=await scope.uow(),
            actor=await scope.actor(),
            conversation_id=str(conversation_id),
            query=query,
            max_tokens=max_tokens,
        )
        return ContextPack.of(pack)


@strawberry.type
class ChatMutation:
    @strawberry.mutation(description="A non-streaming chat turn (the reply is stored).")
    async def send_message(self, info: Info[Any, Any], input: ChatInput) -> ChatResult:
        scope = ctx(info)
        # ChatService runs its own short units of work; the operation's stays unopened.
        actor = await short_lived_actor(scope)
        completed = await scope.deps.chat.reply(
            actor=actor,
            message=input.message,
            conversation_id=str(input.conversation_id) if input.conversation_id else None,
            model=input.model,
            include_memory=input.include_memory,
            field_id=str(input.field_id) if input.field_id else None,
            options=input.options.to_domain() if input.options else None,
        )
        return ChatResult.of(completed)

    @strawberry.mutation(description="Admin: add an LLM provider and its models.")
    async def create_provider(self, info: Info[Any, Any], input: ProviderInput) -> Provider:
        scope = ctx(info)
        provider, models = await scope.deps.llm.create_provider(
            uow=await scope.uow(),
            actor=await scope.actor(),
            draft=ProviderDraft(
                name=input.name,
                kind=input.kind,
                api_endpoint=input.api_endpoint,
                api_key=input.api_key,
                models=[
                    ModelDraft(
                        name=m.name,
                        context_window=m.context_window,
                        input_price_per_m=m.input_price_per_m,
                        output_price_per_m=m.output_price_per_m,
                    )
                    for m in input.models
                ],
            ),
        )
        return Provider.of(provider, models)

    @strawberry.mutation(description="Store your own API key for a provider (never shown again).")
    async def set_user_llm_config(
        self, info: Info[Any, Any], input: UserLlmConfigInput
    ) -> UserLlmConfig:
        scope = ctx(info)
        config = await scope.deps.llm.set_user_config(
            uow=await scope.uow(),
            actor=await scope.actor(),
            provider=input.provider,
            api_key=input.api_key,
        )
        return UserLlmConfig.of(config)


def _message_of(event: DomainEvent) -> MessageEntity:
    return MessageEntity(
        id=event.payload["id"],
        conversation_id=event.payload["conversation_id"],
        user_id=event.user_id,
        role=MessageRole(event.payload["role"]),
        content=event.payload["content"],
        tags=list(event.payload.get("tags") or []),
        importance=float(event.payload.get("importance") or 0.0),
        created_at=event.at,
        model=event.payload.get("model"),
        incomplete=bool(event.payload.get("incomplete")),
    )


@strawberry.type
class ChatSubscription:
    @strawberry.subscription(
        description="Stream one chat turn: started, deltas, then completed or failed."
    )
    async def chat(self, info: Info[Any, Any], input: ChatInput) -> AsyncGenerator[ChatEvent, None]:
        scope = ctx(info)
        try:
            actor = await short_lived_actor(scope)
        except MemoriaError as exc:
            raise subscription_error(exc) from None
        stream = scope.deps.chat.stream_reply(
            actor=actor,
            message=input.message,
            conversation_id=str(input.conversation_id) if input.conversation_id else None,
            model=input.model,
            include_memory=input.include_memory,
            field_id=str(input.field_id) if input.field_id else None,
            options=input.options.to_domain() if input.options else None,
        )
        lane: DeltaLane | None = None
        looked = False
        try:
            # Iterated directly, in this operation's task: a token costs one task wake-up.
            # Tokens that pile up while the task is busy are merged where they wait (the
            # provider turns everything one network read brought into one chunk), so a
            # stream never falls behind by the per-frame cost.
            async for event in stream:
                if type(event) is DomainChatDelta:
                    # After ChatStarted was sent: deltas go straight to the socket when
                    # they can (graph/delta_lane.py), else through the normal path. The
                    # lane reads ``text`` and ``index``, the same on both types.
                    if not looked:
                        lane, looked = DeltaLane.current(), True
                    if lane is not None and await lane.send(event):
                        continue
                yield render_event(event)
        except MemoriaError as exc:  # refused before it started (balance, input, model)
            raise subscription_error(exc) from None
        finally:
            # A client that went away cancels this generator: close the turn at once so the
            # upstream request is dropped and the partial reply stored.
            await stream.aclose()

    @strawberry.subscription(description="Messages added to a conversation (user and assistant).")
    async def message_added(
        self, info: Info[Any, Any], conversation_id: strawberry.ID
    ) -> AsyncGenerator[Message, None]:
        scope = ctx(info)
        bus: EventBus | None = scope.deps.events
        if bus is None:
            raise MemoriaError("events are not configured")
        wanted = str(conversation_id)
        try:
            actor = await short_lived_actor(scope)
            async with scope.deps.uow_factory() as uow:
                if await uow.conversations.get(wanted, user_id=actor.user_id) is None:
                    raise NotFound("Conversation not found")
        except MemoriaError as exc:
            raise subscription_error(exc) from None

        def matches(event: DomainEvent) -> bool:
            return event.name == MESSAGE_CREATED and event.payload.get("conversation_id") == wanted

        async with bus.subscribe(user_id=actor.user_id, predicate=matches) as events:
            async for event in events:
                yield Message.of(_message_of(event))
