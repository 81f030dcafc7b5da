"""``memoria serve`` and ``memoria schema``."""

from __future__ import annotations

import argparse
import sys

from memoria.cli.common import load_settings
from memoria.observability.logging_setup import configure_logging


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the server (GraphQL at /graphql)")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1, MEMORIA_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8000, MEMORIA_PORT)")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(run=_serve, server_logs=True)
    schema = sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    schema.set_defaults(run=_schema)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from memoria.app import build_app

    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    settings = load_settings(**overrides)
    configure_logging(settings, level=args.log_level.upper())
    app = build_app(settings)
    base = f"http://{settings.host}:{settings.port}"
    where = "PostgreSQL" if not settings.is_sqlite else f"SQLite in {settings.data_dir.resolve()}"
    print(f"Memoria {settings.environment} server, storage: {where}", flush=True)
    print(f"  GraphQL API and GraphiQL: {base}/graphql", flush=True)
    print(f"  GraphQL WebSocket:        ws://{settings.host}:{settings.port}/graphql", flush=True)
    print(f"  Health:                   {base}/health", flush=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        # uvicorn's loggers go through our handler (format, request ids); request lines come
        # from memoria.access, which logs route templates, never raw paths and query strings.
        log_config=None,
        access_log=False,
        ws_max_size=settings.max_request_bytes,  # /graphql's body limit, on its socket too
    )
    return 0


def _schema(_args: argparse.Namespace) -> int:
    from graph.schema import export_sdl

    sys.stdout.write(export_sdl())
    return 0
