"""Chat API (``chat-api.txt``), base ``/chat``: conversations, messages, attachments.
Error body ``{"error": "<message>"}``. ``user_id`` fields must name the caller (admins may
act for others). ``file_path`` is an opaque string, never opened; multipart uploads store
the bytes. The LLM provider/config routes are in :mod:`rest_compat.llm_routes`."""

from __future__ import annotations

from typing import Any

from domain.entities import Attachment, Conversation, Message
from domain.errors import BadUserInput
from domain.policy import Limits
from domain.services.delegation import act_as
from rest_compat.dialects import CHAT_API
from rest_compat.endpoint import Call, Endpoint, Group, Reply
from rest_compat.fields import INT, NULL_STR, STR, TIME, Field, arr, fields, obj
from rest_compat.render import iso

CONVERSATION = obj(
    ["id", "user_id", "title", "created_at", "updated_at"],
    id=STR,
    user_id=STR,
    title=STR,
    message_count=INT,
    created_at=TIME,
    updated_at=TIME,
)
MESSAGE = obj(
    ["id", "conversation_id", "role", "content", "created_at"],
    id=STR,
    conversation_id=STR,
    role=STR,
    content=STR,
    created_at=TIME,
)
ATTACHMENT = obj(
    ["id", "message_id", "file_type", "file_path", "created_at"],
    id=STR,
    message_id=STR,
    file_type=STR,
    file_path=NULL_STR,
    size=INT,
    sha256=NULL_STR,
    created_at=TIME,
)


def conversation_body(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "user_id": conversation.user_id,
        "title": conversation.title,
        "message_count": conversation.message_count,
        "created_at": iso(conversation.created_at),
        "updated_at": iso(conversation.last_activity_at),
    }


def message_body(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "role": message.role.value,
        "content": message.content,
        "created_at": iso(message.created_at),
    }


def attachment_body(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "message_id": attachment.message_id,
        "file_type": attachment.file_type,
        "file_path": attachment.file_path,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "created_at": iso(attachment.created_at),
    }


async def create_conversation(call: Call) -> Reply:
    """Create a conversation"""
    owner = await act_as(uow=call.uow, actor=call.actor, user_id=call.body["user_id"])
    conversation = await call.services.conversations.create(
        uow=call.uow, actor=owner, title=call.body["title"]
    )
    return Reply(conversation_body(conversation))


async def get_conversation(call: Call) -> dict[str, Any]:
    """Get a conversation"""
    conversation = await call.services.conversations.get(
        uow=call.uow, actor=call.actor, conversation_id=call.path["id"]
    )
    return conversation_body(conversation)


async def create_message(call: Call) -> Reply:
    """Create a message"""
    message = await call.services.conversations.add_message(
        uow=call.uow,
        actor=call.actor,
        conversation_id=call.body["conversation_id"],
        role=call.body["role"],
        content=call.body["content"],
    )
    return Reply(message_body(message))


async def list_messages(call: Call) -> list[dict[str, Any]]:
    """Get the messages of a conversation, oldest first"""
    out: list[dict[str, Any]] = []
    after: str | None = None
    page_size = call.services.limits.max_page
    while True:
        items, more, _total = await call.services.conversations.messages(
            uow=call.uow,
            actor=call.actor,
            conversation_id=call.path["id"],
            first=page_size,
            after=after,
        )
        out.extend(message_body(m) for m in items)
        if not more or not items:
            return out
        after = items[-1].id


async def create_attachment(call: Call) -> Reply:
    """Create an attachment: a file reference (JSON) or an uploaded file (multipart)"""
    service = call.services.attachments
    upload = call.files.get("file")
    if upload is not None:
        attachment = await service.upload(
            uow=call.uow,
            actor=call.actor,
            message_id=call.body["message_id"],
            file_type=call.body["file_type"],
            data=upload.data,
            filename=call.body["file_path"] or upload.filename,
        )
    else:
        if not call.body["file_path"]:
            raise BadUserInput("file_path is required", details={"field": "file_path"})
        attachment = await service.add_reference(
            uow=call.uow,
            actor=call.actor,
            message_id=call.body["message_id"],
            file_type=call.body["file_type"],
            file_path=call.body["file_path"],
        )
    return Reply(attachment_body(attachment))


async def list_attachments(call: Call) -> list[dict[str, Any]]:
    """Get the attachments of a message"""
    service = call.services.attachments
    found = await service.for_message(uow=call.uow, actor=call.actor, message_id=call.path["id"])
    return [attachment_body(a) for a in found]


def _upload_size(call: Call) -> dict[str, int]:
    upload = call.files.get("file")
    return {"storage_bytes": len(upload.data)} if upload else {}


def endpoints(limits: Limits) -> list[Endpoint]:
    group = Group(dialect=CHAT_API, tag="Chat API")
    group.post(
        "/chat/conversations",
        create_conversation,
        status=201,
        body=fields(
            Field("user_id", required=True, description="Must be your own id (admins: any)."),
            Field("title", required=True, max_length=limits.max_name_chars),
        ),
        quota=lambda _call: {"conversations": 1},
        response=CONVERSATION,
        errors=(400, 401, 403),
    )
    group.get("/chat/conversations/{id}", get_conversation, response=CONVERSATION)
    group.post(
        "/chat/messages",
        create_message,
        status=201,
        body=fields(
            Field("conversation_id", required=True),
            Field("role", required=True, enum=("system", "user", "assistant", "tool")),
            Field("content", required=True, max_length=limits.max_content_chars),
        ),
        quota=lambda call: {"messages": 1, "storage_bytes": len(call.body["content"].encode())},
        response=MESSAGE,
    )
    group.get("/chat/conversations/{id}/messages", list_messages, response=arr(MESSAGE))
    group.post(
        "/chat/attachments",
        create_attachment,
        status=201,
        multipart=True,
        body=fields(
            Field("message_id", required=True),
            Field("file_type", required=True, max_length=100),
            Field(
                "file_path",
                max_length=4096,
                description="Opaque reference, stored as given and never opened. Required "
                "unless a multipart `file` part is sent.",
            ),
        ),
        quota=_upload_size,
        response=ATTACHMENT,
        errors=(400, 401, 404, 413),
    )
    group.get("/chat/messages/{id}/attachments", list_attachments, response=arr(ATTACHMENT))
    return group.endpoints
