"""Admin-managed LLM providers and models, users' own keys, and model resolution.

The built-in extractive model is always offered and is the default when no other model is
configured, so a fresh deployment can chat with no external service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlparse

from domain.clock import Clock
from domain.entities import Actor, new_id
from domain.errors import BadUserInput, Conflict, Forbidden, NotFound
from domain.events import LLM_CATALOG_CHANGED, DomainEvent
from domain.llm import (
    EXTRACTIVE_MODEL,
    PROVIDER_KINDS,
    ChatModel,
    ChatModelFactory,
    LlmModel,
    LlmProvider,
    ProviderEndpoint,
    SecretCipher,
    UserLlmConfig,
)
from domain.policy import require_text
from domain.ports import UnitOfWork, UrlGuard

BUILTIN_PROVIDER = LlmProvider(
    id="builtin-extractive",
    name="builtin",
    kind="extractive",
    api_endpoint=None,
    api_key_encrypted=None,
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)
BUILTIN_MODEL = LlmModel(
    id="builtin-extractive",
    provider_id=BUILTIN_PROVIDER.id,
    name=EXTRACTIVE_MODEL,
    context_window=8192,
    input_price_micros_per_m=0,
    output_price_micros_per_m=0,
    created_at=BUILTIN_PROVIDER.created_at,
)
_MAX_PRICE_USD_PER_M = 10_000.0
CATALOG_TTL_SECONDS = 5.0
_CATALOG_SIZE = 256
_USER_KEYS_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class ModelDraft:
    name: str
    context_window: int = 8192
    input_price_per_m: float = 0.0  # USD per 1M input tokens
    output_price_per_m: float = 0.0


@dataclass(frozen=True, slots=True)
class ProviderDraft:
    name: str
    kind: str
    api_endpoint: str | None = None
    api_key: str | None = None
    models: list[ModelDraft] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A model ready to call: its catalog entry, its provider and the adapter.
    ``own_key``: the user's own key is used, so the user pays the provider, not us."""

    model: LlmModel
    provider: LlmProvider
    chat_model: ChatModel
    own_key: bool = False

    @property
    def charged(self) -> bool:
        return self.model.is_priced and not self.own_key


def _micros(usd: float, *, name: str) -> int:
    if not 0 <= usd <= _MAX_PRICE_USD_PER_M:
        raise BadUserInput(f"{name} must be between 0 and {_MAX_PRICE_USD_PER_M:g}")
    return round(usd * 1_000_000)


