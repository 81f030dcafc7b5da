"""What a chat turn yields, in order: :class:`ChatStarted`, :class:`ChatDelta`..., then
:class:`ChatCompleted` or :class:`ChatFailed` (see :mod:`domain.services.chat` for the
contract), and the observer told about each finished exchange."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from domain.entities import Actor, Conversation, Message
from domain.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one reply and what it cost (USD micro-units; 0 for unpriced models)."""

    prompt_tokens: int
    completion_tokens: int
    cost_micros: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class MemoryUsed:
    """What retrieval put into the prompt: counts per layer and the memories' sources."""

    short_term: int = 0
    long_term: int = 0
    sources: list[str] = field(default_factory=list)  # distinct Memory.source values
    memory_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChatStarted:
    conversation_id: str
    user_message_id: str
    message_id: str  # id the assistant message will be stored under
    model: str
    created_at: float  # unix seconds, for OpenAI ``created``


@dataclass(frozen=True, slots=True)
class ChatDelta:
    text: str
    index: int  # 0-based position of this piece in the reply


@dataclass(frozen=True, slots=True)
class ChatCompleted:
    message: Message  # the stored assistant message
    usage: Usage
    memory_used: MemoryUsed
    finish_reason: str = "stop"  # "stop" | "length" (OpenAI vocabulary)


@dataclass(frozen=True, slots=True)
class ChatFailed:
    code: str
    message: str
    partial: Message | None = None  # stored incomplete reply, if any text arrived


ChatEvent = ChatStarted | ChatDelta | ChatCompleted | ChatFailed


class ReplyObserver(Protocol):
    """Told about each completed exchange (e.g. memory extraction), twice: inside the unit
    of work that stores the reply, to queue durable work with it (the work then exists
    exactly when the reply committed), and once that unit of work committed. Both must
    return at once: slow work belongs in the background, never in the reply's path."""

    async def reply_settling(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor,
        conversation: Conversation,
        field_id: str | None,
        user_message: Message,
        assistant_message: Message,
    ) -> None: ...

    def reply_committed(self) -> None: ...
