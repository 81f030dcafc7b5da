"""Settings of what Memoria connects to: webhook delivery, data sources and their OAuth apps,
and the outbound-URL policy they share, read from the environment.

OAuth clients are configured per service with ``MEMORIA_OAUTH_<SERVICE>_CLIENT_ID``,
``_CLIENT_SECRET``, ``_AUTHORIZE_URL`` and ``_TOKEN_URL`` (SERVICE: GITHUB, SLACK, NOTION).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from domain.url_policy import OutboundPolicy


@dataclass(frozen=True)
class OAuthProviderSettings:
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    scopes: str = ""


DEFAULT_API_URLS = {
    "github": "https://api.github.com",
    "slack": "https://slack.com/api",
    "notion": "https://api.notion.com",
}


@dataclass(frozen=True)
class IntegrationSettings:
    # Outbound policy (webhooks, LLM providers, mail servers, the embeddings service): only
    # public addresses, unless every address is allowed (tests, a trusted LAN) or the
    # destination is listed (host names, IPs or CIDRs: "localhost" for a local Ollama).
    allow_private_urls: bool = False
    allowed_private_hosts: tuple[str, ...] = ()
    webhook_timeout_seconds: float = 10.0
    webhook_retry_base_seconds: float = 10.0
    webhook_retry_cap_seconds: float = 3600.0
    webhook_retry_window_seconds: float = 86_400.0
    worker_poll_seconds: float = 1.0  # background workers also wake on commits
    background_workers: bool = True
    syncs_per_minute: int = 10
    connector_max_retry_wait_seconds: float = 60.0
    files_roots: tuple[str, ...] = ()  # server folders a files source may read
    api_urls: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_API_URLS))
    oauth: Mapping[str, OAuthProviderSettings] = field(default_factory=dict)
    public_url: str | None = None  # base of the OAuth callback URL; default http://host:port

    @property
    def outbound_policy(self) -> OutboundPolicy:
        return OutboundPolicy.from_entries(
            self.allowed_private_hosts, allow_private=self.allow_private_urls
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IntegrationSettings:
        def flag(name: str, default: bool) -> bool:
            raw = env.get(name)
            return default if raw is None else raw.strip().lower() in ("1", "true", "yes", "on")

        oauth = {}
        for service in ("github", "slack", "notion"):
            prefix = f"MEMORIA_OAUTH_{service.upper()}_"
            if env.get(prefix + "CLIENT_ID"):
                oauth[service] = OAuthProviderSettings(
                    client_id=env[prefix + "CLIENT_ID"],
                    client_secret=env.get(prefix + "CLIENT_SECRET", ""),
                    authorize_url=env.get(prefix + "AUTHORIZE_URL", ""),
                    token_url=env.get(prefix + "TOKEN_URL", ""),
                    scopes=env.get(prefix + "SCOPES", ""),
                )
        api_urls = dict(DEFAULT_API_URLS)
        for service in api_urls:
            api_urls[service] = env.get(f"MEMORIA_{service.upper()}_API_URL", api_urls[service])
        roots = tuple(p for p in env.get("MEMORIA_FILES_ROOTS", "").split(":") if p)
        allowed = tuple(
            h.strip() for h in env.get("MEMORIA_ALLOWED_PRIVATE_HOSTS", "").split(",") if h.strip()
        )
        try:
            OutboundPolicy.from_entries(allowed)
        except ValueError as exc:
            raise ValueError(f"MEMORIA_ALLOWED_PRIVATE_HOSTS: {exc}") from None
        return cls(
            allow_private_urls=flag("MEMORIA_ALLOW_PRIVATE_URLS", False),
            allowed_private_hosts=allowed,
            webhook_timeout_seconds=float(env.get("MEMORIA_WEBHOOK_TIMEOUT_SECONDS", "10")),
            webhook_retry_window_seconds=float(
                env.get("MEMORIA_WEBHOOK_RETRY_WINDOW_SECONDS", "86400")
            ),
            background_workers=flag("MEMORIA_BACKGROUND_WORKERS", True),
            files_roots=roots,
            api_urls=api_urls,
            oauth=oauth,
            public_url=env.get("MEMORIA_PUBLIC_URL") or None,
        )
