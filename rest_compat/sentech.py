"""Sentech (``sentech-api.txt``): memory fields, memories, query, supported models.

Error body ``{"error": "<message>"}`` with the document's wordings; the chat-completions
route is in :mod:`rest_compat.openai_chat` (OpenAI error body).
"""

from __future__ import annotations

from typing import Any

from domain.entities import Memory
from domain.memory_drafts import MemoryDraft
from domain.policy import Limits
from domain.rate_policy import MEMORY_SEARCH
from domain.retrieval.settings import SearchFilter
from rest_compat.dialects import SENTECH
from rest_compat.endpoint import Call, Endpoint, Group, Reply
from rest_compat.fields import (
    NUM,
    OBJ,
    STR,
    STRS,
    TIME,
    Field,
    arr,
    fields,
    obj,
)
from rest_compat.render import iso

MEMORY = obj(
    ["id", "field_id", "content", "metadata", "created_at"],
    id=STR,
    field_id=STR,
    content=STR,
    source=STR,
    tags=STRS,
    metadata=OBJ,
    timestamp=TIME,
    created_at=TIME,
)


def memory_body(memory: Memory) -> dict[str, Any]:
    return {
        "id": memory.id,
        "field_id": memory.field_id,
        "content": memory.content,
        "source": memory.source,
        "tags": list(memory.tags),
        "metadata": dict(memory.metadata),
        "timestamp": iso(memory.occurred_at),
        "created_at": iso(memory.created_at),
    }


async def create_field(call: Call) -> Reply:
    """Create a memory field"""
    field = await call.services.fields.create(
        uow=call.uow, actor=call.actor, name=call.body["name"]
    )
    return Reply({"message": "Memory field created successfully", "field_id": field.id})


async def add_memory(call: Call) -> Reply:
    """Add a memory to a field"""
    body = call.body
    memory = await call.services.memories.add(
        uow=call.uow,
        actor=call.actor,
        field_id=call.path["fieldId"],
        draft=MemoryDraft(
            content=body["content"],
            source=body["source"] or "api",
            occurred_at=body["timestamp"],
            tags=body["tags"] or [],
            metadata=body["metadata"] or {},
        ),
    )
    return Reply({"message": "Memory added successfully", "data": memory_body(memory)})


async def query_memories(call: Call) -> dict[str, Any]:
    """Query the memories of a field"""
    body = call.body
    hits = await call.services.memories.search(
        uow=call.uow,
        actor=call.actor,
        field_ids=[call.path["fieldId"]],
        query=body["query"],
        top_k=body["top_k"],
        filter=SearchFilter(
            sources=[body["source"]] if body["source"] else None,
            tags=body["tags"] or None,
            occurred_from=body["from_date"],
            occurred_to=body["to_date"],
            metadata=body["metadata"] or {},
        ),
    )
    return {
        "results": [
            {
                "id": hit.memory.id,
                "content": hit.memory.content,
                "score": round(hit.score, 6),
                "metadata": dict(hit.memory.metadata),
                "created_at": iso(hit.memory.created_at),
            }
            for hit in hits
        ]
    }


def endpoints(limits: Limits) -> list[Endpoint]:
    group = Group(dialect=SENTECH, tag="Sentech")
    group.post(
        "/fields/create-memory-field",
        create_field,
        status=201,
        body=fields(
            Field("name", required=True, missing="Field name is required", example="Work"),
        ),
        response=obj(["message", "field_id"], message=STR, field_id=STR),
        errors=(400, 401, 404),
    )
    group.post(
        "/fields/{fieldId}/memories",
        add_memory,
        status=201,
        body=fields(
            Field(
                "content",
                required=True,
                missing="Content is required",
                max_length=limits.max_content_chars,
            ),
            Field("source", description="Where the memory came from (default: api)."),
            Field("timestamp", "date-time", description="When it happened (default: now)."),
            Field("tags", "array", items="string"),
            Field("metadata", "object"),
        ),
        quota=lambda call: {"storage_bytes": len(call.body["content"].encode())},
        response=obj(["message", "data"], message=STR, data=MEMORY),
    )
    group.post(
        "/fields/{fieldId}/memories/query",
        query_memories,
        rate_class=MEMORY_SEARCH,
        body=fields(
            Field("query", required=True, missing="Query text is required"),
            Field("top_k", "integer", default=5, minimum=1, maximum=limits.max_top_k),
            Field("source", description="Only memories from this source."),
            Field("tags", "array", items="string", description="Only memories with these tags."),
            Field("from_date", "date-time"),
            Field("to_date", "date-time", end_of_day=True),
            Field("metadata", "object", description="Only memories whose metadata has these."),
        ),
        response=obj(
            ["results"],
            results=arr(
                obj(
                    ["id", "content", "score", "metadata", "created_at"],
                    id=STR,
                    content=STR,
                    score=NUM,
                    metadata=OBJ,
                    created_at=TIME,
                )
            ),
        ),
    )
    return group.endpoints
