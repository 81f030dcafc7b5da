"""Attachments: metadata with an opaque ``file_path`` (never opened), or uploaded bytes."""

from __future__ import annotations

import hashlib

from domain.clock import Clock
from domain.entities import Actor, Attachment
from domain.errors import BadUserInput, NotFound
from domain.ports import UnitOfWork
from domain.services.conversations import AttachmentDraft, ConversationService


class AttachmentService:
    def __init__(
        self, *, conversations: ConversationService, clock: Clock, max_upload_bytes: int
    ) -> None:
        self._conversations = conversations
        self._clock = clock
        self._max_upload_bytes = max_upload_bytes

    async def add_reference(
        self, *, uow: UnitOfWork, actor: Actor, message_id: str, file_type: str, file_path: str
    ) -> Attachment:
        """Record a client-side file by reference: the path is stored, never resolved."""
        path = (file_path or "").strip()
        if not path:
            raise BadUserInput("file_path is required", details={"field": "file_path"})
        if len(path) > 4096:
            raise BadUserInput("file_path is too long", details={"field": "file_path"})
        return await self._conversations.add_attachment(
            uow=uow,
            actor=actor,
            message_id=message_id,
            draft=AttachmentDraft(file_type=file_type, file_path=path),
        )

    async def upload(
        self,
        *,
        uow: UnitOfWork,
        actor: Actor,
        message_id: str,
        file_type: str,
        data: bytes,
        filename: str | None = None,
    ) -> Attachment:
        """Store the bytes in the blob store and link them to the message, in one transaction."""
        if not data:
            raise BadUserInput("the uploaded file is empty", details={"field": "file"})
        if len(data) > self._max_upload_bytes:
            raise BadUserInput(
                f"the uploaded file exceeds {self._max_upload_bytes} bytes",
                details={"field": "file", "max": self._max_upload_bytes},
            )
        if await uow.messages.get(message_id, user_id=actor.user_id) is None:
            raise NotFound("Message not found")
        await self._conversations.check_quota(uow=uow, actor=actor, storage_bytes=len(data))
        digest = hashlib.sha256(data).hexdigest()
        await uow.blobs.put(user_id=actor.user_id, sha256=digest, data=data, at=self._clock.now())
        name = (filename or "").strip()[:4096] or None
        return await self._conversations.add_attachment(
            uow=uow,
            actor=actor,
            message_id=message_id,
            draft=AttachmentDraft(
                file_type=file_type, file_path=name, size=len(data), sha256=digest
            ),
        )

    async def for_message(
        self, *, uow: UnitOfWork, actor: Actor, message_id: str
    ) -> list[Attachment]:
        message = await uow.messages.get(message_id, user_id=actor.user_id)
        if message is None:
            raise NotFound("Message not found")
        found = await uow.attachments.for_conversations(
            [message.conversation_id], user_id=actor.user_id
        )
        return [a for a in found if a.message_id == message.id]

    async def content(self, *, uow: UnitOfWork, actor: Actor, attachment: Attachment) -> bytes:
        if attachment.sha256 is None or attachment.user_id != actor.user_id:
            raise NotFound("Attachment content not found")
        data = await uow.blobs.get(user_id=actor.user_id, sha256=attachment.sha256)
        if data is None:
            raise NotFound("Attachment content not found")
        return data
