"""The durable job queue on both backends: jobs exist exactly when their change commits,
a claim leases them, a lapsed lease makes them claimable again (and fences the old holder
out), and a job is given up after a bounded number of attempts. On PostgreSQL two
claimers (two engines stand for two server processes) never take the same job, and never
wait for each other; advisory locks keep them off the same shared work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import PgServer
from sqlalchemy import select

from domain.clock import SystemClock
from domain.entities import new_id
from domain.events import MESSAGE_CREATED, DomainEvent
from domain.jobs import Job, JobDraft, JobPolicy, JobRunner
from memoria.bootstrap import migrate
from memoria.runtime import build_runtime
from memoria.settings import Settings
from persistence.database import Database
from persistence.repositories.jobs import session_lock
from persistence.tables.jobs import jobs
from providers.embedders.hashing import HashingEmbedder

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)


@dataclass
class MovableClock:
    at: datetime = T0

    def now(self) -> datetime:
        return self.at


@dataclass
class Store:
    db: Database
    user_id: str

    async def add(self, *kinds: str) -> None:
        """One job per kind, in order, a second apart, the last at T0."""
        async with self.db.unit_of_work() as uow:
            for i, kind in enumerate(kinds):
                draft = JobDraft(kind=kind, user_id=self.user_id, payload={"n": str(i)})
                await uow.jobs.add([draft], now=T0 - timedelta(seconds=len(kinds) - 1 - i))
            await uow.commit()

    async def claim(self, at: datetime, *, limit: int = 10, max_attempts: int = 5) -> Any:
        async with self.db.unit_of_work() as uow:
            claimed = await uow.jobs.claim(
                kinds=["a"], now=at, lease_until=at + LEASE, limit=limit, max_attempts=max_attempts
            )
            await uow.commit()
        return claimed

    async def finish(self, job: Job) -> bool:
        async with self.db.unit_of_work() as uow:
            done = await uow.jobs.finish(job)
            await uow.commit()
        return done

    async def rows(self) -> list[Any]:
        async with self.db.engine.connect() as conn:
            return list(await conn.execute(select(jobs).order_by(jobs.c.created_at, jobs.c.id)))


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    runtime = build_runtime(settings, embedder=HashingEmbedder())
    await migrate(runtime.db)
    async with runtime.db.unit_of_work() as uow:
        result = await runtime.deps.auth.register(
            uow=uow, username="alice", email="alice@example.com", password="correct-horse-1"
        )
        await uow.commit()
    try:
        yield Store(runtime.db, result.user.id)
    finally:
        await runtime.db.dispose()


async def test_claim_leases_due_jobs_of_its_kinds_once(store: Store) -> None:
    await store.add("a", "a", "b", "a")
    first = await store.claim(T0, limit=2)
    assert [j.payload["n"] for j in first.jobs] == ["0", "1"]  # oldest first, limit honoured
    assert {j.attempts for j in first.jobs} == {1}
    second = await store.claim(T0)
    assert [j.payload["n"] for j in second.jobs] == ["3"]  # "b" is not this claimer's kind
    assert (await store.claim(T0 + LEASE / 2)).jobs == []  # all leased
    assert await store.finish(first.jobs[0]) is True
    assert await store.finish(first.jobs[0]) is False  # already gone
    assert len(await store.rows()) == 3


async def test_a_lapsed_lease_makes_the_job_claimable_and_fences_the_old_holder(
    store: Store,
) -> None:
    await store.add("a")
    (held,) = (await store.claim(T0)).jobs
    assert (await store.claim(T0 + LEASE - timedelta(seconds=1))).jobs == []
    (again,) = (await store.claim(T0 + LEASE)).jobs  # the holder died: its lease lapsed
    assert (again.id, again.attempts) == (held.id, 2)
    assert await store.finish(held) is False  # the old claim no longer holds it
    assert await store.finish(again) is True
    assert await store.rows() == []


async def test_a_job_is_given_up_after_max_attempts(store: Store) -> None:
    await store.add("a")
    at = T0
    for attempt in (1, 2):
        (job,) = (await store.claim(at, max_attempts=2)).jobs
        assert job.attempts == attempt
        at += LEASE  # its process dies each time
    claimed = await store.claim(at, max_attempts=2)
    assert claimed.jobs == []
    assert [j.attempts for j in claimed.given_up] == [2]
    (row,) = await store.rows()
    assert (row.status, row.lease_until) == ("failed", None)
    assert (await store.claim(at + 10 * LEASE)).jobs == []  # failed jobs stay failed


async def test_the_runner_retries_a_failing_job_with_backoff_then_fails_it(store: Store) -> None:
    clock = MovableClock()
    seen: list[int] = []

    async def handler(job: Job) -> bool:
        seen.append(job.attempts)
        if job.attempts < 3:
            raise RuntimeError(f"boom {job.attempts}")
        return False

    policy = JobPolicy(lease=LEASE, max_attempts=3, retry_base=timedelta(seconds=10))
    runner = JobRunner(
        uow_factory=store.db.unit_of_work, clock=clock, handlers={"a": handler}, policy=policy
    )
    await store.add("a", "a")
    assert await runner.run_once() == 2
    row = (await store.rows())[0]
    assert (row.attempts, row.lease_until, row.last_error) == (1, None, "RuntimeError: boom 1")
    assert row.available_at == T0 + timedelta(seconds=10)
    assert await runner.run_once() == 0  # backing off
    clock.at = T0 + timedelta(seconds=10)
    assert await runner.run_once() == 2  # second attempt: 20 s more
    clock.at += timedelta(seconds=20)
    assert await runner.run_once() == 2  # third attempt succeeds: removed
    assert seen == [1, 1, 2, 2, 3, 3]
    assert await store.rows() == []

    always = JobRunner(
        uow_factory=store.db.unit_of_work,
        clock=clock,
        handlers={"a": lambda job: _raise(job)},
        policy=JobPolicy(lease=LEASE, max_attempts=1),
    )
    await store.add("a")
    assert await always.run_once() == 1
    (row,) = await store.rows()
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "ValueError: bad payload")


async def test_a_batch_handler_takes_a_round_at_once_and_fails_or_finishes_it_whole(
    store: Store,
) -> None:
    clock = MovableClock()
    rounds: list[list[str]] = []

    async def handler(batch: list[Job]) -> bool:
        rounds.append([str(job.payload["n"]) for job in batch])
        if len(rounds) == 1:
            raise RuntimeError("store down")
        return False  # the runner removes them

    policy = JobPolicy(lease=LEASE, retry_base=timedelta(seconds=10), batch=10)
    runner = JobRunner(
        uow_factory=store.db.unit_of_work,
        clock=clock,
        batch_handlers={"a": handler},
        policy=policy,
    )
    await store.add("a", "a", "a")
    assert await runner.run_once() == 3
    assert rounds == [["0", "1", "2"]]  # one call for the round, in queue order
    failed = await store.rows()
    assert [(r.attempts, r.last_error) for r in failed] == [(1, "RuntimeError: store down")] * 3
    assert await runner.run_once() == 0  # all three back off together
    clock.at = T0 + timedelta(seconds=10)
    assert await runner.run_once() == 3
    assert rounds[1] == ["0", "1", "2"]
    assert await store.rows() == []


async def test_a_running_job_keeps_its_lease_past_its_length(store: Store) -> None:
    """A job running longer than its lease renews it, so no other claim takes it meanwhile."""
    clock = SystemClock()
    lease = timedelta(seconds=0.6)
    running = asyncio.Event()
    release = asyncio.Event()
    seen: list[int] = []

    async def slow(job: Job) -> bool:
        seen.append(job.attempts)
        running.set()
        await release.wait()
        return False

    runner = JobRunner(
        uow_factory=store.db.unit_of_work,
        clock=clock,
        handlers={"a": slow},
        policy=JobPolicy(lease=lease),
    )
    async with store.db.unit_of_work() as uow:
        await uow.jobs.add([JobDraft(kind="a", user_id=store.user_id)], now=clock.now())
        await uow.commit()
    task = asyncio.ensure_future(runner.run_once())
    await asyncio.wait_for(running.wait(), timeout=10)
    for _ in range(4):  # past three leases, each claim sees it held
        await asyncio.sleep(0.4)
        assert (await store.claim(clock.now())).jobs == []
        (row,) = await store.rows()
        assert row.lease_until > clock.now()
    release.set()
    assert await asyncio.wait_for(task, timeout=10) == 1
    assert seen == [1]
    assert await store.rows() == []


async def _raise(job: Job) -> bool:
    raise ValueError("bad payload")


async def test_jobs_are_written_only_with_their_committed_change(store: Store) -> None:
    """The runtime's planners (pattern learning, messages kept as memories) write their jobs
    in the event's transaction, and only there."""

    def teaching(text: str) -> DomainEvent:
        return DomainEvent(
            name=MESSAGE_CREATED,
            user_id=store.user_id,
            at=T0,
            payload={"id": new_id(), "role": "user", "content": text},
        )

    async with store.db.unit_of_work() as uow:
        uow.record(teaching("Always answer in French."))
        uow.record(teaching("nice weather today"))  # teaches nothing: no job
        await uow.commit()
    async with store.db.unit_of_work() as uow:
        uow.record(teaching("Never use emoji."))
        await uow.rollback()  # the change did not commit: neither does its job
    rows = await store.rows()
    # Both messages of the committed transaction are kept; only the first one teaches.
    assert sorted((r.kind, r.status, r.attempts) for r in rows) == [
        ("message_recall", "pending", 0),
        ("message_recall", "pending", 0),
        ("pattern_learning", "pending", 0),
    ]
    assert all(set(r.payload) == {"message_id"} for r in rows)  # ids only, never content


