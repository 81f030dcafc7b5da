"""Conversations, their messages and attachments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from domain.entities import (
    Attachment,
    Conversation,
    Message,
)


class ConversationRepository(Protocol):
    async def add(self, conversation: Conversation) -> None: ...

    async def get(self, conversation_id: str, *, user_id: str) -> Conversation | None: ...

    async def get_many(self, ids: Sequence[str], *, user_id: str) -> list[Conversation]: ...

    async def page(
        self, *, user_id: str, first: int, after: str | None
    ) -> tuple[list[Conversation], bool, int]: ...

    async def touch(self, conversation_id: str, *, at: datetime, added_messages: int) -> None: ...


class MessageRepository(Protocol):
    async def add(self, message: Message) -> None: ...

    async def get(self, message_id: str, *, user_id: str) -> Message | None: ...

    async def get_many(self, ids: Sequence[str], *, user_id: str) -> list[Message]: ...

    async def page(
        self, *, conversation_id: str, user_id: str, first: int, after: str | None
    ) -> tuple[list[Message], bool, int]: ...

    async def recent(self, *, conversation_id: str, user_id: str, limit: int) -> list[Message]: ...


class AttachmentRepository(Protocol):
    async def add(self, attachment: Attachment) -> None: ...

    async def for_conversations(
        self, conversation_ids: Sequence[str], *, user_id: str
    ) -> list[Attachment]: ...
