"""Conversations, messages and attachment metadata."""

from __future__ import annotations

from dataclasses import dataclass

from domain.clock import Clock
from domain.entities import Actor, Attachment, Conversation, Message, MessageRole, new_id
from domain.errors import BadUserInput, NotFound
from domain.events import MESSAGE_CREATED, DomainEvent
from domain.policy import Limits, check_page_size, check_tags, require_text
from domain.ports import UnitOfWork
from domain.services.importance import score_importance
from domain.services.quotas import QuotaService


@dataclass(frozen=True, slots=True)
class AttachmentDraft:
    file_type: str
    file_path: str | None = None
    size: int = 0
    sha256: str | None = None


def message_event(message: Message) -> DomainEvent:
    return DomainEvent(
        name=MESSAGE_CREATED,
        user_id=message.user_id,
        at=message.created_at,
        payload={
            "id": message.id,
            "conversation_id": message.conversation_id,
            "role": message.role.value,
            "content": message.content,
            "incomplete": message.incomplete,
        },
    )


class ConversationService:
    """Conversations and messages; writes are checked against the tier quota first."""

    def __init__(self, *, clock: Clock, limits: Limits, quotas: QuotaService | None = None) -> None:
        self._clock = clock
        self._limits = limits
        self._quotas = quotas

    async def check_quota(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor,
        conversations: int = 0,
        messages: int = 0,
        storage_bytes: int = 0,
    ) -> None:
        """Refuse a write past the tier quota (chat turns and uploads check through here)."""
        if self._quotas is not None:
            await self._quotas.check_quota(
                uow=uow,
                actor=actor,
                conversations=conversations,
                messages=messages,
                storage_bytes=storage_bytes,
            )

    async def create(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor,
        title: str,
        description: str = "",
        tags: list[str] | None = None,
        field_id: str | None = None,
    ) -> Conversation:
        name = require_text(title, name="title", max_chars=self._limits.max_name_chars)
        if field_id is not None and await uow.fields.get(field_id, user_id=actor.user_id) is None:
            raise NotFound("Memory field not found")
        await self.check_quota(uow=uow, actor=actor, conversations=1)
        now = self._clock.now()
        conversation = Conversation(
            id=new_id(),
            user_id=actor.user_id,
            title=name,
            description=(description or "").strip()[: self._limits.max_content_chars],
            tags=check_tags(tags, limits=self._limits),
            field_id=field_id,
            created_at=now,
            last_activity_at=now,
        )
        await uow.conversations.add(conversation)
        return conversation

    async def get(self, *, uow: UnitOfWork, actor: Actor, conversation_id: str) -> Conversation:
        conversation = await uow.conversations.get(conversation_id, user_id=actor.user_id)
        if conversation is None:
            raise NotFound("Conversation not found")
        return conversation

    async def page(
        self, *, uow: UnitOfWork, actor: Actor, first: int, after: str | None
    ) -> tuple[list[Conversation], bool, int]:
        check_page_size(first, limits=self._limits)
        return await uow.conversations.page(user_id=actor.user_id, first=first, after=after)

    async def add_message(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor,
        conversation_id: str,
        role: str,
        content: str,
        tags: list[str] | None = None,
        model: str | None = None,
    ) -> Message:
        conversation = await self.get(uow=uow, actor=actor, conversation_id=conversation_id)
        try:
            message_role = MessageRole(role.strip().lower())
        except ValueError:
            allowed = ", ".join(r.value for r in MessageRole)
            raise BadUserInput(
                f"role must be one of {allowed}", details={"field": "role"}
            ) from None
        text = require_text(content, name="content", max_chars=self._limits.max_content_chars)
        await self.check_quota(uow=uow, actor=actor, messages=1, storage_bytes=len(text.encode()))
        now = self._clock.now()
        message = Message(
            id=new_id(),
            conversation_id=conversation.id,
            user_id=actor.user_id,
            role=message_role,
            content=text,
            tags=check_tags(tags, limits=self._limits),
            importance=score_importance(text),
            created_at=now,
            model=model,
        )
        await uow.messages.add(message)
        await uow.conversations.touch(conversation.id, at=now, added_messages=1)
        uow.record(message_event(message))
        return message

    async def messages(
        self, *, uow: UnitOfWork, actor: Actor, conversation_id: str, first: int, after: str | None
    ) -> tuple[list[Message], bool, int]:
        check_page_size(first, limits=self._limits)
        conversation = await self.get(uow=uow, actor=actor, conversation_id=conversation_id)
        return await uow.messages.page(
            conversation_id=conversation.id, user_id=actor.user_id, first=first, after=after
        )

    async def add_attachment(
        self, *, uow: UnitOfWork, actor: Actor, message_id: str, draft: AttachmentDraft
    ) -> Attachment:
        message = await uow.messages.get(message_id, user_id=actor.user_id)
        if message is None:
            raise NotFound("Message not found")
        if draft.size < 0:
            raise BadUserInput("size must not be negative", details={"field": "size"})
        attachment = Attachment(
            id=new_id(),
            message_id=message.id,
            conversation_id=message.conversation_id,
            user_id=actor.user_id,
            file_type=require_text(draft.file_type, name="fileType", max_chars=100),
            file_path=draft.file_path,
            size=draft.size,
            sha256=draft.sha256,
            created_at=self._clock.now(),
        )
        await uow.attachments.add(attachment)
        return attachment
