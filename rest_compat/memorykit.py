"""MemoryKit (``memorykit-api.txt``), base ``/v1``: conversations, messages, health,
statistics, patterns and webhooks; camelCase fields, page/pageSize pagination. Error body
``{"error": "NOT_FOUND", "message", "details"}``. Query/context are in
:mod:`rest_compat.chat_routes`.

Besides the documented ``GET /v1/patterns``, ``DELETE /v1/patterns/{id}`` and
``POST /v1/webhooks`` (the secret is shown once), ``GET /v1/webhooks``,
``DELETE /v1/webhooks/{id}`` and ``POST /v1/webhooks/{id}/rotate`` manage subscriptions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse

from domain.entities import Conversation, Message
from domain.patterns import Pattern
from domain.policy import Limits
from domain.webhooks import WEBHOOK_EVENTS, Webhook
from rest_compat.dialects import MEMORYKIT
from rest_compat.endpoint import Call, Endpoint, Group, Reply
from rest_compat.fields import INT, NULL_TIME, NUM, OBJ, STR, STRS, TIME, Field, arr, fields, obj
from rest_compat.render import iso

MAX_PAGE = 10_000

CONVERSATION = obj(
    ["id", "userId", "title", "messageCount", "lastActivityAt"],
    id=STR,
    userId=STR,
    title=STR,
    description=STR,
    tags=STRS,
    messageCount=INT,
    lastActivityAt=TIME,
    createdAt=TIME,
)
MESSAGE = obj(
    ["id", "conversationId", "role", "content", "timestamp", "importanceScore"],
    id=STR,
    conversationId=STR,
    role=STR,
    content=STR,
    tags=STRS,
    timestamp=TIME,
    importanceScore=NUM,
)


def conversation_body(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "userId": conversation.user_id,
        "title": conversation.title,
        "description": conversation.description,
        "tags": list(conversation.tags),
        "messageCount": conversation.message_count,
        "lastActivityAt": iso(conversation.last_activity_at),
        "createdAt": iso(conversation.created_at),
    }


def message_body(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversationId": message.conversation_id,
        "role": message.role.value,
        "content": message.content,
        "tags": list(message.tags),
        "timestamp": iso(message.created_at),
        "importanceScore": message.importance,
    }


def page_envelope(items: list[Any], *, page: int, page_size: int, total: int) -> dict[str, Any]:
    return {"items": items, "page": page, "pageSize": page_size, "totalCount": total}


async def create_conversation(call: Call) -> Reply:
    """Create a conversation"""
    conversation = await call.services.conversations.create(
        uow=call.uow,
        actor=call.actor,
        title=call.body["title"],
        description=call.body["description"] or "",
        tags=call.body["tags"],
    )
    return Reply(conversation_body(conversation))


async def list_conversations(call: Call) -> dict[str, Any]:
    """List conversations, newest first"""
    page, size = call.query["page"], call.query["pageSize"]
    after: str | None = None
    items: list[Conversation] = []
    total = 0
    # Keyset pages underneath: page N follows N-1 cursors (each an indexed range scan).
    for index in range(1, page + 1):
        items, more, total = await call.services.conversations.page(
            uow=call.uow, actor=call.actor, first=size, after=after
        )
        if index == page:
            break
        if not more:
            items = []
            break
        after = items[-1].id
    return page_envelope(
        [conversation_body(c) for c in items], page=page, page_size=size, total=total
    )


async def add_message(call: Call) -> Reply:
    """Add a message to a conversation"""
    message = await call.services.conversations.add_message(
        uow=call.uow,
        actor=call.actor,
        conversation_id=call.path["conversationId"],
        role=call.body["role"],
        content=call.body["content"],
        tags=call.body["tags"],
    )
    return Reply(message_body(message))


async def health(call: Call) -> JSONResponse:
    """Health of the memory store"""
    report = dict(await call.services.health())
    now = iso(datetime.now(UTC))
    if report.get("status") == "healthy":
        return JSONResponse({"status": "healthy", "timestamp": now})
    return JSONResponse(
        {"status": "unhealthy", "timestamp": now, "details": report}, status_code=503
    )


async def statistics(call: Call) -> dict[str, Any]:
    """Counts of what the memory holds for you"""
    stats_service = call.services.stats
    counts = await stats_service.get(uow=call.uow, actor=call.actor)
    return {
        "userId": call.actor.user_id,
        "conversationCount": counts.conversation_count,
        "messageCount": counts.message_count,
        "factCount": counts.fact_count,
        "patternCount": counts.pattern_count,
    }


TRIGGER = obj(["type", "pattern"], type=STR, pattern=STR)
PATTERN = obj(
    ["id", "name", "description", "triggers", "usageCount", "lastUsed"],
    id=STR,
    name=STR,
    description=STR,
    triggers=arr(TRIGGER),
    usageCount=INT,
    lastUsed=NULL_TIME,
    kind=STR,
    confidence=NUM,
    evidenceMessageIds=STRS,
)
WEBHOOK = obj(["id", "url", "events"], id=STR, url=STR, events=STRS, secret=STR, createdAt=TIME)


def pattern_body(p: Pattern) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        # MemoryKit writes trigger types capitalised ("Keyword").
        "triggers": [{"type": t.type.value.capitalize(), "pattern": t.pattern} for t in p.triggers],
        "usageCount": p.usage_count,
        "lastUsed": iso(p.last_used) if p.last_used else None,
        "kind": p.kind.value,
        "confidence": p.confidence,
        "evidenceMessageIds": list(p.evidence),
    }


def webhook_body(w: Webhook, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": w.id,
        "url": w.url,
        "events": list(w.events),
        "createdAt": iso(w.created_at),
    }
    if secret is not None:
        body["secret"] = secret
    return body


async def list_patterns(call: Call) -> dict[str, Any]:
    """List learnt behaviour patterns"""
    service = call.services.patterns
    page, size = call.query["page"], call.query["pageSize"]
    items, total = await service.numbered_page(
        uow=call.uow, actor=call.actor, page=page, page_size=size
    )
    return {
        "items": [pattern_body(p) for p in items],
        "page": page,
        "pageSize": size,
        "totalCount": total,
    }


async def delete_pattern(call: Call) -> Reply:
    """Delete a pattern"""
    service = call.services.patterns
    await service.delete(uow=call.uow, actor=call.actor, pattern_id=call.path["id"])
    return Reply(None, status=204)


async def create_webhook(call: Call) -> Reply:
    """Subscribe to events (the signing secret is returned once)"""
    service = call.services.webhooks
    webhook, secret = await service.subscribe(
        uow=call.uow, actor=call.actor, url=call.body["url"], events=call.body["events"]
    )
    return Reply(webhook_body(webhook, secret), status=201)


async def list_webhooks(call: Call) -> list[dict[str, Any]]:
    """List webhook subscriptions"""
    service = call.services.webhooks
    return [webhook_body(w) for w in await service.list(uow=call.uow, actor=call.actor)]


async def delete_webhook(call: Call) -> Reply:
    """Delete a webhook subscription"""
    service = call.services.webhooks
    await service.delete(uow=call.uow, actor=call.actor, webhook_id=call.path["id"])
    return Reply(None, status=204)


async def rotate_webhook(call: Call) -> dict[str, Any]:
    """Rotate a webhook's signing secret (the new one is returned once)"""
    service = call.services.webhooks
    webhook, secret = await service.rotate_secret(
        uow=call.uow, actor=call.actor, webhook_id=call.path["id"]
    )
    return webhook_body(webhook, secret)


