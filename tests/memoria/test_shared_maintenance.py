"""Re-embedding shared by two server processes on one PostgreSQL database (two runtimes
stand for them): a field another process holds is skipped and looked at again, and taken
over as soon as that process lets go — as when it dies and its connection closes."""

from __future__ import annotations

from pathlib import Path

from conftest import PgServer

from domain.entities import Actor, Role
from domain.memory_drafts import MemoryDraft
from memoria.bootstrap import migrate
from memoria.maintenance import REEMBED_LOCK
from memoria.runtime import Runtime, build_runtime
from memoria.settings import Settings
from persistence.repositories.jobs import session_lock
from providers.embedders.hashing import HashingEmbedder


async def test_a_field_held_by_another_process_is_skipped_then_taken_over(
    pg_server: PgServer, tmp_path: Path
) -> None:
    url = pg_server.url(pg_server.create_database())

    def runtime(name: str) -> Runtime:
        settings = Settings(
            data_dir=tmp_path / name,
            database_url=url,
            environment="test",
            embedder="hashing",
            fast_password_hashing=True,
        ).validated()
        return build_runtime(settings, embedder=HashingEmbedder())

    a, b = runtime("a"), runtime("b")
    db_a, db_b = a.db, b.db
    try:
        await migrate(db_a)
        deps = b.deps
        async with db_b.unit_of_work() as uow:
            user = (
                await deps.auth.register(
                    uow=uow, username="alice", email="alice@example.com", password="a-long-pass1"
                )
            ).user
            actor = Actor(user_id=user.id, role=Role.USER, via="jwt")
            field = await deps.fields.create(uow=uow, actor=actor, name="notes")
            drafts = [MemoryDraft(content=f"note {i} about the garden") for i in range(3)]
            await deps.memories.add_many(uow=uow, actor=actor, field_id=field.id, drafts=drafts)
            # As after a restart with another embedder: the field's vectors are stale.
            await uow.maintenance.set_field_embedder(field.id, embedder="old-model", dimension=8)
            await uow.commit()

        async with session_lock(db_a.engine, REEMBED_LOCK, field.id) as mine:
            assert mine  # A is re-embedding the field
            assert await b.reembed.run_pass() == (0, 1)
        # A let go (or died: PostgreSQL frees the lock with its connection).
        assert await b.reembed.run_pass() == (1, 0)
        assert await b.reembed.run_pass() == (0, 0)
        async with db_a.unit_of_work() as uow:
            moved = await uow.fields.get(field.id, user_id=user.id)
        assert moved is not None
        assert (moved.embedder, moved.dimension) == ("hashing-256", 256)
    finally:
        await db_a.dispose()
        await db_b.dispose()
