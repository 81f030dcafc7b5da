"""Senua Memory (``senua-memory-api.txt``), base ``/api``: login with MFA, memory search,
ingestion and stats. Error body ``{"error": {"code", "message", "details"}}``.

The chat route (``/api/chat``) is in :mod:`rest_compat.chat_routes`; the data-source routes
belong to the sources capability and are added with this module's ``GROUP`` pattern.
"""

from __future__ import annotations

from typing import Any

from domain.entities import Memory
from domain.policy import Limits
from domain.rate_policy import MEMORY_SEARCH
from domain.search import MemoryDraft, SearchFilter
from rest_compat.dialects import SENUA
from rest_compat.endpoint import Call, Endpoint, Group, Reply
from rest_compat.fields import (
    INT,
    NULL_TIME,
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

USER = obj(["id", "username", "email", "role"], id=STR, username=STR, email=STR, role=STR)
MEMORY = obj(
    ["id", "content", "source", "timestamp"],
    id=STR,
    content=STR,
    source=STR,
    timestamp=TIME,
    tags=STRS,
    metadata=OBJ,
    layer=STR,
    created_at=TIME,
)


def memory_body(memory: Memory) -> dict[str, Any]:
    return {
        "id": memory.id,
        "content": memory.content,
        "source": memory.source,
        "timestamp": iso(memory.occurred_at),
        "tags": list(memory.tags),
        "metadata": dict(memory.metadata),
        "layer": memory.layer.value,
        "created_at": iso(memory.created_at),
    }


async def login(call: Call) -> dict[str, Any]:
    """Log in and receive a JWT access token"""
    result = await call.services.auth.login(
        uow=call.uow,
        username_or_email=call.body["username_or_email"],
        password=call.body["password"],
        mfa_code=call.body["mfa_code"],
    )
    user = result.user
    return {
        "access_token": result.access_token,
        "token_type": "bearer",
        "expires_in": result.expires_in,
        "user": {
            "id": user.id,
            "username": user.username,
            "email": user.email,
            "role": user.role.value,
        },
    }


async def search(call: Call) -> dict[str, Any]:
    """Search your memory by semantic similarity"""
    q = call.query
    owned = await call.services.fields.list(uow=call.uow, actor=call.actor)
    hits = await call.services.memories.search(
        uow=call.uow,
        actor=call.actor,
        field_ids=[f.id for f in owned],
        query=q["q"],
        top_k=q["limit"],
        filter=SearchFilter(
            sources=[q["source"].lower()] if q["source"] else None,
            occurred_from=q["from_date"],
            occurred_to=q["to_date"],
        ),
    )
    results = [
        {
            "id": hit.memory.id,
            "content": hit.memory.content,
            "source": hit.memory.source,
            "similarity": round(hit.score, 6),
            "timestamp": iso(hit.memory.occurred_at),
        }
        for hit in hits
    ]
    return {"results": results, "total": len(results)}


async def add_memory(call: Call) -> Reply:
    """Store a memory in your default memory space"""
    body = call.body
    field = await call.services.fields.by_namespace(
        uow=call.uow, actor=call.actor, namespace=call.config.default_namespace, create=True
    )
    memory = await call.services.memories.add(
        uow=call.uow,
        actor=call.actor,
        field_id=field.id,
        draft=MemoryDraft(
            content=body["content"],
            source=body["source"] or "api",
            occurred_at=body["timestamp"],
            tags=body["tags"] or [],
            metadata=body["metadata"] or {},
        ),
    )
    return Reply(memory_body(memory), status=201)


async def stats(call: Call) -> dict[str, Any]:
    """Memory statistics and usage"""
    stats_service = call.require(call.services.stats, "statistics")
    counts = await stats_service.get(uow=call.uow, actor=call.actor)
    return {
        "total_memories": counts.total_memories,
        "short_term": counts.short_term,
        "long_term": counts.long_term,
        "by_source": dict(counts.by_source),
        "last_sync": iso(counts.last_sync),
    }


def endpoints(limits: Limits) -> list[Endpoint]:
    group = Group(dialect=SENUA, tag="Senua Memory")
    group.post(
        "/api/auth/login",
        login,
        auth=False,
        body=fields(
            Field("username_or_email", required=True, description="Username or email address"),
            Field("password", required=True, description="Account password"),
            Field("mfa_code", description="TOTP code if MFA is enabled"),
        ),
        response=obj(
            ["access_token", "token_type", "expires_in", "user"],
            access_token=STR,
            token_type={"type": "string", "enum": ["bearer"]},
            expires_in=INT,
            user=USER,
        ),
        errors=(400, 401),
    )
    group.get(
        "/api/memory/search",
        search,
        rate_class=MEMORY_SEARCH,
        query=fields(
            Field("q", required=True, description="Search query"),
            Field("limit", "integer", default=10, minimum=1, maximum=limits.max_top_k),
            Field("source", description="Filter by source type"),
            Field("from_date", "date-time", description="ISO date filter"),
            Field(
                "to_date",
                "date-time",
                end_of_day=True,
                description="ISO date filter (a bare date includes that day)",
            ),
        ),
        response=obj(
            ["results", "total"],
            results=arr(
                obj(
                    ["id", "content", "source", "similarity", "timestamp"],
                    id=STR,
                    content=STR,
                    source=STR,
                    similarity=NUM,
                    timestamp=TIME,
                )
            ),
            total=INT,
        ),
    )
    group.post(
        "/api/memory",
        add_memory,
        status=201,
        body=fields(
            Field("content", required=True, max_length=limits.max_content_chars),
            Field("source"),
            Field("timestamp", "date-time"),
            Field("tags", "array", items="string"),
            Field("metadata", "object"),
        ),
        quota=lambda call: {"storage_bytes": len(call.body["content"].encode())},
        response=MEMORY,
        description="Extension: the document implies ingestion but names no route.",
    )
    group.get(
        "/api/memory/stats",
        stats,
        response=obj(
            ["total_memories", "short_term", "long_term", "by_source", "last_sync"],
            total_memories=INT,
            short_term=INT,
            long_term=INT,
            by_source={"type": "object", "additionalProperties": INT},
            last_sync=NULL_TIME,
        ),
        errors=(401,),
    )
    return group.endpoints