class LlmAdminService:
    def __init__(
        self,
        *,
        clock: Clock,
        cipher: SecretCipher,
        factory: ChatModelFactory,
        default_model: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        url_guard: UrlGuard | None = None,
    ) -> None:
        self._clock = clock
        self._guard = url_guard  # the outbound policy for api endpoints; None: unchecked
        self._cipher = cipher
        self._factory = factory
        self._default_model = default_model
        self._monotonic = monotonic
        # Model name -> (expiry, catalog entry, its provider): every chat turn resolves its
        # model, and two reads per turn for a catalog that only changes when an admin adds
        # a provider were a measurable share of a turn's start. Only hits are kept (a new
        # model is never hidden by a cached miss); the short expiry bounds staleness when
        # another process or a direct database edit changes the catalog.
        self._catalog: dict[str, tuple[float, LlmModel, LlmProvider]] = {}
        # (user, provider) -> (expiry, user's own decrypted key or None): the other read of
        # every turn start, cached the same way; replaced at once by ``set_user_config``.
        self._user_keys: dict[tuple[str, str], tuple[float, str | None]] = {}

    async def create_provider(
        self, *, uow: UnitOfWork, actor: Actor, draft: ProviderDraft
    ) -> tuple[LlmProvider, list[LlmModel]]:
        if not actor.is_admin:
            raise Forbidden("Only an admin may create providers")
        name = require_text(draft.name, name="name", max_chars=100)
        kind = (draft.kind or "").strip().lower()
        if kind not in PROVIDER_KINDS:
            raise BadUserInput(f"kind must be one of {', '.join(PROVIDER_KINDS)}")
        endpoint = (draft.api_endpoint or "").strip() or None
        if kind in ("openai", "ollama", "local") and endpoint is None:
            raise BadUserInput(
                "apiEndpoint is required for this kind", details={"field": "apiEndpoint"}
            )
        if endpoint is not None:
            url = urlparse(endpoint)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise BadUserInput(
                    "apiEndpoint must be an http(s) URL", details={"field": "apiEndpoint"}
                )
            if self._guard is not None:
                await self._guard.check(endpoint, field="apiEndpoint")
        if await uow.llm.provider_by_name(name) is not None or name == BUILTIN_PROVIDER.name:
            raise Conflict("A provider with this name exists")
        now = self._clock.now()
        provider = LlmProvider(
            id=new_id(),
            name=name,
            kind=kind,
            api_endpoint=endpoint,
            api_key_encrypted=self._cipher.encrypt(draft.api_key) if draft.api_key else None,
            created_at=now,
        )
        models: list[LlmModel] = []
        seen: set[str] = set()
        for m in draft.models:
            model_name = require_text(m.name, name="model name", max_chars=200)
            if model_name in seen or model_name == EXTRACTIVE_MODEL:
                raise Conflict(f"duplicate model {model_name!r}")
            if await uow.llm.model_by_name(model_name) is not None:
                raise Conflict(f"model {model_name!r} already exists")
            if not 256 <= m.context_window <= 10_000_000:
                raise BadUserInput("contextWindow must be between 256 and 10000000")
            seen.add(model_name)
            models.append(
                LlmModel(
                    id=new_id(),
                    provider_id=provider.id,
                    name=model_name,
                    context_window=m.context_window,
                    input_price_micros_per_m=_micros(m.input_price_per_m, name="inputPrice"),
                    output_price_micros_per_m=_micros(m.output_price_per_m, name="outputPrice"),
                    created_at=now,
                )
            )
        await uow.llm.add_provider(provider)
        for model in models:
            await uow.llm.add_model(model)
        self._catalog.clear()  # the default (first catalog model) may have changed
        uow.record(
            DomainEvent(
                LLM_CATALOG_CHANGED,
                user_id=actor.user_id,
                at=now,
                payload={"provider_id": provider.id},
            )
        )
        return provider, models

    async def providers(self, *, uow: UnitOfWork, actor: Actor) -> list[LlmProvider]:
        return [BUILTIN_PROVIDER, *await uow.llm.providers()]

    async def models(self, *, uow: UnitOfWork, actor: Actor) -> list[LlmModel]:
        return [*await uow.llm.models(), BUILTIN_MODEL]

    async def provider_of(self, *, uow: UnitOfWork, model: LlmModel) -> LlmProvider:
        if model.provider_id == BUILTIN_PROVIDER.id:
            return BUILTIN_PROVIDER
        provider = await uow.llm.provider(model.provider_id)
        if provider is None:
            raise NotFound("Provider not found")
        return provider

    async def set_user_config(
        self, *, uow: UnitOfWork, actor: Actor, provider: str, api_key: str
    ) -> UserLlmConfig:
        """Store the user's own key for a provider (by id or name), replacing an older one."""
        key = require_text(api_key, name="apiKey", max_chars=1000)
        found = await uow.llm.provider(provider) or await uow.llm.provider_by_name(provider)
        if found is None:
            raise NotFound("Provider not found")
        now = self._clock.now()
        existing = await uow.llm.user_config(user_id=actor.user_id, provider_id=found.id)
        config = UserLlmConfig(
            id=existing.id if existing else new_id(),
            user_id=actor.user_id,
            provider_id=found.id,
            api_key_encrypted=self._cipher.encrypt(key),
            # Long keys only: showing 7 characters of a short one would give too much away.
            key_hint=key[:3] + key[-4:] if len(key) >= 16 else "",
            created_at=existing.created_at if existing else now,
            updated_at=now,
        )
        await uow.llm.save_user_config(config)
        self._user_keys.pop((actor.user_id, found.id), None)
        uow.record(
            DomainEvent(
                LLM_CATALOG_CHANGED,
                user_id=actor.user_id,
                at=now,
                payload={"provider_id": found.id, "user_key": True},
            )
        )
        return config

    def forget(self, event: DomainEvent) -> None:
        """Drop what a committed catalog change (``LLM_CATALOG_CHANGED``, possibly made by
        another process of the deployment) makes stale: the user's cached key, or the whole
        catalog. The short expiry is the fallback when a notification is lost."""
        if event.name != LLM_CATALOG_CHANGED:
            return
        provider_id = str(event.payload.get("provider_id"))
        if event.payload.get("user_key"):
            self._user_keys.pop((event.user_id, provider_id), None)
        else:
            self._catalog.clear()

    async def resolve(self, *, uow: UnitOfWork, actor: Actor, model: str | None) -> ResolvedModel:
        """The model to answer with: the named one, else the configured default, else the
        first catalog model, else the built-in extractive model."""
        entry, provider = await self._catalog_entry(uow, model)
        if not provider.enabled or entry.status != "active":
            raise NotFound("Model not found")
        key: str | None = None
        own = False
        if provider.kind != "extractive":
            user_key = await self._user_key(uow, actor.user_id, provider.id)
            if user_key is not None:
                key, own = user_key, True
            elif provider.api_key_encrypted:
                key = self._cipher.decrypt(provider.api_key_encrypted)
        adapter = self._factory.for_endpoint(
            ProviderEndpoint(kind=provider.kind, api_endpoint=provider.api_endpoint, api_key=key)
        )
        return ResolvedModel(model=entry, provider=provider, chat_model=adapter, own_key=own)

    async def _user_key(self, uow: UnitOfWork, user_id: str, provider_id: str) -> str | None:
        now = self._monotonic()
        cached = self._user_keys.get((user_id, provider_id))
        if cached is not None and cached[0] > now:
            return cached[1]
        config = await uow.llm.user_config(user_id=user_id, provider_id=provider_id)
        key = self._cipher.decrypt(config.api_key_encrypted) if config is not None else None
        if len(self._user_keys) >= _USER_KEYS_SIZE:
            self._user_keys.clear()
        self._user_keys[(user_id, provider_id)] = (now + CATALOG_TTL_SECONDS, key)
        return key

    async def _catalog_entry(
        self, uow: UnitOfWork, name: str | None
    ) -> tuple[LlmModel, LlmProvider]:
        key, now = (name or "").strip(), self._monotonic()
        cached = self._catalog.get(key)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        entry = await self._find(uow, name)
        provider = await self.provider_of(uow=uow, model=entry)
        if len(self._catalog) >= _CATALOG_SIZE:
            self._catalog.clear()  # names are client input: never let them grow the map
        self._catalog[key] = (now + CATALOG_TTL_SECONDS, entry, provider)
        return entry, provider

    async def _find(self, uow: UnitOfWork, name: str | None) -> LlmModel:
        wanted = (name or "").strip() or self._default_model
        if wanted:
            if wanted in (EXTRACTIVE_MODEL, "extractive"):
                return BUILTIN_MODEL
            found = await uow.llm.model_by_name(wanted)
            if found is None:
                raise NotFound(f"Model {wanted!r} not found")
            return found
        catalog = [m for m in await uow.llm.models() if m.status == "active"]
        return catalog[0] if catalog else BUILTIN_MODEL
