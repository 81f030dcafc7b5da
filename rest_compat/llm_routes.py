"""Models and providers across the families: Sentech ``/supported-models``, Senua
``/api/models``, and the Chat API's LLM providers and per-user LLM configs (keys masked)."""

from __future__ import annotations

from typing import Any

from domain.entities import Actor, Role
from domain.errors import NotFound
from domain.llm import LlmProvider, UserLlmConfig
from domain.policy import Limits
from domain.services.delegation import act_as
from domain.services.llm_admin import ProviderDraft
from rest_compat.dialects import CHAT_API, SENTECH, SENUA
from rest_compat.endpoint import Call, Endpoint, Group, Reply
from rest_compat.fields import NULL_STR, NUM, STR, TIME, Field, arr, fields, obj
from rest_compat.render import iso

# The model catalog is public (Sentech documents /supported-models without auth); the
# service's signature wants an actor, and this one can do nothing else.
CATALOG_READER = Actor(user_id="anonymous-catalog-reader", role=Role.USER, via="anonymous")
LOCAL_KINDS = ("extractive", "local", "ollama")

PROVIDER = obj(
    ["id", "name", "api_endpoint", "created_at"],
    id=STR,
    name=STR,
    kind=STR,
    api_endpoint=NULL_STR,
    created_at=TIME,
)
CONFIG = obj(
    ["id", "user_id", "provider_id", "api_key"],
    id=STR,
    user_id=STR,
    provider_id=STR,
    api_key={"type": "string", "description": "Masked: only the last 4 characters show."},
    created_at=TIME,
    updated_at=TIME,
)


def provider_body(provider: LlmProvider) -> dict[str, Any]:
    return {
        "id": provider.id,
        "name": provider.name,
        "kind": provider.kind,
        "api_endpoint": provider.api_endpoint,
        "created_at": iso(provider.created_at),
    }


def config_body(config: UserLlmConfig) -> dict[str, Any]:
    return {
        "id": config.id,
        "user_id": config.user_id,
        "provider_id": config.provider_id,
        "api_key": config.masked_key,
        "created_at": iso(config.created_at),
        "updated_at": iso(config.updated_at),
    }


async def supported_models(call: Call) -> dict[str, Any]:
    """Supported models and their price (USD per 1M tokens)"""
    models = await call.services.llm.models(uow=call.uow, actor=call.maybe_actor or CATALOG_READER)
    return {
        "models": [
            {
                "model_name": m.name,
                "price": m.input_price_micros_per_m / 1_000_000,
                "input_price": m.input_price_micros_per_m / 1_000_000,
                "output_price": m.output_price_micros_per_m / 1_000_000,
            }
            for m in models
            if m.status == "active"
        ]
    }


async def senua_models(call: Call) -> dict[str, Any]:
    """Available LLM models and the default"""
    llm = call.services.llm
    providers = {p.id: p for p in await llm.providers(uow=call.uow, actor=call.actor)}
    models = await llm.models(uow=call.uow, actor=call.actor)
    default = await llm.resolve(uow=call.uow, actor=call.actor, model=None)
    out = []
    for m in models:
        provider = providers.get(m.provider_id)
        kind = provider.kind if provider else "unknown"
        ready = m.status == "active" and (provider is None or provider.enabled)
        status = ("ready" if kind in LOCAL_KINDS else "available") if ready else "disabled"
        out.append({"id": m.name, "provider": kind, "status": status})
    return {"models": out, "default": default.model.name}


async def create_provider(call: Call) -> Reply:
    """Create an LLM provider (admin)"""
    provider, _models = await call.services.llm.create_provider(
        uow=call.uow,
        actor=call.actor,
        draft=ProviderDraft(
            name=call.body["name"],
            kind=call.body["kind"],
            api_endpoint=call.body["api_endpoint"],
            api_key=call.body["api_key"],
        ),
    )
    return Reply(provider_body(provider))


async def get_provider(call: Call) -> dict[str, Any]:
    """Get an LLM provider"""
    for provider in await call.services.llm.providers(uow=call.uow, actor=call.actor):
        if provider.id == call.path["id"]:
            return provider_body(provider)
    raise NotFound("LLM provider not found")


async def create_user_config(call: Call) -> Reply:
    """Store your API key for a provider (encrypted; returned masked)"""
    try:
        owner = await act_as(uow=call.uow, actor=call.actor, user_id=call.body["user_id"])
        config = await call.services.llm.set_user_config(
            uow=call.uow,
            actor=owner,
            provider=call.body["provider_id"],
            api_key=call.body["api_key"],
        )
    except NotFound:
        raise NotFound("User or LLM provider not found") from None
    return Reply(config_body(config))


async def get_user_config(call: Call) -> dict[str, Any]:
    """Get a user's LLM config (key masked)"""
    try:
        owner = await act_as(uow=call.uow, actor=call.actor, user_id=call.path["user_id"])
    except NotFound:
        raise NotFound("User LLM config not found") from None
    # Scoped by the owner's id like every repository read: another user's config is unknown.
    config = await call.uow.llm.user_config(
        user_id=owner.user_id, provider_id=call.path["provider_id"]
    )
    if config is None:
        raise NotFound("User LLM config not found")
    return config_body(config)


def endpoints(limits: Limits) -> list[Endpoint]:
    sentech = Group(dialect=SENTECH, tag="Sentech")
    sentech.get(
        "/supported-models",
        supported_models,
        auth=False,
        response=obj(
            ["models"],
            models=arr(obj(["model_name", "price"], model_name=STR, price=NUM)),
        ),
        errors=(),
    )
    senua = Group(dialect=SENUA, tag="Senua Memory")
    senua.get(
        "/api/models",
        senua_models,
        response=obj(
            ["models", "default"],
            models=arr(
                obj(["id", "provider", "status"], id=STR, provider=STR, status=STR, size=STR)
            ),
            default=STR,
        ),
        errors=(401,),
    )
    chat = Group(dialect=CHAT_API, tag="Chat API")
    chat.post(
        "/chat/llm-providers",
        create_provider,
        status=201,
        body=fields(
            Field("name", required=True, max_length=100),
            Field("api_endpoint", required=True, max_length=2000),
            Field(
                "kind",
                default="openai",
                enum=("openai", "anthropic", "ollama", "local"),
                description="Wire protocol (default: OpenAI-compatible).",
            ),
            Field("api_key", max_length=1000, description="Shared key; stored encrypted."),
        ),
        response=PROVIDER,
        errors=(400, 401, 403),
    )
    chat.get("/chat/llm-providers/{id}", get_provider, response=PROVIDER)
    chat.post(
        "/chat/user-llm-configs",
        create_user_config,
        status=201,
        body=fields(
            Field("user_id", required=True),
            Field("provider_id", required=True),
            Field("api_key", required=True, max_length=1000),
        ),
        response=CONFIG,
        errors=(400, 401, 403, 404),
    )
    chat.get(
        "/chat/user-llm-configs/{user_id}/{provider_id}",
        get_user_config,
        response=CONFIG,
        errors=(401, 403, 404),
    )
    return sentech.endpoints + senua.endpoints + chat.endpoints
