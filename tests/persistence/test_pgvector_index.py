"""pgvector search on the real PostgreSQL: the HNSW index is half precision, the search
statement walks it for a field that is most of the table and reads a small field beside
others exactly, and its top 10 (and its top 100) agrees with an exact scan. The parameters
behind these numbers are measured in persistence/pgvector_index.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from engine_support import Engine, engine
from sqlalchemy import Executable, text

from domain.memory_drafts import MemoryDraft
from persistence.pgvector_index import PgVectorIndex, ensure_hnsw_index
from persistence.session import Transaction
from persistence.tables.memories import memories

__all__ = ["engine"]  # the fixture, used by name

DIM = 384
ROWS = 3000


@pytest.fixture
def database_url(pg_server: Any) -> str:
    """PostgreSQL only: this module is about pgvector."""
    return str(pg_server.url(pg_server.create_database()))


class RecordingTransaction(Transaction):
    """Keeps the statements it runs, so a test can ask the planner about them."""

    def __init__(self, tx: Transaction) -> None:
        super().__init__(tx.conn, None)
        self.statements: list[Any] = []  # ClauseElements, which compile

    async def read(self, statement: Executable, params: Any = None) -> Any:
        self.statements.append(statement)
        return await super().read(statement, params)


def clustered(n: int, seed: int, centres: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Unit vectors around random centres (like sentence embeddings of related texts)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, DIM)).astype(np.float32) / np.sqrt(DIM)
    vectors = centres[rng.integers(0, len(centres), size=n)] + 1.5 * noise
    unit: np.ndarray[Any, Any] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit.astype(np.float32)


@pytest.fixture
def centres() -> np.ndarray[Any, Any]:
    c = np.random.default_rng(1).standard_normal((60, DIM)).astype(np.float32)
    unit: np.ndarray[Any, Any] = c / np.linalg.norm(c, axis=1, keepdims=True)
    return unit


def _rows(field_id: str, user_id: str, vectors: np.ndarray[Any, Any]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "id": str(uuid.uuid4()),
            "user_id": user_id,
            "field_id": field_id,
            "content": f"memory {i}",
            "kind": "fact",
            "source": "test",
            "layer": "long_term",
            "importance": 0.5,
            "tags": [],
            "metadata": {},
            "occurred_at": now,
            "created_at": now,
            "updated_at": now,
            "content_hash": uuid.uuid4().hex,
            "embedding": vector,
        }
        for i, vector in enumerate(vectors)
    ]


async def _plan(tx: Transaction, statement: Any) -> str:
    """What the planner did with ``statement`` (EXPLAIN ANALYZE, values inlined)."""
    sql = statement.compile(dialect=tx.conn.dialect, compile_kwargs={"literal_binds": True})
    return "\n".join(row[0] for row in await tx.read(text(f"EXPLAIN ANALYZE {sql}")))


def _hnsw_walked(plan: str) -> bool:
    return "ix_memories_hnsw_384" in plan


async def _fill(engine: Engine, vectors: np.ndarray[Any, Any]) -> list[str]:
    rows = _rows(engine.field_id, engine.actor.user_id, vectors)
    ids = [row["id"] for row in rows]
    db = engine.runtime.db.engine
    # Loaded without the index, which ensure_hnsw_index then builds in one go (as after a
    # bulk import): faster than maintaining it row by row, and it tests that function.
    async with db.begin() as conn:
        await conn.execute(text("DROP INDEX ix_memories_hnsw_384"))
        await conn.execute(memories.insert(), rows)
    await ensure_hnsw_index(db, DIM)
    async with db.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE memories"))
    return ids


async def test_index_is_half_precision(engine: Engine) -> None:
    """As migrations 0007 and 0011 leave it (ensure_hnsw_index makes the same, see below)."""
    async with engine.runtime.db.engine.connect() as conn:
        definition = (
            await conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_memories_hnsw_384'")
            )
        ).scalar_one()
    assert "halfvec(384)" in definition
    assert "halfvec_cosine_ops" in definition
    assert "ef_construction='128'" in definition  # recall at a million (pgvector_index.py)


async def test_recall_at_10_against_exact_search(
    engine: Engine, centres: np.ndarray[Any, Any]
) -> None:
    vectors = clustered(ROWS, 0, centres)
    ids = await _fill(engine, vectors)
    queries = clustered(30, 99, centres)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recalls = []
    async with engine.runtime.deps.uow_factory() as uow:
        recorder = RecordingTransaction(uow._tx)  # the unit of work's own transaction
        index = PgVectorIndex(recorder)
        for query, expected in zip(queries, exact, strict=True):
            hits = await index.search(field_id=engine.field_id, vector=query, k=10)
            assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
            recalls.append(len({m for m, _ in hits} & {ids[i] for i in expected}) / 10)
        # The search statement walked the HNSW index (this field is the whole table).
        plan = await _plan(uow._tx, recorder.statements[-1])
        # One ef_search round deep: the candidates are still nearly the exact nearest ones.
        depth = 100
        deep = []
        for query in queries[:5]:
            hits = await index.search(field_id=engine.field_id, vector=query, k=depth)
            nearest = {ids[i] for i in np.argsort(-(vectors @ query))[:depth]}
            deep.append(len({m for m, _ in hits} & nearest) / depth)
    assert _hnsw_walked(plan), plan
    assert float(np.mean(recalls)) >= 0.95
    assert float(np.mean(deep)) >= 0.9, deep


async def test_connections_carry_the_search_settings(
    engine: Engine, centres: np.ndarray[Any, Any]
) -> None:
    """The unit of work's index runs no settings statement: the connection opened with
    them (placeholders until pgvector loads, then its settings), and a filtered search
    through it fills its top-k with the allowed rows' exact nearest."""
    vectors = clustered(ROWS, 0, centres)
    ids = await _fill(engine, vectors)
    allowed = ids[::60]
    query = clustered(1, 7, centres)[0]
    async with engine.runtime.deps.uow_factory() as uow:
        settings = (
            await uow._tx.read(
                text(
                    "SELECT current_setting('hnsw.iterative_scan'), "
                    "current_setting('hnsw.ef_search')"
                )
            )
        ).one()
        # Built as the unit of work builds it, but recording what it runs.
        recorder = RecordingTransaction(uow._tx)
        index = PgVectorIndex(recorder, preset=engine.runtime.db.pg_search_preset)
        hits = await index.search(field_id=engine.field_id, vector=query, k=20, allowed=allowed)
    assert tuple(settings) == ("relaxed_order", "100")
    # The search and its path's decision (a count), no settings statement.
    assert len(recorder.statements) == 2
    assert not any("set_config" in str(statement) for statement in recorder.statements)
    order = np.argsort(-(vectors[::60] @ query))[:20]
    assert {m for m, _ in hits} == {allowed[i] for i in order}


