"""The HTTP client every cloud connector shares: auth, rate limits, retries, expiry.

- 429 (and GitHub's 403 with ``X-RateLimit-Remaining: 0``) waits ``Retry-After`` (or until
  ``X-RateLimit-Reset``), at most ``max_wait`` seconds per wait, then tries again;
- 401 raises :class:`TokenExpired`, so the sync refreshes the token and resumes;
- 5xx and network errors are retried a few times, then ``ProviderUnavailable``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from domain.errors import ProviderUnavailable
from domain.sources import TokenExpired
from providers.outbound.guard import OutboundGuard
from providers.outbound.transport import guarded_client

log = logging.getLogger("memoria.connectors")


class ApiClient:
    def __init__(
        self,
        *,
        base_url: str,
        headers: dict[str, str] | None = None,
        max_wait: float = 60.0,
        attempts: int = 5,
        timeout: float = 30.0,
        guard: OutboundGuard,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        # Also the links an API hands back (pagination): each is checked when dialled.
        self._guard = guard
        self._headers = headers or {}
        self._max_wait = max_wait
        self._attempts = attempts
        self._timeout = timeout

    def _wait_for(self, response: httpx.Response) -> float | None:
        """Seconds to wait if this answer is a rate limit, else ``None``."""
        limited = response.status_code == 429 or (
            response.status_code == 403 and response.headers.get("x-ratelimit-remaining") == "0"
        )
        if not limited:
            return None
        retry_after = response.headers.get("retry-after")
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), self._max_wait)
            except ValueError:
                pass
        reset = response.headers.get("x-ratelimit-reset")
        if reset is not None:
            try:
                return min(max(float(reset) - time.time(), 0.0), self._max_wait)
            except ValueError:
                pass
        return min(1.0, self._max_wait)

    async def request(
        self, method: str, path_or_url: str, *, token: str | None, **kwargs: Any
    ) -> httpx.Response:
        url = path_or_url if "://" in path_or_url else f"{self._base_url}{path_or_url}"
        headers = dict(self._headers)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        last = "no answer"
        async with guarded_client(self._guard, timeout=self._timeout) as client:
            for attempt in range(self._attempts):
                try:
                    response = await client.request(method, url, headers=headers, **kwargs)
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                    await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
                    continue
                wait = self._wait_for(response)
                if wait is not None:
                    log.info("rate limited by %s; waiting %.1f s", self._base_url, wait)
                    last = "rate limited"
                    await asyncio.sleep(wait)
                    continue
                if response.status_code == 401:
                    raise TokenExpired(url)
                if response.status_code >= 500:
                    last = f"HTTP {response.status_code}"
                    await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
                    continue
                if response.status_code >= 400:
                    raise ProviderUnavailable(
                        f"{self._base_url} answered HTTP {response.status_code}",
                        details={"status": response.status_code},
                    )
                return response
        raise ProviderUnavailable(f"{self._base_url} failed: {last}")

    async def get(self, path_or_url: str, *, token: str | None, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path_or_url, token=token, **kwargs)

    async def post(self, path_or_url: str, *, token: str | None, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path_or_url, token=token, **kwargs)
