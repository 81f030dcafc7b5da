"""POSTs one signed delivery with httpx and reports status and latency (never raises).

Connections go through the outbound guard: the receiver's name is resolved and checked on
every new connection and the socket goes to the checked address."""

from __future__ import annotations

import time

import httpx

from domain.webhooks import SendResult
from providers.outbound.guard import DestinationRefused, DestinationUnresolved, OutboundGuard
from providers.outbound.transport import guarded_client
from providers.webhooks.signing import EVENT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, sign


class HttpWebhookSender:
    def __init__(
        self,
        *,
        guard: OutboundGuard,
        timeout: float = 10.0,
        user_agent: str = "Memoria-Webhooks/1",
    ) -> None:
        # Redirects are not followed: a receiver answers, it does not send us elsewhere.
        self._client = guarded_client(guard, timeout=httpx.Timeout(timeout))
        self._user_agent = user_agent

    async def send(
        self, *, url: str, secret: str, event_id: str, event: str, body: bytes
    ) -> SendResult:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
            SIGNATURE_HEADER: sign(secret, body),
            EVENT_ID_HEADER: event_id,
            EVENT_HEADER: event,
        }
        started = time.perf_counter()
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except DestinationRefused as exc:
            return SendResult(
                None, (time.perf_counter() - started) * 1000, f"refused: {exc.message}"
            )
        except DestinationUnresolved as exc:
            return SendResult(None, (time.perf_counter() - started) * 1000, exc.message)
        except httpx.TimeoutException:
            return SendResult(None, (time.perf_counter() - started) * 1000, "timeout")
        except httpx.HTTPError as exc:
            return SendResult(None, (time.perf_counter() - started) * 1000, type(exc).__name__)
        latency = (time.perf_counter() - started) * 1000
        error = None if response.is_success else f"HTTP {response.status_code}"
        return SendResult(response.status_code, latency, error)

    async def close(self) -> None:
        await self._client.aclose()
