"""``build_app(settings)``: the Starlette app serving the runtime's services over GraphQL,
REST, health and static assets, with the lifespan that migrates and runs the workers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from domain.ports import Embedder
from graph.app import STATIC_DIR, STATIC_URL, MemoriaGraphQL
from graph.schema import build_schema
from memoria.bootstrap import ensure_admin, migrate
from memoria.collector import settle_after_startup
from memoria.maintenance import prepare_embedder
from memoria.observability.graphql_ops import operation_observer
from memoria.observability.logging_setup import configure_logging
from memoria.observability.wiring import ObservabilityMiddleware, observability_routes
from memoria.runtime import build_runtime
from memoria.settings import Settings
from rest_compat.app import not_found, rest_routes
from rest_compat.endpoint import RestConfig

# The log level ``memoria serve --workers N`` hands its worker processes.
SERVE_LOG_LEVEL = "MEMORIA_SERVE_LOG_LEVEL"


def create_app() -> Starlette:
    """The app from the environment's settings: ``memoria serve --workers N`` has uvicorn
    call this factory (``memoria.app:create_app``) in each worker process."""
    settings = Settings.from_env()
    configure_logging(settings, level=os.environ.get(SERVE_LOG_LEVEL, "info").upper())
    return build_app(settings)


def build_app(settings: Settings, *, embedder: Embedder | None = None) -> Starlette:
    runtime = build_runtime(settings, embedder=embedder)
    schema = build_schema(observers=[operation_observer(runtime.metrics)])
    graphql = MemoriaGraphQL(
        schema, runtime.deps, ide=settings.graphiql, max_body_bytes=settings.max_request_bytes
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await migrate(runtime.db)
        runtime.generated_admin_password = await ensure_admin(
            runtime.db, runtime.deps.auth, settings
        )
        if runtime.generated_admin_password:
            # Printed once, on the console only; it is never logged or stored in clear.
            print(
                f"Created admin user {settings.admin_username!r} with password: "
                f"{runtime.generated_admin_password}",
                flush=True,
            )
        if runtime.fanout is not None:
            runtime.fanout.start()  # messages stored by the deployment's other processes
        runtime.workers.start()  # webhook deliveries, source syncs, pattern learning
        if settings.integrations.background_workers:
            runtime.reembed.start()  # detects the embedder, then re-embeds stale fields
            runtime.promotion.start()
        else:
            await prepare_embedder(runtime.deps.memories.embedder, runtime.db)
        settle_after_startup()  # start-up objects live as long as the process
        try:
            yield
        finally:
            await runtime.aclose()

    async def health(_request: Request) -> Response:
        report = await runtime.deps.health()
        status = 200 if report["status"] == "healthy" else 503
        return JSONResponse(dict(report), status_code=status)

    async def root(_request: Request) -> Response:
        return RedirectResponse("/graphql")

    app = Starlette(
        routes=[
            Route("/", root),
            Route("/health", health),
            *observability_routes(runtime),  # /metrics unless MEMORIA_METRICS=off
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Mount(STATIC_URL, app=StaticFiles(directory=STATIC_DIR), name="graphiql-static"),
            *rest_routes(
                runtime.deps,
                RestConfig(
                    max_body_bytes=settings.max_request_bytes,
                    max_upload_bytes=settings.max_upload_bytes,
                    version=runtime.deps.version,
                ),
            ),
        ],
        exception_handlers={404: not_found},
        # Request ids, HTTP metrics and access lines for everything below.
        middleware=[Middleware(ObservabilityMiddleware, metrics=runtime.metrics)],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
