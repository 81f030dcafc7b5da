"""The durable job queue, the ``before_commit`` hook that writes jobs, and PostgreSQL
advisory locks: the claims that keep two server processes off the same shared work.

On PostgreSQL several processes claim from one table: one ``UPDATE ... RETURNING`` leases
the due rows its subquery picks ``FOR UPDATE SKIP LOCKED`` (a row another claimer is taking
is skipped, not waited for). SQLite serves one process and has no row locks; an idle claim
there is one read, so a polling worker never takes the write lock.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, literal, or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.entities import new_id
from domain.events import DomainEvent
from domain.jobs import Claimed, Job, JobDraft, JobStatus
from persistence.session import Transaction
from persistence.tables.jobs import jobs

PENDING = JobStatus.PENDING.value
FAILED = JobStatus.FAILED.value
_LAPSED = "lease lapsed on every attempt"

# Plans the job an event calls for, if any (run inside the event's transaction).
JobPlanner = Callable[[DomainEvent], JobDraft | None]


def _job(row: Any) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        user_id=row.user_id,
        payload=dict(row.payload or {}),
        attempts=row.attempts,
        created_at=row.created_at,
        lease_until=row.lease_until,
    )


def _due(now: datetime, kinds: Sequence[str]) -> Any:
    return and_(
        jobs.c.status == PENDING,
        jobs.c.kind.in_(list(kinds)),
        jobs.c.available_at <= now,
        or_(jobs.c.lease_until.is_(None), jobs.c.lease_until <= now),
    )


def _signed32(value: str) -> int:
    """A stable 32-bit key (advisory locks take two int4 keys)."""
    n = zlib.crc32(value.encode())
    return n - (1 << 32) if n >= 1 << 31 else n


class SqlJobRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    @property
    def _postgres(self) -> bool:
        return self._tx.conn.dialect.name == "postgresql"

    async def add(self, drafts: Sequence[JobDraft], *, now: datetime) -> None:
        if not drafts:
            return
        rows = [
            {
                "id": new_id(),
                "kind": d.kind,
                "user_id": d.user_id,
                "payload": dict(d.payload),
                "status": PENDING,
                "attempts": 0,
                "lease_until": None,
                "available_at": now,
                "created_at": now,
                "last_error": None,
            }
            for d in drafts
        ]
        await self._tx.write(jobs.insert(), rows)

    async def claim(
        self,
        *,
        kinds: Sequence[str],
        now: datetime,
        lease_until: datetime,
        limit: int,
        max_attempts: int,
    ) -> Claimed:
        pick = select(jobs.c.id).where(_due(now, kinds)).order_by(jobs.c.available_at).limit(limit)
        if self._postgres:
            # Several server processes share the queue: each takes rows nobody else holds,
            # and never waits for a row another claimer is taking. The pick is a CTE joined
            # in, evaluated once (as an ``IN`` subquery it may run again per row and lease
            # more than ``limit`` rows).
            picked = pick.with_for_update(skip_locked=True).cte("picked")
            target = jobs.c.id == picked.c.id
        elif (await self._tx.read(pick.limit(1))).first() is None:
            return Claimed(jobs=[], given_up=[])  # idle: SQLite's write lock is not taken
        else:
            # A statement that starts with UPDATE: the driver takes the write lock first.
            target = jobs.c.id.in_(pick.scalar_subquery())
        # One statement leases the picked jobs, or marks failed those whose lease lapsed
        # with no attempt left (SET expressions see the row as it was).
        spent = jobs.c.attempts >= max_attempts
        claim = (
            jobs.update()
            .where(target, _due(now, kinds))
            .values(
                status=case((spent, FAILED), else_=PENDING),
                attempts=case((spent, jobs.c.attempts), else_=jobs.c.attempts + 1),
                lease_until=case(
                    (spent, None), else_=literal(lease_until, jobs.c.lease_until.type)
                ),
                last_error=case((spent, _LAPSED), else_=jobs.c.last_error),
            )
            .returning(*jobs.c)
        )
        rows = [(_job(r), r.status) for r in await self._tx.write(claim)]
        return Claimed(
            jobs=sorted((j for j, status in rows if status == PENDING), key=lambda j: j.created_at),
            given_up=[j for j, status in rows if status == FAILED],
        )

    def _held(self, job: Job) -> Any:
        # ``attempts`` fences the claim: after a lapse and a new claim, the old holder's
        # late finish/release/fail matches nothing.
        return and_(jobs.c.id == job.id, jobs.c.attempts == job.attempts)

    async def finish(self, job: Job) -> bool:
        result = await self._tx.write(jobs.delete().where(self._held(job)))
        return bool(result.rowcount)

    async def renew(self, job: Job, *, lease_until: datetime) -> bool:
        result = await self._tx.write(
            jobs.update()
            .where(self._held(job), jobs.c.status == PENDING)
            .values(lease_until=lease_until)
        )
        return bool(result.rowcount)

    async def release(self, job: Job, *, available_at: datetime, error: str) -> None:
        await self._tx.write(
            jobs.update()
            .where(self._held(job))
            .values(lease_until=None, available_at=available_at, last_error=error)
        )

    async def fail(self, job: Job, *, error: str) -> None:
        await self._tx.write(
            jobs.update()
            .where(self._held(job))
            .values(status=FAILED, lease_until=None, last_error=error)
        )

    async def try_lock(self, scope: str, key: str) -> bool:
        if not self._postgres:
            return True  # one process, and its callers do not overlap on one key
        locked = text("SELECT pg_try_advisory_xact_lock(:scope, :key)")
        result = await self._tx.read(locked, {"scope": _signed32(scope), "key": _signed32(key)})
        return bool(result.scalar_one())


BeforeCommit = Callable[[Transaction, list[DomainEvent]], Awaitable[None]]


def job_outbox(planners: Sequence[JobPlanner]) -> BeforeCommit:
    """A ``Database.before_commit`` hook writing the jobs that committed events call for,
    in their transaction: a job exists exactly when the change it follows committed."""

    async def write_jobs(tx: Transaction, events: list[DomainEvent]) -> None:
        drafts: list[JobDraft] = []
        at: datetime | None = None
        for event in events:
            for plan in planners:
                draft = plan(event)
                if draft is not None:
                    drafts.append(draft)
                    at = event.at if at is None else max(at, event.at)
        if drafts and at is not None:
            await SqlJobRepository(tx).add(drafts, now=at)

    return write_jobs


@contextlib.asynccontextmanager
async def session_lock(engine: AsyncEngine, scope: str, key: str) -> AsyncIterator[bool]:
    """Hold ``(scope, key)`` across many transactions, on a connection of its own: yields
    False if another process holds it. PostgreSQL releases it when that connection ends,
    so a process that dies mid-work frees its claim at once. SQLite: always True."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    keys = {"scope": _signed32(scope), "key": _signed32(key)}
    async with engine.connect() as conn:
        got = bool(
            (await conn.execute(text("SELECT pg_try_advisory_lock(:scope, :key)"), keys)).scalar()
        )
        await conn.commit()  # the lock is the session's, not the transaction's
        try:
            yield got
        finally:
            if got:
                await conn.execute(text("SELECT pg_advisory_unlock(:scope, :key)"), keys)
                await conn.commit()
