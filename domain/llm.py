"""LLM value types and ports: what the chat pipeline needs from a language model.

Adapters live in ``providers/llm`` (OpenAI-compatible, Anthropic, the built-in extractive
model) and only see these types; the domain never sees HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

EXTRACTIVE_MODEL = "memoria-extractive-no-llm"
"""Id of the built-in model: it quotes retrieved memories and generates nothing."""


@dataclass(frozen=True, slots=True)
class PromptMessage:
    """One message of the prompt sent upstream (OpenAI-style roles: system/user/assistant)."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    """Sampling options passed through to the provider untouched; ``None`` = provider default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """What a :class:`ChatModel` is asked. ``memories`` are the retrieved texts (already inside
    ``messages`` as a system layer), given separately for models that answer from them."""

    model: str
    messages: Sequence[PromptMessage]
    options: GenerationOptions = field(default_factory=GenerationOptions)
    memories: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class ModelChunk:
    """One streamed piece: a text delta, and/or (last) the provider-reported usage."""

    text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


class ChatModel(Protocol):
    """A streaming chat model. ``stream`` raises domain errors (ProviderUnavailable,
    RateLimited, BadUserInput) and must stop its upstream request promptly when the
    iterator is closed or its task cancelled."""

    def stream(self, request: ModelRequest) -> AsyncGenerator[ModelChunk, None]: ...


class TokenCounter(Protocol):
    """Counts tokens with a real tokenizer (never ``len(text) / 4``)."""

    @property
    def name(self) -> str: ...

    def count(self, text: str) -> int: ...


@dataclass(frozen=True, slots=True)
class ProviderEndpoint:
    """Everything an adapter factory needs to talk to one provider (key already decrypted)."""

    kind: str  # openai | anthropic | ollama | local | extractive
    api_endpoint: str | None
    api_key: str | None


class ChatModelFactory(Protocol):
    """Builds (or reuses) the adapter for a provider endpoint."""

    def for_endpoint(self, endpoint: ProviderEndpoint) -> ChatModel: ...


class SecretCipher(Protocol):
    """Encrypts secrets at rest (providers/security.py SecretBox satisfies it)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


PROVIDER_KINDS = ("openai", "anthropic", "ollama", "local", "extractive")


@dataclass(slots=True)
class LlmProvider:
    """An admin-managed LLM endpoint. Its shared key is stored encrypted, never shown."""

    id: str
    name: str
    kind: str
    api_endpoint: str | None
    api_key_encrypted: str | None
    created_at: datetime
    enabled: bool = True


@dataclass(slots=True)
class LlmModel:
    """A model offered by a provider. Prices are USD micro-units per 1M tokens (0 = free)."""

    id: str
    provider_id: str
    name: str
    context_window: int
    input_price_micros_per_m: int
    output_price_micros_per_m: int
    created_at: datetime
    status: str = "active"

    @property
    def is_priced(self) -> bool:
        return self.input_price_micros_per_m > 0 or self.output_price_micros_per_m > 0

    def cost_micros(self, prompt_tokens: int, completion_tokens: int) -> int:
        """Cost rounded up to a whole micro-dollar, so no reply is ever free by rounding."""
        total = (
            prompt_tokens * self.input_price_micros_per_m
            + completion_tokens * self.output_price_micros_per_m
        )
        return -(-total // 1_000_000)


@dataclass(slots=True)
class UserLlmConfig:
    """A user's own API key for one provider (encrypted); ``key_hint`` is for masking."""

    id: str
    user_id: str
    provider_id: str
    api_key_encrypted: str
    key_hint: str
    created_at: datetime
    updated_at: datetime

    @property
    def masked_key(self) -> str:
        """``sk-…abcd``: the key's first three and last four characters (the Chat API's
        documented form); hints stored before the prefix was kept show as ``****abcd``."""
        if len(self.key_hint) <= 4:
            return f"****{self.key_hint}"
        return f"{self.key_hint[:-4]}…{self.key_hint[-4:]}"


@dataclass(slots=True)
class UsageRecord:
    """What one reply consumed and cost; written even when the stream was cut."""

    id: str
    user_id: str
    conversation_id: str
    message_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int
    incomplete: bool
    created_at: datetime


class LlmCatalogRepository(Protocol):
    """Providers, models and user keys (reached through the unit of work as ``uow.llm``).
    Providers and models are deployment-wide; user configs are scoped by ``user_id``."""

    async def add_provider(self, provider: LlmProvider) -> None: ...

    async def providers(self) -> list[LlmProvider]: ...

    async def provider(self, provider_id: str) -> LlmProvider | None: ...

    async def provider_by_name(self, name: str) -> LlmProvider | None: ...

    async def add_model(self, model: LlmModel) -> None: ...

    async def models(self) -> list[LlmModel]: ...

    async def model_by_name(self, name: str) -> LlmModel | None: ...

    async def user_config(self, *, user_id: str, provider_id: str) -> UserLlmConfig | None: ...

    async def save_user_config(self, config: UserLlmConfig) -> None:
        """Insert, or replace the key of the user's existing config for that provider."""


class SpendRepository(Protocol):
    """Usage records and balance charges (``uow.spend``), scoped by ``user_id``."""

    async def add_usage(self, record: UsageRecord) -> None: ...

    async def usage(self, *, user_id: str, limit: int = 100) -> list[UsageRecord]: ...

    async def charge(self, *, user_id: str, micros: int) -> None:
        """Subtract from the balance in one statement (no read-modify-write race)."""
