"""OAuth2 authorization-code flow (authorize URL, code exchange, refresh) and signed state."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from domain.errors import ProviderUnavailable
from domain.sources import OAuthTokens, SourceKind
from providers.outbound.guard import OutboundGuard
from providers.outbound.transport import guarded_client


class ProviderConfig(Protocol):
    @property
    def client_id(self) -> str: ...

    @property
    def client_secret(self) -> str: ...

    @property
    def authorize_url(self) -> str: ...

    @property
    def token_url(self) -> str: ...

    @property
    def scopes(self) -> str: ...


class HmacStateSigner:
    """``base64(json).hex(hmac)``: tamper-proof, and readable only as much as it must be."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"memoria-oauth-state:" + key).digest()

    def sign(self, payload: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(payload, sort_keys=True).encode()).decode()
        mac = hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
        return f"{body}.{mac}"

    def verify(self, state: str) -> dict[str, Any]:
        body, _, mac = state.rpartition(".")
        expected = hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
        # Bytes, not str: compare_digest refuses non-ASCII text, and a state is user input.
        if not body or not hmac.compare_digest(expected.encode(), mac.encode()):
            raise ValueError("bad state signature")
        try:
            payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body.encode()))
        except (ValueError, TypeError):
            raise ValueError("bad state") from None
        return payload


class OAuth2Client:
    def __init__(
        self,
        *,
        providers: Mapping[str, ProviderConfig],
        redirect_uri: str,
        guard: OutboundGuard,
        timeout: float = 20.0,
    ) -> None:
        self._providers = dict(providers)
        self._guard = guard
        self._redirect_uri = redirect_uri
        self._timeout = timeout

    def supports(self, kind: SourceKind) -> bool:
        return kind.value in self._providers

    def _config(self, kind: SourceKind) -> ProviderConfig:
        try:
            return self._providers[kind.value]
        except KeyError:
            raise ProviderUnavailable(f"OAuth is not configured for {kind.value}") from None

    def authorization_url(self, *, kind: SourceKind, state: str) -> str:
        config = self._config(kind)
        query = {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": self._redirect_uri,
            "state": state,
        }
        if config.scopes:
            query["scope"] = config.scopes
        separator = "&" if "?" in config.authorize_url else "?"
        return f"{config.authorize_url}{separator}{urlencode(query)}"

    async def _token(self, kind: SourceKind, form: dict[str, str]) -> OAuthTokens:
        config = self._config(kind)
        form = {**form, "client_id": config.client_id, "client_secret": config.client_secret}
        try:
            async with guarded_client(self._guard, timeout=self._timeout) as client:
                response = await client.post(
                    config.token_url, data=form, headers={"Accept": "application/json"}
                )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"OAuth token endpoint failed: {type(exc).__name__}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        token = body.get("access_token") or (body.get("authed_user") or {}).get("access_token")
        if response.status_code >= 400 or not token:
            error = body.get("error") or f"HTTP {response.status_code}"
            raise ProviderUnavailable(f"OAuth token request refused: {error}")
        expires_in = body.get("expires_in")
        expires_at = datetime.now(UTC) + timedelta(seconds=int(expires_in)) if expires_in else None
        return OAuthTokens(
            access_token=str(token),
            refresh_token=body.get("refresh_token"),
            expires_at=expires_at,
        )

    async def exchange(self, *, kind: SourceKind, code: str) -> OAuthTokens:
        return await self._token(
            kind,
            {"grant_type": "authorization_code", "code": code, "redirect_uri": self._redirect_uri},
        )

    async def refresh(self, *, kind: SourceKind, refresh_token: str) -> OAuthTokens:
        return await self._token(
            kind, {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
