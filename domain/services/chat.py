"""The chat turn: memory-augmented replies, streamed, stored, charged and learnt from.

Contract of :meth:`ChatService.stream_reply` (surface-neutral; GraphQL renders it as the
``chat`` subscription, REST as OpenAI ``chat.completion.chunk`` SSE or Senua's ``/api/chat``):

* Before the first event, input and permission problems are **raised** as domain errors
  (``BadUserInput``, ``NotFound`` for an unknown/foreign conversation, field or model,
  ``InsufficientBalance`` for a priced model and no balance, ``RateLimited``). Nothing has
  been written then, and no upstream call was made. Edges map these to their error dialect
  (HTTP status, GraphQL error).
* Otherwise the events are, in order: exactly one :class:`ChatStarted` (the user message is
  already stored and committed), zero or more :class:`ChatDelta` (text pieces, in order;
  concatenated they are the reply), then exactly one terminal event:
  :class:`ChatCompleted` (the stored assistant message, :class:`Usage`, :class:`MemoryUsed`)
  or :class:`ChatFailed` (``code`` is a domain error code such as ``PROVIDER_UNAVAILABLE`` or
  ``RATE_LIMITED``; any partial reply was stored with ``incomplete=True`` and charged).
  Nothing follows the terminal event.
* The service manages its OWN short units of work through ``uow_factory``: one to validate,
  store the user message and commit (before the upstream call), one at the end to store the
  assistant message, the usage record and the charge. No transaction is open while tokens
  stream, so the caller must not hold one either.
* If the consumer stops iterating (``aclose()`` or task cancellation, e.g. a client that went
  away), the upstream request is cancelled at once and the partial reply is stored marked
  incomplete with its usage; this cleanup is shielded so it completes during cancellation.
* ``history`` is the caller's prior transcript (OpenAI-style requests carry the whole
  conversation); when given it is used instead of the stored recent turns. ``options`` pass
  straight through to the provider.
* Memory extraction from the exchange runs after the reply in the background and never
  delays or fails it.

:meth:`ChatService.reply` consumes the stream and returns the :class:`ChatCompleted` (or raises
the domain error a :class:`ChatFailed` stands for): the non-streaming turn.
Deltas never queue behind a slow consumer one frame each: while the consumer is busy,
what the upstream sends waits in the provider's read buffer, and the next read turns all of
it into one chunk, hence one delta (``providers/llm``: one chunk per network read).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence

from domain import errors
from domain.clock import Clock
from domain.entities import Actor, Conversation, Message, MessageRole, new_id
from domain.errors import InsufficientBalance, MemoriaError, NotFound, Unauthenticated
from domain.llm import GenerationOptions, ModelRequest, PromptMessage
from domain.policy import Limits, require_text
from domain.ports import UnitOfWork, UnitOfWorkFactory
from domain.services.chat_events import (
    ChatCompleted,
    ChatDelta,
    ChatEvent,
    ChatFailed,
    ChatStarted,
    MemoryUsed,
    ReplyObserver,
    Usage,
)
from domain.services.chat_turn import ChatTurn, settle_turn
from domain.services.context import ContextBuilder, ContextPack
from domain.services.conversations import ConversationService, message_event
from domain.services.fields import FieldService
from domain.services.importance import score_importance
from domain.services.llm_admin import LlmAdminService

__all__ = [
    "ChatCompleted",
    "ChatDelta",
    "ChatEvent",
    "ChatFailed",
    "ChatOptions",
    "ChatService",
    "ChatStarted",
    "HistoryMessage",
    "MemoryUsed",
    "Usage",
]

ChatOptions = GenerationOptions
"""temperature / top_p / max_tokens / stop / presence & frequency penalties / seed."""


HistoryMessage = PromptMessage
"""A caller-supplied prior message: ``role`` (system/user/assistant) and ``content``."""


_ERRORS: dict[str, type[MemoriaError]] = {
    cls.code: cls
    for cls in (
        errors.BadUserInput,
        errors.NotFound,
        errors.Forbidden,
        errors.Unauthenticated,
        errors.InsufficientBalance,
        errors.ProviderUnavailable,
    )
}


class ChatService:
    """See the module docstring for the streaming contract."""

    def __init__(
        self,
        *,
        uow_factory: UnitOfWorkFactory,
        conversations: ConversationService,
        fields: FieldService,
        llm: LlmAdminService,
        context: ContextBuilder,
        clock: Clock,
        limits: Limits,
        observer: ReplyObserver | None = None,
        default_reply_tokens: int = 1024,
    ) -> None:
        self._uow_factory = uow_factory
        self._conversations = conversations
        self._fields = fields
        self._llm = llm
        self._context = context
        self._clock = clock
        self._limits = limits
        self._observer = observer
        self._default_reply_tokens = default_reply_tokens

    async def stream_reply(
        self,
        *,
        actor: Actor,
        message: str,
        conversation_id: str | None = None,
        model: str | None = None,
        include_memory: bool = True,
        field_id: str | None = None,
        namespace: str | None = None,
        history: Sequence[HistoryMessage] | None = None,
        options: ChatOptions | None = None,
    ) -> AsyncGenerator[ChatEvent, None]:
        """One chat turn as events. ``namespace`` names the memory field instead of
        ``field_id``: it is searched if it exists and created only with the turn's first
        write, so a turn refused before then (bad input, unknown model, no balance) creates
        nothing."""
        opts = options or ChatOptions()
        turn = await self._begin(
            actor=actor,
            message=message,
            conversation_id=conversation_id,
            model=model,
            include_memory=include_memory,
            field_id=field_id,
            namespace=namespace,
            history=history,
            options=opts,
        )
        yield ChatStarted(
            conversation_id=turn.conversation.id,
            user_message_id=turn.user_message.id,
            message_id=turn.message_id,
            model=turn.resolved.model.name,
            created_at=time.time(),
        )
        request = ModelRequest(
            model=turn.resolved.model.name,
            messages=turn.pack.messages,
            options=opts,
            memories=turn.pack.memory_texts,
        )
        failure: MemoriaError | None = None
        finished = False
        upstream = turn.resolved.chat_model.stream(request)
        try:
            turn.upstream_started = True
            try:
                async for chunk in upstream:
                    if chunk.prompt_tokens is not None:
                        turn.prompt_tokens = chunk.prompt_tokens
                    if chunk.completion_tokens is not None:
                        turn.completion_tokens = chunk.completion_tokens
                    if chunk.finish_reason:
                        turn.finish_reason = chunk.finish_reason
                    if chunk.text:
                        turn.pieces.append(chunk.text)
                        yield ChatDelta(text=chunk.text, index=len(turn.pieces) - 1)
            except MemoriaError as exc:
                failure = exc
            finally:
                await upstream.aclose()
            finished = failure is None
        finally:
            # Runs on success, failure, aclose() and cancellation alike; shielded so a
            # client that went away still gets its partial reply stored and charged.
            outcome = asyncio.ensure_future(
                settle_turn(
                    turn,
                    actor=actor,
                    complete=finished,
                    uow_factory=self._uow_factory,
                    clock=self._clock,
                    counter=self._context.counter,
                    observer=self._observer,
                )
            )
            stored, usage = await asyncio.shield(outcome)
        if failure is not None:
            yield ChatFailed(code=failure.code, message=failure.message, partial=stored)
            return
        assert stored is not None  # a finished turn always stores its message
        if self._observer is not None:
            self._observer.reply_committed()
        yield ChatCompleted(
            message=stored,
            usage=usage,
            memory_used=MemoryUsed(
                short_term=turn.pack.count("working") + turn.pack.count("short_term"),
                long_term=turn.pack.count("long_term"),
                sources=turn.pack.sources,
                memory_ids=turn.pack.memory_ids,
            ),
            finish_reason=turn.finish_reason,
        )

    async def reply(
        self,
        *,
        actor: Actor,
        message: str,
        conversation_id: str | None = None,
        model: str | None = None,
        include_memory: bool = True,
        field_id: str | None = None,
        namespace: str | None = None,
        history: Sequence[HistoryMessage] | None = None,
        options: ChatOptions | None = None,
    ) -> ChatCompleted:
        stream = self.stream_reply(
            actor=actor,
            message=message,
            conversation_id=conversation_id,
            model=model,
            include_memory=include_memory,
            field_id=field_id,
            namespace=namespace,
            history=history,
            options=options,
        )
        async for event in stream:
            if isinstance(event, ChatCompleted):
                return event
            if isinstance(event, ChatFailed):
                raise _ERRORS.get(event.code, errors.ProviderUnavailable)(event.message)
        raise errors.ProviderUnavailable("the model ended without a reply")

    async def context(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor,
        conversation_id: str,
        query: str,
        max_tokens: int = 2000,
    ) -> ContextPack:
        """The context a turn on this conversation would get (GraphQL ``context``)."""
        text = require_text(query, name="query", max_chars=self._limits.max_content_chars)
        if max_tokens > 1_000_000:
            raise errors.BadUserInput("maxTokens is too large", details={"field": "maxTokens"})
        conversation = await self._conversations.get(
            uow=uow, actor=actor, conversation_id=conversation_id
        )
        return await self._context.build(
            uow=uow,
            actor=actor,
            query=text,
            max_tokens=max_tokens,
            field_ids=[conversation.field_id] if conversation.field_id else [],
            conversation_id=conversation.id,
        )

    async def _begin(
        self,
        *,
        actor: Actor,
        message: str,
        conversation_id: str | None,
        model: str | None,
        include_memory: bool,
        field_id: str | None,
        namespace: str | None,
        history: Sequence[HistoryMessage] | None,
        options: ChatOptions,
    ) -> ChatTurn:
        """First unit of work: validate, check balance, assemble context, store the user
        message and commit, all before any upstream call."""
        text = require_text(message, name="message", max_chars=self._limits.max_content_chars)
        if options.max_tokens is not None and options.max_tokens < 1:
            raise errors.BadUserInput(
                "max_tokens must be positive", details={"field": "max_tokens"}
            )
        async with self._uow_factory() as uow:
            # Reads first, writes last: on SQLite the first write takes the process-wide
            # write lock until commit, so retrieval must not run while holding it.
            resolved = await self._llm.resolve(uow=uow, actor=actor, model=model)
            if resolved.charged:
                await self._check_balance(uow, actor)
            if (
                field_id is not None
                and await uow.fields.get(field_id, user_id=actor.user_id) is None
            ):
                raise NotFound("Memory field not found")
            named = None
            if namespace is not None:
                named = await uow.fields.by_name(namespace, user_id=actor.user_id)
                field_id = named.id if named else None
            existing: Conversation | None = None
            if conversation_id:
                existing = await self._conversations.get(
                    uow=uow, actor=actor, conversation_id=conversation_id
                )
            # The turn stores two messages (and a conversation when it starts one).
            await self._conversations.check_quota(
                uow=uow, actor=actor, messages=2, conversations=0 if existing else 1
            )
            fid = field_id or (existing.field_id if existing else None)
            window = resolved.model.context_window
            reserve = min(options.max_tokens or self._default_reply_tokens, window // 2)
            pack = await self._context.build(
                uow=uow,
                actor=actor,
                query=text,
                max_tokens=window - reserve,
                field_ids=[fid] if fid else [],
                conversation_id=existing.id if existing else None,
                history=history,
                # A namespace not created yet holds nothing (no field means all fields here).
                include_memory=include_memory and (namespace is None or named is not None),
            )
            if namespace is not None and named is None:
                field_id = fid = (
                    await self._fields.create(uow=uow, actor=actor, name=namespace)
                ).id
            conversation, user_message = await self._store_user_message(
                uow, actor, existing, text, field_id
            )
            await uow.commit()
        return ChatTurn(conversation, user_message, resolved, pack, fid)

    async def _store_user_message(
        self,
        uow: UnitOfWork,
        actor: Actor,
        existing: Conversation | None,
        text: str,
        field_id: str | None,
    ) -> tuple[Conversation, Message]:
        """The turn's writes, as few statements as possible: on SQLite they run under the
        process-wide write lock, and under load every statement costs an event-loop round
        trip to the driver thread, so each one lengthens the queue of turns waiting to
        start. The conversation and field were checked above, so nothing is re-read (what
        ``ConversationService.create``/``add_message`` would do); a new conversation is
        inserted already counting its first message instead of inserted, then updated."""
        now = self._clock.now()
        if existing is None:
            conversation = Conversation(
                id=new_id(),
                user_id=actor.user_id,
                title=_title(text),
                description="",
                tags=[],
                field_id=field_id,
                created_at=now,
                last_activity_at=now,
                message_count=1,
            )
            await uow.conversations.add(conversation)
        else:
            conversation = existing
            await uow.conversations.touch(conversation.id, at=now, added_messages=1)
        message = Message(
            id=new_id(),
            conversation_id=conversation.id,
            user_id=actor.user_id,
            role=MessageRole.USER,
            content=text,
            tags=[],
            importance=score_importance(text),
            created_at=now,
        )
        await uow.messages.add(message)
        uow.record(message_event(message))
        return conversation, message

    async def _check_balance(self, uow: UnitOfWork, actor: Actor) -> None:
        user = await uow.users.get(actor.user_id)
        if user is None:
            raise Unauthenticated("user no longer exists")
        if user.balance_micros <= 0:
            raise InsufficientBalance(
                "Insufficient balance for this model",
                details={"balance_micros": user.balance_micros},
            )


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 60 else line[:57].rstrip() + "..."
