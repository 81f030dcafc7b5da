"""``GET /metrics``: the Prometheus text exposition (OpenMetrics when the scraper asks for
it), open unless ``MEMORIA_METRICS_TOKEN`` is set, then only with that bearer token."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from memoria.observability.metrics import AppMetrics
from memoria.observability.queues import QueueDepths

Endpoint = Callable[[Request], Awaitable[Response]]


def bearer_matches(header: str | None, token: str) -> bool:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Constant time: the token must not be guessable from response times.
    return hmac.compare_digest(value.strip().encode(), token.encode())


def metrics_endpoint(
    metrics: AppMetrics, *, queues: QueueDepths | None, token: str | None
) -> Endpoint:
    async def scrape(request: Request) -> Response:
        if token is not None and not bearer_matches(request.headers.get("authorization"), token):
            return PlainTextResponse(
                "metrics need the bearer token set by MEMORIA_METRICS_TOKEN\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        if queues is not None:
            await queues.refresh()
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(metrics.registry), media_type=content_type)

    return scrape
