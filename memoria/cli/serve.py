"""``memoria serve`` and ``memoria schema``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from memoria.cli.common import USAGE, CliError, load_settings
from memoria.cli.serve_workers import APP, WorkerPool, balances_connections
from memoria.observability.logging_setup import configure_logging
from memoria.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the server (GraphQL at /graphql)")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1, MEMORIA_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8000, MEMORIA_PORT)")
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes on the one port (PostgreSQL only; default 1)",
    )
    serve.set_defaults(run=_serve, server_logs=True)
    schema = sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    schema.set_defaults(run=_schema)


def _serve(args: argparse.Namespace) -> int:
    from memoria.app import SERVE_LOG_LEVEL, build_app

    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    settings = load_settings(**overrides)
    if args.workers < 1:
        raise CliError("--workers must be at least 1", USAGE)
    if args.workers > 1 and settings.is_sqlite:
        raise CliError(
            "embedded mode is one process: use PostgreSQL (DATABASE_URL) for several workers",
            USAGE,
        )
    configure_logging(settings, level=args.log_level.upper())
    base = f"http://{settings.host}:{settings.port}"
    where = "PostgreSQL" if not settings.is_sqlite else f"SQLite in {settings.data_dir.resolve()}"
    print(f"Memoria {settings.environment} server, storage: {where}", flush=True)
    print(f"  GraphQL API and GraphiQL: {base}/graphql", flush=True)
    print(f"  GraphQL WebSocket:        ws://{settings.host}:{settings.port}/graphql", flush=True)
    print(f"  Health:                   {base}/health", flush=True)
    if args.workers == 1:
        _run(build_app(settings), settings, args)
        return 0
    # Each worker process builds its own app from the environment: hand it the overrides.
    print(f"  Workers:                  {args.workers} processes", flush=True)
    os.environ.update(
        MEMORIA_HOST=settings.host,
        MEMORIA_PORT=str(settings.port),
        **{SERVE_LOG_LEVEL: args.log_level},
    )
    options = uvicorn_options(settings, log_level=args.log_level)
    if not balances_connections():
        import uvicorn

        uvicorn.run(APP, factory=True, workers=args.workers, **options)
        return 0
    del options["host"], options["port"]  # each worker binds its own socket
    return WorkerPool(settings.host, settings.port, args.workers, options).run()


def _run(app: Any, settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run(app, **uvicorn_options(settings, log_level=args.log_level))


def uvicorn_options(settings: Settings, *, log_level: str) -> dict[str, Any]:
    """How ``memoria serve`` runs uvicorn (benches that start the app themselves take the
    same, so they measure what an operator runs)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": log_level,
        # uvicorn's loggers go through our handler (format, request ids); request lines come
        # from memoria.access, which logs route templates, never raw paths and query strings.
        "log_config": None,
        "access_log": False,
        "ws_max_size": settings.max_request_bytes,  # /graphql's body limit, on its socket too
        # Token frames are small and compress poorly; deflate costs CPU on every frame and
        # about 300 KB of zlib state per socket.
        "ws_per_message_deflate": False,
    }


def _schema(_args: argparse.Namespace) -> int:
    from graph.schema import export_sdl

    sys.stdout.write(export_sdl())
    return 0
