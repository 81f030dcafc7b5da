"""One chat turn's state between its first and last unit of work, and how a turn is
settled: the assistant message stored (marked incomplete if cut), usage recorded, the
model's price charged."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.clock import Clock
from domain.entities import Actor, Conversation, Message, MessageRole, new_id
from domain.llm import TokenCounter, UsageRecord
from domain.ports import UnitOfWorkFactory
from domain.services.chat_events import ReplyObserver, Usage
from domain.services.context import ContextPack
from domain.services.conversations import message_event
from domain.services.importance import score_importance
from domain.services.llm_admin import ResolvedModel


@dataclass(slots=True)
class ChatTurn:
    """State of one turn between the first and the last unit of work."""

    conversation: Conversation
    user_message: Message
    resolved: ResolvedModel
    pack: ContextPack
    field_id: str | None
    message_id: str = field(default_factory=new_id)
    pieces: list[str] = field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    upstream_started: bool = False


async def settle_turn(
    turn: ChatTurn,
    *,
    actor: Actor,
    complete: bool,
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    counter: TokenCounter,
    observer: ReplyObserver | None = None,
) -> tuple[Message | None, Usage]:
    """A turn's last unit of work: the assistant message (incomplete if cut), usage and
    charge, and for a complete turn what ``observer`` queues with it, committed together."""
    text = "".join(turn.pieces)
    if turn.pieces or complete:
        prompt = turn.prompt_tokens if turn.prompt_tokens is not None else turn.pack.tokens
        completion = (
            turn.completion_tokens if turn.completion_tokens is not None else counter.count(text)
        )
    else:
        prompt = completion = 0  # nothing came back: the provider charged nothing either
    cost = turn.resolved.model.cost_micros(prompt, completion) if turn.resolved.charged else 0
    usage = Usage(prompt_tokens=prompt, completion_tokens=completion, cost_micros=cost)
    now = clock.now()
    stored: Message | None = None
    async with uow_factory() as uow:
        if text or complete:
            stored = Message(
                id=turn.message_id,
                conversation_id=turn.conversation.id,
                user_id=actor.user_id,
                role=MessageRole.ASSISTANT,
                content=text,
                tags=[],
                importance=score_importance(text) if text else 0.0,
                created_at=now,
                model=turn.resolved.model.name,
                prompt_tokens=prompt,
                completion_tokens=completion,
                incomplete=not complete,
            )
            await uow.messages.add(stored)
            await uow.conversations.touch(turn.conversation.id, at=now, added_messages=1)
            uow.record(message_event(stored))
        if prompt or completion:
            await uow.spend.add_usage(
                UsageRecord(
                    id=new_id(),
                    user_id=actor.user_id,
                    conversation_id=turn.conversation.id,
                    message_id=turn.message_id,
                    model=turn.resolved.model.name,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    cost_micros=cost,
                    incomplete=not complete,
                    created_at=now,
                )
            )
        if cost:
            await uow.spend.charge(user_id=actor.user_id, micros=cost)
        if complete and stored is not None and observer is not None:
            await observer.reply_settling(
                uow=uow,
                actor=actor,
                conversation=turn.conversation,
                field_id=turn.field_id,
                user_message=turn.user_message,
                assistant_message=stored,
            )
        await uow.commit()
    return stored, usage
