"""What the HTTP chat adapters share: timeouts, the pre-token retry, SSE lines, error mapping.

Retries happen only before the first token was received (a retried stream would repeat
text): once on a connect error, a 429 or a 5xx, after ``Retry-After`` when the upstream
gives one (capped), otherwise after a short pause.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from domain.errors import BadUserInput, MemoriaError, ProviderUnavailable, RateLimited
from providers.llm.sse_client import (
    LeanStreamClient,
    StreamResponse,
    TimedOut,
    TransportFailed,
)

log = logging.getLogger("memoria.llm")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    connect_timeout: float = 5.0
    read_timeout: float = 60.0  # the longest silence allowed between two chunks
    retry_pause: float = 0.5
    max_retry_after: float = 10.0


class _Response(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> httpx.Headers: ...


class _ByteStream(Protocol):
    def aiter_bytes(self) -> AsyncIterator[bytes]: ...


def _retry_after(response: _Response, default: float) -> float:
    raw = response.headers.get("retry-after")
    if not raw:
        return default
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        import time

        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


def _upstream_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace")
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)[:300]
    return str(error or data)[:300]


def map_status(response: _Response, body: bytes, settings: HttpSettings) -> MemoriaError:
    status = response.status_code
    detail = _upstream_message(body)
    if status == 429:
        wait = _retry_after(response, settings.retry_pause)
        return RateLimited(
            f"the model provider is rate limiting: {detail}", retry_after=int(wait + 0.999)
        )
    if status in (400, 413, 422):
        return BadUserInput(f"the model provider refused the request: {detail}")
    if status in (401, 403):
        return ProviderUnavailable("the model provider rejected the API key")
    if status == 404:
        return ProviderUnavailable(f"the model provider does not know this model: {detail}")
    return ProviderUnavailable(f"the model provider failed with HTTP {status}")


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    url: str,
    *,
    body: dict[str, Any],
    headers: dict[str, str],
    settings: HttpSettings,
) -> AsyncIterator[httpx.Response]:
    """POST and yield the open 2xx streaming response; retry once before any token."""
    streaming = False
    for attempt in (1, 2):
        try:
            async with client.stream("POST", url, json=body, headers=headers) as response:
                if response.status_code < 300:
                    streaming = True
                    yield response
                    return
                raw = await response.aread()
                error = map_status(response, raw, settings)
                wait = _retry_after(response, settings.retry_pause)
                if attempt == 2 or not _retryable(response.status_code):
                    raise error
                if wait > settings.max_retry_after:
                    raise error  # waiting that long would hold the client hostage
        except httpx.TimeoutException:
            raise ProviderUnavailable("the model provider timed out") from None
        except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
            if attempt == 2 or streaming:
                raise ProviderUnavailable("the model provider is unreachable") from None
            log.info("LLM connect failed (%s), retrying once", type(exc).__name__)
            wait = settings.retry_pause
        except httpx.TransportError:
            raise ProviderUnavailable("the model provider connection failed") from None
        if streaming:  # never retry once the body was handed out: text would repeat
            raise ProviderUnavailable("the model provider connection broke mid-reply")
        await asyncio.sleep(wait)


@asynccontextmanager
async def open_lean_stream(
    client: LeanStreamClient,
    url: str,
    *,
    body: dict[str, Any],
    headers: dict[str, str],
    settings: HttpSettings,
) -> AsyncIterator[StreamResponse]:
    """:func:`open_stream` on the lean client (``providers/llm/sse_client.py``): the same
    retry and error mapping."""
    streaming = False
    for attempt in (1, 2):
        try:
            async with client.post_stream(url, body=body, headers=headers) as response:
                if response.status_code < 300:
                    streaming = True
                    yield response
                    return
                raw = b"".join([piece async for piece in response.aiter_bytes()])
                error = map_status(response, raw, settings)
                wait = _retry_after(response, settings.retry_pause)
                if attempt == 2 or not _retryable(response.status_code):
                    raise error
                if wait > settings.max_retry_after:
                    raise error  # waiting that long would hold the client hostage
        except TimedOut:
            raise ProviderUnavailable("the model provider timed out") from None
        except TransportFailed as exc:  # refused, reset, or closed before a response
            if attempt == 2 or streaming:
                raise ProviderUnavailable("the model provider is unreachable") from None
            log.info("LLM connect failed (%s), retrying once", type(exc).__name__)
            wait = settings.retry_pause
        if streaming:  # never retry once the body was handed out: text would repeat
            raise ProviderUnavailable("the model provider connection broke mid-reply")
        await asyncio.sleep(wait)


def _parse_event(block: str) -> tuple[str, str] | None:
    event, data = "", []
    for line in block.splitlines():
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    return (event or "message", "\n".join(data)) if data else None


def _event_of(block: bytes) -> tuple[str, str] | None:
    # Nearly every event of a chat stream is one ``data: ...`` line: no decode of the rest.
    if block.startswith(b"data: ") and b"\n" not in block:
        return "message", block[6:].decode(errors="replace")
    return _parse_event(block.decode(errors="replace"))


async def sse_batches(response: _ByteStream) -> AsyncIterator[list[tuple[str, str]]]:
    """The ``(event, data)`` pairs of a text/event-stream, one list per network read: when
    the upstream is ahead of us, several events arrive together and are handled together,
    which is what keeps a loaded server from falling behind. Transport failures mid-stream
    and read timeouts become ``ProviderUnavailable``. Split as bytes: an event boundary
    (``\n\n``) never falls inside a UTF-8 character, so each event decodes whole."""
    buffer = b""
    try:
        async for raw in response.aiter_bytes():
            buffer += raw
            if b"\r" in buffer:
                buffer = buffer.replace(b"\r\n", b"\n")  # a lone "\r" waits for its "\n"
            *blocks, buffer = buffer.split(b"\n\n")
            batch = [e for e in map(_event_of, blocks) if e is not None]
            if batch:
                yield batch
        tail = _event_of(buffer)
        if tail is not None:
            yield [tail]
    except (httpx.TimeoutException, TimedOut):
        raise ProviderUnavailable("the model provider stopped responding") from None
    except (httpx.TransportError, TransportFailed):
        raise ProviderUnavailable("the model provider connection broke mid-reply") from None


def json_or_fail(data: str, describe: Callable[[Any], str | None]) -> dict[str, Any]:
    """Parse one event's JSON; an error object from upstream becomes ProviderUnavailable."""
    try:
        parsed = json.loads(data)
    except ValueError:
        raise ProviderUnavailable("the model provider sent malformed data") from None
    if not isinstance(parsed, dict):
        raise ProviderUnavailable("the model provider sent malformed data")
    problem = describe(parsed)
    if problem:
        raise ProviderUnavailable(f"the model provider failed mid-reply: {problem}")
    return parsed
