"""Conversations, messages and attachments, with Relay connections."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from domain.entities import Attachment as AttachmentEntity
from domain.entities import Conversation as ConversationEntity
from domain.entities import Message as MessageEntity
from graph.types.common import PageInfo, ctx, decode_cursor, encode_cursor


@strawberry.type
class Attachment:
    id: strawberry.ID
    message_id: strawberry.ID
    file_type: str
    file_path: str | None
    size: int
    sha256: str | None
    created_at: datetime

    @classmethod
    def of(cls, a: AttachmentEntity) -> Attachment:
        return cls(
            id=strawberry.ID(a.id),
            message_id=strawberry.ID(a.message_id),
            file_type=a.file_type,
            file_path=a.file_path,
            size=a.size,
            sha256=a.sha256,
            created_at=a.created_at,
        )


@strawberry.type
class Message:
    id: strawberry.ID
    conversation_id: strawberry.ID
    role: str
    content: str
    tags: list[str]
    importance: float
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    incomplete: bool
    created_at: datetime

    @classmethod
    def of(cls, m: MessageEntity) -> Message:
        return cls(
            id=strawberry.ID(m.id),
            conversation_id=strawberry.ID(m.conversation_id),
            role=m.role.value,
            content=m.content,
            tags=m.tags,
            importance=m.importance,
            model=m.model,
            prompt_tokens=m.prompt_tokens,
            completion_tokens=m.completion_tokens,
            incomplete=m.incomplete,
            created_at=m.created_at,
        )


@strawberry.type
class MessageEdge:
    cursor: str
    node: Message


@strawberry.type
class MessageConnection:
    edges: list[MessageEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class Conversation:
    id: strawberry.ID
    title: str
    description: str
    tags: list[str]
    field_id: strawberry.ID | None
    message_count: int
    created_at: datetime
    last_activity_at: datetime

    @strawberry.field
    async def messages(
        self, info: Info[Any, Any], first: int = 20, after: str | None = None
    ) -> MessageConnection:
        scope = ctx(info)
        items, more, total = await scope.deps.conversations.messages(
            uow=await scope.uow(),
            actor=await scope.actor(),
            conversation_id=str(self.id),
            first=first,
            after=decode_cursor("message", after),
        )
        edges = [
            MessageEdge(cursor=encode_cursor("message", m.id), node=Message.of(m)) for m in items
        ]
        return MessageConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None),
            total_count=total,
        )

    @strawberry.field
    async def attachments(self, info: Info[Any, Any]) -> list[Attachment]:
        found = await ctx(info).attachment_loader.load(str(self.id))
        return [Attachment.of(a) for a in found]

    @classmethod
    def of(cls, c: ConversationEntity) -> Conversation:
        return cls(
            id=strawberry.ID(c.id),
            title=c.title,
            description=c.description,
            tags=c.tags,
            field_id=strawberry.ID(c.field_id) if c.field_id else None,
            message_count=c.message_count,
            created_at=c.created_at,
            last_activity_at=c.last_activity_at,
        )


@strawberry.type
class ConversationEdge:
    cursor: str
    node: Conversation


@strawberry.type
class ConversationConnection:
    edges: list[ConversationEdge]
    page_info: PageInfo
    total_count: int


@strawberry.input
class ConversationInput:
    title: str
    description: str | None = None
    tags: list[str] | None = None
    field_id: strawberry.ID | None = None


@strawberry.input
class MessageInput:
    role: str
    content: str
    tags: list[str] | None = None


@strawberry.input
class AttachmentInput:
    file_type: str
    file_path: str | None = None
    size: int = 0
    sha256: str | None = None
