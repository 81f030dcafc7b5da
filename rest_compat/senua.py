"""Senua Memory (``senua-memory-api.txt``), base ``/api``: login with MFA, memory search,
ingestion, stats and data sources. Error body ``{"error": {"code", "message", "details"}}``.

Sources: ``GET``/``POST /api/sources``, ``POST /api/sources/{id}/sync`` (202, runs in the
background, 10 per minute), ``POST /api/sources/{id}/files`` (multipart upload into a files
source) and the OAuth2 callback ``GET /api/sources/oauth/callback`` (open: the signed
``state`` names the user). The chat route (``/api/chat``) is in
:mod:`rest_compat.chat_routes`.
"""

from __future__ import annotations

from typing import Any

from domain.entities import Memory
from domain.errors import BadUserInput
from domain.memory_drafts import MemoryDraft
from domain.policy import Limits
from domain.rate_policy import LOGIN, MEMORY_SEARCH, SYNC
from domain.retrieval.settings import SearchFilter
from domain.sources import DataSource
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
    stats_service = call.services.stats
    counts = await stats_service.get(uow=call.uow, actor=call.actor)
    return {
        "total_memories": counts.total_memories,
        "short_term": counts.short_term,
        "long_term": counts.long_term,
        "by_source": dict(counts.by_source),
        "last_sync": iso(counts.last_sync),
    }


SOURCE = obj(
    ["id", "type", "status", "last_sync", "item_count"],
    id=STR,
    type=STR,
    status=STR,
    last_sync=NULL_TIME,
    item_count=INT,
    name=STR,
    config=OBJ,
    last_error={"type": "string", "nullable": True},
)


def source_body(s: DataSource) -> dict[str, Any]:
    return {
        "id": s.id,
        "type": s.kind.value,
        "status": s.status.value,
        "last_sync": iso(s.last_sync_at) if s.last_sync_at else None,
        "item_count": s.item_count,
        "name": s.name,
        "config": s.config,
        "last_error": s.last_error,
    }


async def list_sources(call: Call) -> dict[str, Any]:
    """List connected data sources and their status"""
    service = call.services.sources
    return {"sources": [source_body(s) for s in await service.list(uow=call.uow, actor=call.actor)]}


async def connect_source(call: Call) -> Reply:
    """Connect a data source (cloud services answer with an OAuth URL)"""
    service = call.services.sources
    source, oauth_url = await service.create(
        uow=call.uow,
        actor=call.actor,
        kind=call.body["type"],
        config=call.body["config"] or {},
        name=call.body["name"],
    )
    body = source_body(source)
    if oauth_url:
        body["oauth_url"] = oauth_url
    return Reply(body, status=201)


async def sync_source(call: Call) -> Reply:
    """Trigger a sync (it runs in the background)"""
    service = call.services.sources
    run = await service.request_sync(uow=call.uow, actor=call.actor, source_id=call.path["id"])
    return Reply({"id": run.source_id, "sync_id": run.id, "status": "syncing"}, status=202)


async def upload_file(call: Call) -> Reply:
    """Upload a file (text, Markdown, HTML, PDF) into a files source"""
    service = call.services.sources
    upload = call.files.get("file")
    if upload is None:
        raise BadUserInput("a multipart part named 'file' is required", details={"field": "file"})
    stored = await service.upload_file(
        uow=call.uow,
        actor=call.actor,
        source_id=call.path["id"],
        name=call.body["name"] or upload.filename or "",
        data=upload.data,
    )
    return Reply({"id": stored.id, "name": stored.name, "sha256": stored.sha256}, status=201)


async def oauth_callback(call: Call) -> dict[str, Any]:
    """OAuth2 callback: exchange the code for a token"""
    service = call.services.sources
    source = await service.complete_oauth(
        uow=call.uow, state=call.query["state"], code=call.query["code"]
    )
    return source_body(source)


def endpoints(limits: Limits) -> list[Endpoint]:
    group = Group(dialect=SENUA, tag="Senua Memory")
    group.post(
        "/api/auth/login",
        login,
        auth=False,
        rate_class=LOGIN,  # the sign-in throttle watches it per client address
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
    group.get("/api/sources", list_sources, response=obj(["sources"], sources=arr(SOURCE)))
    group.post(
        "/api/sources",
        connect_source,
        status=201,
        body=fields(
            Field("type", required=True, enum=("files", "github", "slack", "notion", "email")),
            Field("config", "object", description="Per type: repos, channels, host... and token"),
            Field("name", max_length=200),
        ),
        response=SOURCE,
    )
    group.get(
        "/api/sources/oauth/callback",
        oauth_callback,
        auth=False,
        query=fields(Field("code", required=True), Field("state", required=True)),
        response=SOURCE,
    )
    group.post(
        "/api/sources/{id}/sync",
        sync_source,
        status=202,
        rate_class=SYNC,
        body=fields(),
        response=obj(["id", "status"], id=STR, status=STR, sync_id=STR),
        errors=(400, 401, 404, 429),
    )
    group.post(
        "/api/sources/{id}/files",
        upload_file,
        status=201,
        multipart=True,
        body=fields(Field("name", description="File name (defaults to the upload's)")),
        response=obj(["id", "name"], id=STR, name=STR, sha256=STR),
    )
    return group.endpoints
