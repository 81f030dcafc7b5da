"""The server's Prometheus instruments, in a registry of their own per app (several apps in
one process, as in tests, never share or collide).

Labels are bounded by construction: route templates, GraphQL operation types and names
(at most ``MAX_OPERATION_NAMES`` distinct ones, then ``other``), status codes, error codes
and fixed outcome names. No label ever holds a raw path, user content, a username or a
secret.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

MAX_OPERATION_NAMES = 200
UNMATCHED_ROUTE = "unmatched"
OTHER = "other"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,47}")
# Searches and query embeddings are interactive: finer buckets at the low end.
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class NameBudget:
    """Admits at most ``limit`` distinct names; later newcomers all become ``other`` (a
    client choosing random operation names cannot grow the metrics without bound)."""

    def __init__(self, limit: int = MAX_OPERATION_NAMES) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def admit(self, name: str) -> str:
        if name in self._seen:
            return name
        with self._lock:
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(name)
        return name


def error_code_label(code: object) -> str:
    """An ``extensions.code`` as a label: the code when it looks like one, else ``other``."""
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else OTHER


class AppMetrics:
    """Every instrument the server updates, registered in ``registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        GCCollector(registry=reg)
        self.http_requests = Counter(
            "memoria_http_requests",
            "HTTP requests served, by method, route template and status code.",
            ["method", "route", "status"],
            registry=reg,
        )
        self.http_seconds = Histogram(
            "memoria_http_request_duration_seconds",
            "Time from request to the end of the response (streams included).",
            ["method", "route"],
            registry=reg,
        )
        self.graphql_operations = Counter(
            "memoria_graphql_operations",
            "GraphQL operations, by type, name (anonymous, or other past the name budget) and "
            "the first error's extensions.code (none without errors).",
            ["type", "name", "error_code"],
            registry=reg,
        )
        self.graphql_seconds = Histogram(
            "memoria_graphql_operation_duration_seconds",
            "Time to run a GraphQL query or mutation (subscriptions are not timed).",
            ["type", "name"],
            registry=reg,
        )
        self.active_subscriptions = Gauge(
            "memoria_graphql_active_subscriptions",
            "GraphQL subscriptions running now, by transport (websocket or sse).",
            ["transport"],
            registry=reg,
        )
        self.websocket_connections = Gauge(
            "memoria_websocket_connections",
            "WebSocket connections open now.",
            registry=reg,
        )
        self.search_seconds = Histogram(
            "memoria_memory_search_duration_seconds",
            "Time of one memory search (query embedding, lexical and vector retrieval, ranking).",
            buckets=FAST_BUCKETS,
            registry=reg,
        )
        self.embedding_seconds = Histogram(
            "memoria_embedding_duration_seconds",
            "Time of one embedder call: a search query, or a batch of texts being stored.",
            ["call"],
            buckets=FAST_BUCKETS,
            registry=reg,
        )
        self.embedded_texts = Counter(
            "memoria_embedded_texts",
            "Texts embedded, by call (query or batch).",
            ["call"],
            registry=reg,
        )
        self.webhook_deliveries = Counter(
            "memoria_webhook_deliveries",
            "Webhook delivery attempts by outcome: delivered, retried (failed, another attempt "
            "is scheduled), failed (the receiver answered 410 Gone: no more attempts), "
            "given_up (failed past the retry window).",
            ["outcome"],
            registry=reg,
        )
        self.operation_names = NameBudget()
        # Label children by label values: .labels() costs a lock and a few microseconds per
        # call; the values are bounded (see the module docstring), so the cache is too.
        self._http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        for outcome in ("delivered", "retried", "failed", "given_up"):
            self.webhook_deliveries.labels(outcome)  # every outcome exported from the start
        for transport in ("websocket", "sse"):
            self.active_subscriptions.labels(transport)

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._http_children.get(key)
        if children is None:
            children = (
                self.http_requests.labels(method, route, str(status)),
                self.http_seconds.labels(method, route),
            )
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_webhook_outcome(self, outcome: str) -> None:
        self.webhook_deliveries.labels(outcome).inc()
