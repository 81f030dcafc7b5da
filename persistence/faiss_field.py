"""One memory field's FAISS index: exact (flat inner product) while small, IVF when large.

Vectors are unit length, so inner product is cosine. Memory ids (UUIDs) map to stable
63-bit FAISS ids. Not thread-safe by itself: :class:`persistence.faiss_index.FaissStore`
guards each field with a readers/writer lock.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

F32 = np.ndarray[Any, np.dtype[np.float32]]

# Exact search is affordable up to here (~5 ms per query at 384 dimensions on one core).
IVF_THRESHOLD = 50_000

# One thread per search: the server runs searches side by side (worker threads, GIL
# released), and OpenMP teams on 2 shared cores only add spinning and tail latency.
faiss.omp_set_num_threads(1)
# Filters that leave at most this many candidates are scored exactly, whatever the index.
EXACT_FILTER_MAX = 20_000


def faiss_id(memory_id: str) -> int:
    """A stable 63-bit id derived from the memory's UUID (FAISS ids are signed int64)."""
    return uuid.UUID(memory_id).int >> 65


def keys_of(memory_ids: Sequence[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.fromiter((faiss_id(m) for m in memory_ids), dtype=np.int64, count=len(memory_ids))


# At most this many vectors scanned per query, whatever the field's size: a latency budget
# (~9 ms at 1M here), since probing a fixed fraction of the lists grows with the field.
_SCAN_BUDGET = 65_536


def ivf_shape(count: int) -> tuple[int, int]:
    """(lists, probes) for ``count`` vectors: 4·sqrt(n) lists (faiss's guideline is 4-16·sqrt(n)),
    an eighth of them probed, but no more lists than scan ``_SCAN_BUDGET`` vectors on
    average. On bench/search.py's clustered synthetic vectors, recall@10 against exact
    search: 100k 0.955 (2.2 ms per query; sqrt(n) lists probing a fifth gave 0.782 in 3.0
    ms); 1M: see docs/BENCHMARKS.md."""
    lists = max(64, min(4096, int(4 * math.sqrt(count))))
    budget = _SCAN_BUDGET * lists // max(count, 1)
    return lists, max(8, min(lists // 8, budget))


def needs_upgrade(index: FieldIndex) -> bool:
    """A flat index grown past ``IVF_THRESHOLD``, or an IVF index that needs retraining."""
    return (not index.is_ivf and index.size >= IVF_THRESHOLD) or needs_retraining(index)


def needs_retraining(index: FieldIndex) -> bool:
    """An IVF index trained when the field was much smaller has too few lists for it now
    (each list holds too many vectors, so every probe scans too many): retrain at 4x."""
    if not index.is_ivf:
        return False
    return int(index.index.nlist) * 2 <= ivf_shape(index.size)[0]


class FieldIndex:
    def __init__(self, dimension: int, index: Any | None = None) -> None:
        self.dimension = dimension
        self.index: Any = index or faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self.ids: dict[int, str] = {}
        self.nprobe = 1

    @property
    def is_ivf(self) -> bool:
        return isinstance(self.index, faiss.IndexIVF)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def upsert(self, memory_ids: Sequence[str], vectors: F32) -> None:
        keys = keys_of(memory_ids)
        known = np.fromiter((k in self.ids for k in keys.tolist()), dtype=bool, count=len(keys))
        if known.any():
            self.index.remove_ids(keys[known])
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), keys)
        self.ids.update(zip(keys.tolist(), memory_ids, strict=True))

    def delete(self, memory_ids: Sequence[str]) -> None:
        keys = keys_of(memory_ids)
        self.index.remove_ids(keys)
        for key in keys.tolist():
            self.ids.pop(key, None)

    def vectors(self, keys: np.ndarray[Any, np.dtype[np.int64]]) -> F32:
        return np.vstack([self.index.reconstruct(int(k)) for k in keys.tolist()]).astype(np.float32)

    def all_vectors(self) -> tuple[np.ndarray[Any, np.dtype[np.int64]], F32]:
        keys = np.fromiter(self.ids.keys(), dtype=np.int64, count=len(self.ids))
        if self.is_ivf:
            return keys, self.vectors(keys)
        flat = faiss.downcast_index(self.index.index)
        stored = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        matrix = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * self.dimension)  # type: ignore[attr-defined]  # downcast type is dynamic
        return stored, np.array(matrix, dtype=np.float32).reshape(flat.ntotal, self.dimension)

    def search_many(
        self, queries: F32, k: int, allowed: Sequence[str] | None = None
    ) -> list[list[tuple[str, float]]]:
        if self.size == 0 or k <= 0:
            return [[] for _ in range(len(queries))]
        queries = np.ascontiguousarray(queries.reshape(-1, self.dimension), dtype=np.float32)
        if allowed is not None:
            keys = np.unique(keys_of(allowed))
            keys = keys[
                np.fromiter((int(x) in self.ids for x in keys), dtype=bool, count=len(keys))
            ]
            if len(keys) == 0:
                return [[] for _ in range(len(queries))]
            if len(keys) <= EXACT_FILTER_MAX and (self.is_ivf or len(keys) * 8 < self.size):
                return self._exact_subset(queries, k, keys)
            selector = faiss.IDSelectorBatch(keys)
        else:
            selector = None
        k = min(k, self.size)
        if self.is_ivf:
            params: Any = faiss.SearchParametersIVF(sel=selector, nprobe=self.nprobe)  # type: ignore[call-arg]  # SWIG stubs omit the kwargs
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None  # type: ignore[call-arg]  # SWIG stubs omit the kwargs
        scores, found = self.index.search(queries, k, params=params)
        ids = self.ids
        # Plain Python numbers first (``tolist``): converting numpy scalars one by one cost
        # more than the search at k = 500.
        return [
            [(ids[key], s) for s, key in zip(row_s, row_k, strict=True) if key >= 0]
            for row_s, row_k in zip(scores.tolist(), found.tolist(), strict=True)
        ]

    def _exact_subset(
        self, queries: F32, k: int, keys: np.ndarray[Any, np.dtype[np.int64]]
    ) -> list[list[tuple[str, float]]]:
        """Brute force over a small allowed set: exact, and never short of results."""
        matrix = self.vectors(keys)
        scores = queries @ matrix.T
        out = []
        for row in scores:
            top = np.argsort(-row)[:k]
            out.append([(self.ids[int(keys[i])], float(row[i])) for i in top])
        return out

    def to_ivf(self) -> FieldIndex:
        """An IVF copy of this index, shaped for its size (trains k-means on a sample; tens of
        seconds at 1M). From an IVF index too: a field that outgrew its lists is retrained."""
        keys, matrix = self.all_vectors()
        lists, probes = ivf_shape(len(keys))
        quantizer = faiss.IndexFlatIP(self.dimension)
        ivf = faiss.IndexIVFFlat(quantizer, self.dimension, lists, faiss.METRIC_INNER_PRODUCT)
        # 40 points per centroid (what faiss asks for) and 10 k-means rounds: 4,000 lists
        # train in ~20 s at 1M on 2 cores; the default 25 rounds barely moved recall.
        ivf.cp.niter = 10
        rng = np.random.default_rng(0)
        sample = matrix[rng.choice(len(matrix), size=min(len(matrix), lists * 40), replace=False)]
        ivf.train(sample)
        # A hash table from id to position: removals and reconstruct-by-id both need it.
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]  # missing in the SWIG stubs
        ivf.add_with_ids(matrix, keys)
        built = FieldIndex(self.dimension, ivf)
        built.ids = {int(k): self.ids[int(k)] for k in keys.tolist()}
        built.nprobe = probes
        return built

    def save(self, path: Path) -> None:
        """Write index and id map next to each other, atomically (temp file + rename)."""
        tmp = path.with_suffix(".tmp")
        faiss.write_index(self.index, str(tmp))
        tmp.replace(path)
        ids_tmp = path.with_suffix(".ids.tmp")
        keys = np.fromiter(self.ids.keys(), dtype=np.int64, count=len(self.ids))
        with ids_tmp.open("wb") as handle:
            np.save(handle, keys)
            raw = b"".join(uuid.UUID(m).bytes for m in self.ids.values())
            np.save(handle, np.frombuffer(raw, dtype=np.uint8).reshape(-1, 16))
            np.save(handle, np.array([self.nprobe], dtype=np.int64))
        ids_tmp.replace(path.with_suffix(".ids"))

    @classmethod
    def load(cls, path: Path, dimension: int) -> FieldIndex:
        index = faiss.read_index(str(path))
        if index.d != dimension:
            raise ValueError("dimension changed")
        loaded = cls(dimension, index)
        with path.with_suffix(".ids").open("rb") as handle:
            keys = np.load(handle)
            raw = np.load(handle)
            loaded.nprobe = int(np.load(handle)[0])
        loaded.ids = {
            int(k): str(uuid.UUID(bytes=b.tobytes())) for k, b in zip(keys, raw, strict=True)
        }
        if len(loaded.ids) != loaded.size:
            raise ValueError("id map does not match the index")
        return loaded
