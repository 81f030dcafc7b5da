"""pgvector search for PostgreSQL mode: vectors live in the memory rows themselves.

Searched with ``MEMORIA_VECTOR_SEARCH=database``, and by any process that does not hear the
others' writes (no LISTEN connection, or one reconnecting); otherwise each process searches
its own FAISS copy (persistence/memory_changes.py), three times faster at 100k memories.

The embedding column has no fixed dimension, so the HNSW index is a partial expression
index per dimension (``embedding::halfvec(D)`` where ``vector_dims(embedding) = D``, made by
migrations 0002/0007 for 384 and by :func:`ensure_hnsw_index` for others). Queries use the
same expression so the planner can choose it, and iterative index scans (pgvector >= 0.8)
keep scanning until enough rows pass the field and filter conditions, so a top-k is not
emptied by filtering. A field small for its table is read exactly instead (see
``_EXACT_WANTED``): walking the graph past other fields' rows cost more.

Parameters, measured on 100k synthetic 384-d memories in one field (bench/search.py's
vectors, 40 queries, pgserver defaults: 128 MB ``shared_buffers``, a shared 2-core machine;
recall@10 against an exact scan, after the exact re-sort below; ``bench/pgvector_recall.py``
repeats it on a bare table, where halfvec took 22 ms instead of 29 ms at k = 500 and 4.5
instead of 7.7 ms at k = 10, recall@10 1.000 for both):

- Half precision: the index is 112 MB instead of 195 MB, so it stays in the buffer cache
  (the full-precision one read ~30% of its pages from the OS on every search) and each
  distance reads half the bytes. The 500-candidate search the retrieval engine asks for
  took a median 21 ms instead of 50 ms (k = 100: 3 ms instead of 10 ms) for the same
  ~13k buffer visits, at recall@10 0.993 (1.000 with full precision). Scores, and the
  final order, come from the full-precision column.
- ``m = 16``, ``ef_construction = 128``: at 100k pgvector's defaults (16, 64) already gave
  recall above 0.99, but at a million (bench/search.py's synthetic vectors, 200 queries, the
  engine's 500-deep search then its exact re-sort) they gave recall@10 0.901 whatever
  ``ef_search`` (0.901 / 0.906 / 0.902 at 100 / 200 / 500): the graph, not the search, missed
  the neighbours. Built with 128: recall@10 0.995, and the 500-deep search takes a median
  12.2 ms instead of ~17 ms (a better graph takes fewer detours). A build takes ~1.7x as long
  (669 instead of 385 s per million here, ``maintenance_work_mem`` 2 GB).
- ``ef_search = 100``: recall@10 0.993 at 100k (0.993 at 40 too, for 1.1 ms instead of 2.2
  ms at k = 10, but less margin on real embeddings). Raising it to k for deep searches
  changed nothing measurable, at 100k or at 1M (iterative scans already go on until k rows
  are found).

Depth. An HNSW search costs in proportion to the rows it returns, not to the table: ~27
buffer visits per row at 100k (k = 100: 2.7k visits, ~3 ms; k = 500: 13k, ~21 ms; an
iterative scan goes on in ``ef_search``-sized rounds, so k = 101 costs as much as 200).
FAISS's flat and IVF searches cost the same at any depth, so the retrieval engine asks for
500 candidates; here that is half of a search's time. Asking 100 instead (one ef_search
round: PostgreSQL CPU per search ~6 instead of ~21 ms at 100k) cost LoCoMo held-out R@10 /
R@30 0.781 / 0.864 -> 0.769 / 0.859 (150 and 300: the same within noise), so the engine's
depth stands; docs/BENCHMARKS.md has the measurements.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import Float, String, any_, bindparam, cast, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, REAL
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.ports import Vector
from persistence.field_cache import FieldCache
from persistence.session import Transaction
from persistence.tables.memories import memories

EF_SEARCH = 100
# The graph's parameters (migration 0011 builds existing indexes with them too).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
# A field at most this many rows, and at most EXACT_PER_ROOT x sqrt(the table's rows), is
# searched exactly (see _EXACT_WANTED).
EXACT_MAX_ROWS = 3000
EXACT_PER_ROOT = 44
# Advisory lock keys of index creation, one per dimension ("memoidx" + dimension).
_INDEX_LOCK = 0x6D656D6F696478 << 8
# pgvector's HNSW limit for `halfvec`.
MAX_HNSW_DIMENSION = 4000


def hnsw_index_sql(dimension: int) -> str:
    """The statement that creates the HNSW index for one dimension (idempotent)."""
    dimension = int(dimension)
    return (
        f"CREATE INDEX IF NOT EXISTS ix_memories_hnsw_{dimension} ON memories "
        f"USING hnsw ((embedding::halfvec({dimension})) halfvec_cosine_ops) "
        f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) "
        f"WHERE vector_dims(embedding) = {dimension}"
    )


async def ensure_hnsw_index(engine: AsyncEngine, dimension: int) -> None:
    """Create the HNSW index for one dimension if missing (idempotent, autocommit)."""
    dimension = int(dimension)
    if not 0 < dimension <= MAX_HNSW_DIMENSION:
        return
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        # Processes starting together would race: CREATE INDEX IF NOT EXISTS is not atomic
        # in PostgreSQL (the loser fails on pg_class's unique name), so one at a time.
        lock = {"key": _INDEX_LOCK + dimension}
        await conn.execute(text("SELECT pg_advisory_lock(:key)"), lock)
        try:
            await conn.execute(text(hnsw_index_sql(dimension)))
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), lock)


# The HNSW settings every search needs, as PostgreSQL session settings: given to each
# connection when it opens (asyncpg's ``server_settings``; see persistence/database.py), they
# cost no statement per search. Names with a dot are accepted before pgvector is loaded and
# take effect when it is.
CONNECTION_SETTINGS = {"hnsw.iterative_scan": "relaxed_order", "hnsw.ef_search": str(EF_SEARCH)}


# Whether a field is better searched exactly than through HNSW.
#
# An exact search reads every row of the field (~7 buffer visits a row with the vector stored
# out of line, as before migration 0012; ~0.35 with the row kept whole); an iterative HNSW
# scan reads ~13.5k per 500 rows returned, divided by the field's share of the table, as it
# passes over other fields' rows (10 LoCoMo conversations of ~600 turns in one table: 17-24 ms
# for HNSW against ~4 ms exactly). So exact wins while rows^2 < ~1,930 x table rows, i.e.
# rows < 44 x sqrt(table rows), capped at EXACT_MAX_ROWS (~15 ms exactly), even for rows
# stored out of line; kept whole, exact reads are cheaper still, so the bound is cautious.
# The planner cannot weigh this itself: it prices the distance per row far below its cost,
# and ``vector_dims(embedding) = D`` at 0.5 % of rows, so it picked HNSW for a 700-row field
# beside 5,000 rows, and an exact scan of a 4,000-row table (21 ms against 4 ms) once given
# real statistics. The field's rows are counted up to the cap (an index-only scan, ~0.2 us a
# row); the table's come from ``pg_class.reltuples`` (the last ANALYZE's estimate, -1 before
# one: then the field's).
_EXACT_WANTED = text(
    "SELECT n <= least(:most, :per_root * sqrt(greatest("
    "(SELECT reltuples FROM pg_class WHERE oid = 'memories'::regclass), n))) AS exact "
    "FROM (SELECT count(*) AS n FROM (SELECT 1 FROM memories WHERE field_id = :field_id "
    "LIMIT :most + 1) AS f) AS c"
)


class PgVectorIndex:
    """Runs on the unit of work's own transaction, so it sees that transaction's writes.

    ``preset``: the connection was opened with :data:`CONNECTION_SETTINGS`; otherwise the
    first search of the transaction sets them (one more statement). ``paths``: which fields
    are read exactly, kept per field (a stale choice only costs time, as both paths find the
    field's nearest rows); without, each search decides anew."""

    def __init__(
        self, tx: Transaction, *, preset: bool = False, paths: FieldCache[bool] | None = None
    ) -> None:
        self._tx = tx
        self._tuned = preset
        self._paths = paths

    async def _exactly(self, field_id: str) -> bool:
        """Whether to read this field's rows exactly (see _EXACT_WANTED)."""
        exact = self._paths.get(field_id) if self._paths is not None else None
        if exact is None:
            params = {"field_id": field_id, "most": EXACT_MAX_ROWS, "per_root": EXACT_PER_ROOT}
            exact = bool((await self._tx.read(_EXACT_WANTED, params)).scalar_one())
            if self._paths is not None:
                self._paths.put(field_id, exact)
        return exact

    async def _tune(self) -> None:
        if not self._tuned:
            # Local to this transaction (pooled connections are not changed); both settings
            # in one round trip.
            await self._tx.read(
                text(
                    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                    "set_config('hnsw.ef_search', :ef, true)"
                ),
                {"ef": str(EF_SEARCH)},
            )
            self._tuned = True

    async def search(
        self,
        *,
        field_id: str,
        vector: Vector,
        k: int,
        allowed: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        if allowed is not None and not allowed:
            return []
        # Imported here: pgvector is the `postgres` extra, and SQLite mode imports this module.
        from pgvector.sqlalchemy import HALFVEC
        from pgvector.sqlalchemy import Vector as PgVector

        await self._tune()
        query = np.asarray(vector, dtype=np.float32)
        dimension = int(query.shape[0])
        # A float4[] parameter (asyncpg's binary codec, ~0.03 ms) cast to vector in SQL:
        # pgvector.sqlalchemy's text encoding took ~1 ms per query vector here.
        bound = cast(
            bindparam("query_vector", query.tolist(), type_=ARRAY(REAL())), PgVector(dimension)
        )
        exact = cast(memories.c.embedding, PgVector(dimension)).op("<=>", return_type=Float())(
            bound
        )
        # The index's expression: half precision picks the candidates...
        approximate = cast(memories.c.embedding, HALFVEC(dimension)).op("<=>", return_type=Float())(
            cast(bound, HALFVEC(dimension))
        )
        # ...and the full-precision distance scores them.
        stmt = select(memories.c.id, (1 - exact).label("score")).where(
            memories.c.field_id == field_id,
            func.vector_dims(memories.c.embedding) == dimension,
        )
        if allowed is not None:
            # One array parameter, however many ids (asyncpg caps bound parameters at 32k).
            ids = bindparam("allowed_ids", list(allowed), type_=ARRAY(String()))
            stmt = stmt.where(memories.c.id == any_(ids))
        # Ordered by the full-precision distance, which no index serves, a search reads the
        # field's rows through its own index. relaxed_order and half precision may return
        # rows slightly out of order: the final k are sorted exactly below.
        order = exact if await self._exactly(field_id) else approximate
        rows = await self._tx.read(stmt.order_by(order).limit(k))
        hits = [(row.id, float(row.score)) for row in rows]
        hits.sort(key=lambda hit: -hit[1])
        return hits

    async def nearest(
        self, *, field_id: str, vectors: Sequence[Vector], k: int
    ) -> list[list[tuple[str, float]]]:
        return [await self.search(field_id=field_id, vector=v, k=k) for v in vectors]
