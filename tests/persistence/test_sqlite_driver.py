"""The one-round-trip SQLite adapter (persistence/sqlite_driver.py) keeps DBAPI semantics."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from persistence.database import Database
from persistence.sqlite_driver import OneTripConnection


@pytest.fixture
async def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
    yield database
    await database.dispose()


async def _driver(conn) -> OneTripConnection:  # type: ignore[no-untyped-def]
    raw = await conn.get_raw_connection()
    adapted = raw.dbapi_connection
    assert isinstance(adapted, OneTripConnection)
    return adapted


async def test_rows_rowcount_and_lastrowid(db: Database) -> None:
    async with db.engine.begin() as conn:
        inserted = await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
        assert inserted.lastrowid == 1
        await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])
        updated = await conn.execute(text("UPDATE t SET v = 'x' WHERE id > 1"))
        assert updated.rowcount == 2
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, v FROM t ORDER BY id"))).all()
    assert [tuple(r) for r in rows] == [(1, "a"), (2, "x"), (3, "x")]


async def test_rollback_discards_and_commit_keeps(db: Database) -> None:
    async with db.engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('gone')"))
        assert (await _driver(conn)).in_transaction
        await conn.rollback()
        assert not (await _driver(conn)).in_transaction
        await conn.execute(text("INSERT INTO t (v) VALUES ('kept')"))
        await conn.commit()
    async with db.engine.connect() as conn:
        values = (await conn.execute(text("SELECT v FROM t"))).scalars().all()
    assert values == ["kept"]


async def test_a_connection_returned_mid_write_is_rolled_back(db: Database) -> None:
    async with db.engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('abandoned')"))
        # closed without commit: the pool must really roll back, or SQLite's write lock
        # would stay taken and the next writer below would fail with "database is locked"
    async with db.engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('next')"))
    async with db.engine.connect() as conn:
        values = (await conn.execute(text("SELECT v FROM t"))).scalars().all()
    assert values == ["next"]


async def test_errors_are_dbapi_errors_and_the_connection_stays_usable(db: Database) -> None:
    async with db.engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (id, v) VALUES (7, 'a')"))
        with pytest.raises(IntegrityError):
            await conn.execute(text("INSERT INTO t (id, v) VALUES (7, 'b')"))
        await conn.rollback()
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 0


async def test_reads_alone_open_no_transaction(db: Database) -> None:
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT count(*) FROM t"))
        assert not (await _driver(conn)).in_transaction


async def test_queued_inserts_run_with_the_next_statement_or_commit(db: Database) -> None:
    assert db.write_lock is not None
    async with db.engine.connect() as conn:
        driver = await _driver(conn)
        driver.defer_inserts = True
        await conn.execute(text("INSERT INTO t (v) VALUES ('a')"))
        await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])
        driver.defer_inserts = False
        assert len(driver.pending) == 2
        assert not driver.in_transaction
        assert not db.write_lock.locked()
        # A read sees them (they run first, in the same call), under the write lock.
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 3
        assert driver.in_transaction
        assert db.write_lock.locked()
        driver.defer_inserts = True
        await conn.execute(text("INSERT INTO t (v) VALUES ('d')"))
        driver.defer_inserts = False
        await conn.commit()
        assert not driver.pending
        assert not db.write_lock.locked()
    async with db.engine.connect() as conn:
        values = (await conn.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all()
    assert values == ["a", "b", "c", "d"]


async def test_a_unit_of_work_holds_the_write_lock_only_for_its_commit(db: Database) -> None:
    from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

    from persistence.sqlite_driver import BatchingTransaction

    t = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("v", String))
    assert db.write_lock is not None
    async with db.unit_of_work() as uow:
        tx = uow._tx
        assert isinstance(tx, BatchingTransaction)
        await tx.write(insert(t).values(v="x"))
        await tx.write(insert(t).values(v="y"))
        assert not db.write_lock.locked()
        # A read of another table leaves the queue alone; one of the queued table flushes it.
        other = await tx.read_beside_writes(select(t.c.id).limit(0), tables=("elsewhere",))
        assert list(other) == []
        assert not db.write_lock.locked()
        await tx.read_beside_writes(select(t.c.id), tables=("t",))
        assert db.write_lock.locked()
        await uow.commit()
        assert not db.write_lock.locked()
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 2


def _values(conn: sqlite3.Connection, above: int) -> list[str]:
    return [v for (v,) in conn.execute("SELECT v FROM t WHERE id > ? ORDER BY id", (above,))]


async def test_a_function_call_runs_after_the_queue_inside_the_transaction(db: Database) -> None:
    from sqlalchemy import Column, Integer, MetaData, String, Table, insert

    from persistence.sqlite_driver import BatchingTransaction

    t = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("v", String))
    assert db.write_lock is not None
    async with db.unit_of_work() as uow:
        tx = uow._tx
        assert isinstance(tx, BatchingTransaction)
        assert await tx.call(_values, 0) == []  # a read alone: no transaction, no lock
        assert not db.write_lock.locked()
        await tx.write(insert(t).values(v="queued"))
        # The queued insert runs first, in the same call, under the write lock.
        assert await tx.call(_values, 0) == ["queued"]
        assert db.write_lock.locked()
        await uow.rollback()
        assert not db.write_lock.locked()
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 0


async def test_a_failing_queued_insert_fails_the_commit_and_frees_the_lock(db: Database) -> None:
    assert db.write_lock is not None
    async with db.engine.connect() as conn:
        driver = await _driver(conn)
        driver.defer_inserts = True
        await conn.execute(text("INSERT INTO t (id, v) VALUES (1, 'a')"))
        await conn.execute(text("INSERT INTO t (id, v) VALUES (1, 'again')"))
        driver.defer_inserts = False
        with pytest.raises(IntegrityError):
            await conn.commit()
        await conn.rollback()
        assert not db.write_lock.locked()
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 0
    async with db.engine.begin() as conn:  # the next writer is not blocked
        await conn.execute(text("INSERT INTO t (v) VALUES ('next')"))


def test_webhook_subscription_cache_is_bypassed_while_a_writer_is_open() -> None:
    from persistence.outbox import SubscriptionCache

    cache = SubscriptionCache()
    writer, other = object(), object()
    assert cache.usable
    cache.writing(other, "messages")  # tables the cache does not hold change nothing
    assert cache.usable
    before = cache.generation
    cache.writing(writer, "webhooks")
    assert not cache.usable  # readers go to the table until the writer's transaction ends
    assert cache.generation > before
    cache.ended(other)
    assert not cache.usable
    cache.ended(writer)
    assert cache.usable


def test_writes_are_named_by_their_table_and_claims_by_their_one_from() -> None:
    """Caches of table contents are dropped by writes to their tables only: a worker's claim
    (a SELECT run as a write) names its table instead of counting as a write to any."""
    from sqlalchemy import insert, select, text, update

    from persistence.sqlite_driver import _table_of
    from persistence.tables.memories import memories, memory_fields
    from persistence.tables.webhooks import webhook_deliveries

    assert _table_of(insert(memories)) == "memories"
    assert _table_of(update(memory_fields).values(name="x")) == "memory_fields"
    assert _table_of(select(webhook_deliveries).limit(5)) == "webhook_deliveries"
    assert _table_of(text("UPDATE memories SET importance = 1")) == "?"
    joined = select(memories.c.id).join(memory_fields, memory_fields.c.id == memories.c.field_id)
    assert _table_of(joined) == "?"
