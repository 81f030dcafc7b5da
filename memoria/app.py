"""``build_app(settings)``: wires adapters to domain services and serves them."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from domain.clock import SystemClock
from domain.ports import Embedder
from domain.services.auth import AuthService
from domain.services.conversations import ConversationService
from domain.services.fields import FieldService
from domain.services.memories import MemoryService
from domain.services.registry import Services
from graph.app import STATIC_DIR, STATIC_URL, MemoriaGraphQL
from graph.schema import build_schema
from memoria import __version__
from memoria.bootstrap import Secrets, ensure_admin, load_secrets, migrate
from memoria.chat_wiring import ChatParts, build_chat_services
from memoria.ext_wiring import ExtParts, build_ext_services
from memoria.maintenance import PromotionSweeper, ReembedWorker, prepare_embedder
from memoria.rest_wiring import build_rest_routes, build_rest_services
from memoria.settings import Settings
from persistence.database import Database
from providers.security import Argon2PasswordHasher, JwtTokenIssuer
from rest_compat.app import not_found

log = logging.getLogger("memoria")


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "hashing":
        from providers.embedders.hashing import HashingEmbedder

        return HashingEmbedder()
    if settings.embedder == "openai":
        from providers.embedders.openai_compat import OpenAICompatEmbedder

        assert settings.embeddings_url  # validated() requires both for this embedder
        assert settings.embeddings_model
        return OpenAICompatEmbedder(
            base_url=settings.embeddings_url,
            model=settings.embeddings_model,
            api_key=settings.embeddings_api_key,
        )
    from providers.embedders.minilm import MiniLMEmbedder

    return MiniLMEmbedder()


@dataclass
class Runtime:
    """Everything ``build_app`` made, for the CLI and tests to reach."""

    settings: Settings
    db: Database
    secrets: Secrets
    deps: Services
    reembed: ReembedWorker
    promotion: PromotionSweeper
    generated_admin_password: str | None = None
    chat: ChatParts | None = None
    ext: ExtParts | None = None


def build_runtime(settings: Settings, *, embedder: Embedder | None = None) -> Runtime:
    secrets = load_secrets(settings)
    db = Database(settings.resolved_database_url, index_dir=settings.data_dir / "vectors")
    clock = SystemClock()
    embedder = embedder or make_embedder(settings)
    conversations = ConversationService(clock=clock, limits=settings.limits)
    rest = build_rest_services(
        settings,
        db=db,
        clock=clock,
        encryption_key=secrets.encryption_key,
        conversations=conversations,
    )
    auth = AuthService(
        hasher=Argon2PasswordHasher(fast=settings.fast_password_hashing),
        tokens=JwtTokenIssuer(secrets.jwt_secret, ttl_seconds=settings.jwt_ttl_seconds),
        clock=clock,
        limits=settings.limits,
        mfa=rest.mfa,
    )

    async def health() -> Mapping[str, Any]:
        try:
            await db.ping()
        except Exception:  # any failure of the store means unhealthy
            log.exception("health check: database unreachable")
            return {"status": "unhealthy", "database": "unreachable"}
        return {"status": "healthy", "database": "sqlite" if db.is_sqlite else "postgresql"}

    deps = Services(
        uow_factory=db.unit_of_work,
        auth=auth,
        fields=FieldService(embedder=embedder, clock=clock, limits=settings.limits),
        memories=MemoryService(embedder=embedder, clock=clock, limits=settings.limits),
        conversations=conversations,
        limits=settings.limits,
        health=health,
        version=__version__,
        **rest.registry_fields(),
    )
    ext = build_ext_services(
        settings,
        db=db,
        clock=clock,
        deps=deps,
        embedder=embedder,
        encryption_key=secrets.encryption_key,
        state_key=secrets.jwt_secret.encode(),
    )
    chat = build_chat_services(
        settings,
        db=db,
        clock=clock,
        deps=deps,
        encryption_key=secrets.encryption_key,
        patterns=ext.procedural,
    )
    deps = dataclasses.replace(deps, **chat.registry_fields(), **ext.registry_fields())
    return Runtime(
        settings=settings,
        db=db,
        secrets=secrets,
        deps=deps,
        chat=chat,
        ext=ext,
        reembed=ReembedWorker(db=db, embedder=embedder),
        promotion=PromotionSweeper(
            db=db, memories=deps.memories, interval=settings.promotion_interval_seconds
        ),
    )


def build_app(settings: Settings, *, embedder: Embedder | None = None) -> Starlette:
    runtime = build_runtime(settings, embedder=embedder)
    graphql = MemoriaGraphQL(build_schema(), runtime.deps, ide=settings.graphiql)

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
        if runtime.ext is not None:
            await runtime.ext.start()  # background webhook, sync and pattern workers
        if settings.ext.background_workers:
            runtime.reembed.start()  # detects the embedder, then re-embeds stale fields
            runtime.promotion.start()
        else:
            await prepare_embedder(runtime.deps.memories.embedder, runtime.db)
        # Start-up objects (modules, schema, caches) live for the whole process: moving them
        # out of the collector's generations keeps full collections short mid-stream
        # (docs/BENCHMARKS.md, chat streaming, --gc-freeze).
        gc.freeze()
        try:
            yield
        finally:
            await runtime.promotion.aclose()
            await runtime.reembed.aclose()
            if runtime.ext is not None:
                await runtime.ext.aclose()
            if runtime.chat is not None:
                await runtime.chat.aclose()
            await runtime.db.dispose()

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
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Mount(STATIC_URL, app=StaticFiles(directory=STATIC_DIR), name="graphiql-static"),
            *build_rest_routes(settings, runtime.deps),
        ],
        exception_handlers={404: not_found},
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
