"""What ``build_app`` adds for observability: the /metrics route, reading the runtime's
queues, and (re-exported) the request middleware."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Route

from memoria.observability.endpoint import metrics_endpoint
from memoria.observability.middleware import ObservabilityMiddleware
from memoria.observability.queues import QueueDepths

if TYPE_CHECKING:
    from memoria.runtime import Runtime

__all__ = ["ObservabilityMiddleware", "observability_routes"]


def observability_routes(runtime: Runtime) -> list[BaseRoute]:
    metrics = runtime.metrics
    if metrics is None:
        return []
    embedder = runtime.deps.memories.embedder
    queues = QueueDepths(engine=runtime.db.engine, embedder_name=lambda: embedder.name)
    metrics.registry.register(queues)
    scrape = metrics_endpoint(metrics, queues=queues, token=runtime.settings.metrics_token)
    return [Route("/metrics", scrape, methods=["GET"])]
