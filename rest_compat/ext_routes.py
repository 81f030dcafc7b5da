"""REST routes of patterns, webhooks and data sources.

MemoryKit (``/v1``, MemoryKit error body): ``GET /v1/patterns`` (page/pageSize),
``DELETE /v1/patterns/{id}``, ``POST /v1/webhooks`` (the secret is shown once), plus
``GET /v1/webhooks``, ``DELETE /v1/webhooks/{id}`` and ``POST /v1/webhooks/{id}/rotate``.

Senua (``/api``, Senua error body): ``GET``/``POST /api/sources``,
``POST /api/sources/{id}/sync`` (202, runs in the background, 10 per minute),
``POST /api/sources/{id}/files`` (multipart upload into a files source) and the OAuth2
callback ``GET /api/sources/oauth/callback`` (open: the signed ``state`` names the user).
Statistics routes are in :mod:`rest_compat.senua` and :mod:`rest_compat.memorykit`.
"""

from __future__ import annotations

from typing import Any

from domain.errors import BadUserInput
from domain.patterns import Pattern
from domain.policy import Limits
from domain.rate_policy import SYNC
from domain.sources import DataSource
from domain.webhooks import WEBHOOK_EVENTS, Webhook
from rest_compat.dialects import MEMORYKIT, SENUA
from rest_compat.endpoint import Call, Endpoint, Group, Reply
from rest_compat.fields import INT, NULL_TIME, NUM, OBJ, STR, STRS, TIME, Field, arr, fields, obj
from rest_compat.render import iso

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


# ---------------------------------------------------------------- MemoryKit


async def list_patterns(call: Call) -> dict[str, Any]:
    """List learnt behaviour patterns"""
    service = call.require(call.services.patterns, "patterns")
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
    service = call.require(call.services.patterns, "patterns")
    await service.delete(uow=call.uow, actor=call.actor, pattern_id=call.path["id"])
    return Reply(None, status=204)


async def create_webhook(call: Call) -> Reply:
    """Subscribe to events (the signing secret is returned once)"""
    service = call.require(call.services.webhooks, "webhooks")
    webhook, secret = await service.subscribe(
        uow=call.uow, actor=call.actor, url=call.body["url"], events=call.body["events"]
    )
    return Reply(webhook_body(webhook, secret), status=201)


async def list_webhooks(call: Call) -> list[dict[str, Any]]:
    """List webhook subscriptions"""
    service = call.require(call.services.webhooks, "webhooks")
    return [webhook_body(w) for w in await service.list(uow=call.uow, actor=call.actor)]


async def delete_webhook(call: Call) -> Reply:
    """Delete a webhook subscription"""
    service = call.require(call.services.webhooks, "webhooks")
    await service.delete(uow=call.uow, actor=call.actor, webhook_id=call.path["id"])
    return Reply(None, status=204)


async def rotate_webhook(call: Call) -> dict[str, Any]:
    """Rotate a webhook's signing secret (the new one is returned once)"""
    service = call.require(call.services.webhooks, "webhooks")
    webhook, secret = await service.rotate_secret(
        uow=call.uow, actor=call.actor, webhook_id=call.path["id"]
    )
    return webhook_body(webhook, secret)


# ---------------------------------------------------------------- Senua sources


async def list_sources(call: Call) -> dict[str, Any]:
    """List connected data sources and their status"""
    service = call.require(call.services.sources, "sources")
    return {"sources": [source_body(s) for s in await service.list(uow=call.uow, actor=call.actor)]}


async def connect_source(call: Call) -> Reply:
    """Connect a data source (cloud services answer with an OAuth URL)"""
    service = call.require(call.services.sources, "sources")
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
    service = call.require(call.services.sources, "sources")
    run = await service.request_sync(uow=call.uow, actor=call.actor, source_id=call.path["id"])
    return Reply({"id": run.source_id, "sync_id": run.id, "status": "syncing"}, status=202)


async def upload_file(call: Call) -> Reply:
    """Upload a file (text, Markdown, HTML, PDF) into a files source"""
    service = call.require(call.services.sources, "sources")
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
    service = call.require(call.services.sources, "sources")
    source = await service.complete_oauth(
        uow=call.uow, state=call.query["state"], code=call.query["code"]
    )
    return source_body(source)


def endpoints(limits: Limits) -> list[Endpoint]:
    kit = Group(dialect=MEMORYKIT, tag="MemoryKit")
    kit.get(
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
    kit.delete("/v1/patterns/{id}", delete_pattern, status=204)
    kit.post(
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
    kit.get("/v1/webhooks", list_webhooks, response=arr(WEBHOOK))
    kit.delete("/v1/webhooks/{id}", delete_webhook, status=204)
    kit.post("/v1/webhooks/{id}/rotate", rotate_webhook, body=fields(), response=WEBHOOK)

    senua = Group(dialect=SENUA, tag="Senua Memory")
    senua.get("/api/sources", list_sources, response=obj(["sources"], sources=arr(SOURCE)))
    senua.post(
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
    senua.get(
        "/api/sources/oauth/callback",
        oauth_callback,
        auth=False,
        query=fields(Field("code", required=True), Field("state", required=True)),
        response=SOURCE,
    )
    senua.post(
        "/api/sources/{id}/sync",
        sync_source,
        status=202,
        rate_class=SYNC,
        body=fields(),
        response=obj(["id", "status"], id=STR, status=STR, sync_id=STR),
        errors=(400, 401, 404, 429),
    )
    senua.post(
        "/api/sources/{id}/files",
        upload_file,
        status=201,
        multipart=True,
        body=fields(Field("name", description="File name (defaults to the upload's)")),
        response=obj(["id", "name"], id=STR, name=STR, sha256=STR),
    )
    return kit.endpoints + senua.endpoints
