"""Root mutation fields. Each runs in the operation's unit of work (see ``OperationScope``)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from domain.services.auth import AuthResult
from domain.services.conversations import AttachmentDraft
from graph.types.common import ctx
from graph.types.conversations import (
    Attachment,
    AttachmentInput,
    Conversation,
    ConversationInput,
    Message,
    MessageInput,
)
from graph.types.memories import Memory, MemoryField, MemoryInput, MemoryPatch
from graph.types.users import ApiKey, AuthPayload, LoginInput, NewApiKey, RegisterInput, User


def _auth_payload(result: AuthResult) -> AuthPayload:
    return AuthPayload(
        access_token=result.access_token,
        token_type="bearer",  # noqa: S106  # the OAuth token type, not a secret
        expires_in=result.expires_in,
        user=User.of(result.user),
    )


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def register(self, info: Info[Any, Any], input: RegisterInput) -> AuthPayload:
        scope = ctx(info)
        result = await scope.deps.auth.register(
            uow=await scope.uow(),
            username=input.username,
            email=input.email,
            password=input.password,
        )
        return _auth_payload(result)

    @strawberry.mutation
    async def login(self, info: Info[Any, Any], input: LoginInput) -> AuthPayload:
        scope = ctx(info)
        result = await scope.deps.auth.login(
            uow=await scope.uow(),
            username_or_email=input.username_or_email,
            password=input.password,
            mfa_code=input.mfa_code,
        )
        return _auth_payload(result)

    @strawberry.mutation
    async def create_api_key(self, info: Info[Any, Any], name: str) -> NewApiKey:
        scope = ctx(info)
        created = await scope.deps.auth.create_api_key(
            uow=await scope.uow(), actor=await scope.actor(), name=name
        )
        return NewApiKey(key=created.secret, api_key=ApiKey.of(created.key))

    @strawberry.mutation
    async def revoke_api_key(self, info: Info[Any, Any], id: strawberry.ID) -> bool:
        scope = ctx(info)
        return await scope.deps.auth.revoke_api_key(
            uow=await scope.uow(), actor=await scope.actor(), key_id=str(id)
        )

    @strawberry.mutation
    async def create_memory_field(self, info: Info[Any, Any], name: str) -> MemoryField:
        scope = ctx(info)
        field = await scope.deps.fields.create(
            uow=await scope.uow(), actor=await scope.actor(), name=name
        )
        return MemoryField.of(field)

    @strawberry.mutation
    async def add_memory(
        self, info: Info[Any, Any], field_id: strawberry.ID, input: MemoryInput
    ) -> Memory:
        scope = ctx(info)
        memory = await scope.deps.memories.add(
            uow=await scope.uow(),
            actor=await scope.actor(),
            field_id=str(field_id),
            draft=input.to_draft(),
        )
        return Memory.of(memory)

    @strawberry.mutation(description="Adds a batch in one transaction: all or nothing.")
    async def add_memories(
        self, info: Info[Any, Any], field_id: strawberry.ID, inputs: list[MemoryInput]
    ) -> list[Memory]:
        scope = ctx(info)
        memories = await scope.deps.memories.add_many(
            uow=await scope.uow(),
            actor=await scope.actor(),
            field_id=str(field_id),
            drafts=[i.to_draft() for i in inputs],
        )
        return [Memory.of(m) for m in memories]

    @strawberry.mutation
    async def update_memory(
        self, info: Info[Any, Any], id: strawberry.ID, input: MemoryPatch
    ) -> Memory:
        scope = ctx(info)
        memory = await scope.deps.memories.update(
            uow=await scope.uow(),
            actor=await scope.actor(),
            memory_id=str(id),
            patch=input.to_patch(),
        )
        return Memory.of(memory)

    @strawberry.mutation
    async def delete_memory(self, info: Info[Any, Any], id: strawberry.ID) -> bool:
        scope = ctx(info)
        return await scope.deps.memories.delete(
            uow=await scope.uow(), actor=await scope.actor(), memory_id=str(id)
        )

    @strawberry.mutation
    async def create_conversation(
        self, info: Info[Any, Any], input: ConversationInput
    ) -> Conversation:
        scope = ctx(info)
        conversation = await scope.deps.conversations.create(
            uow=await scope.uow(),
            actor=await scope.actor(),
            title=input.title,
            description=input.description or "",
            tags=input.tags,
            field_id=str(input.field_id) if input.field_id else None,
        )
        return Conversation.of(conversation)

    @strawberry.mutation
    async def add_message(
        self, info: Info[Any, Any], conversation_id: strawberry.ID, input: MessageInput
    ) -> Message:
        scope = ctx(info)
        message = await scope.deps.conversations.add_message(
            uow=await scope.uow(),
            actor=await scope.actor(),
            conversation_id=str(conversation_id),
            role=input.role,
            content=input.content,
            tags=input.tags,
        )
        return Message.of(message)

    @strawberry.mutation(description="Records attachment metadata; file_path is an opaque string.")
    async def add_attachment(
        self, info: Info[Any, Any], message_id: strawberry.ID, input: AttachmentInput
    ) -> Attachment:
        scope = ctx(info)
        attachment = await scope.deps.conversations.add_attachment(
            uow=await scope.uow(),
            actor=await scope.actor(),
            message_id=str(message_id),
            draft=AttachmentDraft(
                file_type=input.file_type,
                file_path=input.file_path,
                size=input.size,
                sha256=input.sha256,
            ),
        )
        return Attachment.of(attachment)
