"""Assembles every family's endpoints into Starlette routes (mounted by ``memoria.app``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from domain.errors import NotFound
from domain.policy import Limits
from domain.services.registry import Services
from rest_compat import (
    chat_api,
    chat_routes,
    llm_routes,
    memorykit,
    openai_chat,
    sentech,
    senua,
)
from rest_compat.dialects import CHAT_API, MEMORYKIT, OPENAI, SENTECH, SENUA, Dialect
from rest_compat.endpoint import Endpoint, RestConfig
from rest_compat.openapi import docs_endpoints
from rest_compat.pipeline import Pipeline, error_response

EndpointFactory = Callable[[Limits], list[Endpoint]]

# Each family contributes ``endpoints(limits) -> list[Endpoint]``; add new ones here.
FAMILIES: tuple[EndpointFactory, ...] = (
    sentech.endpoints,
    senua.endpoints,
    memorykit.endpoints,
    chat_api.endpoints,
    openai_chat.endpoints,
    chat_routes.endpoints,
    llm_routes.endpoints,
)


def all_endpoints(
    services: Services, config: RestConfig, families: Sequence[EndpointFactory] = FAMILIES
) -> list[Endpoint]:
    endpoints = [e for family in families for e in family(services.limits)]
    # The docs endpoints document themselves as well, so they see the final list.
    endpoints.extend(docs_endpoints(endpoints, config, SENUA))
    return endpoints


def rest_routes(services: Services, config: RestConfig | None = None) -> list[BaseRoute]:
    config = config or RestConfig(version=services.version)
    pipeline = Pipeline(services, config)
    return list(pipeline.routes(all_endpoints(services, config)))


# Longest prefix first: the dialect a path that matches no route is answered in.
_DIALECT_BY_PREFIX: tuple[tuple[str, Dialect], ...] = (
    ("/v1/memory/chat/", OPENAI),
    ("/v1/chat/", OPENAI),
    ("/v1/", MEMORYKIT),
    ("/api/", SENUA),
    ("/chat/", CHAT_API),
    ("/fields/", SENTECH),
)


async def not_found(request: Request, _exc: Exception) -> Response:
    """404 for a path no route serves, in the error body of the family its prefix names."""
    path = request.url.path
    dialect = next((d for p, d in _DIALECT_BY_PREFIX if path.startswith(p)), SENTECH)
    return error_response(dialect, NotFound("Not found"), {})
