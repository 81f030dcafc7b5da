"""The ``memoria`` command line."""

from __future__ import annotations

import argparse
import logging
import sys

from memoria.settings import Settings, SettingsError


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from memoria.app import build_app

    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    try:
        settings = Settings.from_env(None, **overrides)
    except SettingsError as exc:
        print(f"memoria: {exc}", file=sys.stderr)
        return 2
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
    )
    return 0


def _schema(_args: argparse.Namespace) -> int:
    from graph.schema import export_sdl

    sys.stdout.write(export_sdl())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memoria", description="Memoria memory server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (GraphQL at /graphql)")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1, MEMORIA_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8000, MEMORIA_PORT)")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(run=_serve)
    schema = sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    schema.set_defaults(run=_schema)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Library chatter that says nothing to an operator: faiss lists every CPU build it probes,
    # alembic every plugin it sets up (migrations themselves still log at INFO).
    for noisy in ("faiss.loader", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
