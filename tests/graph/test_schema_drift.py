"""``schema.graphql`` at the repository root must be exactly what the code exports."""

from __future__ import annotations

from pathlib import Path

from graph.schema import export_sdl

ROOT = Path(__file__).resolve().parents[2]


def test_schema_file_matches_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == export_sdl(), "schema.graphql is stale: run `make schema`"


def test_contract_root_fields_exist() -> None:
    sdl = export_sdl()
    for name in (
        "me: User!",
        "memoryFields: [MemoryField!]!",
        "memoryField(id: ID!): MemoryField",
        "memory(id: ID!): Memory",
        "memoryHistory(id: ID!): [MemoryChange!]!",
        "conversations(",
        "conversation(id: ID!): Conversation",
        "health: Health!",
        "register(input: RegisterInput!): AuthPayload!",
        "login(input: LoginInput!): AuthPayload!",
        "createApiKey(name: String!): NewApiKey!",
        "revokeApiKey(id: ID!): Boolean!",
        "createMemoryField(name: String!): MemoryField!",
        "addMemory(fieldId: ID!, input: MemoryInput!): Memory!",
        "addMemories(fieldId: ID!, inputs: [MemoryInput!]!): [Memory!]!",
        "updateMemory(id: ID!, input: MemoryPatch!): Memory!",
        "deleteMemory(id: ID!): Boolean!",
        "createConversation(input: ConversationInput!): Conversation!",
        "addMessage(conversationId: ID!, input: MessageInput!): Message!",
    ):
        assert name in sdl, name