def endpoints(limits: Limits) -> list[Endpoint]:
    group = Group(dialect=MEMORYKIT, tag="MemoryKit")
    group.post(
        "/v1/conversations",
        create_conversation,
        status=201,
        body=fields(
            Field("title", required=True, max_length=limits.max_name_chars),
            Field("description", max_length=limits.max_content_chars),
            Field("tags", "array", items="string"),
        ),
        quota=lambda _call: {"conversations": 1},
        response=CONVERSATION,
        errors=(400, 401, 403),
    )
    group.get(
        "/v1/conversations",
        list_conversations,
        query=fields(
            Field("page", "integer", default=1, minimum=1, maximum=MAX_PAGE),
            Field("pageSize", "integer", default=10, minimum=1, maximum=limits.max_page),
        ),
        response=obj(
            ["items", "page", "pageSize", "totalCount"],
            items=arr(CONVERSATION),
            page=INT,
            pageSize=INT,
            totalCount=INT,
        ),
    )
    group.post(
        "/v1/conversations/{conversationId}/messages",
        add_message,
        status=201,
        body=fields(
            Field("role", required=True, enum=("system", "user", "assistant", "tool")),
            Field("content", required=True, max_length=limits.max_content_chars),
            Field("tags", "array", items="string"),
        ),
        quota=lambda call: {"messages": 1, "storage_bytes": len(call.body["content"].encode())},
        response=MESSAGE,
        errors=(400, 401, 403, 404),
    )
    group.get(
        "/v1/memory/health",
        health,
        auth=False,
        response=obj(["status", "timestamp"], status=STR, timestamp=TIME, details=OBJ),
        errors=(503,),
    )
    group.get(
        "/v1/memory/statistics",
        statistics,
        response=obj(
            ["userId", "conversationCount", "messageCount", "factCount", "patternCount"],
            userId=STR,
            conversationCount=INT,
            messageCount=INT,
            factCount=INT,
            patternCount=INT,
        ),
        errors=(401,),
    )
    group.get(
        "/v1/patterns",
        list_patterns,
        query=fields(
            Field("page", "integer", default=1, minimum=1, maximum=10_000),
            Field("pageSize", "integer", default=10, minimum=1, maximum=limits.max_page),
        ),
        response=obj(
            ["items", "page", "pageSize", "totalCount"],
            items=arr(PATTERN),
            page=INT,
            pageSize=INT,
            totalCount=INT,
        ),
    )
    group.delete("/v1/patterns/{id}", delete_pattern, status=204)
    group.post(
        "/v1/webhooks",
        create_webhook,
        status=201,
        body=fields(
            Field("url", required=True, max_length=2000, description="Receiver URL (http/https)"),
            Field(
                "events",
                "array",
                required=True,
                items="string",
                description="Any of: " + ", ".join(WEBHOOK_EVENTS),
            ),
        ),
        response=WEBHOOK,
        description=(
            "Each delivery is a POST with a JSON body and the headers X-Memoria-Event-Id and "
            "X-Memoria-Signature: t=<unix>,v1=<hex HMAC-SHA256 of '<t>.<body>' with the secret>."
        ),
    )
    group.get("/v1/webhooks", list_webhooks, response=arr(WEBHOOK))
    group.delete("/v1/webhooks/{id}", delete_webhook, status=204)
    group.post("/v1/webhooks/{id}/rotate", rotate_webhook, body=fields(), response=WEBHOOK)
    return group.endpoints
