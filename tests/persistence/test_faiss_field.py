"""One field's FAISS index: exact and IVF search, filters inside the search, upsert/delete,
and saving/loading the index file with its id map."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from persistence.faiss_field import FieldIndex, needs_retraining


def _data(n: int, dim: int = 32, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, dim)).astype(
        np.float32
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [str(uuid.uuid4()) for _ in range(n)], vectors.astype(np.float32)


def test_ivf_agrees_with_exact_and_filters_inside(tmp_path: Path) -> None:
    ids, vectors = _data(4000)
    flat = FieldIndex(32)
    flat.upsert(ids, vectors)
    ivf = flat.to_ivf()
    assert ivf.is_ivf
    assert ivf.size == flat.size == 4000
    queries = vectors[:50]
    exact = flat.search_many(queries, 10)
    approx = ivf.search_many(queries, 10)
    recall = np.mean(
        [
            len({m for m, _ in a} & {m for m, _ in e}) / 10
            for a, e in zip(approx, exact, strict=True)
        ]
    )
    assert recall >= 0.9
    assert approx[0][0][0] == ids[0]  # a stored vector finds itself first

    allowed = ids[100:103]
    hits = ivf.search_many(queries[:1], 10, allowed)[0]
    assert {m for m, _ in hits} == set(allowed)  # never short, never outside the filter
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)

    ivf.delete([ids[0]])
    ivf.upsert([ids[1]], vectors[:1])  # re-embedding an existing memory replaces its vector
    top = ivf.search_many(vectors[:1], 2)[0]
    assert top[0][0] == ids[1]
    assert ids[0] not in {m for m, _ in ivf.search_many(vectors[:1], 50)[0]}

    path = tmp_path / "field.faiss"
    ivf.save(path)
    loaded = FieldIndex.load(path, 32)
    assert loaded.is_ivf
    assert loaded.ids == ivf.ids
    assert loaded.nprobe == ivf.nprobe
    assert loaded.search_many(queries[:5], 5) == ivf.search_many(queries[:5], 5)
    with pytest.raises(ValueError, match="dimension"):
        FieldIndex.load(path, 64)


def test_a_field_that_outgrew_its_ivf_lists_is_retrained() -> None:
    ids, vectors = _data(20_000, seed=1)
    small = FieldIndex(32)
    small.upsert(ids[:4000], vectors[:4000])
    ivf = small.to_ivf()
    assert not needs_retraining(ivf)
    trained_lists = ivf.index.nlist
    ivf.upsert(ids[4000:], vectors[4000:])  # grew 5x after training
    assert needs_retraining(ivf)
    bigger = ivf.to_ivf()  # from IVF: the vectors are read back by id
    assert bigger.index.nlist >= 2 * trained_lists
    assert not needs_retraining(bigger)
    assert bigger.ids == ivf.ids
    exact = FieldIndex(32)
    exact.upsert(ids, vectors)
    queries = vectors[::400]
    truth = exact.search_many(queries, 10)
    found = bigger.search_many(queries, 10)
    recall = np.mean(
        [len({m for m, _ in a} & {m for m, _ in e}) / 10 for a, e in zip(found, truth, strict=True)]
    )
    assert recall >= 0.9
    assert not needs_retraining(exact)  # exact search never needs it


def test_ivf_probes_scan_a_bounded_number_of_vectors() -> None:
    """An eighth of the lists while that is cheap; beyond, a fixed budget of vectors scanned
    per query, so latency stays flat as a field grows."""
    from persistence.faiss_field import ivf_shape

    lists, probes = ivf_shape(100_000)
    assert (lists, probes) == (1264, 158)
    for count in (300_000, 1_000_000, 3_000_000):
        lists, probes = ivf_shape(count)
        assert 8 <= probes <= lists // 8
        assert probes * count / lists <= 65_536 + count / lists  # within one list of the budget