async def test_a_small_field_beside_a_bigger_one_is_searched_exactly(
    engine: Engine, centres: np.ndarray[Any, Any]
) -> None:
    """HNSW walks past other fields' rows to fill a small field's top-k (17-24 ms for a
    700-row field among 5,900 rows, against ~4 ms exactly): a field that small for its
    table is read through its own rows, every one of them scored exactly."""
    await _fill(engine, clustered(ROWS, 0, centres))
    deps = engine.runtime.deps
    async with deps.uow_factory() as uow:
        small = await deps.fields.create(uow=uow, actor=engine.actor, name="small")
        await uow.commit()
    vectors = clustered(200, 5, centres)
    rows = _rows(small.id, engine.actor.user_id, vectors)
    async with engine.runtime.db.engine.begin() as conn:
        await conn.execute(memories.insert(), rows)
    query = clustered(1, 11, centres)[0]
    async with deps.uow_factory() as uow:
        recorder = RecordingTransaction(uow._tx)
        index = PgVectorIndex(recorder)
        hits = await index.search(field_id=small.id, vector=query, k=50)
        plan = await _plan(uow._tx, recorder.statements[-1])
    assert not _hnsw_walked(plan), plan
    assert "ix_memories_field" in plan, plan  # the field's rows through its own index
    order = np.argsort(-(vectors @ query))[:50]
    assert [m for m, _ in hits] == [rows[i]["id"] for i in order]
    assert [s for _, s in hits] == pytest.approx([float(vectors[i] @ query) for i in order])


async def test_a_fields_path_is_decided_once_and_forgotten_when_it_grows(
    engine: Engine, centres: np.ndarray[Any, Any]
) -> None:
    """The decision is kept (one count per field, not one per search) until this process
    commits new vectors to the field."""
    await _fill(engine, clustered(100, 0, centres))
    paths = engine.runtime.db.vector_paths
    query = clustered(1, 3, centres)[0]
    async with engine.runtime.deps.uow_factory() as uow:
        recorder = RecordingTransaction(uow._tx)
        index = PgVectorIndex(recorder, preset=True, paths=paths)
        await index.search(field_id=engine.field_id, vector=query, k=5)
        await index.search(field_id=engine.field_id, vector=query, k=5)
    assert len(recorder.statements) == 3  # one decision, two searches
    assert paths.get(engine.field_id) is True  # 100 rows: read exactly
    await engine.add(MemoryDraft("one more memory"))
    assert paths.get(engine.field_id) is None


async def test_a_memorys_vector_stays_in_its_row(engine: Engine) -> None:
    """Migration 0012: a ~2.3 KB row (a 1.5 KB vector and a long turn) is kept whole, so an
    exact read or a re-score visits one page, not the TOAST table too."""
    words = " ".join(f"word{i}" for i in range(80))
    await engine.add(MemoryDraft(f"Caroline: {words}"))
    async with engine.runtime.db.engine.connect() as conn:
        toasted = (
            await conn.execute(
                text(
                    "SELECT pg_relation_size(reltoastrelid) FROM pg_class "
                    "WHERE relname = 'memories'"
                )
            )
        ).scalar_one()
        row = (
            await conn.execute(text("SELECT pg_column_size(memories.*) FROM memories"))
        ).scalar_one()
    assert row > 2100  # past PostgreSQL's default toast target of ~2 KB
    assert toasted == 0
