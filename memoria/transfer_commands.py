"""``memoria export``, ``memoria import`` and ``memoria reindex``: the operator's commands
for moving data between deployments and rebuilding search indexes.

Each builds the runtime ``memoria serve`` builds (settings from the environment; the schema
must be current: ``memoria migrate``) without starting its background workers. Exit
codes: 0 done, 1 failed, 2 wrong usage or settings; failures are one line on standard
error (raised as ``CliError`` for ``memoria.cli.main`` to print).
"""

from __future__ import annotations

import argparse
import contextlib
import sys

# memoria.cli imports this module: its helpers are imported where used, not here.


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``export``, ``import`` and ``reindex`` subcommands to ``memoria``'s parser."""
    export = sub.add_parser(
        "export",
        help="write memories, fields, conversations, messages and patterns as JSON Lines",
        description="Stream the database (or some users' part) as JSON Lines: one record a "
        "line, vectors included, no secrets. A name ending in .gz is gzip-compressed.",
    )
    export.add_argument(
        "--user", action="append", default=[], metavar="USERNAME", help="only this user (repeat)"
    )
    export.add_argument("--out", default="-", metavar="FILE", help="output file (default: stdout)")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    export.set_defaults(run=run_export)

    load = sub.add_parser(
        "import",
        help="load an export file (idempotent: records already here are skipped)",
        description="Load a file made by `memoria export`. Ids are kept; records whose id "
        "exists are skipped, so re-running an interrupted import finishes it. Users missing "
        "here are created without a usable password.",
    )
    load.add_argument("file", metavar="FILE", help="export file, or - for stdin (.gz is fine)")
    load.add_argument(
        "--user-map",
        action="append",
        default=[],
        type=_user_mapping,
        metavar="OLD=NEW",
        help="import user OLD's data into account NEW (repeat)",
    )
    load.add_argument("--batch-size", type=int, default=500, help="records per transaction")
    load.add_argument(
        "--defer-vector-index",
        action="store_true",
        help="PostgreSQL: drop the HNSW index during the import and build it once at the end "
        "(much faster for large imports; vector search scans meanwhile)",
    )
    load.add_argument("--quiet", action="store_true", help="no progress bar")
    load.set_defaults(run=run_import)

    reindex = sub.add_parser(
        "reindex",
        help="rebuild the vector and full-text indexes from the database",
        description="Re-embed fields made by another embedder, then rebuild the full-text "
        "index and every field's vector index from the database.",
    )
    reindex.add_argument("--field", metavar="ID", help="only this memory field")
    reindex.add_argument(
        "--re-embed", action="store_true", help="re-embed with the configured embedder first"
    )
    reindex.add_argument("--quiet", action="store_true", help="no progress bar")
    reindex.set_defaults(run=run_reindex)


def _user_mapping(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old.strip() or not new.strip():
        raise argparse.ArgumentTypeError(f"expected OLD=NEW, got {text!r}")
    return old.strip(), new.strip()


def _fail(message: str) -> int:
    """A failure after partial work (an import cut short): the summary was printed first."""
    print(f"memoria: {message}", file=sys.stderr)
    return 1


def run_export(args: argparse.Namespace) -> int:
    from memoria.cli.common import CliError, load_settings, open_runtime, run
    from memoria.transfer.export import ExportError, export_jsonl
    from memoria.transfer.jsonl import open_output

    async def body() -> dict[str, int]:
        async with open_runtime(load_settings()) as runtime:
            try:
                with open_output(args.out) as out:
                    return await export_jsonl(
                        runtime.db,
                        out,
                        embedder=runtime.deps.memories.embedder,
                        usernames=args.user,
                        quiet=args.quiet,
                    )
            except ExportError as exc:
                raise CliError(str(exc)) from None
            except OSError as exc:
                raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None

    counts = run(body())
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    print(f"exported {summary or 'nothing'}", file=sys.stderr)  # stdout may be the export
    return 0


def run_import(args: argparse.Namespace) -> int:
    from memoria.bootstrap import ensure_admin
    from memoria.cli.common import USAGE, CliError, load_settings, open_runtime, run
    from memoria.maintenance import prepare_embedder
    from memoria.transfer.importer import Importer, ImportFailed, ImportReport
    from memoria.transfer.indexes import hnsw_deferred
    from memoria.transfer.jsonl import open_input
    from memoria.transfer.records import RecordError

    if args.batch_size < 1:
        raise CliError("--batch-size must be at least 1", USAGE)
    settings = load_settings()

    async def body() -> tuple[ImportReport, str]:
        async with open_runtime(settings) as runtime:
            # As `memoria serve` would on first start, before the file can bring an account
            # of the same name (which would then have no usable password).
            generated = await ensure_admin(runtime.db, runtime.deps.auth, settings)
            if generated:  # printed once, on the console only, as by serve
                print(f"Created admin user {settings.admin_username!r} with password: {generated}")
            embedder = runtime.deps.memories.embedder
            if not await prepare_embedder(embedder, runtime.db):
                raise CliError(f"the embedder {embedder.name} cannot be reached")
            importer = Importer(
                runtime.db,
                embedder=embedder,
                renames=dict(args.user_map),
                batch_size=args.batch_size,
                quiet=args.quiet,
            )
            deferred = (
                hnsw_deferred(runtime.db, embedder.dimension)
                if args.defer_vector_index
                else contextlib.nullcontext()
            )
            try:
                async with deferred:
                    with open_input(args.file) as (stream, size):
                        return await importer.run(stream, size), embedder.name
            except (RecordError, ImportFailed) as exc:
                raise CliError(
                    f"{args.file}: {exc}; the batches before it were imported, a re-run "
                    "after fixing it skips them"
                ) from None
            except OSError as exc:
                raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None

    report, embedder_name = run(body())
    done = ", ".join(f"{n} {kind}" for kind, n in report.imported.items() if n)
    skipped = sum(report.skipped.values())
    print(f"imported {done or 'nothing'}; skipped {skipped} records already here")
    if report.reembedded:
        print(f"re-embedded {report.reembedded} memories with {embedder_name}")
    if report.created_users:
        print(
            "created accounts without a password (they cannot log in until one is set): "
            + ", ".join(report.created_users)
        )
    if not report.complete:
        return _fail(
            f"{args.file} ends before its end record (an export cut short?): "
            "what it held was imported"
        )
    return 0


def run_reindex(args: argparse.Namespace) -> int:
    from memoria.cli.common import CliError, load_settings, open_runtime, run
    from memoria.transfer.reindex import ReindexFailed, ReindexReport, reindex

    async def body() -> ReindexReport:
        async with open_runtime(load_settings()) as runtime:
            try:
                return await reindex(
                    runtime.db,
                    embedder=runtime.deps.memories.embedder,
                    field_id=args.field,
                    re_embed=args.re_embed,
                    quiet=args.quiet,
                )
            except ReindexFailed as exc:
                raise CliError(str(exc)) from None

    report = run(body())
    embedded = sum(report.reembedded.values())
    print(
        f"reindexed {report.fields} fields"
        + (f"; re-embedded {embedded} memories in {len(report.reembedded)}" if embedded else "")
        + ("; full-text index rebuilt" if report.lexical else "")
    )
    return 0
