"""The composition root hands settings to the parts they configure."""

from __future__ import annotations

from pathlib import Path

from memoria.runtime import build_runtime
from memoria.settings import Settings
from providers.embedders.hashing import HashingEmbedder


async def test_the_search_index_budgets_reach_the_in_process_stores(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        environment="test",
        embedder="hashing",
        fast_password_hashing=True,
        search_index_entries=1234,
        vector_index_entries=5678,
    ).validated()
    runtime = build_runtime(settings, embedder=HashingEmbedder())
    try:
        assert runtime.db.terms is not None
        assert runtime.db.turns is not None
        assert runtime.db.terms.budget == runtime.db.turns.budget == 1234
        assert runtime.db.faiss is not None
        assert runtime.db.faiss.budget == 5678
    finally:
        await runtime.db.dispose()
