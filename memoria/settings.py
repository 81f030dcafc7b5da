"""One validated settings object, read from the environment once and passed in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from domain.policy import Limits
from domain.rate_policy import RateLimitPolicy
from memoria.integration_settings import IntegrationSettings
from memoria.rate_limit_settings import request_limit_values_from_env
from persistence.field_store import DEFAULT_BUDGET
from persistence.memory_changes import VECTOR_SEARCHES

ENVIRONMENTS = ("development", "test", "production")
EMBEDDERS = ("minilm", "e5-small", "minilm+e5-small", "openai", "hashing")
LOG_FORMATS = ("text", "json")
_SWITCHES = {"on": True, "true": True, "yes": True, "1": True}
_SWITCHES.update({"off": False, "false": False, "no": False, "0": False})


class SettingsError(ValueError):
    """Settings that are invalid, or unsafe for the chosen environment."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("memoria-data")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    environment: str = "development"
    embedder: str = "minilm"
    admin_username: str = "admin"
    admin_email: str = "admin@localhost.localdomain"
    # Secrets stay out of repr(), so logging the settings can never print them.
    admin_password: str | None = field(default=None, repr=False)
    jwt_secret: str | None = field(default=None, repr=False)
    encryption_key: str | None = field(default=None, repr=False)
    # MEMORIA_EMBEDDER=openai: any OpenAI-compatible /v1/embeddings endpoint.
    embeddings_url: str | None = None
    embeddings_model: str | None = None
    embeddings_api_key: str | None = field(default=None, repr=False)
    jwt_ttl_seconds: int = 86_400
    graphiql: bool = True
    fast_password_hashing: bool = False
    limits: Limits = field(default_factory=Limits)
    # Chat: default model name (None: first catalog model, else built-in extractive).
    default_model: str | None = None
    llm_connect_timeout_seconds: float = 5.0
    llm_read_timeout_seconds: float = 60.0  # longest silence allowed mid-stream
    llm_retry_pause_seconds: float = 0.5
    extraction_interval_seconds: float = 60.0  # at most one LLM extraction per user per interval
    # Every user and assistant message is also kept as a searchable memory (kind message).
    remember_messages: bool = True
    promotion_interval_seconds: float = 3600.0  # short-term -> long-term sweeps
    # Durable background jobs (pattern learning, memory extraction): a claim's lease (a
    # job outlives its process by this much at most; longer than any one job runs), and
    # how many claims a job gets before it is marked failed.
    job_lease_seconds: float = 300.0
    job_max_attempts: int = 5
    # Request budgets: rate limits, tiers and quotas; request-size limits.
    rate_limits: RateLimitPolicy = field(default_factory=RateLimitPolicy)
    max_request_bytes: int = 1024 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    # Webhooks, data sources, OAuth apps, outbound-URL policy, background workers.
    integrations: IntegrationSettings = field(default_factory=IntegrationSettings)
    # Observability (docs in README "Observability"): log line format, the Prometheus
    # endpoint, and the bearer token that endpoint then requires (None: open).
    log_format: str = "text"
    metrics_enabled: bool = True
    metrics_token: str | None = field(default=None, repr=False)
    # Embedded mode: entries (memories, turns) each in-process search index keeps over all
    # its fields (keyword postings ~0.3 KB each, turn order ~0.2 KB); past it, the fields
    # searched least recently are dropped and rebuilt when searched again.
    search_index_entries: int = DEFAULT_BUDGET
    # Vectors each process keeps in its in-memory indexes over all fields (~1.5 KB each at
    # 384 dimensions; 0: no limit); past it, the fields searched least recently are dropped
    # and loaded again when searched again.
    vector_index_entries: int = 0
    # PostgreSQL mode: vectors searched in each process's memory ("process", kept in step
    # with the other processes' writes) or by pgvector in the database ("database").
    vector_search: str = "process"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'memoria.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes).validated()  # type: ignore[arg-type]

    def validated(self) -> Settings:
        if self.environment not in ENVIRONMENTS:
            raise SettingsError(f"MEMORIA_ENV must be one of {', '.join(ENVIRONMENTS)}")
        if self.embedder not in EMBEDDERS:
            raise SettingsError(f"MEMORIA_EMBEDDER must be one of {', '.join(EMBEDDERS)}")
        if self.embedder == "openai" and not (self.embeddings_url and self.embeddings_model):
            raise SettingsError(
                "MEMORIA_EMBEDDER=openai needs MEMORIA_EMBEDDINGS_URL and MEMORIA_EMBEDDINGS_MODEL"
            )
        if not 0 <= self.port <= 65535:
            raise SettingsError("port must be between 0 and 65535")
        if self.jwt_ttl_seconds < 60:
            raise SettingsError("MEMORIA_JWT_TTL_SECONDS must be at least 60")
        if self.search_index_entries < 0:
            raise SettingsError("MEMORIA_SEARCH_INDEX_ENTRIES must be 0 or more")
        if self.vector_index_entries < 0:
            raise SettingsError("MEMORIA_VECTOR_INDEX_ENTRIES must be 0 or more")
        if self.vector_search not in VECTOR_SEARCHES:
            raise SettingsError(
                f"MEMORIA_VECTOR_SEARCH must be one of {', '.join(VECTOR_SEARCHES)}"
            )
        if self.max_request_bytes < 1024 or self.max_upload_bytes < 1024:
            raise SettingsError("request and upload size limits must be at least 1024 bytes")
        if self.llm_read_timeout_seconds <= 0 or self.llm_connect_timeout_seconds <= 0:
            raise SettingsError("LLM timeouts must be positive")
        if self.job_lease_seconds <= 0 or self.job_max_attempts < 1:
            raise SettingsError(
                "MEMORIA_JOB_LEASE_SECONDS must be positive and MEMORIA_JOB_MAX_ATTEMPTS at least 1"
            )
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(f"MEMORIA_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
        token = self.metrics_token
        if token is not None and not (
            token.isascii() and token.isprintable() and token.split() == [token]
        ):
            # It is compared with an Authorization header, which carries nothing else.
            raise SettingsError("MEMORIA_METRICS_TOKEN must be visible ASCII without spaces")
        if self.limits.max_content_chars < 1:
            raise SettingsError("MEMORIA_MAX_CONTENT_CHARS must be positive")
        url = self.resolved_database_url
        if not (url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+asyncpg://")):
            raise SettingsError(
                "DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        if self.environment == "production":
            # Shortcuts that are fine on a laptop and dangerous anywhere else.
            if self.fast_password_hashing:
                raise SettingsError("fast password hashing is for tests only")
            if self.embedder == "hashing":
                raise SettingsError("the hashing embedder is for tests only")
            if self.admin_password is not None and len(self.admin_password) < 12:
                raise SettingsError("MEMORIA_ADMIN_PASSWORD needs 12+ characters in production")
            if self.jwt_secret is not None and len(self.jwt_secret) < 32:
                # HS256 with a short secret can be brute-forced offline from any issued token.
                raise SettingsError("MEMORIA_JWT_SECRET needs 32+ characters in production")
            if self.metrics_token is not None and len(self.metrics_token) < 16:
                raise SettingsError("MEMORIA_METRICS_TOKEN needs 16+ characters in production")
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        source = os.environ if env is None else env

        def flag(name: str, default: bool) -> bool:
            raw = source.get(name)
            return default if raw is None else raw.strip().lower() in ("1", "true", "yes", "on")

        def switch(name: str, default: bool) -> bool:
            # Strict, unlike flag(): a mistyped "of" must not leave an endpoint open.
            raw = source.get(name)
            if raw is None or not raw.strip():
                return default
            if raw.strip().lower() not in _SWITCHES:
                raise SettingsError(f"{name} must be on or off")
            return _SWITCHES[raw.strip().lower()]

        metrics_enabled = switch("MEMORIA_METRICS", True)
        remember_messages = switch("MEMORIA_REMEMBER_MESSAGES", True)
        try:
            limits = Limits(
                max_content_chars=int(source.get("MEMORIA_MAX_CONTENT_CHARS", "32000")),
            )
            values: dict[str, object] = {
                "data_dir": Path(source.get("MEMORIA_DATA_DIR", "memoria-data")),
                "database_url": source.get("DATABASE_URL") or None,
                "host": source.get("MEMORIA_HOST", "127.0.0.1"),
                "port": int(source.get("MEMORIA_PORT", "8000")),
                "environment": source.get("MEMORIA_ENV", "development"),
                "embedder": source.get("MEMORIA_EMBEDDER", "minilm"),
                "embeddings_url": source.get("MEMORIA_EMBEDDINGS_URL") or None,
                "embeddings_model": source.get("MEMORIA_EMBEDDINGS_MODEL") or None,
                "embeddings_api_key": source.get("MEMORIA_EMBEDDINGS_API_KEY") or None,
                "admin_password": source.get("MEMORIA_ADMIN_PASSWORD") or None,
                "jwt_secret": source.get("MEMORIA_JWT_SECRET") or None,
                "encryption_key": source.get("MEMORIA_ENCRYPTION_KEY") or None,
                "jwt_ttl_seconds": int(source.get("MEMORIA_JWT_TTL_SECONDS", "86400")),
                "graphiql": flag("MEMORIA_GRAPHIQL", True),
                "limits": limits,
                "default_model": source.get("MEMORIA_DEFAULT_MODEL") or None,
                "llm_read_timeout_seconds": float(source.get("MEMORIA_LLM_TIMEOUT_SECONDS", "60")),
                "job_lease_seconds": float(source.get("MEMORIA_JOB_LEASE_SECONDS", "300")),
                "job_max_attempts": int(source.get("MEMORIA_JOB_MAX_ATTEMPTS", "5")),
                "remember_messages": remember_messages,
                **request_limit_values_from_env(source),
                "integrations": IntegrationSettings.from_env(source),
                "log_format": source.get("MEMORIA_LOG_FORMAT", "text").strip().lower(),
                "metrics_enabled": metrics_enabled,
                "metrics_token": source.get("MEMORIA_METRICS_TOKEN") or None,
                "search_index_entries": int(
                    source.get("MEMORIA_SEARCH_INDEX_ENTRIES", str(DEFAULT_BUDGET))
                ),
                "vector_index_entries": int(source.get("MEMORIA_VECTOR_INDEX_ENTRIES", "0")),
                "vector_search": source.get("MEMORIA_VECTOR_SEARCH", "process").strip().lower(),
            }
        except ValueError as exc:
            raise SettingsError(f"invalid number in settings: {exc}") from None
        values.update(overrides)
        return cls(**values).validated()  # type: ignore[arg-type]