@pytest.fixture
async def two_processes(pg_server: PgServer, tmp_path: Path) -> AsyncIterator[tuple[Store, Store]]:
    url = pg_server.url(pg_server.create_database())
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        environment="test",
        embedder="hashing",
        fast_password_hashing=True,
    ).validated()
    runtime = build_runtime(settings, embedder=HashingEmbedder())
    await migrate(runtime.db)
    async with runtime.db.unit_of_work() as uow:
        result = await runtime.deps.auth.register(
            uow=uow, username="alice", email="alice@example.com", password="correct-horse-1"
        )
        await uow.commit()
    other = Database(url)
    try:
        yield Store(runtime.db, result.user.id), Store(other, result.user.id)
    finally:
        await other.dispose()
        await runtime.db.dispose()


async def test_concurrent_claimers_skip_each_others_jobs_on_postgres(
    two_processes: tuple[Store, Store],
) -> None:
    a, b = two_processes
    await a.add(*["a"] * 6)
    async with a.db.unit_of_work() as first:
        taken = await first.jobs.claim(
            kinds=["a"], now=T0, lease_until=T0 + LEASE, limit=4, max_attempts=5
        )
        # A has not committed: its rows are locked. B neither waits nor takes them.
        others = await asyncio.wait_for(b.claim(T0, limit=10), 5)
        await first.commit()
    assert len(taken.jobs) == 4
    assert len(others.jobs) == 2
    assert not {j.id for j in taken.jobs} & {j.id for j in others.jobs}
    assert (await b.claim(T0)).jobs == []


async def test_advisory_locks_keep_two_processes_off_one_piece_of_work(
    two_processes: tuple[Store, Store],
) -> None:
    a, b = two_processes
    async with a.db.unit_of_work() as first, b.db.unit_of_work() as second:
        assert await first.jobs.try_lock("promote-field", "f1") is True
        assert await second.jobs.try_lock("promote-field", "f1") is False
        assert await second.jobs.try_lock("promote-field", "f2") is True
        await first.commit()  # a transaction's lock ends with it
    async with b.db.unit_of_work() as second:
        assert await second.jobs.try_lock("promote-field", "f1") is True
    async with session_lock(a.db.engine, "reembed-field", "f1") as mine:
        assert mine is True
        async with session_lock(b.db.engine, "reembed-field", "f1") as theirs:
            assert theirs is False
        async with a.db.unit_of_work() as uow:  # held across A's transactions
            await uow.commit()
        async with session_lock(b.db.engine, "reembed-field", "f1") as theirs:
            assert theirs is False
    async with session_lock(b.db.engine, "reembed-field", "f1") as theirs:
        assert theirs is True  # released with A's claim
